"""``mxsf synth`` and ``mxsf compare``: synthesis and area reports of the registry designs.

``mxsf synth DESIGN [--fmt F] [--block-size N] [--lanes L] [--rows R] [--cols C]
[--tile R C] [--n N] [--out-dir DIR] [--no-cache]`` builds one design's Verilog,
synthesises it onto the generic library and prints its report.

``mxsf compare --designs pe[,bf16-pe,...] --formats all|F1,F2 --block-size N [--lanes L]
[--array 2x2,4x4] [--jobs N] [--out DIR]`` sweeps designs x formats (x array sizes) with
the BF16 PE and MXFP8 E4M3 PE as references and writes ``compare.md``, ``compare.csv``,
``compare.json`` and PNG plots.

Both report bad input as one line and exit 2; a synthesis failure is reported the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from .common import CLIError, first_line, positive_int, table
from .hw import add_design_options, design_from_args

__all__ = ["register"]

def _synth_error(error: Exception) -> CLIError:
    return CLIError(first_line(error))


# --------------------------------------------------------------------------- mxsf synth


def _cmd_synth(args) -> int:
    from mxsf.synth import SynthError
    from mxsf.synth.compare import make_job, run_jobs

    job = make_job(design_from_args(args))

    synth_dir = Path(args.out_dir) if args.out_dir is not None else None
    try:
        (result,) = run_jobs([job], synth_dir=synth_dir, cache=not args.no_cache, workers=1)
    except SynthError as error:
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
    from mxsf.synth import SynthError
    from mxsf.synth.compare import (format_compare_markdown, parse_array_sizes, parse_designs,
                                    parse_formats, run_compare)

    designs = parse_designs(args.designs)
    formats = parse_formats(args.formats)
    arrays = parse_array_sizes(args.array) if args.array is not None else None
    try:
        result = run_compare(designs, formats, block_size=args.block_size, lanes=args.lanes,
                             arrays=arrays, out_dir=args.out, synth_dir=args.synth_dir,
                             workers=args.jobs, cache=not args.no_cache,
                             progress=not args.quiet)
    except SynthError as error:
        raise _synth_error(error) from None
    print(format_compare_markdown(result.rows, result.columns), end="")
    print("\nwrote " + ", ".join(str(p) for p in result.files))
    return 0


# --------------------------------------------------------------------------- registration


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
    c.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                   help="parallel synthesis processes (default: CPU count)")
    c.add_argument("--out", default="build/compare", help="output folder (default build/compare)")
    c.add_argument("--synth-dir", default=None,
                   help="synthesis folder and cache (default build/synth)")
    c.add_argument("--no-cache", action="store_true", help="rerun every synthesis")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_compare)
