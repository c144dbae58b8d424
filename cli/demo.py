"""``mxsf demo`` (what ``make demo`` runs): the whole tool on the default designs.

1. the element formats and the golden model's quantization error, 1D blocks beside tiles;
2. Verilog (and JSON sidecars) of the default designs: an MXSF 4x4 systolic array with
   block 32, the MXSF PE, the MXFP8 E4M3 PE (reference) and the BF16 PE (baseline);
3. a quick cocotb check of each on Verilator against the golden cycle model;
4. synthesis with Yosys onto the generic cell library, in parallel;
5. the comparison table (GE, GE per MAC, ratios to the BF16 PE and the MXFP8 E4M3 PE)
   and its CSV/JSON/Markdown/PNG files.

Everything lands under ``build/demo/``.
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np

from .common import positive_int, table
from .quantize import format_table

__all__ = ["register", "DEFAULT_DESIGNS"]

#: (design, params, quick-check config) of the demo, in the order shown.
DEFAULT_DESIGNS = (
    ("array", {"fmt": "mxsf", "rows": 4, "cols": 4, "block_size": 32, "lanes": 4}, {"count": 4}),
    ("pe", {"fmt": "mxsf", "block_size": 32, "lanes": 32}, {"count": 20, "pair_sample": 100}),
    ("pe", {"fmt": "fp8_e4m3", "block_size": 32, "lanes": 32}, {"count": 20, "pair_sample": 100}),
    ("bf16-pe", {"lanes": 1}, {"count": 40}),
)


def _golden_section(out: Path) -> None:
    from mxsf.golden import (ELEMENT_FORMATS, dequantize, error_stats, get_format, quantize, quantize_tiles,
                             sample_tensor)

    print("== 1. Element formats (SPEC.md section 1)\n")
    print(format_table())
    x = sample_tensor(256, 256, seed=0)
    np.save(out / "sample.npy", x)
    print(f"\n== 2. Golden model: quantization error on a 256x256 sample tensor (rows spread over "
          f"8 binades, rare 50x outliers; {out / 'sample.npy'})\n")
    rows = []
    for name in ELEMENT_FORMATS:
        f = get_format(name)
        block = f.fixed_block_size or 32            # mx9/mx6/mx4: blocks of 16, no tiles (SPEC.md 11)
        b = error_stats(x, dequantize(quantize(x, name, block_size=block)))
        if f.allows_tiles:
            t = error_stats(x, dequantize(quantize_tiles(x, name, tile=(32, 32))))
            tile = (f"{t['sqnr_db']:.2f}", f"{t['max_abs']:.4g}")
        else:
            tile = ("-", "-")
        rows.append((name if block == 32 else f"{name} (1x{block})", f"{b['sqnr_db']:.2f}", f"{b['max_abs']:.4g}",
                     *tile))
    print(table(("format", "SQNR 1x32 (dB)", "max err 1x32", "SQNR 32x32 tile (dB)", "max err 32x32"), rows))


def _cmd_demo(args) -> int:
    from mxsf.gen.design import resolve_design
    from mxsf.gen.verilog import write_design
    from mxsf.sim.regression import design_regression, run_regression
    from mxsf.sim.run import available_simulators
    from mxsf.synth.compare import (ProgressBar, compare_rows, format_compare_markdown, load_accuracy,
                                    make_job, run_jobs, write_compare)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _golden_section(out)
    if args.golden_only:
        return 0

    designs = [(resolve_design(name, params), cfg) for name, params, cfg in DEFAULT_DESIGNS]
    print("\n== 3. Verilog of the default designs\n")
    tests = []
    for design, cfg in designs:
        verilog, sidecar, info = write_design(design, out / "verilog", build_root=out / "gen")
        print(f"{design.name:8} {info['top']:32} latency {info['latency']}, {info['macs_per_cycle']} MACs/cycle  {verilog}")
        test = design_regression(design, config=cfg)
        tests.append(dataclasses.replace(test, name=design.top))

    print("\n== 4. Quick cocotb check against the golden cycle model (Verilator)\n", flush=True)
    status = 0
    if "verilator" in available_simulators():
        status = run_regression(tests, sims=("verilator",), seed=args.seed, root=out / "sim")
    else:
        print("Verilator not found: skipped (make setup installs it)")

    print(f"\n== 5. Synthesis (Yosys, generic cells with Nangate45 area ratios, NAND2 = 1 GE; "
          f"{args.jobs} parallel jobs)\n", flush=True)
    jobs = [make_job(design) for design, _ in designs]
    results = run_jobs(jobs, synth_dir=out / "synth", workers=args.jobs,
                       progress=ProgressBar(len(jobs), stream=sys.stdout))
    rows = compare_rows(results, accuracy=load_accuracy(), block_size=32, lanes=32)
    files = write_compare(rows, out, settings={"demo": "default designs"},
                          reports=[r.report for r in results])
    columns = ["design", "format", "params", "macs_per_cycle", "area_ge", "ge_per_mac", "ratio_vs_bf16",
               "ratio_vs_fp8_e4m3", "flops", "depth"]
    columns += [c for c in ("sqnr_1d_db", "sqnr_tile_db") if rows and c in rows[0]]
    print("\n== 6. Area, side by side\n")
    print(format_compare_markdown(rows, columns))
    print("files: " + ", ".join(str(f) for f in files))
    print(f"Verilog: {out / 'verilog'}; reports: {out / 'synth'}")
    if status:
        print("demo: the cocotb check FAILED (see above)")
    return status


def register(sub) -> None:
    s = sub.add_parser("demo", help="generate, test and synthesize the default designs (`make demo`)")
    s.add_argument("--out", default="build/demo", help="output folder (default build/demo)")
    s.add_argument("--jobs", type=positive_int, default=2, help="parallel syntheses (default 2)")
    s.add_argument("--seed", type=int, default=1, help="seed of the cocotb check")
    s.add_argument("--golden-only", action="store_true", help="only the golden-model part")
    s.set_defaults(func=_cmd_demo)
