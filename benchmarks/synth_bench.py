"""Synthesis benchmark: Yosys wall time of the MX PE (and of a 4x4 systolic array when
the ``array`` design exists), and the area of the PE per element format.

1. The MXSF PE (block 32, 32 lanes) alone: Verilog generation + synthesis time of this
   run, and the Yosys time of the run that produced the report (the same unless cached).
2. A 4x4 array of MXSF PEs (block 32, ``--array-lanes`` lanes), if available.
3. PE area for every element format (block 32, 32 lanes) and the BF16 PE (1 lane), in
   parallel: GE, GE per MAC/cycle, ratio to the BF16 PE and to the MXFP8 E4M3 PE (and
   the SQNR of mxsf.studies.accuracy when it exists).

Results are cached under the synthesis folder (default build/synth): a re-run takes
seconds. ``--no-cache`` reruns everything. Exits 1 if a sanity check fails (every area
positive, reference ratios 1, every MX PE smaller per MAC than the BF16 PE).

With ``--lib osu018`` it prints the silicon table instead (:func:`osu_main`): for each PE
format (block 32, 32 lanes), the BF16 PE (1 lane) and 4x4 arrays of MXSF and of BF16 PEs
(4 lanes each: equal throughput, 64 MACs a cycle): GE, Fmax, pJ/MAC from golden-checked
gate-level activity (PEs) and vectorless, ratios to the BF16 PE and the MXFP8 E4M3 PE,
and the wall time of each step (synthesis, gate-level simulation, STA). The BF16 design
with a 32-lane PE's MACs per cycle is 32 one-lane BF16 PEs (32 dot products side by
side): its row is the 1-lane PE's times 32 (area, power; the same pJ/MAC and Fmax). A
32-lane BF16 PE is not that design: it chains 32 float32 adders in its accumulator loop
(SPEC.md 5's order), a 32-adder-deep cycle no one would build.

Usage: python benchmarks/synth_bench.py [--jobs N] [--no-cache] [--synth-dir DIR] [--lib osu018]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from mxsf.cli.common import table
from mxsf.golden import ELEMENT_FORMATS
from mxsf.synth.compare import (ProgressBar, compare_rows, format_params, load_accuracy,
                                make_job, plan_compare, run_jobs)

BLOCK, LANES = 32, 32


def _time_one(job, args) -> tuple[float, object]:
    started = time.perf_counter()
    (result,) = run_jobs([job], synth_dir=args.synth_dir, cache=not args.no_cache, workers=1)
    return time.perf_counter() - started, result


def _timing_line(label: str, elapsed: float, result) -> str:
    rep = result.report
    how = ("cached; Yosys time is that of the run that made the report" if rep.cached
           else "synthesised now")
    return (f"{label} ({rep.top}): {elapsed:.1f} s this run, Yosys {rep.wall_time_s:.1f} s "
            f"[{how}]; {rep.area_ge:.0f} GE, {rep.flop_count} flops, depth {rep.logic_depth}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel synthesis processes for the format table (default: CPU count)")
    p.add_argument("--no-cache", action="store_true", help="rerun every synthesis")
    p.add_argument("--synth-dir", default=None, help="synthesis folder (default build/synth)")
    p.add_argument("--array-lanes", type=int, default=4, help="lanes per PE of the 4x4 array (default 4)")
    p.add_argument("--lib", default="generic", help="generic (area table) or osu018 (silicon table)")
    p.add_argument("--formats", default="all", help="PE formats of the osu018 table (default all)")
    p.add_argument("--no-arrays", action="store_true", help="osu018: leave out the 4x4 arrays")
    p.add_argument("--gate-sim", choices=("auto", "icarus", "verilator"), default="auto",
                   help="osu018: gate-level simulator of the activity run (default auto: "
                        "Verilator from 100k cells, Icarus below)")
    args = p.parse_args(argv)
    if args.lib != "generic":
        return osu_main(args)
    started = time.perf_counter()
    print(f"mxsf synthesis benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"jobs {args.jobs}, cache {'off' if args.no_cache else 'on'}\n")

    print("== Synthesis wall time\n")
    pe = make_job("pe", {"fmt": "mxsf", "block_size": BLOCK, "lanes": LANES})
    elapsed, result = _time_one(pe, args)
    print(_timing_line(f"MX PE mxsf, block {BLOCK}, {LANES} lanes", elapsed, result))
    job = make_job("array", {"fmt": "mxsf", "rows": 4, "cols": 4, "block_size": BLOCK,
                             "lanes": args.array_lanes})
    elapsed, result = _time_one(job, args)
    print(_timing_line(f"4x4 array of mxsf PEs, {args.array_lanes} lanes", elapsed, result))

    print(f"\n== PE area per element format (block {BLOCK}, {LANES} lanes; BF16 PE 1 lane)\n")
    jobs = plan_compare(["pe"], list(ELEMENT_FORMATS), block_size=BLOCK, lanes=LANES)
    results = run_jobs(jobs, synth_dir=args.synth_dir, cache=not args.no_cache,
                       workers=args.jobs, progress=ProgressBar(len(jobs)))
    accuracy = load_accuracy()
    rows = compare_rows(results, accuracy=accuracy, block_size=BLOCK, lanes=LANES)
    seconds = {r.job.top: r.report.wall_time_s for r in results}
    head = ["format", "design", "MACs/cycle", "area (GE)", "GE/MAC", "x BF16 PE",
            "x MXFP8 E4M3 PE", "flops", "depth", "Yosys (s)"]
    if accuracy is not None:
        head += ["SQNR 1D (dB)", "SQNR tile (dB)"]
    lines = []
    for r in rows:
        line = [r["format"], r["design"], r["macs_per_cycle"], f"{r['area_ge']:.0f}",
                f"{r['ge_per_mac']:.1f}", f"{r['ratio_vs_bf16']:.3f}",
                f"{r['ratio_vs_fp8_e4m3']:.3f}", r["flops"], r["depth"], f"{seconds[r['top']]:.1f}"]
        if accuracy is not None:
            line += [f"{r['sqnr_1d_db']:.2f}", f"{r['sqnr_tile_db']:.2f}"]
        lines.append(line)
    print(table(head, lines))

    problems = [f"{r['top']}: area {r['area_ge']}" for r in rows if not r["area_ge"] > 0]
    bf16 = next(r for r in rows if r["reference"] == "bf16")
    e4m3 = next(r for r in rows if r["reference"] == "fp8_e4m3")
    if bf16["ratio_vs_bf16"] != 1.0 or e4m3["ratio_vs_fp8_e4m3"] != 1.0:
        problems.append("reference ratios are not 1")
    problems += [f"{r['top']} is not smaller per MAC than the BF16 PE" for r in rows
                 if r["design"] == "pe" and not r["ratio_vs_bf16"] < 1.0]
    print(f"\nTotal {time.perf_counter() - started:.1f} s")
    if problems:
        print("sanity check failed: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def osu_main(args) -> int:
    """The silicon table (see the module docstring)."""
    import functools

    from mxsf.cli.energy import measure_energy
    from mxsf.synth.compare import parse_formats

    started = time.perf_counter()
    formats = parse_formats(args.formats)
    print(f"mxsf silicon benchmark ({args.lib}): Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, jobs {args.jobs}, cache {'off' if args.no_cache else 'on'}\n")
    jobs = plan_compare(["pe"], formats, block_size=BLOCK, lanes=LANES)
    if not args.no_arrays:
        for fmt in ("mxsf", "bf16"):
            jobs.append(make_job("array", {"fmt": fmt, "rows": 4, "cols": 4, "block_size": BLOCK,
                                           "lanes": args.array_lanes}))
    activity = functools.partial(measure_energy, cache=not args.no_cache, gate_sim=args.gate_sim)
    results = run_jobs(jobs, synth_dir=args.synth_dir, cache=not args.no_cache, workers=args.jobs,
                       progress=ProgressBar(len(jobs)), lib=args.lib, activity=activity)
    rows = compare_rows(results, accuracy=load_accuracy(), block_size=BLOCK, lanes=LANES)
    by_top = {r.job.top: r for r in results}
    head = ["design", "format", "params", "MACs/cyc", "GE", "GE/MAC", "Fmax (MHz)",
            "pJ/MAC act.", "pJ/MAC vl.", "pJ x BF16", "pJ x E4M3", "SQNR 1D", "synth (s)",
            "sim (s)", "gate sim", "STA (s)"]
    lines = []

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    for r in rows:
        res = by_top[r["top"]]
        e = res.energy or {}
        lines.append([r["design"], r["format"], format_params(r["params"]), r["macs_per_cycle"],
                      f"{r['area_ge']:.0f}", f"{r['ge_per_mac']:.1f}", num(r.get("fmax_mhz"), ".1f"),
                      num(r.get("pj_per_mac"), ".2f"), num(r.get("pj_per_mac_vectorless"), ".2f"),
                      num(r.get("pj_ratio_vs_bf16"), ".3f"), num(r.get("pj_ratio_vs_fp8_e4m3"), ".3f"),
                      num(r.get("sqnr_1d_db"), ".2f"), f"{res.report.wall_time_s:.1f}",
                      num(e.get("sim_time_s"), ".1f"), e.get("simulator", "-"),
                      f"{res.report.sta_time_s + (e.get('sta_time_s') or 0):.1f}"])
    bf16 = next((r for r in rows if r["design"] == "bf16-pe"), None)
    if bf16 is not None:
        # 32 one-lane BF16 PEs side by side: the MX PE's MACs per cycle, no shared logic
        lines.append(["32 x bf16-pe", "bf16", "lanes=1 (x32)", 32 * bf16["macs_per_cycle"],
                      f"{32 * bf16['area_ge']:.0f}", f"{bf16['ge_per_mac']:.1f}", num(bf16.get("fmax_mhz"), ".1f"),
                      num(bf16.get("pj_per_mac"), ".2f"), num(bf16.get("pj_per_mac_vectorless"), ".2f"),
                      num(bf16.get("pj_ratio_vs_bf16"), ".3f"), num(bf16.get("pj_ratio_vs_fp8_e4m3"), ".3f"),
                      num(bf16.get("sqnr_1d_db"), ".2f"), "-", "-", "-", "-"])
    print(table(head, lines))
    print("\n32 x bf16-pe: the BF16 design with the MX PEs' 32 MACs a cycle, derived from the "
          "1-lane row (32 copies: 32x the area and power, the same Fmax and pJ/MAC).")
    print("\npJ/MAC act.: power from a golden-checked gate-level simulation of 8 gaussian dot "
          "products of length 256, one beat a cycle; vl.: vectorless (inputs toggle 0.1/cycle). "
          "Both at each design's own Fmax. Ratios use the activity figure where both rows have "
          "it, else vectorless.")
    print(f"\nTotal {time.perf_counter() - started:.1f} s")
    problems = [f"{r['top']}: no power" for r in rows if r.get("power_mw") is None]
    problems += [f"{r['top']}: no activity figure" for r in rows
                 if r["design"] in ("pe", "bf16-pe") and r.get("pj_per_mac") is None]
    if problems:
        print("sanity check failed: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
