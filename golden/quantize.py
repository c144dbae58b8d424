"""Quantization float32 -> MX and back (SPEC.md sections 2, 3, 4 and 6).

The encoder is bit-level: a value's exponent and significand are read from its
IEEE bits, the significand is shifted to the element's quantum and rounded to
nearest even with round/sticky bits, and the code is formed from the exponent
and the rounded significand (a carry out of the significand moves to the next
binade, as in IEEE), saturating at the largest finite code. See
:func:`encode_exact`.

Because every element format keeps at most 7 fraction bits, the rounding of a
float32 ``y`` depends only on its top 16 bits (sign, exponent, 7 mantissa bits)
and on whether its low 16 bits are non-zero (sticky). :func:`encode_scaled`
therefore runs the exact encoder once per format on the 2 x 65,536 such classes
and then encodes whole arrays with two table look-ups; the tests check the two
paths agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .constants import E8M0_BIAS, E8M0_MAX_EXP, E8M0_MIN_EXP, E8M0_NAN, F32_ABS_MASK, F32_BIAS, F32_INF_BITS
from .formats import ElementFormat, FormatKind, get_format
from .options import (Rounding, ScaleRounding, SR_DEFAULT_BITS, check_seed, check_sr_bits,
                      even_fraction_bits, largest_fraction, rounding_mode, scale_rounding_mode,
                      sr_block_key, sr_mix, SR_WEYL)
from .params import MAX_QUANT_BLOCK, check_int

__all__ = [
    "MXArray",
    "MaxExponent",
    "quantize",
    "quantize_tiles",
    "dequantize",
    "encode_exact",
    "encode_scaled",
    "encode_stochastic",
    "encode_stochastic_exact",
    "block_max_exponent",
    "scale_exponent_field",
    "scale_from_max_exponent",
    "requantize_tile",
    "NAN_SCALE",
    "as_float32",
    "check_block_size",
]

NAN_SCALE = E8M0_NAN
"""E8M0 byte that encodes NaN (re-exported from :mod:`mxsf.golden.constants`)."""

_ABS_MASK = np.uint32(F32_ABS_MASK)
_INF_BITS = np.uint32(F32_INF_BITS)


# ------------------------------------------------------------------------------------
# Parameter checks (shared by every public entry point)
# ------------------------------------------------------------------------------------

def as_float32(x, param: str = "x") -> np.ndarray:
    """``x`` as a float32 array; floating inputs of other widths are rounded (RNE)."""
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{param} must be a floating-point array (float16/32/64), not dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def check_block_size(n, param: str = "block_size", hi: int = MAX_QUANT_BLOCK) -> int:
    """A block or tile side: an integer in [1, hi] (ValueError otherwise, also for a non-integer)."""
    try:
        return check_int(param, n, 1, hi)
    except TypeError:
        raise ValueError(f"{param} must be an integer in [1, {hi}], not {n!r}") from None


# ------------------------------------------------------------------------------------
# Element encoding
# ------------------------------------------------------------------------------------

def _encode_abs64(yabs: np.ndarray, negative: np.ndarray, f: ElementFormat) -> np.ndarray:
    """Round exact non-negative float64 values ``yabs`` to element codes of ``f``.

    Works on the float64 bits: ``ky`` is the unbiased exponent, ``sig`` the 53-bit
    significand with its hidden bit. Zero has ``ky = -1023`` and rounds to 0.
    """
    bits = yabs.view(np.uint64)
    ky = (bits >> np.uint64(52)).astype(np.int64) - 1023
    sig = (bits & np.uint64((1 << 52) - 1)) | np.uint64(1 << 52)

    segs = f.segments
    seg = np.zeros(ky.shape, dtype=np.int64)
    for s in segs[1:]:
        seg += ky >= s.ky_lo
    man_bits = np.array([s.man_bits for s in segs], dtype=np.int64)[seg]
    emin = np.array([s.emin for s in segs], dtype=np.int64)[seg]

    kk = np.maximum(ky, emin)                        # exponent of the quantum's binade
    shift = np.minimum(52 - man_bits + (kk - ky), 62).astype(np.uint64)
    one = np.uint64(1)
    n = sig >> shift                                 # kept significand (quanta)
    rem = sig & ((one << shift) - one)               # bits shifted out
    half = one << (shift - one)                      # the round bit's weight
    round_up = (rem > half) | ((rem == half) & ((n & one) == one))
    n = n.astype(np.int64) + round_up
    mag = ((kk - emin) << man_bits) + n              # a carry of n moves to the next binade
    mag = np.minimum(mag, f.max_code)                # saturation

    if f.kind is FormatKind.INT:
        code = np.where(negative, (-mag) & ((1 << f.bits) - 1), mag)  # two's complement, no -0
    else:
        code = mag | (negative.astype(np.int64) << (f.bits - 1))
    return code.astype(np.uint8 if f.bits <= 8 else np.uint16)


def encode_exact(v, exponent, fmt) -> np.ndarray:
    """Codes of ``v / 2^exponent`` rounded to ``fmt`` (RNE, saturating), bit-level.

    ``v`` is float32 (NaN/Inf inputs give unspecified codes: the caller masks
    them); ``exponent`` broadcasts against ``v``. The division is exact (done on
    float64 exponents), so this is the reference the fast path is checked against.
    """
    f = get_format(fmt)
    v = as_float32(v, "v")
    e = np.asarray(exponent)
    if not np.issubdtype(e.dtype, np.integer):
        raise ValueError(f"exponent must be integers, not dtype {e.dtype}")
    yabs = np.ldexp(np.abs(v).astype(np.float64), -e.astype(np.int64))
    yabs = np.where(np.isfinite(yabs), yabs, 0.0)
    return _encode_abs64(np.ascontiguousarray(yabs), np.signbit(v), f)


@lru_cache(maxsize=None)
def _encode_tables(f: ElementFormat) -> tuple[np.ndarray, np.ndarray]:
    """Codes for every float32 class (top 16 bits) without and with sticky low bits."""
    top = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    tables = []
    for low in (0, 1):
        y = (top | np.uint32(low)).view(np.float32)
        finite = np.isfinite(y)
        y = np.where(finite, y, np.float32(0))
        codes = _encode_abs64(np.abs(y).astype(np.float64), np.signbit(y), f)
        tables.append(np.where(finite, codes, 0).astype(codes.dtype))
    return tables[0], tables[1]


def encode_scaled(y, fmt) -> np.ndarray:
    """Codes of float32 ``y`` (already divided by the block scale) rounded to ``fmt``.

    Exact for every finite ``y`` with ``|y| >= 2^-126``; smaller magnitudes round to
    (signed) zero in every format, as they should. NaN/Inf give code 0.
    """
    f = get_format(fmt, element_only=True)   # bf16 keeps 8 fraction bits: not table-encodable
    u = as_float32(y, "y").view(np.uint32)
    exact, sticky = _encode_tables(f)
    idx = u >> np.uint32(16)
    return np.where((u & np.uint32(0xFFFF)) != 0, sticky[idx], exact[idx])


# ------------------------------------------------------------------------------------
# Shared scale (section 2, 3 and 6)
# ------------------------------------------------------------------------------------

class MaxExponent(NamedTuple):
    """Result of the block max-exponent finder (SPEC.md section 6)."""

    max_exp: np.ndarray    #: largest biased float32 exponent field of |x| (0 for zeros/subnormals)
    any_nan_inf: np.ndarray  #: some input is NaN or +/-Inf
    all_zero: np.ndarray   #: every input is +/-0


def block_max_exponent(x, axis=None) -> MaxExponent:
    """Max biased exponent field, NaN/Inf flag and all-zero flag of float32 ``x``.

    ``axis=None`` reduces over all of ``x`` (one block); otherwise over the given
    axis or axes. NaN/Inf inputs have exponent field 255 and so give ``max_exp = 255``.
    """
    a = np.abs(as_float32(x)).view(np.uint32)
    m = np.max(a, axis=axis) if a.size else np.uint32(0)
    return MaxExponent(
        max_exp=(m >> np.uint32(23)).astype(np.int64),
        any_nan_inf=m >= _INF_BITS,
        all_zero=m == 0,
    )


def scale_from_max_exponent(max_exp, any_nan_inf, fmt) -> np.ndarray:
    """E8M0 scale bytes from max exponent fields (section 6): E = max(-127, maxexp - 127 - emax)."""
    f = get_format(fmt, element_only=True)
    E = np.clip(np.asarray(max_exp, dtype=np.int64) - F32_BIAS - f.emax_elem, E8M0_MIN_EXP, E8M0_MAX_EXP)
    return np.where(any_nan_inf, E8M0_NAN, E + E8M0_BIAS).astype(np.uint8)


def scale_exponent_field(amax_bits, fmt, scale_rounding="floor") -> np.ndarray:
    """The float32 exponent field whose ``floor`` scale is the ``scale_rounding`` scale.

    ``amax_bits`` are the float32 bit patterns of blocks' largest magnitudes (as
    :func:`block_max_exponent` finds them; NaN/Inf are the caller's business). Feeding the
    result to :func:`scale_from_max_exponent` gives E by SPEC.md 8:

    * ``floor``: the exponent field of amax (0 for zeros and subnormals);
    * ``ceil``: that field plus one when amax's significand exceeds the largest element's
      (``amax > largest x 2^(floor(log2 amax) - emax)``); a float32 subnormal amax counts
      in the binade 2^-127 when it is at least 2^-127, with its fraction ``man << 1``;
    * ``even``: the field of ``amax_bits + 2^(22 - m)`` (half an ulp at ``m`` fraction bits).

    In hardware every one of these is the maximum over elements of ``2 x field + flag`` with
    a per-element flag, which is how the re-quantizer's max-exponent tree computes it.
    """
    f = get_format(fmt, element_only=True)
    mode = scale_rounding_mode(scale_rounding)
    a = np.asarray(amax_bits).astype(np.uint32) & _ABS_MASK
    field = (a >> np.uint32(23)).astype(np.int64)
    if mode is ScaleRounding.FLOOR:
        return field
    if mode is ScaleRounding.EVEN:
        half = np.uint32(1 << (22 - even_fraction_bits(f)))
        return ((a + half) >> np.uint32(23)).astype(np.int64)
    man = a & np.uint32(0x7FFFFF)
    # the fraction of amax in its binade (23 bits); subnormals >= 2^-127 are in binade -127
    frac = np.where(field > 0, man, np.where(man >= np.uint32(1 << 22),
                                             (man << np.uint32(1)) & np.uint32(0x7FFFFF), 0))
    return field + (frac > np.uint32(largest_fraction(f)))


def _sr_parts(u: np.ndarray, f: ElementFormat, R: int) -> tuple[np.ndarray, np.ndarray]:
    """For float32 bits ``u``: the magnitude code of ``floor(a / u_grid)`` (saturated) and the
    right shift that puts the R bits below the grid's quantum at the bottom of the significand
    (24 for float32 zeros/subnormals, whose t is 0)."""
    field = ((u >> np.uint32(23)) & np.uint32(0xFF)).astype(np.int32)
    ky = field - F32_BIAS
    sig = (u & np.uint32(0x7FFFFF)) | np.uint32(1 << 23)
    segs = f.segments
    man_bits = np.full(ky.shape, segs[0].man_bits, dtype=np.int32)
    emin = np.full(ky.shape, segs[0].emin, dtype=np.int32)
    for sg in segs[1:]:
        hit = ky >= sg.ky_lo
        man_bits = np.where(hit, sg.man_bits, man_bits)
        emin = np.where(hit, sg.emin, emin)
    kk = np.maximum(ky, emin)
    q_shift = 23 - man_bits + (kk - ky)                    # sig >> q_shift = floor(a / u_grid)
    n0 = np.where((q_shift > 31) | (field == 0), 0, sig >> np.minimum(q_shift, 31).astype(np.uint32))
    mag0 = np.minimum(((kk - emin) << man_bits) + n0.astype(np.int32), f.max_code)
    shift = np.where(field == 0, 24, np.minimum(q_shift - R, 24))
    return mag0, shift


def _sign_code_table(f: ElementFormat) -> np.ndarray:
    """code = table[sign * (max_code + 1) + magnitude]: sign bit, or INT two's complement (no -0)."""
    mag = np.arange(f.max_code + 1, dtype=np.int64)
    neg = (-mag) & ((1 << f.bits) - 1) if f.kind is FormatKind.INT else mag | (1 << (f.bits - 1))
    return np.concatenate([mag, neg]).astype(np.uint8 if f.bits <= 8 else np.uint16)


