"""MX dot products and matrix products (SPEC.md section 5) and the BF16 baseline.

Every element value is an integer times ``2^lsb_exp`` of its format, so a block's
sum of products is an exact integer ``s`` in units of ``2^(lsb_a + lsb_b)``. The
sums are formed with float64 GEMMs over integer matrices, which are exact while
every partial sum stays below 2^53; operands whose products could exceed that
(``fp8_e5m2``: 32-bit significands, 64-bit products, ~70-bit block sums) are split
into 16-bit halves and the partial sums recombined as two int64 limbs. Each block
sum is then rounded once to float32: directly from float64 when it is exact, and
from the limbs by a round-to-odd float64 (exact for a following rounding to 24 bits).
Blocks are accumulated in float32 in increasing order.
"""

from __future__ import annotations

import numpy as np

from .formats import ElementFormat, get_format
from .constants import BF16_CANONICAL_NAN, BF16_MAN_BITS, E8M0_BIAS, E8M0_NAN, F32_BIAS, F32_CANONICAL_NAN
from .options import Accumulator, acc_mode
from .quantize import MXArray, as_float32

__all__ = [
    "matmul",
    "batched_dot",
    "dot_block",
    "bf16_matmul",
    "to_bf16",
    "bf16_add",
    "bf16_bits_to_float32",
    "round_to_float32",
    "canonical_nan",
    "CANONICAL_NAN_BITS",
]

CANONICAL_NAN_BITS = F32_CANONICAL_NAN   # re-exported from mxsf.golden.constants
_EXACT = float(1 << 53)


def canonical_nan(x: np.ndarray) -> np.ndarray:
    """float32 copy of ``x`` with every NaN replaced by the canonical qNaN 0x7FC00000."""
    x = np.asarray(x, dtype=np.float32)
    nan = np.array(CANONICAL_NAN_BITS, dtype=np.uint32).view(np.float32)
    return np.where(np.isnan(x), nan, x).astype(np.float32)


def round_to_float32(s, exponent) -> np.ndarray:
    """float32 RNE of the exact value ``s x 2^exponent`` for integer ``s`` (one rounding).

    ``s`` may be a NumPy integer/float64 array holding exact integers below 2^53,
    or any Python ints (arbitrary size; object arrays are accepted). Overflow gives
    +/-Inf, tiny results round into the float32 subnormals or to +0; ``s == 0`` is +0.
    """
    s_arr = np.asarray(s)
    e = np.asarray(exponent, dtype=np.int64)
    if s_arr.dtype == object or (s_arr.dtype.kind in "iu" and s_arr.size and
                                  np.max(np.abs(s_arr.astype(object))) >= (1 << 53)):
        flat = [int(v) for v in np.ravel(s_arr)]
        hi = np.array([v >> 32 for v in flat], dtype=np.int64).reshape(s_arr.shape)
        lo = np.array([v & 0xFFFFFFFF for v in flat], dtype=np.int64).reshape(s_arr.shape)
        return _round_limbs(hi, lo, e)
    with np.errstate(over="ignore"):
        return (np.ldexp(s_arr.astype(np.float64), e)).astype(np.float32)


