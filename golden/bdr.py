"""Codec of the shared-microexponent (BDR) formats ``mx9``, ``mx6``, ``mx4`` (SPEC.md 11).

A block of 16 float32 values along one axis shares an exponent ``E`` (stored as the
byte ``E + 127``, 0xFF = NaN block, exactly like an E8M0 scale); each pair of
neighbouring elements shares a 1-bit microexponent ``tau``; an element is a sign and a
``p``-bit magnitude ``m`` (``p = fmt.man_bits``: 7, 4, 2):

    value = (-1)^s x m x 2^(E - tau - (p - 1))

Quantization (:func:`quantize_bdr`): ``E = floor(log2 max|V|)`` clamped to [-127, 127]
(all-zero block: -127); ``tau = 1`` when both magnitudes of the pair are below ``2^E``;
``m = RNE(|v| / 2^(E - tau - p + 1))`` saturating at ``2^p - 1``; the sign bit is the
input's (so -0.0 and negative values that round to 0 give ``s = 1, m = 0``). A block
with a NaN or Inf gets byte 0xFF, codes 0 and microexponents 0 (SPEC.md 11 leaves the
microexponents of a NaN block open; 0 is this model's choice, and the hardware's).

The whole computation is float32 arithmetic that is exact: ``|v| x 2^(p-1+tau-E)`` is a
multiplication by a power of two that neither overflows (``|v| < 2^(E+1)``, so the
result is below ``2^(p+tau)``) nor loses bits that could matter (a result below 2^-126
is far below one half, the rounding threshold of ``m``), and adding 2^23 to ``y < 2^p``
rounds it to an integer, to nearest even.

Dot products (:func:`bdr_block_results`): with ``n = (-1)^s x m x 2^(1 - tau)`` an
element is ``n x 2^(E - p)``, so a block sum is an exact integer in units of
``2^(Ea + Eb - pa - pb)`` (at most 16 x 254^2 < 2^20 for MX9: exact in float64) that
is rounded once to float32; SPEC.md 11's ``2^(Ea + Eb - 2(p - 1))`` form is the same
number. A and B may be different BDR formats (``pa != pb``); a BDR operand with a
single-scale one is refused (SPEC.md 11 defines neither the block pairing nor a rule).
"""

from __future__ import annotations

import sys

import numpy as np

from .constants import BDR_BLOCK_SIZE, BDR_PAIR_SIZE, E8M0_BIAS, E8M0_MAX_EXP, E8M0_MIN_EXP, E8M0_NAN, F32_INF_BITS
from .formats import ElementFormat, FormatKind, get_format

__all__ = [
    "quantize_bdr",
    "dequantize_bdr",
    "bdr_element_ints",
    "bdr_block_results",
    "bdr_dot",
    "bdr_batched_dot",
    "check_bdr_block_size",
    "check_bdr_options",
    "microexp_per_element",
]

_INF = np.uint32(F32_INF_BITS)
_LITTLE = sys.byteorder == "little"


def _pow2(k: np.ndarray) -> np.ndarray:
    """float32 2^k for integers k in [-126, 127], built from the exponent field."""
    return ((k.astype(np.int32) + 127) << 23).view(np.float32)


def _times_pair(v: np.ndarray, per_pair: np.ndarray) -> np.ndarray:
    """``v`` (flat, pairs adjacent) times one factor per pair (strided: 3x faster than broadcasting)."""
    out = np.empty_like(v)
    np.multiply(v[0::2], per_pair, out=out[0::2])
    np.multiply(v[1::2], per_pair, out=out[1::2])
    return out


def _byte(u32: np.ndarray, i: int) -> np.ndarray:
    """Byte ``i`` (0 = least significant) of every uint32, as a strided uint8 view."""
    return u32.view(np.uint8)[(i if _LITTLE else 3 - i)::4]