def encode_stochastic_exact(y, r, fmt, sr_bits: int = SR_DEFAULT_BITS) -> np.ndarray:
    """:func:`encode_stochastic` computed element by element from the float32 bits (the
    reference the table-driven fast path is tested against)."""
    f = get_format(fmt, element_only=True)
    R = check_sr_bits(sr_bits)
    u = as_float32(y, "y").view(np.uint32)
    mag0, shift = _sr_parts(u, f, R)
    sig = (u & np.uint32(0x7FFFFF)) | np.uint32(1 << 23)
    frac = (sig >> shift.astype(np.uint32)) & np.uint32((1 << R) - 1)
    carry = (frac + np.asarray(r, dtype=np.uint32)) >> np.uint32(R)
    mag = np.minimum(mag0 + carry.astype(np.int32), f.max_code)
    return _sign_code_table(f)[(u >> np.uint32(31)).astype(np.int64) * (f.max_code + 1) + mag]


@lru_cache(maxsize=None)
def _sr_table(name: str, R: int) -> np.ndarray:
    """Per float32 class (bits 31..16): ``code(floor(a / u)) << 8 | shift``.

    ``shift`` puts the R bits below the quantum at the bottom of the significand; it is 24
    (no carry possible) where the floor is already the largest code. The code of the next
    grid value is ``code + 1`` (``code - 1`` for a negative INT8 code: two's complement).
    """
    f = get_format(name)
    u = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    mag0, shift = _sr_parts(u, f, R)
    shift = np.where(mag0 >= f.max_code, 24, shift)
    code0 = _sign_code_table(f)[(u >> np.uint32(31)).astype(np.int64) * (f.max_code + 1) + mag0]
    return (code0.astype(np.uint32) << np.uint32(8)) | shift.astype(np.uint32)


