"""``mxsf synth`` and ``mxsf compare``: synthesis and area reports of the registry designs.

``mxsf synth DESIGN [--fmt F] [--block-size N] [--lanes L] [--rows R] [--cols C]
[--tile R C] [--n N] [--out-dir DIR] [--no-cache]`` builds one design's Verilog,
synthesises it onto the generic library and prints its report.

``mxsf compare --designs pe[,bf16-pe,...] --formats all|F1,F2 --block-size N [--lanes L]
[--array 2x2,4x4] [--jobs N] [--out DIR]`` sweeps designs x formats (x array sizes) with
the BF16 PE and MXFP8 E4M3 PE as references and writes ``compare.md``, ``compare.csv``,
``compare.json`` and PNG plots.

``--lib osu018`` maps onto the OSU 0.18 um cells instead of the generic library and adds
Fmax, WNS and power at ``--clock-ns`` (default: each design's own Fmax), vectorless and,
for the PEs, from a golden-checked gate-level simulation of real data (pJ/MAC).
``mxsf compare --scheduler ADDRESS`` runs the jobs on a Dask distributed cluster.

Both report bad input as one line and exit 2; a synthesis, OpenSTA or gate-level failure
is reported the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from .common import CLIError, first_line, positive_int, table
from .hw import add_design_options, design_from_args

__all__ = ["register"]

def _synth_error(error: Exception) -> CLIError:
    return CLIError(first_line(error))


def _clock(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CLIError(f"--clock-ns must be a number of ns > 0, not {text!r}") from None
    if not (value > 0 and value < 1e6):
        raise CLIError(f"--clock-ns must be in (0, 1e6) ns, not {text!r}")
    return value


def _lib(text: str) -> str:
    from mxsf.synth.libraries import LIBRARY_NAMES

    if text not in LIBRARY_NAMES:
        raise CLIError(f"--lib must be one of {', '.join(LIBRARY_NAMES)}, not {text!r}")
    return text


def _activity(args):
    """The energy function for run_jobs (None for the generic library or --no-activity)."""
    import functools

    from mxsf.cli.energy import measure_energy
    from mxsf.synth.libraries import get_library

    if args.no_activity or not get_library(args.lib).power:
        return None
    return functools.partial(measure_energy, dots=args.dots, k=args.k,
                             distribution=args.distribution, cache=not args.no_cache,
                             gate_sim=args.gate_sim)


def _failures() -> tuple:
    from mxsf.sim.gate_activity import GateLevelError
    from mxsf.synth import SynthError

    return (SynthError, GateLevelError, FileNotFoundError, ConnectionError)


# --------------------------------------------------------------------------- mxsf synth


def _cmd_synth(args) -> int:
    from mxsf.synth.compare import make_job, run_jobs

    job = make_job(design_from_args(args))

    synth_dir = Path(args.out_dir) if args.out_dir is not None else None
    try:
        (result,) = run_jobs([job], synth_dir=synth_dir, cache=not args.no_cache, workers=1,
                             lib=args.lib, clock_ns=args.clock_ns, activity=_activity(args))
    except _failures() as error:
        raise _synth_error(error) from None
    rep = result.report
    gpm = f"{rep.area_ge / job.macs:.2f}" if job.macs > 0 else "-"
    work = Path(rep.work_dir)
    time_text = f"{rep.wall_time_s:.2f}" + (" (cached result)" if rep.cached else "")
    rows = [
        ("design", job.describe()),
        ("top", rep.top),
        ("MACs/cycle", job.macs or "-"),
        ("area (GE)", f"{rep.area_ge:.2f}"),
        ("comb (GE)", f"{rep.comb_area_ge:.2f}"),
        ("seq (GE)", f"{rep.seq_area_ge:.2f}"),
        ("GE/MAC", gpm),
        ("flops", rep.flop_count),
        ("cells", rep.cell_count),
        ("depth (cells)", rep.logic_depth),
        ("delay (ps)", "-" if rep.delay_ps is None else f"{rep.delay_ps:.1f}"),
        ("transistors", "-" if rep.transistors is None else rep.transistors),
        ("library", rep.library),
        ("area (library units)", f"{rep.area_lib:.1f}"),
        ("critical path (ns)", "-" if rep.delay_ps is None else f"{rep.delay_ps / 1000:.3f}"),
        ("Fmax (MHz)", "-" if rep.fmax_mhz is None else f"{rep.fmax_mhz:.2f}"),
        ("analysis clock (ns)", f"{rep.clock_ns:.3f}"),
        ("WNS (ns)", f"{rep.wns_ns:.3f}"),
    ]
    if rep.power:
        from mxsf.synth.energy import vectorless_pj_per_mac

        p = rep.power
        vl = vectorless_pj_per_mac(rep, job.macs)
        rows += [
            ("power vectorless (mW)", f"{1e3 * p['total']:.4f} (internal {1e3 * p['internal']:.4f}, "
                                      f"switching {1e3 * p['switching']:.4f}, leakage "
                                      f"{1e3 * p['leakage']:.6f})"),
            ("pJ/MAC vectorless", "-" if vl is None else f"{vl:.3f}"),
        ]
    if result.energy:
        e = result.energy
        rows += [
            ("workload", f"{e['workload']}, {e['results_checked']} results checked"),
            ("power from activity (mW)", f"{e['power_mw']:.4f} (internal {e['power_internal_mw']:.4f}, "
                                         f"switching {e['power_switching_mw']:.4f}, leakage "
                                         f"{e['power_leakage_mw']:.6f})"),
            ("pJ/MAC (activity)", f"{e['pj_per_mac']:.3f} at utilisation {e['utilisation']:.3f}"),
            ("gate-level sim / STA (s)", f"{e['sim_time_s']:.1f} ({e.get('simulator', 'icarus')}) "
                                         f"/ {e['sta_time_s']:.1f}"),
        ]
    rows += [
        ("synthesis / STA time (s)", f"{rep.wall_time_s:.1f} / {rep.sta_time_s:.1f}"),
        ("wall time (s)", time_text),
        ("verilog", result.verilog_path),
        ("report", work / "report.md"),
        ("netlist", work / "mapped.v"),
        ("log", work / "yosys.log"),
    ]
    print(table(("item", "value"), rows))
    if rep.warnings:
        print(f"{len(rep.warnings)} warning(s) in {work / 'report.md'}")
    return 0


# --------------------------------------------------------------------------- mxsf compare


def _cmd_compare(args) -> int:
    from mxsf.synth.compare import (format_compare_markdown, parse_array_sizes, parse_designs,
                                    parse_formats, run_compare)

    designs = parse_designs(args.designs)
    formats = parse_formats(args.formats)
    arrays = parse_array_sizes(args.array) if args.array is not None else None
    try:
        options = {"acc": args.acc, "scale_rounding": args.scale_rounding, "rounding": args.rounding,
                   "sr_bits": args.sr_bits, "seed": args.seed}
        result = run_compare(designs, formats, block_size=args.block_size, lanes=args.lanes,
                             arrays=arrays, options=options, out_dir=args.out, synth_dir=args.synth_dir,
                             workers=args.jobs, cache=not args.no_cache,
                             progress=not args.quiet, lib=args.lib, clock_ns=args.clock_ns,
                             activity=_activity(args), scheduler=args.scheduler)
    except _failures() as error:
        raise _synth_error(error) from None
    print(format_compare_markdown(result.rows, result.columns), end="")
    print("\nwrote " + ", ".join(str(p) for p in result.files))
    return 0


# --------------------------------------------------------------------------- registration


def _add_lib_options(p) -> None:
    p.add_argument("--lib", type=_lib, default="generic",
                   help="cell library: generic (default, area only) or osu018 (OSU 0.18 um: "
                        "timing and power)")
    p.add_argument("--clock-ns", type=_clock, default=None, metavar="P",
                   help="clock period of the WNS/power analysis and ABC delay target "
                        "(default: each design's own Fmax; ABC targets 20 ns)")
    p.add_argument("--no-activity", action="store_true",
                   help="osu018: skip the gate-level simulation (vectorless power only)")
    p.add_argument("--dots", type=positive_int, default=8,
                   help="dot products of the gate-level workload (default 8)")
    p.add_argument("--k", type=positive_int, default=256,
                   help="length of each workload dot product (default 256)")
    p.add_argument("--distribution", default="gaussian",
                   help="tensor distribution of the workload (mxsf.studies.accuracy)")
    p.add_argument("--gate-sim", choices=("auto", "icarus", "verilator"), default="auto",
                   help="gate-level simulator of the workload (default auto: Verilator from "
                        "100,000 cells, Icarus below)")


def register(subparsers) -> None:
    """Add the ``synth`` and ``compare`` commands."""
    from mxsf.gen.registry import design_names

    s = subparsers.add_parser(
        "synth", help="synthesise one design and print its area report",
        description="Build a design's Verilog, synthesise it with Yosys onto the generic "
                    "library (NAND2 gate equivalents) and print area, depth and delay.")
    add_design_options(s)
    s.add_argument("--out-dir", default=None,
                   help="synthesis folder (default build/synth, or $MXSF_BUILD_DIR/synth)")
    s.add_argument("--no-cache", action="store_true", help="rerun Yosys even if a report exists")
    _add_lib_options(s)
    s.set_defaults(func=_cmd_synth)

    c = subparsers.add_parser(
        "compare", help="area sweep over designs and formats, with BF16 and MXFP8 references",
        description="Synthesise designs x element formats (x array sizes) in parallel and "
                    "write compare.md, compare.csv, compare.json and PNG plots. The BF16 PE "
                    "(1 lane) and the MXFP8 E4M3 PE are always included as references.")
    c.add_argument("--designs", default="pe",
                   help=f"comma-separated designs (default pe; available: {', '.join(design_names())})")
    c.add_argument("--formats", default="all", help="'all' or comma-separated element formats")
    c.add_argument("--block-size", type=positive_int, default=32, help="block size (default 32)")
    c.add_argument("--lanes", type=positive_int, default=None,
                   help="lanes of every design (default: each design's own; BF16 PE 1)")
    c.add_argument("--array", default=None, metavar="RxC[,RxC...]",
                   help="array sizes for array/gemm/requantizer, each side 1..16 (default 4x4)")
    c.add_argument("--acc", default=None, help="accumulator of pe/array: fp32 (default), bf16")
    c.add_argument("--scale-rounding", default=None, help="requantizer/gemm scale rule: floor, ceil, even")
    c.add_argument("--rounding", default=None, help="requantizer/gemm element rounding: rne, stochastic")
    c.add_argument("--sr-bits", type=int, default=None, help="random bits of stochastic rounding")
    c.add_argument("--seed", "--sr-seed", dest="seed", type=int, default=None,
                   help="seed of stochastic rounding")
    c.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                   help="parallel synthesis processes (default: CPU count)")
    c.add_argument("--out", default="build/compare", help="output folder (default build/compare)")
    c.add_argument("--synth-dir", default=None,
                   help="synthesis folder and cache (default build/synth)")
    c.add_argument("--no-cache", action="store_true", help="rerun every synthesis")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the jobs on the Dask distributed scheduler at ADDRESS "
                        "(tcp://host:port) instead of local processes")
    _add_lib_options(c)
    c.set_defaults(func=_cmd_compare)
