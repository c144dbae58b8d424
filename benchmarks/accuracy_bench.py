"""Accuracy of the element formats beside their area: the data behind ``mxsf compare``.

Prints, single thread:

1. the quantization SQNR table (every format x the default distributions, 1D blocks
   of 32 vs 32x32 tiles) and the share of non-zero elements flushed to zero;
2. the training table: the 64-128-10 MLP on digits, every matmul in each format,
   tiles vs 1D blocks (final test accuracy and loss);
3. ``default_sqnr`` per format (the Pareto chart's accuracy axis) and its cold time.

It checks what it prints (exits 1 on failure): ``default_sqnr`` under 1 s per format
and equal to the table's means, bf16 above every MX format, every 8-bit training run
above 90 % test accuracy, the tiled runs using 6 quantizations per step and the 1D ones 10.

Usage: python benchmarks/accuracy_bench.py [--epochs 15] [--seed 0] [--narrow]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mxsf.cli.common import table  # noqa: E402
from mxsf.cli.accuracy import sqnr_table, train_table  # noqa: E402
from mxsf.studies.accuracy import accuracy_formats, accuracy_table, default_sqnr  # noqa: E402
from mxsf.studies.train import train_demo  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--narrow", action="store_true", help="add fp6/fp4 to the training runs")
    args = p.parse_args()
    failures = []

    # 3 first, so the cold time is really cold
    sq_rows, cold = [], {}
    for f in accuracy_formats("all"):
        t0 = time.perf_counter()
        r = default_sqnr(f)
        cold[f] = time.perf_counter() - t0
        sq_rows.append((f, f"{r['sqnr_1d_db']:.2f}", f"{r['sqnr_tile_db']:.2f}",
                        f"{r['sqnr_tile_db'] - r['sqnr_1d_db']:+.2f}", f"{1e3 * cold[f]:.0f}"))
        if cold[f] >= 1.0:
            failures.append(f"default_sqnr({f!r}) took {cold[f]:.2f} s")

    t0 = time.perf_counter()
    rows = accuracy_table("all")
    t_acc = time.perf_counter() - t0
    print("== 1. Quantization SQNR (dB), cells '1D / tile' (1x32 blocks / 32x32 tiles), "
          f"256x256 tensors, seed 0 ({t_acc:.2f} s)\n")
    print(sqnr_table(rows))
    print("\nShare of non-zero elements flushed to zero, 1D / tile:\n")
    fmts = list(dict.fromkeys(r["format"] for r in rows))
    dists = list(dict.fromkeys(r["distribution"] for r in rows))
    cell = {(r["format"], r["distribution"]): r for r in rows}
    print(table(("format", *dists), [
        (f, *(f"{100 * cell[f, d]['flushed_1d']:.2f}% / {100 * cell[f, d]['flushed_tile']:.2f}%" for d in dists))
        for f in fmts]))
    for f in fmts:
        m1 = np.mean([cell[f, d]["sqnr_1d_db"] for d in dists])
        mt = np.mean([cell[f, d]["sqnr_tile_db"] for d in dists])
        r = default_sqnr(f)
        if not (np.isclose(m1, r["sqnr_1d_db"], rtol=1e-12) and np.isclose(mt, r["sqnr_tile_db"], rtol=1e-12)):
            failures.append(f"default_sqnr({f!r}) differs from the table mean")
        if f != "bf16" and max(m1, mt) >= default_sqnr("bf16")["sqnr_1d_db"]:
            failures.append(f"{f} beats the bf16 reference")

    print(f"\n== 2. Training: MLP 64-128-10 on digits, {args.epochs} epochs, seed {args.seed}, "
          "batch 32, SGD momentum 0.9\n")
    t0 = time.perf_counter()
    res = train_demo(epochs=args.epochs, seed=args.seed, narrow=args.narrow)
    t_train = time.perf_counter() - t0
    print(train_table(res))
    print(f"\n{len(res)} runs in {t_train:.1f} s; per run: "
          + ", ".join(f"{r.label} {r.seconds:.1f}" for r in res))
    for r in res:
        if r.arithmetic not in ("fp6_e3m2", "fp6_e2m3", "fp4_e2m1") and r.final_test_acc < 0.90:
            failures.append(f"{r.label} reached only {100 * r.final_test_acc:.1f} %")
        want = {"tile": 6, "1d": 10, "-": 0}[r.blocking]
        if r.quantizations_per_step != want:
            failures.append(f"{r.label}: {r.quantizations_per_step} quantizations per step, expected {want}")

    print("\n== 3. default_sqnr per format (mean over the default distributions; accuracy axis of "
          "`mxsf compare`)\n")
    print(table(("format", "sqnr_1d_db", "sqnr_tile_db", "tile - 1D", "cold ms"), sq_rows))

    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
