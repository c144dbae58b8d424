"""Count the distinct simulator builds the default test suite asks for, without building.

Runs ``pytest -m sim`` (the default ``not slow`` selection) in-process with
:func:`mxsf.gen.verilog.build_verilog` replaced by a stub (no Amaranth conversion: the
design is keyed by class, parameters and name, which fix its Verilog) and the two simulator
build entry points (:func:`mxsf.sim.run.build_simulator` for cocotb,
:func:`mxsf.sim.vectors.build_vector_sim` for vector files) replaced by a recorder that notes
the build key and skips the test. Prints the number of distinct builds per kind and
simulator. Tests that edit the Verilog text before building (the deliberately broken
designs of ``tests/test_vectors.py``) fail here and are listed; each adds one build.

    python benchmarks/count_builds.py [extra pytest args]   # MXSF_COUNT_TESTS=<dir> for another tests folder
"""

import hashlib
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class _Recorder:
    def __init__(self):
        self.builds = defaultdict(set)

    def pytest_configure(self, config):
        import mxsf.gen.verilog as gv
        import mxsf.sim.run as run
        import mxsf.sim.vectors as vectors
        from mxsf.gen.built import BuiltDesign, params_json

        def fake_build_verilog(component_cls, params, *, name=None, root="build"):
            key = hashlib.sha256(f"{component_cls.__module__}.{component_cls.__qualname__}\n"
                                 f"{params_json(params)}\n{name}".encode()).hexdigest()
            top = name or gv.default_top_name(component_cls)
            return BuiltDesign(top=top, verilog_path=Path(f"/nonexistent/{key}/{top}.v"),
                               build_dir=Path(f"/nonexistent/{key}"), params=dict(params), ports=(),
                               latency=getattr(component_cls, "LATENCY", None), verilog_sha256=key)

        gv.build_verilog = fake_build_verilog

        def fake_cocotb_build(design, sim="verilator", *, waves=False):
            self.builds[("cocotb", sim)].add((design.top, design.verilog_sha256))
            pytest.skip("build counted")

        def fake_vector_build(sources, top, ports, sim="verilator", **kw):
            digest = "\n".join(str(s) for s in sources)
            self.builds[("vectors", sim)].add((top, digest, kw.get("held"), kw.get("vcd", False)))
            pytest.skip("build counted")

        run.build_simulator = fake_cocotb_build
        vectors.build_vector_sim = fake_vector_build


def main(argv):
    rec = _Recorder()
    code = pytest.main(["-q", "-m", "sim and not slow", "-p", "no:xdist", "-p", "no:cacheprovider",
                        "--rootdir", str(ROOT), os.environ.get("MXSF_COUNT_TESTS", str(ROOT / "tests")), *argv],
                       plugins=[rec])
    total = 0
    for (kind, sim), keys in sorted(rec.builds.items()):
        print(f"{kind:8s} {sim:10s} {len(keys):3d} distinct builds")
        total += len(keys)
    verilator = sum(len(k) for (kind, sim), k in rec.builds.items() if sim == "verilator")
    print(f"total {total} builds, {verilator} of them Verilator")
    return 0 if code in (0, 5) else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