def encode_stochastic(y, r, fmt, sr_bits: int = SR_DEFAULT_BITS) -> np.ndarray:
    """Codes of float32 ``y`` (already divided by the block scale), stochastically rounded.

    SPEC.md 9: with ``u`` the grid spacing at ``a = |y|`` and ``t = floor(a x 2^R / u)``,
    the magnitude is ``u x floor((t + r) / 2^R)``, saturated to the largest value; the sign
    and zeros follow section 3. ``r`` (broadcasting against ``y``) are the random integers
    in ``[0, 2^sr_bits)``. Exact for every finite ``y`` with ``|y| >= 2^-126``; smaller
    magnitudes have ``t = 0`` in every format (the finest grid is 2^-9 and R <= 16) and give
    signed zero. NaN/Inf ``y`` give unspecified codes (the caller masks them).

    The code of ``floor(a / u)`` and the position of the R bits below the quantum depend only
    on the sign, exponent and top 7 mantissa bits: one table of 2^16 entries gives both, and
    the carry ``(t mod 2^R + r) >> R`` is added per element (:func:`encode_stochastic_exact`
    is the element-by-element reference).
    """
    f = get_format(fmt, element_only=True)
    R = check_sr_bits(sr_bits)
    u = as_float32(y, "y").view(np.uint32)
    p = _sr_table(f.name, R)[u >> np.uint32(16)]
    frac = u & np.uint32(0x7FFFFF)
    frac |= np.uint32(1 << 23)
    frac >>= p & np.uint32(0xFF)
    frac &= np.uint32((1 << R) - 1)
    frac += np.asarray(r, dtype=np.uint32)
    frac >>= np.uint32(R)                                   # the carry: 0 or 1
    p >>= np.uint32(8)
    if f.kind is FormatKind.INT:
        neg = (u >> np.uint32(31)).astype(bool)
        p = np.where(neg, p - frac, p + frac) & np.uint32(0xFF)
    else:
        p += frac
    return p.astype(np.uint8 if f.bits <= 8 else np.uint16)