def _round_limbs(hi: np.ndarray, lo: np.ndarray, exponent) -> np.ndarray:
    """float32 RNE of ``(hi * 2^32 + lo) * 2^exponent``, 0 <= lo < 2^32, |hi| < 2^53."""
    t = hi.astype(np.float64) * 4294967296.0           # exact
    b = lo.astype(np.float64)                           # exact
    s = t + b                                           # rounded once (RNE)
    bb = s - t                                          # TwoSum: err = (t + b) - s exactly
    err = (t - (s - bb)) + (b - bb)
    # Round to odd: if inexact and s has an even significand, step one ulp towards err.
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    step = (err != 0) & even
    s = np.where(step, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    with np.errstate(over="ignore"):
        return np.ldexp(s, exponent).astype(np.float32)


def _split16(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x = hi * 2^16 + lo with 0 <= lo < 2^16 (exact for int64 x)."""
    return x >> 16, x & 0xFFFF


def _rowwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Contraction of matching rows: a (..., kb) . b (..., kb) -> (...)."""
    return np.einsum("...k,...k->...", a, b)


def _exact_block_sums(a_int: np.ndarray, b_int: np.ndarray, fa: ElementFormat,
                      fb: ElementFormat, kb: int, contract=np.matmul):
    """Exact block sums of integer significands, contracted with ``contract``
    (``np.matmul``: a_int (nK, M, kb) @ b_int (nK, kb, N); :func:`_rowwise`: matching rows).

    Returns ``("f64", s)`` with exact float64 sums, or ``("limbs", hi, lo)``.
    """
    if float(fa.max_int) * float(fb.max_int) * kb < _EXACT:
        return ("f64", contract(a_int.astype(np.float64), b_int.astype(np.float64)))
    if max(fa.max_int, fb.max_int) >= (1 << 32) or (1 << 32) * kb >= _EXACT:
        raise ValueError(f"block size {kb} too large for an exact {fa.name} x {fb.name} block sum "
                         "(the 16-bit split keeps block sums exact up to 2^20 elements)")
    ah, al = (v.astype(np.float64) for v in _split16(a_int))
    bh, bl = (v.astype(np.float64) for v in _split16(b_int))
    hh = contract(ah, bh).astype(np.int64)
    mid = (contract(ah, bl) + contract(al, bh)).astype(np.int64)   # each < 2^53
    ll = contract(al, bl).astype(np.int64)
    # s = hh 2^32 + mid 2^16 + ll, normalised to hi 2^32 + lo with 0 <= lo < 2^32
    lo = ll + ((mid & 0xFFFF) << 16)
    hi = hh + (mid >> 16) + (lo >> 32)
    lo = lo & 0xFFFFFFFF
    return ("limbs", hi, lo)


def _special_blocks(ca, cb, fa, fb, contract=np.matmul):
    """Per (block, i, n): NaN and +/-Inf block results from non-finite element codes.

    ``ca`` (nK, M, kb) and ``cb`` (nK, kb, N) are codes. Returns (nan, pinf, ninf) bool
    arrays (nK, M, N), or None when neither operand holds a non-finite code.
    """
    va = fa.values[ca]
    vb = fb.values[cb]
    if np.all(np.isfinite(va)) and np.all(np.isfinite(vb)):
        return None

    def classes(v):
        nan = np.isnan(v)
        inf = np.isinf(v)
        zero = v == 0
        pos = (v > 0)
        neg = (v < 0)
        f = lambda m: m.astype(np.float64)  # noqa: E731
        return dict(nan=f(nan), zero=f(zero), pinf=f(inf & pos), ninf=f(inf & neg),
                    pfin=f(pos & ~inf), nfin=f(neg & ~inf))

    A, B = classes(va), classes(vb)
    mm = contract
    ones_a = np.ones(va.shape, dtype=np.float64)
    ones_b = np.ones(vb.shape, dtype=np.float64)
    nan = ((mm(A["nan"], ones_b) + mm(ones_a, B["nan"])) > 0)
    inf_a = A["pinf"] + A["ninf"]
    inf_b = B["pinf"] + B["ninf"]
    nan |= (mm(inf_a, B["zero"]) + mm(A["zero"], inf_b)) > 0           # Inf x 0
    pos_b = B["pinf"] + B["pfin"]
    neg_b = B["ninf"] + B["nfin"]
    pinf = (mm(A["pinf"], pos_b) + mm(A["ninf"], neg_b)
            + mm(A["pfin"], B["pinf"]) + mm(A["nfin"], B["ninf"])) > 0
    ninf = (mm(A["pinf"], neg_b) + mm(A["ninf"], pos_b)
            + mm(A["pfin"], B["ninf"]) + mm(A["nfin"], B["pinf"])) > 0
    nan |= pinf & ninf
    return nan, pinf & ~nan, ninf & ~nan


def _k_blocks(qa: MXArray, qb: MXArray):
    if not isinstance(qa, MXArray) or not isinstance(qb, MXArray):
        bad, val = ("qa", qa) if not isinstance(qa, MXArray) else ("qb", qb)
        raise ValueError(f"{bad} must be an MXArray (from quantize or quantize_tiles), not {type(val).__name__}")
    if qa.ndim != 2 or qb.ndim != 2:
        raise ValueError(f"qa and qb must be 2D, not shapes {qa.shape} and {qb.shape}")
    if qa.shape[1] != qb.shape[0]:
        raise ValueError(f"inner dimensions differ: qa is {qa.shape}, qb is {qb.shape}")
    ka, kb = qa.block_shape[1], qb.block_shape[0]
    if ka != kb:
        raise ValueError(f"blocking along K differs: qa has blocks of {ka} along K (block_shape "
                         f"{qa.block_shape}), qb has {kb} (block_shape {qb.block_shape}); they must match")
    return ka


def matmul(qa: MXArray, qb: MXArray, *, acc="fp32") -> np.ndarray:
    """``C = A @ B`` of MX operands exactly as SPEC.md section 5 (and 10).

    ``qa`` (M x K) is blocked along K = its last axis, ``qb`` (K x N) along K = its
    first axis (1D blocks or 2D tiles, either possibly a ``.T`` view); their block
    extents along K must match.

    ``acc="fp32"`` (default): float32 result, NaN is the canonical qNaN 0x7FC00000.
    ``acc="bf16"`` (SPEC.md 10): every block result ``d`` is still float32, the running sum
    is bfloat16 (``acc = bf16_rne(acc + d)``, one rounding of the exact sum); the result is
    a ``uint16`` array of **bfloat16 bit patterns** (canonical NaN 0x7FC0), whose float32
    values :func:`bf16_bits_to_float32` gives.

    Raises
    ------
    ValueError
        Non-MX operands, shapes that do not chain, mismatched blocking along K, bad ``acc``.
    """
    mode = acc_mode(acc)
    kb = _k_blocks(qa, qb)
    if qa.fmt.microexp_group or qb.fmt.microexp_group:        # shared microexponents: SPEC.md 11
        from .bdr import bdr_block_results
        return _accumulate(bdr_block_results(qa, qb), mode)
    fa, fb = qa.fmt, qb.fmt
    M, K = qa.shape
    N = qb.shape[1]
    nK = -(-K // kb)
    Kp = nK * kb
    ca = np.pad(qa.codes, ((0, 0), (0, Kp - K))).astype(np.int64)
    cb = np.pad(qb.codes, ((0, Kp - K), (0, 0))).astype(np.int64)
    ca = ca.reshape(M, nK, kb).transpose(1, 0, 2)          # (nK, M, kb)
    cb = cb.reshape(nK, kb, N)                             # (nK, kb, N)
    # scales per (block, row) and (block, col)
    sa = np.repeat(qa.scale_e8m0, qa.block_shape[0], axis=0)[:M].T.astype(np.int64)   # (nK, M)
    sb = np.repeat(qb.scale_e8m0, qb.block_shape[1], axis=1)[:, :N].astype(np.int64)  # (nK, N)
    exp = (sa[:, :, None] - E8M0_BIAS) + (sb[:, None, :] - E8M0_BIAS) + fa.lsb_exp + fb.lsb_exp

    nan_scale = (sa[:, :, None] == E8M0_NAN) | (sb[:, None, :] == E8M0_NAN)
    d = _block_results(ca, cb, exp, nan_scale, fa, fb, kb, np.matmul)
    return _accumulate(d, mode)


def _block_results(ca, cb, exp, nan_scale, fa, fb, kb, contract) -> np.ndarray:
    """float32 ``d`` of every block (SPEC.md section 5), before accumulation."""
    sums = _exact_block_sums(fa.int_values[ca], fb.int_values[cb], fa, fb, kb, contract)
    if sums[0] == "f64":
        d = round_to_float32(sums[1], exp)
    else:
        d = _round_limbs(sums[1], sums[2], exp)
    special = _special_blocks(ca, cb, fa, fb, contract)
    if special is not None:
        nan, pinf, ninf = special
        d = np.where(pinf, np.float32(np.inf), d)
        d = np.where(ninf, np.float32(-np.inf), d)
        d = np.where(nan, np.float32(np.nan), d)
    return np.where(nan_scale, np.float32(np.nan), d).astype(np.float32)


def _accumulate(d: np.ndarray, acc: Accumulator = Accumulator.FP32) -> np.ndarray:
    """Sum over the first axis (the blocks) in order, from +0; canonical NaN.

    float32 accumulation returns float32; bfloat16 accumulation returns uint16 bit patterns.
    """
    if acc is Accumulator.BF16:
        a = np.zeros(d.shape[1:], dtype=np.uint16)
        for j in range(d.shape[0]):
            a = bf16_add(a, d[j])
        return a
    total = np.zeros(d.shape[1:], dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(d.shape[0]):
            total = total + d[j]
    return canonical_nan(total)


def _single_scale(fmt, what: str) -> ElementFormat:
    f = get_format(fmt, element_only=True)
    if f.microexp_group:
        raise ValueError(f"fmt {f.name} has microexponents, which {what} does not take: "
                         "use mxsf.golden.bdr.bdr_dot or matmul")
    return f


def bf16_bits_to_float32(bits) -> np.ndarray:
    """float32 values of bfloat16 bit patterns (exact)."""
    return (np.asarray(bits, dtype=np.uint32) << np.uint32(16)).view(np.float32)


def _float64_to_bf16_bits(v: np.ndarray) -> np.ndarray:
    """bfloat16 RNE of float64 ``v`` (subnormals kept, overflow to +/-Inf, canonical NaN)."""
    av = np.abs(v)
    finite = np.isfinite(v) & (av > 0)
    e = np.frexp(np.where(finite, av, 1.0))[1] - 1               # floor(log2 |v|)
    q = np.maximum(e, 1 - F32_BIAS) - BF16_MAN_BITS              # the bf16 quantum's exponent
    with np.errstate(over="ignore"):
        r = np.ldexp(np.rint(np.ldexp(np.where(finite, av, 0.0), -q)), q)   # RNE, exact steps
        r = np.where(finite, r, av)
        r = np.copysign(r, v).astype(np.float32)                 # exact, or +/-Inf past 2^128
    bits = (r.view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    return np.where(np.isnan(v), np.uint16(BF16_CANONICAL_NAN), bits).astype(np.uint16)


def bf16_add(acc_bits, d) -> np.ndarray:
    """``bf16_rne(acc + d)``: bfloat16 ``acc`` (bit patterns) plus float32 ``d``, rounded once.

    The exact sum is formed as a float64 sum with its TwoSum error folded in by rounding to
    odd (53 >= 8 + 2 bits, so the following RNE to bfloat16 is one rounding of the exact
    value). IEEE rules: +0 + -0 = +0, x + -x = +0, Inf - Inf = NaN (canonical 0x7FC0).
    """
    a = bf16_bits_to_float32(acc_bits).astype(np.float64)
    b = as_float32(d, "d").astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        bb = s - a
        err = (a - (s - bb)) + (b - bb)
    err = np.where(np.isfinite(s), err, 0.0)
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    s = np.where((err != 0) & even, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return _float64_to_bf16_bits(s)


def batched_dot(a_codes, b_codes, scale_a, scale_b, fmt, block_size: int, *, acc="fp32") -> np.ndarray:
    """Many independent dot products at once (SPEC.md section 5), one per row.

    ``a_codes``/``b_codes`` are (D, K) element codes (K a multiple of ``block_size``,
    zero-pad otherwise), ``scale_a``/``scale_b`` (D, K // block_size) E8M0 bytes.
    Returns the D results (float32, canonical NaN; or bfloat16 bit patterns for
    ``acc="bf16"``). Equal to :func:`matmul` of each row.
    """
    f = _single_scale(fmt, "batched_dot")
    mode = acc_mode(acc)
    ca = np.asarray(a_codes).astype(np.int64)
    cb = np.asarray(b_codes).astype(np.int64)
    D, K = ca.shape
    if cb.shape != (D, K) or K % block_size:
        raise ValueError(f"a_codes and b_codes must both be (D, K) with K a multiple of {block_size}; "
                         f"not {ca.shape} and {cb.shape}")
    nK = K // block_size
    sa = np.asarray(scale_a).astype(np.int64).reshape(D, nK).T       # (nK, D)
    sb = np.asarray(scale_b).astype(np.int64).reshape(D, nK).T
    ca = ca.reshape(D, nK, block_size).transpose(1, 0, 2)            # (nK, D, bs)
    cb = cb.reshape(D, nK, block_size).transpose(1, 0, 2)
    exp = (sa - E8M0_BIAS) + (sb - E8M0_BIAS) + 2 * f.lsb_exp
    d = _block_results(ca, cb, exp, (sa == E8M0_NAN) | (sb == E8M0_NAN), f, f, block_size, _rowwise)
    return _accumulate(d, mode)


def dot_block(a_codes, b_codes, scale_a: int, scale_b: int, fmt) -> np.float32:
    """One block's contribution ``d`` of SPEC.md section 5 (before accumulation)."""
    f = _single_scale(fmt, "dot_block")
    a = np.asarray(a_codes, dtype=np.uint8).reshape(1, -1)
    b = np.asarray(b_codes, dtype=np.uint8).reshape(-1, 1)
    qa = MXArray(f, a, np.array([[scale_a]], dtype=np.uint8), (1, a.shape[1]))
    qb = MXArray(f, b, np.array([[scale_b]], dtype=np.uint8), (b.shape[0], 1))
    return matmul(qa, qb)[0, 0]


def to_bf16(x) -> np.ndarray:
    """float32 values of ``x`` rounded to bfloat16 (RNE; NaN becomes the canonical qNaN)."""
    u = as_float32(x).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = np.where(nan, CANONICAL_NAN_BITS, r).astype(np.uint32)
    return r.view(np.float32)


def bf16_matmul(a, b) -> np.ndarray:
    """BF16 baseline of SPEC.md section 5: ``acc = f32(acc + f32(a) * f32(b))`` per element.

    ``a`` (M x K) and ``b`` (K x N) are rounded to bfloat16 first; products and
    sums are IEEE binary32 (RNE), accumulated in increasing k. NaN results are the
    canonical qNaN.
    """
    a16 = to_bf16(a)
    b16 = to_bf16(b)
    if a16.ndim != 2 or b16.ndim != 2 or a16.shape[1] != b16.shape[0]:
        raise ValueError(f"a and b must be matrices with matching inner dimension, not {a16.shape} and {b16.shape}")
    acc = np.zeros((a16.shape[0], b16.shape[1]), dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        for k in range(a16.shape[1]):
            acc = acc + a16[:, k, None] * b16[None, k, :]
    return canonical_nan(acc)
