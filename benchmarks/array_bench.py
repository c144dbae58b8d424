"""Systolic array simulation benchmark: Verilator build time, simulated cycles/s, MACs/s.

For each configuration (default: 4x4 and 8x8 arrays, MXSF with blocks of 8 in one beat
and the BF16 baseline with 2 lanes) the array is converted to Verilog, built with
Verilator through the project's cocotb harness (the build time is the harness's, with
its flags; a cached build is reported as such), then driven from cocotb with one
random beat every cycle for ``--cycles`` cycles. Reported: Verilog size, build seconds,
simulated cycles per wall second (cocotb drive + Verilator), and MACs per second
(``rows * cols * lanes`` per cycle). Every result row is checked against the golden
cycle model, so a fast but wrong simulation fails the benchmark.

This file is also the cocotb test module of the run (test ``throughput``).

Usage: python benchmarks/array_bench.py [--cycles 4000] [--sizes 4 8] [--formats mxsf bf16]
       [--root build/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

try:                                   # inside the simulator
    import cocotb
    from cocotb.triggers import ReadOnly, RisingEdge
except ImportError:                    # pragma: no cover
    cocotb = None

RESULT_ENV = "MXSF_BENCH_RESULT"


def _beats(fmt, rows, cols, block_size, lanes, cycles, seed=0):
    import numpy as np

    from mxsf.sim.tests.systolic_tests import random_tile_beats
    rng = np.random.default_rng(seed)
    k_min = max(1, -(-rows * lanes // block_size))      # tiles of >= rows beats: no stall
    beats = []
    while len(beats) < cycles:
        beats += random_tile_beats(rng, fmt, rows, cols, block_size=block_size, lanes=lanes, count=4,
                                   k_blocks=(k_min, 2 * k_min))
    return beats[:cycles]


if cocotb is not None:
    @cocotb.test()
    async def throughput(dut):
        """Drive one beat a cycle; time the simulation; check every cycle against the model."""
        from mxsf.golden.systolic_model import ArrayBeat, systolic_cycle_model
        from mxsf.hw.systolic import array_beat_layout, array_row_layout
        from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_test_config
        from mxsf.sim.packing import LayoutCodec
        from mxsf.sim.tests.systolic_tests import beat_payload

        p = get_design().params
        cfg = get_test_config()
        fmt, rows, cols, bs, lanes = p["fmt"], p["rows"], p["cols"], p["block_size"], p["lanes"]
        bf16 = fmt == "bf16"
        latency = get_design().latency
        codec = LayoutCodec(array_beat_layout(fmt, rows, cols, lanes))
        beats = _beats(fmt, rows, cols, bs, lanes, cfg["cycles"])
        txns = [codec.pack(beat_payload(b, bf16)) for b in beats]
        await clock_and_reset(dut)
        clk, valid, payload, ready = dut.clk, dut.i__valid, dut.i__payload, dut.i__ready
        o_valid, o_payload = dut.o__valid, dut.o__payload
        accepted, outs = [], []
        total = len(txns) + latency + rows + 2
        k = 0
        t0 = time.perf_counter()
        for cyc in range(total):
            await RisingEdge(clk)
            if k < len(txns):
                valid.value = 1
                payload.value = txns[k]
            else:
                valid.value = 0
            await ReadOnly()
            took = k < len(txns) and int(ready.value) == 1
            accepted.append(beats[k] if took else None)
            k += took
            outs.append(int(o_payload.value) if int(o_valid.value) else None)
        wall = time.perf_counter() - t0
        # check every cycle against the golden cycle model
        trace = [ArrayBeat(a=b.a, b=b.b, scale_a=b.scale_a, scale_b=b.scale_b, first=b.first, last=b.last)
                 if b is not None else None for b in accepted]
        model = systolic_cycle_model(trace, fmt=fmt, rows=rows, cols=cols, block_size=bs, lanes=lanes,
                                     latency=latency)[:total]
        out_codec = LayoutCodec(array_row_layout(rows, cols))
        expected = [None if r is None else out_codec.pack(r) for r in model]
        bad = [c for c, (e, g) in enumerate(zip(expected, outs)) if e != g]
        assert not bad, f"{len(bad)} mismatching cycles, first at {bad[0]}"
        stalls = sum(1 for b in accepted[:k] if b is None)
        result = {"cycles": total, "wall_s": wall, "beats": k, "stall_cycles": stalls,
                  "results": sum(e is not None for e in expected)}
        Path(os.environ[RESULT_ENV]).write_text(json.dumps(result))


def bench_one(fmt, n, *, cycles, root):
    from mxsf.hw.systolic import SystolicArray
    from mxsf.gen.verilog import build_verilog
    from mxsf.sim.run import build_simulator, run_cocotb

    if fmt == "bf16":
        block_size, lanes = 8, 2
    else:
        block_size, lanes = 8, 8
    params = {"fmt": fmt, "rows": n, "cols": n, "block_size": block_size, "lanes": lanes}
    t0 = time.perf_counter()
    design = build_verilog(SystolicArray, params, name=f"bench_{fmt}_{n}x{n}", root=root)
    t_verilog = time.perf_counter() - t0
    build = build_simulator(design, "verilator")
    result_path = design.build_dir / "bench_result.json"
    result_path.unlink(missing_ok=True)
    os.environ[RESULT_ENV] = str(result_path)
    run = run_cocotb(design, Path(__file__).resolve(), sim="verilator", testcase="throughput",
                     config={"cycles": cycles}, seed=1, timeout_s=3600)
    if not run.passed:
        raise AssertionError(run.report())
    res = json.loads(result_path.read_text())
    macs = n * n * lanes
    return {
        "config": f"{fmt} {n}x{n} lanes={lanes}", "verilog_kb": design.verilog_path.stat().st_size / 1024,
        "verilog_s": t_verilog, "build_s": build.seconds, "rebuilt": build.rebuilt,
        "cycles_per_s": res["cycles"] / res["wall_s"], "macs_per_cycle": macs,
        "macs_per_s": res["cycles"] / res["wall_s"] * macs, "stall_cycles": res["stall_cycles"],
        "results": res["results"],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=4000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--formats", nargs="+", default=["mxsf", "bf16"])
    ap.add_argument("--root", default="build/bench")
    args = ap.parse_args(argv)
    print(f"{'config':<22} {'verilog':>9} {'gen s':>6} {'build s':>8} {'cycles/s':>10} {'MAC/cyc':>8} "
          f"{'MACs/s':>10} {'stalls':>6} {'rows ok':>7}")
    for n in args.sizes:
        for fmt in args.formats:
            r = bench_one(fmt, n, cycles=args.cycles, root=args.root)
            build = f"{r['build_s']:.0f}" + ("" if r["rebuilt"] else " (cached)")
            print(f"{r['config']:<22} {r['verilog_kb']:>7.0f}kB {r['verilog_s']:>6.1f} {build:>8} "
                  f"{r['cycles_per_s']:>10.0f} {r['macs_per_cycle']:>8} {r['macs_per_s']:>10.3g} "
                  f"{r['stall_cycles']:>6} {r['results']:>7}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