# ------------------------------------------------------------------------------------
# MX arrays
# ------------------------------------------------------------------------------------

def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, eq=False)
class MXArray:
    """An MX-quantized array: element codes plus one E8M0 scale per block or tile.

    Attributes
    ----------
    fmt : ElementFormat
    codes : np.ndarray
        Element codes (uint8), the shape of the original array.
    scale_e8m0 : np.ndarray
        uint8 scale bytes, shape ``ceil(shape / block_shape)`` (0xFF = NaN).
    block_shape : tuple of int
        Extent of one block along every axis: ``(1, 32)`` for 1D blocks of 32
        along the last axis of a matrix, ``(32, 32)`` for 32x32 tiles. Axes not
        multiple of the block are padded with zeros (zero codes) to whole blocks.
    microexp : np.ndarray or None
        Shared-microexponent (BDR) formats only (SPEC.md 11): one bit (uint8 0/1) per
        pair of neighbouring elements along the block axis (``ceil(n / 2)`` there);
        ``scale_e8m0`` then holds the blocks' exponent bytes ``E + 127``. None otherwise.
    """

    fmt: ElementFormat
    codes: np.ndarray
    scale_e8m0: np.ndarray
    block_shape: tuple
    microexp: np.ndarray | None = None

    @property
    def shape(self) -> tuple:
        return self.codes.shape

    @property
    def ndim(self) -> int:
        return self.codes.ndim

    @property
    def is_tiled(self) -> bool:
        """True when blocks span more than one element along more than one axis."""
        return sum(b > 1 for b in self.block_shape) > 1

    @property
    def T(self) -> "MXArray":
        """The transpose: the same codes and scales, read along the other axes (no re-quantization)."""
        return MXArray(self.fmt, self.codes.T, self.scale_e8m0.T, tuple(self.block_shape[::-1]),
                       None if self.microexp is None else self.microexp.T)

    def padded_codes(self) -> np.ndarray:
        """Codes padded with zero codes to whole blocks along every axis."""
        pads = [(0, _ceil_div(n, b) * b - n) for n, b in zip(self.shape, self.block_shape)]
        return np.pad(self.codes, pads) if any(p for _, p in pads) else self.codes

    def scale_per_element(self, padded: bool = False) -> np.ndarray:
        """Scale byte of every element (broadcast from blocks)."""
        s = self.scale_e8m0
        for ax, b in enumerate(self.block_shape):
            s = np.repeat(s, b, axis=ax)
        return s if padded else s[tuple(slice(0, n) for n in self.shape)]

    def __repr__(self) -> str:
        return (f"MXArray(fmt={self.fmt.name}, shape={self.shape}, block_shape={self.block_shape}, "
                f"scales={self.scale_e8m0.shape})")


