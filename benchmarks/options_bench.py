"""Area of the numerics options (SPEC.md 8, 9, 10), synthesised with the project's Yosys flow.

* the tile re-quantizer per option beside the default (``floor``/``rne``): ``ceil`` and
  ``even`` (one more key bit in the max-exponent tree), stochastic rounding (a per-lane
  counter-based hash, docs/stochastic_rounding.md), both;
* the MX PE with a bfloat16 accumulator beside float32, for MXSF and MXFP8 E4M3.

Equivalent to ``mxsf synth requantizer --fmt mxsf --tile R C --lanes L [--scale-rounding M]
[--rounding stochastic --sr-bits B]`` and ``mxsf synth pe --fmt F --block-size 32 --lanes 32
[--acc bf16]``; results are cached under ``build/synth``.

Usage: python benchmarks/options_bench.py [--rows 4] [--cols 8] [--lanes 8] [--jobs 2]
"""

from __future__ import annotations

import argparse

from mxsf.synth.compare import make_job, run_jobs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fmt", default="mxsf")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--pe-lanes", type=int, default=32)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-pe", action="store_true")
    args = ap.parse_args(argv)

    rq = {"fmt": args.fmt, "rows": args.rows, "cols": args.cols, "lanes": args.lanes}
    rq_opts = [
        ("floor, rne (default)", {}),
        ("ceil", {"scale_rounding": "ceil"}),
        ("even", {"scale_rounding": "even"}),
        ("stochastic, 8 bits", {"rounding": "stochastic", "sr_bits": 8}),
        ("stochastic, 16 bits", {"rounding": "stochastic", "sr_bits": 16}),
        ("ceil + stochastic 8", {"scale_rounding": "ceil", "rounding": "stochastic", "sr_bits": 8}),
    ]
    jobs = [("requantizer", label, make_job("requantizer", {**rq, **o})) for label, o in rq_opts]
    if not args.skip_pe:
        for fmt in ("mxsf", "fp8_e4m3"):
            for acc in ("fp32", "bf16"):
                p = {"fmt": fmt, "block_size": 32, "lanes": args.pe_lanes}
                if acc != "fp32":
                    p["acc"] = acc
                jobs.append(("pe", f"{fmt} acc={acc}", make_job("pe", p)))
    results = run_jobs([j for _, _, j in jobs], workers=args.jobs)

    print(f"Re-quantizer {args.fmt} {args.rows}x{args.cols}, {args.lanes} lanes "
          f"(NAND2 GE, generic library; delta against the default):\n")
    print("| option | area (GE) | delta (GE) | delta per lane | flops | depth |")
    print("|---|---:|---:|---:|---:|---:|")
    base = None
    for (kind, label, job), res in zip(jobs, results):
        if kind != "requantizer":
            continue
        r = res.report
        base = r.area_ge if base is None else base
        d = r.area_ge - base
        print(f"| {label} | {r.area_ge:.0f} | {d:+.0f} | {d / args.lanes:+.0f} | {r.flop_count} | {r.logic_depth} |")
    if not args.skip_pe:
        print(f"\nMX PE, block 32, {args.pe_lanes} lanes, float32 vs bfloat16 accumulator:\n")
        print("| PE | area (GE) | GE/MAC | flops | depth |")
        print("|---|---:|---:|---:|---:|")
        for (kind, label, job), res in zip(jobs, results):
            if kind == "pe":
                r = res.report
                print(f"| {label} | {r.area_ge:.0f} | {r.area_ge / job.macs:.1f} | {r.flop_count} | {r.logic_depth} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
