"""Count the distinct simulator builds the default test suite asks for, without building.

Runs ``pytest -m sim`` (the default ``not slow`` selection) in-process with the two build
entry points (:func:`mxsf.sim.run.build_simulator` for cocotb and
:func:`mxsf.sim.vectors.build_vector_sim` for vector files) replaced by a recorder that
notes the build key and skips the test. Prints the number of distinct builds per kind and
simulator (a build is keyed by its Verilog hash, as the caches are).

    python benchmarks/count_builds.py [extra pytest args]
"""

import hashlib
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class _Recorder:
    def __init__(self):
        self.builds = defaultdict(set)

    def pytest_configure(self, config):
        import mxsf.sim.run as run
        import mxsf.sim.vectors as vectors

        def fake_cocotb_build(design, sim="verilator", *, waves=False):
            self.builds[("cocotb", sim)].add((design.top, design.verilog_sha256))
            pytest.skip("build counted")

        def fake_vector_build(sources, top, ports, sim="verilator", **kw):
            digest = hashlib.sha256(b"".join(Path(s).read_bytes() for s in sources)).hexdigest()
            self.builds[("vectors", sim)].add((top, digest, kw.get("held"), kw.get("vcd", False)))
            pytest.skip("build counted")

        run.build_simulator = fake_cocotb_build
        vectors.build_vector_sim = fake_vector_build


def main(argv):
    rec = _Recorder()
    code = pytest.main(["-q", "-m", "sim and not slow", "-p", "no:xdist", "-p", "no:cacheprovider",
                        "--rootdir", str(ROOT), str(ROOT / "tests"), *argv], plugins=[rec])
    total = 0
    for (kind, sim), keys in sorted(rec.builds.items()):
        print(f"{kind:8s} {sim:10s} {len(keys):3d} distinct builds")
        total += len(keys)
    verilator = sum(len(k) for (kind, sim), k in rec.builds.items() if sim == "verilator")
    print(f"total {total} builds, {verilator} of them Verilator")
    return 0 if code in (0, 5) else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