def _require_bdr(f: ElementFormat, param: str = "fmt") -> ElementFormat:
    if f.kind is not FormatKind.BDR:
        raise ValueError(f"{param} must be a shared-microexponent format (kind bdr), not {f.name!r}")
    return f


def check_bdr_block_size(f: ElementFormat, block_size) -> int:
    """``block_size`` must be the format's fixed 16 (SPEC.md 11); ValueError naming the rule."""
    if block_size != BDR_BLOCK_SIZE or isinstance(block_size, bool):
        raise ValueError(f"block_size must be {BDR_BLOCK_SIZE} for {f.name} (SPEC.md 11: a block of "
                         f"{BDR_BLOCK_SIZE} elements shares one exponent, each pair a microexponent); "
                         f"not {block_size!r}")
    return BDR_BLOCK_SIZE


def check_bdr_options(f: ElementFormat, scale_rounding="floor", rounding="rne") -> None:
    """BDR formats take only ``scale_rounding="floor"`` and ``rounding="rne"``.

    SPEC.md 8 and 9 define the other scale-rounding rules and stochastic rounding for the
    single-scale element formats only; SPEC.md 11 fixes E and the RNE of ``m`` for BDR.
    ValueError naming the parameter otherwise (enum members or their strings).
    """
    from .options import Rounding, ScaleRounding, rounding_mode, scale_rounding_mode

    sr = scale_rounding_mode(scale_rounding)
    r = rounding_mode(rounding)
    if sr is not ScaleRounding.FLOOR:
        raise ValueError(f"scale_rounding={sr.value!r} is not defined for {f.name}: BDR formats support only "
                         f"scale_rounding='floor' and rounding='rne' (SPEC.md 11)")
    if r is not Rounding.RNE:
        raise ValueError(f"rounding={r.value!r} is not defined for {f.name}: BDR formats support only "
                         f"scale_rounding='floor' and rounding='rne' (SPEC.md 11)")


