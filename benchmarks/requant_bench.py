"""Tile re-quantizer in simulation: cycles per tile, values per cycle, simulation speed,
and the cost of generating and building the design.

For each ``lanes`` value: Amaranth -> Verilog conversion time, a fresh Verilator build of
the design (the Verilator runtime objects are cached under the build root; a cold cache
adds its one-off compile and is reported), then the cocotb ``throughput`` test of
:mod:`mxsf.sim.tests.requant_tests`: ``--tiles`` random tiles streamed back to back with
the output always ready. It checks every output beat against the golden model and
measures the steady-state cycles per tile (between the last beats of consecutive tiles)
and the simulation speed in values (and cycles) per wall-clock second (cocotb + Verilator,
no per-cycle model).

Usage: python benchmarks/requant_bench.py [--fmt mxsf] [--rows 32] [--cols 32]
       [--lanes 8 32] [--tiles 64] [--root build]
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mxsf.hw.requant import TileRequantizer
from mxsf.gen.verilog import build_verilog
from mxsf.sim.run import _runtime_cache_dir, available_simulators, build_simulator, run_cocotb

TESTS = "mxsf.sim.tests.requant_tests"


def bench(fmt: str, rows: int, cols: int, lanes: int, tiles: int, root: Path) -> dict:
    params = {"fmt": fmt, "rows": rows, "cols": cols, "lanes": lanes}
    t0 = time.perf_counter()
    design = build_verilog(TileRequantizer, params, name=f"requant_bench_l{lanes}", root=root)
    convert_s = time.perf_counter() - t0
    runtime_cold = not _runtime_cache_dir(design.build_dir.parent, False).is_dir()
    shutil.rmtree(design.build_dir / "sim", ignore_errors=True)         # force a fresh build
    build = build_simulator(design, "verilator")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        result = run_cocotb(design, TESTS, sim="verilator", testcase="throughput", seed=1,
                            config={"tiles": tiles, "report": str(report)})
        result.check()
        figures = json.loads(report.read_text())
    figures.update(latency=design.latency, beats_per_tile=rows * cols // lanes,
                   verilog_kib=design.verilog_path.stat().st_size / 1024, convert_s=convert_s,
                   build_s=build.seconds, runtime_cold=runtime_cold)
    return figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fmt", default="mxsf")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--lanes", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--tiles", type=int, default=64)
    ap.add_argument("--root", type=Path, default=Path("build"))
    args = ap.parse_args(argv)
    if "verilator" not in available_simulators():
        print("Verilator is not installed", file=sys.stderr)
        return 1

    print(f"TileRequantizer {args.fmt} {args.rows}x{args.cols}, {args.tiles} tiles back to back, "
          f"output always ready (Verilator via cocotb)")
    header = (f"{'lanes':>5} {'beats/tile':>10} {'latency':>7} {'cycles/tile':>11} {'values/cycle':>12} "
              f"{'sim values/s':>12} {'sim cycles/s':>12} {'Verilog KiB':>11} {'convert s':>9} {'build s':>8}")
    print(header)
    print("-" * len(header))
    for lanes in args.lanes:
        r = bench(args.fmt, args.rows, args.cols, lanes, args.tiles, args.root)
        cold = " (incl. Verilator runtime, cold cache)" if r["runtime_cold"] else ""
        print(f"{lanes:>5} {r['beats_per_tile']:>10} {r['latency']:>7} {r['cycles_per_tile']:>11.1f} "
              f"{r['values_per_cycle']:>12.2f} {r['sim_values_per_s']:>12,.0f} {r['sim_cycles_per_s']:>12,.0f} "
              f"{r['verilog_kib']:>11.0f} {r['convert_s']:>9.1f} {r['build_s']:>8.1f}{cold}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
