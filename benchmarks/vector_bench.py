"""Vector-file path vs cocotb path, same designs, same run.

For each design and simulator: checked input beats per second of the vector testbench
(simulator wall time and simulator CPU time: the machine is shared, CPU time is the
stable figure), the end-to-end rate (stimulus + golden model + simulation + check), and
the cocotb harness's rate on the same design (its ``back_to_back`` test, cycles per second
of the cocotb test's wall time). With ``--million``: one million random MXSF dot
products through the 32-lane PE on Verilator, stimulus and checking included.

Usage: ``python benchmarks/vector_bench.py [--sims verilator,icarus] [--million] [--no-cocotb]``
"""

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

from mxsf.hw.bf16_pe import BF16ProcessingElement
from mxsf.hw.pe import MXProcessingElement
from mxsf.hw.requant import TileRequantizer
from mxsf.hw.systolic import SystolicArray
from mxsf.sim import pe_stimulus as stim
from mxsf.gen.verilog import build_verilog
from mxsf.sim.run import available_simulators, run_cocotb
from mxsf.sim.vector_benches import (array_case, array_tiles_beats, bf16_pe_case, pe_random_case, requant_case,
                                     run_case)

CLOCK_NS = 10


def _pe(root, n):
    p = {"fmt": "mxsf", "block_size": 32, "lanes": 32}
    d = build_verilog(MXProcessingElement, p, name="mx_pe_mxsf", root=root)
    return d, lambda: pe_random_case(d, MXProcessingElement(**p), count=n, seed=1, idle_prob=0.0), \
        ("mxsf.sim.tests.pe_tests", {"count": 300})


def _bf16(root, n):
    d = build_verilog(BF16ProcessingElement, {"lanes": 1}, name="bf16_pe", root=root)
    return d, lambda: bf16_pe_case(d, BF16ProcessingElement(lanes=1),
                                   stim.random_bf16_dots(np.random.default_rng(1), lanes=1, count=n),
                                   seed=1, idle_prob=0.0), ("mxsf.sim.tests.bf16_pe_tests", {"count": 800})


def _array(root, n):
    from mxsf.golden import quantize

    p = {"fmt": "mxsf", "rows": 4, "cols": 4, "block_size": 32, "lanes": 8}
    d = build_verilog(SystolicArray, p, name="systolic_mxsf_4x4_b32_l8", root=root)

    def make():
        rng = np.random.default_rng(1)
        m = max(4, int(np.sqrt(n * 4 * 4 * 8 / 128)) // 4 * 4)
        x = (rng.standard_normal((m, 128)) * np.exp2(rng.integers(-20, 20, (m, 128)))).astype(np.float32)
        w = rng.standard_normal((128, m)).astype(np.float32)
        qa, qb = quantize(x, "mxsf", 32, axis=1), quantize(w, "mxsf", 32, axis=0)
        values, nb, _ = array_tiles_beats(qa.codes, qb.codes, qa.scale_per_element()[:, ::32],
                                          qb.scale_per_element()[::32, :], rows=4, cols=4, block_size=32, lanes=8)
        return array_case(d, SystolicArray(**p), values, nb, seed=1, idle_prob=0.0)
    return d, make, ("mxsf.sim.tests.systolic_tests", {"count": 40})


def _requant(root, n):
    from mxsf.sim.tests.requant_tests import random_tile_bits

    p = {"fmt": "mxsf", "rows": 32, "cols": 32, "lanes": 8}
    d = build_verilog(TileRequantizer, p, name="requant_mxsf_32x32_l8", root=root)
    return d, lambda: requant_case(d, TileRequantizer(**p), random_tile_bits(np.random.default_rng(1), 1024,
                                                                              max(1, n // 128)),
                                   seed=1, idle_prob=0.0, stall_prob=0.0), \
        ("mxsf.sim.tests.requant_tests", {"count": 6})


CASES = [("MXSF PE b32 l32", _pe, 200_000, 2_000), ("BF16 PE l1", _bf16, 100_000, 5_000),
         ("MXSF 4x4 array b32 l8", _array, 100_000, 2_000), ("MXSF requant 32x32 l8", _requant, 100_000, 2_000)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", default=",".join(available_simulators()))
    ap.add_argument("--root", default="build/bench-vectors")
    ap.add_argument("--million", action="store_true", help="also one million MXSF dot products (Verilator)")
    ap.add_argument("--no-cocotb", action="store_true", help="skip the cocotb comparison")
    args = ap.parse_args(argv)
    sims = [s for s in args.sims.split(",") if s]
    root = Path(args.root)
    print(f"{'design':23} {'sim':9} {'beats':>8} {'sim s':>7} {'cpu s':>7} {'beats/s':>10} "
          f"{'beats/cpu-s':>11} {'end-to-end/s':>12} {'cocotb cyc/s':>12}")
    for name, make_case, n_ver, n_ic in CASES:
        for sim in sims:
            design, make, (module, cfg) = make_case(root, n_ver if sim == "verilator" else n_ic)
            t0 = time.perf_counter()
            case = make()
            result = run_case(case, sim, encoding="bin")
            total = time.perf_counter() - t0 - result.build_seconds
            if not result.passed:
                print(result.report, file=sys.stderr)
                return 1
            cocotb = "-"
            if not args.no_cocotb:
                if sim == "icarus":
                    cfg = {k: max(2, v // 10) for k, v in cfg.items()}
                r = run_cocotb(design, module, sim=sim, testcase="back_to_back", config=cfg, seed=1)
                if not r.passed:
                    print(r.report(), file=sys.stderr)
                    return 1
                c = r.cases[0]
                cocotb = f"{c.sim_time_ns / CLOCK_NS / c.time_s:,.0f}"
            print(f"{name:23} {sim:9} {result.beats:8d} {result.sim_seconds:7.2f} {result.sim_cpu_seconds:7.2f} "
                  f"{result.beats / result.sim_seconds:10,.0f} {result.beats / max(result.sim_cpu_seconds, 1e-3):11,.0f} "
                  f"{result.beats / total:12,.0f} {cocotb:>12}", flush=True)
    if args.million and "verilator" in sims:
        from mxsf.gen.design import resolve_design
        from mxsf.sim.vector_regression import run_vector_regression

        design = resolve_design("pe", {"fmt": "mxsf", "block_size": 32, "lanes": 32})
        # build first (Verilog and testbench are cached), so the timed run is the regression
        run_vector_regression(design, sims=["verilator"], count=10, seed=2, root=str(root), out=io.StringIO())
        t0 = time.perf_counter()
        code = run_vector_regression(design, sims=["verilator"], count=1_000_000, seed=1, root=str(root))
        print(f"one million MXSF dot products (32-lane PE, Verilator): {time.perf_counter() - t0:.1f} s "
              f"wall including stimulus, golden model and checking (build cached)")
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