def quantize_bdr(x32: np.ndarray, fmt, axis: int):
    """Quantize float32 ``x32`` to a BDR :class:`~mxsf.golden.quantize.MXArray` (blocks of 16 along ``axis``).

    Returns an ``MXArray`` with ``codes`` (uint8 ``s << p | m``, the shape of ``x32``),
    ``scale_e8m0`` (the exponent bytes ``E + 127``, one per block), ``block_shape`` (16
    along ``axis``, 1 elsewhere) and ``microexp`` (uint8 0/1, ``ceil(n / 2)`` pairs along
    ``axis``; pairs of a ragged last block include its zero padding).
    """
    from .quantize import MXArray

    f = _require_bdr(get_format(fmt))
    p = f.man_bits
    if x32.size == 0:
        raise ValueError(f"x must not be empty, not shape {x32.shape}")
    xm = np.moveaxis(x32, axis, -1)
    n = xm.shape[-1]
    nb = -(-n // BDR_BLOCK_SIZE)
    pad = nb * BDR_BLOCK_SIZE - n
    if pad:
        xm = np.concatenate([xm, np.zeros(xm.shape[:-1] + (pad,), np.float32)], axis=-1)
    lead = xm.shape[:-1]
    xf = np.ascontiguousarray(xm).reshape(-1)                          # blocks of 16, pairs adjacent
    nblk, npair = xf.size // BDR_BLOCK_SIZE, xf.size // BDR_PAIR_SIZE
    mag_bits = xf.view(np.uint32) & np.uint32(0x7FFF_FFFF)

    # (strided maxima: NumPy's reductions over short axes are 3-15x slower)
    pair_max = np.maximum(mag_bits[0::2], mag_bits[1::2])             # (npair,)
    blk_max = pair_max
    while blk_max.size > nblk:                                         # 8 pairs -> 1 block, 3 levels
        blk_max = np.maximum(blk_max[0::2], blk_max[1::2])
    pair_max = pair_max.reshape(nblk, BDR_BLOCK_SIZE // BDR_PAIR_SIZE)
    nan_blk = blk_max >= _INF
    # floor(log2 max) is the unbiased exponent; a subnormal or zero max clamps to -127
    E = np.clip((blk_max >> np.uint32(23)).astype(np.int32) - E8M0_BIAS, E8M0_MIN_EXP, E8M0_MAX_EXP)
    # float32 bits of 2^E (2^-127 is the subnormal 0x00400000)
    pow_e_bits = np.where(E > -127, (E + 127) << 23, 0x0040_0000).astype(np.uint32)
    tau = pair_max < pow_e_bits[:, None]                               # both magnitudes below 2^E

    # |v| x 2^(p-1+tau-E), one exact multiplication; a power above 2^127 (E < -120) is split in two
    k = (p - 1) - E[:, None] + tau                                     # (nblk, 8), >= p - 128
    k1 = np.minimum(k, 127)
    y = _times_pair(mag_bits.view(np.float32), _pow2(k1.reshape(-1)))
    if (k > 127).any():
        y = _times_pair(y, _pow2((k - k1).reshape(-1)))
    # y < 2^p, so RNE(y) <= 2^p <= 128: adding 2^23 rounds y to an integer (RNE) in the low
    # bits of the sum's significand; its low byte is m (NaN/Inf blocks are cleared below)
    with np.errstate(invalid="ignore"):
        rounded = (y + np.float32(1 << 23)).view(np.uint32)
    m = np.minimum(_byte(rounded, 0), np.uint8((1 << p) - 1))
    codes = m | ((_byte(xf.view(np.uint32), 3) & np.uint8(0x80)) >> np.uint8(7 - p))   # sign bit
    tau = tau.astype(np.uint8)
    if nan_blk.any():
        codes.reshape(nblk, BDR_BLOCK_SIZE)[nan_blk] = 0
        tau[nan_blk] = 0
    codes = codes.reshape(lead + (nb * BDR_BLOCK_SIZE,))[..., :n]
    tau = tau.reshape(lead + (nb * BDR_BLOCK_SIZE // BDR_PAIR_SIZE,))[..., : -(-n // BDR_PAIR_SIZE)]
    scale = np.where(nan_blk, E8M0_NAN, E + E8M0_BIAS).astype(np.uint8).reshape(lead + (nb,))

    block_shape = [1] * x32.ndim
    block_shape[axis] = BDR_BLOCK_SIZE
    return MXArray(f, np.ascontiguousarray(np.moveaxis(codes, -1, axis)),
                   np.ascontiguousarray(np.moveaxis(scale, -1, axis)), tuple(block_shape),
                   microexp=np.ascontiguousarray(np.moveaxis(tau, -1, axis)))


def _block_axis(q) -> int:
    axes = [ax for ax, b in enumerate(q.block_shape) if b != 1]
    if q.microexp is None or len(axes) != 1 or q.block_shape[axes[0]] != BDR_BLOCK_SIZE:
        raise ValueError(f"a {q.fmt.name} MXArray needs microexponents and 1D blocks of {BDR_BLOCK_SIZE}; "
                         f"not block_shape {q.block_shape} with microexp "
                         f"{'None' if q.microexp is None else q.microexp.shape}")
    return axes[0]


def microexp_per_element(q, padded: bool = False) -> np.ndarray:
    """The microexponent of every element (each pair's bit repeated twice along the block axis).

    ``padded`` returns it for the codes padded to whole blocks (padding pairs read as 1:
    their codes are 0, so any value gives the same numbers).
    """
    ax = _block_axis(q)
    t = np.repeat(q.microexp, BDR_PAIR_SIZE, axis=ax)
    n = q.shape[ax]
    target = -(-n // BDR_BLOCK_SIZE) * BDR_BLOCK_SIZE if padded else n
    if t.shape[ax] >= target:
        return np.take(t, np.arange(target), axis=ax)
    pads = [(0, 0)] * t.ndim
    pads[ax] = (0, target - t.shape[ax])
    return np.pad(t, pads, constant_values=1)


def dequantize_bdr(q) -> np.ndarray:
    """float32 values ``(-1)^s m 2^(E - tau - (p-1))`` (NaN where the exponent byte is 0xFF)."""
    _block_axis(q)
    vals = q.fmt.values[q.codes.astype(np.int64)]                      # tau = 0 reading
    s = q.scale_per_element().astype(np.int64)
    out = np.ldexp(vals, s - E8M0_BIAS - microexp_per_element(q).astype(np.int64))
    return np.where(s == E8M0_NAN, np.nan, out).astype(np.float32)


def bdr_element_ints(codes, microexp, fmt) -> np.ndarray:
    """Signed integer ``n = (-1)^s m 2^(1 - tau)`` of each element: its value is ``n x 2^(E - p)``.

    ``codes`` and ``microexp`` (per element) broadcast; int64.
    """
    f = _require_bdr(get_format(fmt))
    c = np.asarray(codes).astype(np.int64)
    mag = (c & ((1 << f.man_bits) - 1)) << (1 - np.asarray(microexp).astype(np.int64))
    return np.where((c >> f.man_bits) & 1, -mag, mag)


def bdr_block_results(qa, qb) -> np.ndarray:
    """float32 ``d`` of every (K-block, row of A, column of B) for ``qa @ qb`` (SPEC.md 11 + 5).

    ``qa`` (M x K) is blocked along its last axis, ``qb`` (K x N) along its first, both
    BDR. Returns (nK, M, N) float32 block results, NaN where an exponent byte is 0xFF;
    the caller accumulates them in order (:func:`mxsf.golden.matmul.matmul`).
    """
    from .matmul import round_to_float32

    fa, fb = qa.fmt, qb.fmt
    for name, f in (("qa", fa), ("qb", fb)):
        if f.kind is not FormatKind.BDR:
            raise ValueError(f"{name} is {f.name}: a shared-microexponent (BDR) operand multiplies only "
                             f"another BDR operand (SPEC.md 11), not {fa.name} x {fb.name}")
    if _block_axis(qa) != 1 or _block_axis(qb) != 0:
        raise ValueError(f"qa must be blocked along its last axis and qb along its first (K); not "
                         f"block shapes {qa.block_shape} and {qb.block_shape}")
    M, K = qa.shape
    N = qb.shape[1]
    nK = -(-K // BDR_BLOCK_SIZE)
    a = bdr_element_ints(qa.padded_codes(), microexp_per_element(qa, padded=True), fa)   # (M, Kp)
    b = bdr_element_ints(qb.padded_codes(), microexp_per_element(qb, padded=True), fb)   # (Kp, N)
    a = a.reshape(M, nK, BDR_BLOCK_SIZE).transpose(1, 0, 2).astype(np.float64)          # (nK, M, 16)
    b = b.reshape(nK, BDR_BLOCK_SIZE, N).astype(np.float64)                              # (nK, 16, N)
    s = np.matmul(a, b)                          # exact: |s| < 16 x 2^16 x 2^(p-7) < 2^53
    sa = qa.scale_e8m0.T.astype(np.int64)        # (nK, M)
    sb = qb.scale_e8m0.astype(np.int64)          # (nK, N)
    exp = (sa[:, :, None] - E8M0_BIAS) + (sb[:, None, :] - E8M0_BIAS) - fa.man_bits - fb.man_bits
    d = round_to_float32(s, exp)
    nan = (sa[:, :, None] == E8M0_NAN) | (sb[:, None, :] == E8M0_NAN)
    return np.where(nan, np.float32(np.nan), d).astype(np.float32)


def bdr_dot(blocks, fmt, *, acc="fp32"):
    """SPEC.md 11 result of one dot product given as blocks (accumulated as SPEC.md 5 and 10).

    ``blocks`` is a list of ``(a_codes, b_codes, microexp_a, microexp_b, byte_a, byte_b)``:
    up to 16 codes and up to 8 pair microexponents each (missing ones are zero codes).
    ``acc="bf16"`` returns the bfloat16 bit pattern (``numpy.uint16``), as :func:`matmul`.
    """
    from .matmul import matmul
    from .quantize import MXArray

    f = _require_bdr(get_format(fmt))
    n = len(blocks)
    K, P = n * BDR_BLOCK_SIZE, n * BDR_BLOCK_SIZE // BDR_PAIR_SIZE
    a = np.zeros((1, K), np.uint8)
    b = np.zeros((K, 1), np.uint8)
    ta = np.ones((1, P), np.uint8)
    tb = np.ones((P, 1), np.uint8)
    sa = np.zeros((1, n), np.uint8)
    sb = np.zeros((n, 1), np.uint8)
    for j, (ac, bc, ma, mb, xa, xb) in enumerate(blocks):
        k0, p0 = j * BDR_BLOCK_SIZE, j * BDR_BLOCK_SIZE // BDR_PAIR_SIZE
        a[0, k0:k0 + len(ac)] = ac
        b[k0:k0 + len(bc), 0] = bc
        ta[0, p0:p0 + len(ma)] = ma
        tb[p0:p0 + len(mb), 0] = mb
        sa[0, j], sb[j, 0] = xa, xb
    qa = MXArray(f, a, sa, (1, BDR_BLOCK_SIZE), microexp=ta)
    qb = MXArray(f, b, sb, (BDR_BLOCK_SIZE, 1), microexp=tb)
    return matmul(qa, qb, acc=acc)[0, 0]


def bdr_batched_dot(a_codes, b_codes, micro_a, micro_b, scale_a, scale_b, fmt, *, acc="fp32") -> np.ndarray:
    """Many independent BDR dot products at once (SPEC.md 11 + 5), one per row.

    ``a_codes``/``b_codes`` are (D, K) codes (K a multiple of 16), ``micro_a``/``micro_b``
    (D, K // 2) pair microexponents, ``scale_a``/``scale_b`` (D, K // 16) exponent bytes.
    Returns the D results (float32, canonical NaN; or bfloat16 bit patterns for
    ``acc="bf16"``); equal to :func:`bdr_dot` of each row.
    """
    from .matmul import _accumulate, round_to_float32
    from .options import acc_mode

    f = _require_bdr(get_format(fmt))
    mode = acc_mode(acc)
    ca, cb = np.asarray(a_codes, np.int64), np.asarray(b_codes, np.int64)
    D, K = ca.shape
    if cb.shape != (D, K) or K % BDR_BLOCK_SIZE:
        raise ValueError(f"a_codes and b_codes must both be (D, K) with K a multiple of {BDR_BLOCK_SIZE}; "
                         f"not {ca.shape} and {cb.shape}")
    nK = K // BDR_BLOCK_SIZE
    ta = np.repeat(np.asarray(micro_a, np.int64).reshape(D, K // BDR_PAIR_SIZE), BDR_PAIR_SIZE, axis=1)
    tb = np.repeat(np.asarray(micro_b, np.int64).reshape(D, K // BDR_PAIR_SIZE), BDR_PAIR_SIZE, axis=1)
    a = bdr_element_ints(ca, ta, f).reshape(D, nK, BDR_BLOCK_SIZE).astype(np.float64)
    b = bdr_element_ints(cb, tb, f).reshape(D, nK, BDR_BLOCK_SIZE).astype(np.float64)
    s = np.einsum("dkj,dkj->kd", a, b)                                   # (nK, D), exact
    sa = np.asarray(scale_a, np.int64).reshape(D, nK).T
    sb = np.asarray(scale_b, np.int64).reshape(D, nK).T
    d = round_to_float32(s, (sa - E8M0_BIAS) + (sb - E8M0_BIAS) - 2 * f.man_bits)
    d = np.where((sa == E8M0_NAN) | (sb == E8M0_NAN), np.float32(np.nan), d).astype(np.float32)
    return _accumulate(d, mode)
