"""Simulation benchmark of the processing elements under cocotb.

Prints, per design and simulator: the simulator build time (a fresh build, then the
cached one), simulated cycles per second of wall time and MACs per second, running the
PE regression's ``back_to_back`` test (one beat every cycle, every output compared with
the golden cycle model), then the systolic arrays (4x4 and 8x8, MXSF and BF16, on
Verilator: see ``array_bench.py``, which this runs).
Then (unless ``--no-vectors``) the vector-file path against the cocotb path on the same
designs in the same run (``vector_bench.py``: MXSF PE, BF16 PE, 4x4 MXSF array,
re-quantizer; add ``--million`` for one million MXSF dot products).
Usage: ``python benchmarks/sim_bench.py [--sims verilator,icarus] [--no-arrays] [--no-vectors] [--million]``.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

from mxsf.hw.bf16_pe import BF16ProcessingElement
from mxsf.hw.pe import MXProcessingElement
from mxsf.gen.verilog import build_verilog
from mxsf.sim.run import available_simulators, build_simulator, run_cocotb

CLOCK_NS = 10  # clock_and_reset's default period

CASES = [
    # name, class, params, test module, config, MACs per beat
    ("mx_pe mxsf b32 l32", MXProcessingElement, {"fmt": "mxsf", "block_size": 32, "lanes": 32},
     "mxsf.sim.tests.pe_tests", {"count": 600}, 32),
    ("mx_pe fp8_e4m3 b32 l32", MXProcessingElement, {"fmt": "fp8_e4m3", "block_size": 32, "lanes": 32},
     "mxsf.sim.tests.pe_tests", {"count": 600}, 32),
    ("mx_pe mxsf b32 l8", MXProcessingElement, {"fmt": "mxsf", "block_size": 32, "lanes": 8},
     "mxsf.sim.tests.pe_tests", {"count": 200}, 8),
    ("bf16_pe l1", BF16ProcessingElement, {"lanes": 1}, "mxsf.sim.tests.bf16_pe_tests", {"count": 1500}, 1),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", default=",".join(available_simulators()))
    ap.add_argument("--root", default="build/bench-sim", help="fresh build root (deleted first)")
    ap.add_argument("--no-arrays", action="store_true", help="skip the systolic-array part")
    ap.add_argument("--no-vectors", action="store_true", help="skip the vector-file vs cocotb part")
    ap.add_argument("--million", action="store_true", help="vector part: one million MXSF dot products")
    ap.add_argument("--array-cycles", type=int, default=4000, help="cycles per array run")
    args = ap.parse_args(argv)
    sims = [s for s in args.sims.split(",") if s]
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    print(f"{'design':24} {'sim':9} {'build s':>8} {'cached s':>8} {'cycles':>8} {'cycles/s':>9} "
          f"{'MACs/s':>10} {'beats ok':>8}")
    for name, cls, params, module, config, macs in CASES:
        design = build_verilog(cls, params, root=root)
        for sim in sims:
            t0 = time.perf_counter()
            fresh = build_simulator(design, sim)
            build_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            build_simulator(design, sim)
            cached_s = time.perf_counter() - t0
            cfg = dict(config)
            if sim == "icarus":
                cfg["count"] = max(20, cfg["count"] // 10)
            result = run_cocotb(design, module, sim=sim, testcase="back_to_back", config=cfg, seed=1)
            if not result.passed:
                print(result.report(), file=sys.stderr)
                return 1
            case = result.cases[0]
            cycles = case.sim_time_ns / CLOCK_NS
            rate = cycles / case.time_s
            print(f"{name:24} {sim:9} {build_s:8.1f} {cached_s:8.3f} {cycles:8.0f} {rate:9.0f} "
                  f"{rate * macs:10.3g} {'yes':>8}", flush=True)
            del fresh
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if not args.no_vectors:
        import vector_bench

        print()
        code = vector_bench.main(["--sims", ",".join(sims), "--root", str(root / "vectors"),
                                  *(["--million"] if args.million else [])])
        if code:
            return code
    if args.no_arrays or "verilator" not in sims:
        return 0
    print()
    import array_bench

    return array_bench.main(["--cycles", str(args.array_cycles), "--root", str(root / "arrays")])


if __name__ == "__main__":
    sys.exit(main())
