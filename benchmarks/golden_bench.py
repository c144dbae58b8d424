"""Throughput of the NumPy golden model (mxsf.golden), single thread.

Quantize / dequantize of 2^22 float32 values per element format, next to the
reference measured in the same run: ml_dtypes' plain cast
``np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn)`` (element-only, no block
scales), and the ratio. Then ``matmul`` 512x512 @ 512x512 per format (1D blocks of
32) and the ``bf16_matmul`` baseline.

Then the numerics options (SPEC.md 8, 9, 10) beside the default in the same run:
``quantize`` with ``scale_rounding`` ceil / even and ``rounding="stochastic"`` against
``floor``/``rne`` (timed round-robin, best of ``--repeat``, so machine load hits every
option alike), and ``matmul(acc="bf16")`` against ``acc="fp32"``.

Usage: python benchmarks/golden_bench.py [--log2n 22] [--repeat 3] [--mm 512] [--options-only]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

from mxsf.golden import (  # noqa: E402
    ELEMENT_FORMATS,
    bf16_matmul,
    dequantize,
    get_format,
    matmul,
    quantize,
)


def make_data(n: int, seed: int = 0) -> np.ndarray:
    """Gaussian times a random binade spread, plus a few NaN/Inf/subnormal/zero values."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * 2.0 ** rng.integers(-8, 9, n)        # spread inside blocks
    x *= np.repeat(2.0 ** rng.integers(-40, 41, -(-n // 32)), 32)[:n]  # and between blocks
    x = x.astype(np.float32)
    idx = rng.permutation(n)
    k = max(1, n // 100_000)
    x[idx[:k]] = np.nan
    x[idx[k:2 * k]] = np.inf
    x[idx[2 * k:3 * k]] = -np.inf
    sub = idx[3 * k:3 * k + n // 1000]
    x[sub] = (rng.standard_normal(sub.size) * 2.0**-135).astype(np.float32)
    x[idx[3 * k + n // 1000:3 * k + n // 500]] = 0.0
    return x


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log2n", type=int, default=22, help="log2 of the number of values (default 22)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per figure, best kept (default 3)")
    ap.add_argument("--mm", type=int, default=512, help="matmul size (default 512)")
    ap.add_argument("--options-only", action="store_true", help="only the numerics-options figures")
    args = ap.parse_args(argv)

    n = 1 << args.log2n
    x = make_data(n)
    print(f"mxsf.golden benchmark: numpy {np.__version__}, ml_dtypes {ml_dtypes.__version__}, "
          f"Python {platform.python_version()}, single thread")
    print(f"{n} float32 values (2^{args.log2n}), blocks of 32 (mx9/mx6/mx4: 16 with a microexponent per pair), "
          f"best of {args.repeat} after a warm-up\n")
    if args.options_only:
        return options_bench(x, args)

    # reference: ml_dtypes' plain cast to FP8 E4M3 (no scales, no NaN handling beyond the cast)
    def ref():
        return np.clip(x, -448, 448).astype(ml_dtypes.float8_e4m3fn)

    with np.errstate(invalid="ignore"):
        ref()
        t_ref = best_time(ref, args.repeat)
    ref_rate = n / t_ref

    hdr = (f"{'format':<10} {'quantize Me/s':>14} {'dequantize Me/s':>16} "
           f"{'ml_dtypes e4m3 Me/s':>20} {'quant/ref':>10} {'dequant/ref':>12}")
    print(hdr)
    print("-" * len(hdr))
    for name in ELEMENT_FORMATS:
        get_format(name).values  # noqa: B018  (tables)
        q = quantize(x, name)     # warm-up: builds the encode tables
        dequantize(q)
        tq = best_time(lambda: quantize(x, name), args.repeat)
        td = best_time(lambda: dequantize(q), args.repeat)
        rq, rd = n / tq, n / td
        print(f"{name:<10} {rq / 1e6:>14.1f} {rd / 1e6:>16.1f} {ref_rate / 1e6:>20.1f} "
              f"{rq / ref_rate:>10.3f} {rd / ref_rate:>12.3f}")

    m = args.mm
    rng = np.random.default_rng(1)
    A = (rng.standard_normal((m, m)) * 2.0 ** rng.integers(-4, 5, (m, m))).astype(np.float32)
    B = (rng.standard_normal((m, m)) * 2.0 ** rng.integers(-4, 5, (m, m))).astype(np.float32)
    print(f"\nmatmul {m}x{m} @ {m}x{m} (1D blocks of 32 along K; 16 for mx9/mx6/mx4), best of 2 after a warm-up")
    hdr = f"{'format':<10} {'seconds':>10} {'GMAC/s':>10}"
    print(hdr)
    print("-" * len(hdr))
    macs = m * m * m
    for name in ELEMENT_FORMATS:
        qa = quantize(A, name, axis=1)            # blocks of 32 (mx9/mx6/mx4: their fixed 16)
        qb = quantize(B, name, axis=0)
        matmul(qa, qb)
        t = best_time(lambda: matmul(qa, qb), 2)
        print(f"{name:<10} {t:>10.3f} {macs / t / 1e9:>10.3f}")
    bf16_matmul(A, B)
    t = best_time(lambda: bf16_matmul(A, B), 2)
    print(f"{'bf16':<10} {t:>10.3f} {macs / t / 1e9:>10.3f}")
    print()
    return options_bench(x, args)


OPTIONS = [
    ("floor, rne (default)", {}),
    ("ceil", {"scale_rounding": "ceil"}),
    ("even", {"scale_rounding": "even"}),
    ("stochastic (8 bits)", {"rounding": "stochastic"}),
    ("stochastic (16 bits)", {"rounding": "stochastic", "sr_bits": 16}),
]


def options_bench(x, args) -> int:
    """quantize per option beside the default, round-robin timed; matmul acc=bf16 vs fp32."""
    n = x.size
    for name in ("mxsf", "fp8_e4m3"):
        fns = [(label, (lambda o=o: quantize(x, name, **o))) for label, o in OPTIONS]
        for _, fn in fns:
            fn()                                   # warm-up: tables
        best = {label: float("inf") for label, _ in fns}
        for _ in range(args.repeat):
            for label, fn in fns:
                t0 = time.perf_counter()
                fn()
                best[label] = min(best[label], time.perf_counter() - t0)
        base = best[OPTIONS[0][0]]
        print(f"quantize {name}, {n} values: option, Me/s, time / default")
        for label, _ in fns:
            print(f"  {label:<22} {n / best[label] / 1e6:>8.1f} {best[label] / base:>8.2f}x")
    m = args.mm // 2
    rng = np.random.default_rng(2)
    qa = quantize(rng.standard_normal((m, m)).astype(np.float32), "mxsf", 32, axis=1)
    qb = quantize(rng.standard_normal((m, m)).astype(np.float32), "mxsf", 32, axis=0)
    t32 = best_time(lambda: matmul(qa, qb), 2)
    t16 = best_time(lambda: matmul(qa, qb, acc="bf16"), 2)
    print(f"matmul mxsf {m}x{m}: acc=fp32 {t32:.3f} s, acc=bf16 {t16:.3f} s ({t16 / t32:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