def _quantize_blocks(x32: np.ndarray, f: ElementFormat, block_shape: tuple,
                     scale_rounding: ScaleRounding = ScaleRounding.FLOOR,
                     rounding: Rounding = Rounding.RNE, sr_bits: int = SR_DEFAULT_BITS,
                     seed: int = 0, block_offset: int = 0) -> MXArray:
    shape = x32.shape
    if x32.size == 0:
        raise ValueError(f"x must not be empty, not shape {shape}")
    nblk = tuple(_ceil_div(n, b) for n, b in zip(shape, block_shape))
    pads = [(0, nb * b - n) for n, nb, b in zip(shape, nblk, block_shape)]
    xp = np.pad(x32, pads) if any(p for _, p in pads) else x32
    # (n0, b0, n1, b1, ...): every block is the odd axes.
    inter = tuple(v for nb, b in zip(nblk, block_shape) for v in (nb, b))
    xb = np.ascontiguousarray(xp).reshape(inter)
    red = tuple(range(1, 2 * len(shape), 2))
    amax = np.max(np.abs(xb).view(np.uint32), axis=red)
    nan_inf = amax >= _INF_BITS
    scale = scale_from_max_exponent(scale_exponent_field(amax, f, scale_rounding), nan_inf, f)
    E = scale.astype(np.int32) - E8M0_BIAS
    # 2^-E as float32: exact for E in [-127, 127] (2^-127 is a float32 subnormal).
    inv = np.ldexp(np.float32(1), -E).astype(np.float32)
    bshape = tuple(v for nb in nblk for v in (nb, 1))
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        y = xb * inv.reshape(bshape)
    if rounding is Rounding.STOCHASTIC:
        codes = encode_stochastic(y, _sr_bits_for_blocks(nblk, block_shape, sr_bits, seed, block_offset),
                                  f, sr_bits)
    else:
        codes = encode_scaled(y, f)                                # NaN/Inf y give code 0
    codes = np.where(nan_inf.reshape(bshape), 0, codes).astype(codes.dtype)
    codes = codes.reshape(xp.shape)[tuple(slice(0, n) for n in shape)]
    return MXArray(f, np.ascontiguousarray(codes), scale, tuple(block_shape))


