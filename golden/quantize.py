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
from .params import MAX_QUANT_BLOCK, check_int

__all__ = [
    "MXArray",
    "MaxExponent",
    "quantize",
    "quantize_tiles",
    "dequantize",
    "encode_exact",
    "encode_scaled",
    "block_max_exponent",
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


def _quantize_blocks(x32: np.ndarray, f: ElementFormat, block_shape: tuple) -> MXArray:
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
    mx = block_max_exponent(xb, axis=red)
    scale = scale_from_max_exponent(mx.max_exp, mx.any_nan_inf, f)
    E = scale.astype(np.int32) - E8M0_BIAS
    # 2^-E as float32: exact for E in [-127, 127] (2^-127 is a float32 subnormal).
    inv = np.ldexp(np.float32(1), -E).astype(np.float32)
    bshape = tuple(v for nb in nblk for v in (nb, 1))
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        y = xb * inv.reshape(bshape)
    codes = encode_scaled(y, f)                                    # NaN/Inf y give code 0
    codes = np.where(mx.any_nan_inf.reshape(bshape), 0, codes).astype(codes.dtype)
    codes = codes.reshape(xp.shape)[tuple(slice(0, n) for n in shape)]
    return MXArray(f, np.ascontiguousarray(codes), scale, tuple(block_shape))


def quantize(x, fmt, block_size: int | None = None, axis: int = -1) -> MXArray:
    """Quantize ``x`` to MX with 1D blocks of ``block_size`` along ``axis`` (SPEC.md 3, 4).

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

    Raises
    ------
    ValueError
        Unknown format, bad block size or axis, non-float input.
    """
    f = get_format(fmt, element_only=True)
    bs = check_block_size(f.default_block_size if block_size is None else block_size)
    if f.fixed_block_size is not None:
        from .bdr import check_bdr_block_size
        check_bdr_block_size(f, bs)
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
    return _quantize_blocks(x32, f, tuple(block_shape))


def quantize_tiles(x, fmt, tile=(32, 32)) -> MXArray:
    """Quantize a matrix in 2D tiles that each share one scale (MX-SAFE tile-based blocks).

    ``tile`` is ``(rows, cols)``; a 1D block of n along the last axis is ``(1, n)``.
    The result's ``.T`` serves the transposed matrix from the same codes and scales.

    Raises
    ------
    ValueError
        Unknown format, ``tile`` not two positive integers, ``x`` not 2D, non-float input.
    """
    f = get_format(fmt, element_only=True)
    if not f.allows_tiles:
        raise ValueError(f"fmt {f.name} has no 2D tiles: its blocks are 1D, {f.fixed_block_size} elements "
                         f"along K with a microexponent per pair (SPEC.md 11); use quantize(x, {f.name!r})")
    if not isinstance(tile, (tuple, list)) or len(tile) != 2:
        raise ValueError(f"tile must be a pair (rows, cols) of integers in [1, 2^20], not {tile!r}")
    tr = check_block_size(tile[0], "tile rows")
    tc = check_block_size(tile[1], "tile cols")
    x32 = as_float32(x)
    if x32.ndim != 2:
        raise ValueError(f"x must be a 2D matrix for tiles, not shape {x32.shape}")
    return _quantize_blocks(x32, f, (tr, tc))


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


def requantize_tile(tile, fmt) -> MXArray:
    """Re-quantize one result tile (R x C float32) to one scale and R x C codes (SPEC.md 6)."""
    t = as_float32(tile, "tile")
    if t.ndim == 1:
        t = t[None, :]
    if t.ndim != 2 or t.size == 0:
        raise ValueError(f"tile must be a non-empty 1D or 2D array, not shape {t.shape}")
    return quantize_tiles(t, fmt, tile=t.shape)