_SR_CHUNK = 1 << 16
"""Elements hashed per step by :func:`_sr_bits_for_blocks` (cache-sized; any value gives the same bits)."""


def _sr_bits_for_blocks(nblk: tuple, block_shape: tuple, sr_bits: int, seed: int,
                        block_offset: int) -> np.ndarray:
    """The random integers of every element, shaped (n0, b0, n1, b1, ...).

    Block index: row-major over the block grid, plus ``block_offset``; element index:
    row-major inside the (padded) block. See docs/stochastic_rounding.md.
    """
    nb, be = int(np.prod(nblk)), int(np.prod(block_shape))
    keys = sr_block_key(seed, block_offset + np.arange(nb, dtype=np.uint64))
    elem = np.arange(be, dtype=np.uint32) * np.uint32(SR_WEYL)
    r = np.empty((nb, be), dtype=np.uint32)                 # (blocks, elements)
    rows = max(1, _SR_CHUNK // be)          # a few blocks at a time: the mixer's passes stay in cache
    for i in range(0, nb, rows):
        x = r[i:i + rows]
        np.add(keys[i:i + rows, None], elem[None, :], out=x)   # key + element x W, mod 2^32
        sr_mix(x, in_place=True)
        x >>= np.uint32(32 - sr_bits)
    r = r.reshape(nblk + tuple(block_shape))
    nd = len(nblk)
    return r.transpose([a for i in range(nd) for a in (i, nd + i)])


def _options(scale_rounding, rounding, sr_bits, seed):
    """Checked option values (SPEC.md 8 and 9)."""
    return (scale_rounding_mode(scale_rounding), rounding_mode(rounding), check_sr_bits(sr_bits),
            check_seed(seed))


_OPTIONS_DOC = """
    scale_rounding : {"floor", "ceil", "even"} or ScaleRounding
        How E is chosen from the block's largest magnitude (SPEC.md 8; default ``floor``).
    rounding : {"rne", "stochastic"} or Rounding
        Element rounding (SPEC.md 9; default ``rne``).
    sr_bits : int
        Random bits per element for stochastic rounding, in [1, 16] (default 8).
    seed : int
        32-bit seed of the stochastic-rounding generator (docs/stochastic_rounding.md);
        the random integer of an element depends on (seed, block index, element index)."""


def quantize(x, fmt, block_size: int | None = None, axis: int = -1, *, scale_rounding="floor",
             rounding="rne", sr_bits: int = SR_DEFAULT_BITS, seed: int = 0) -> MXArray:
    """Quantize ``x`` to MX with 1D blocks of ``block_size`` along ``axis`` (SPEC.md 3, 4, 8, 9).

    Parameters
    ----------
    x : array of float
        Values (converted to float32 first).
    fmt : str or ElementFormat
        Element format or OCP alias (not bf16).
    block_size : int or None
        Elements per block, in [1, 2^20]; None is the format's default (32, or the fixed
        16 of the shared-microexponent formats ``mx9``/``mx6``/``mx4``, which accept
        only 16: SPEC.md 11). A ragged last block is padded with zeros.
    axis : int
        Axis along which blocks run.
    {options}

    Raises
    ------
    ValueError
        Unknown format, bad block size or axis, non-float input, bad option value.
    """
    f = get_format(fmt, element_only=True)
    bs = check_block_size(f.default_block_size if block_size is None else block_size)
    opts = _options(scale_rounding, rounding, sr_bits, seed)
    if f.fixed_block_size is not None:
        from .bdr import check_bdr_block_size, check_bdr_options
        check_bdr_block_size(f, bs)
        check_bdr_options(f, opts[0], opts[1])
    x32 = as_float32(x)
    if x32.ndim == 0:
        raise ValueError("x must have at least one dimension, not a scalar")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x32.ndim <= axis < x32.ndim:
        raise ValueError(f"axis must be an integer in [{-x32.ndim}, {x32.ndim - 1}], not {axis!r}")
    if f.kind is FormatKind.BDR:
        from .bdr import quantize_bdr
        return quantize_bdr(x32, f, axis)
    block_shape = [1] * x32.ndim
    block_shape[axis] = bs
    return _quantize_blocks(x32, f, tuple(block_shape), *opts)


def quantize_tiles(x, fmt, tile=(32, 32), *, scale_rounding="floor", rounding="rne",
                   sr_bits: int = SR_DEFAULT_BITS, seed: int = 0) -> MXArray:
    """Quantize a matrix in 2D tiles that each share one scale (MX-SAFE tile-based blocks).

    ``tile`` is ``(rows, cols)``; a 1D block of n along the last axis is ``(1, n)``.
    The result's ``.T`` serves the transposed matrix from the same codes and scales.
    Tiles are numbered row-major (the block index of stochastic rounding).

    Parameters
    ----------
    {options}

    Raises
    ------
    ValueError
        Unknown format, ``tile`` not two positive integers, ``x`` not 2D, non-float input,
        bad option value.
    """
    f = get_format(fmt, element_only=True)
    if not f.allows_tiles:
        raise ValueError(f"fmt {f.name} has no 2D tiles: its blocks are 1D, {f.fixed_block_size} elements "
                         f"along K with a microexponent per pair (SPEC.md 11); use quantize(x, {f.name!r})")
    if not isinstance(tile, (tuple, list)) or len(tile) != 2:
        raise ValueError(f"tile must be a pair (rows, cols) of integers in [1, 2^20], not {tile!r}")
    tr = check_block_size(tile[0], "tile rows")
    tc = check_block_size(tile[1], "tile cols")
    opts = _options(scale_rounding, rounding, sr_bits, seed)
    x32 = as_float32(x)
    if x32.ndim != 2:
        raise ValueError(f"x must be a 2D matrix for tiles, not shape {x32.shape}")
    return _quantize_blocks(x32, f, (tr, tc), *opts)


quantize.__doc__ = quantize.__doc__.replace("{options}", _OPTIONS_DOC.strip())
quantize_tiles.__doc__ = quantize_tiles.__doc__.replace("{options}", _OPTIONS_DOC.strip())


def dequantize(q: MXArray) -> np.ndarray:
    """float32 values of an :class:`MXArray` (element value x 2^E; NaN where the scale is NaN)."""
    if not isinstance(q, MXArray):
        raise ValueError(f"q must be an MXArray, not {type(q).__name__}")
    if q.fmt.kind is FormatKind.BDR:
        from .bdr import dequantize_bdr
        return dequantize_bdr(q)
    vals = q.fmt.values[q.codes.astype(np.int64)]
    s = q.scale_per_element()
    out = np.ldexp(vals, s.astype(np.int64) - E8M0_BIAS)
    out = np.where(s == NAN_SCALE, np.nan, out)
    return out.astype(np.float32)


def requantize_tile(tile, fmt, *, scale_rounding="floor", rounding="rne",
                    sr_bits: int = SR_DEFAULT_BITS, seed: int = 0, tile_index: int = 0) -> MXArray:
    """Re-quantize one result tile (R x C float32) to one scale and R x C codes (SPEC.md 6).

    ``tile_index`` is the block index of stochastic rounding: a re-quantizer numbers the
    tiles it emits from 0 after reset (mod 2^32), so its n-th tile equals
    ``requantize_tile(t, ..., tile_index=n)``. Options as :func:`quantize`.
    """
    opts = _options(scale_rounding, rounding, sr_bits, seed)
    index = check_seed(tile_index, "tile_index")          # a 32-bit counter, like the seed
    t = as_float32(tile, "tile")
    if t.ndim == 1:
        t = t[None, :]
    if t.ndim != 2 or t.size == 0:
        raise ValueError(f"tile must be a non-empty 1D or 2D array, not shape {t.shape}")
    f = get_format(fmt, element_only=True)
    if not f.allows_tiles:
        raise ValueError(f"fmt {f.name} has no 2D tiles: its blocks are 1D, {f.fixed_block_size} elements "
                         f"along K with a microexponent per pair (SPEC.md 11); use quantize(x, {f.name!r})")
    return _quantize_blocks(t, f, t.shape, *opts, block_offset=index)
