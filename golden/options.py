"""The numerics options of SPEC.md sections 8, 9 and 10 and the stochastic-rounding generator.

* :class:`ScaleRounding` (``scale_rounding``): how a block's E8M0 exponent is chosen from
  its largest magnitude (``floor``, ``ceil``, ``even``; SPEC.md 8).
* :class:`Rounding` (``rounding``): how elements are rounded (``rne``, ``stochastic``;
  SPEC.md 9), with ``sr_bits`` random bits per element and a 32-bit ``seed``.
* :class:`Accumulator` (``acc``): the matmul accumulator (``fp32``, ``bf16``; SPEC.md 10).

Every entry point accepts the enum member or its string value; anything else raises
``ValueError`` naming the parameter, the value and the allowed values.

The random bits (``docs/stochastic_rounding.md`` is the normative description) come from
a counter-based hash, so they depend only on ``(seed, block index, element index)`` and
not on how many lanes a hardware re-quantizer has::

    mix(x)  = four rounds of  x ^= x >> a ; x = x + (x << b)   (mod 2^32)
              with (a, b) = (17, 5), (13, 9), (15, 11), (16, 7)
    key     = mix(mix(seed) + block * W)                         W = 0x9E3779B9
    r       = mix(key + element * W) >> (32 - sr_bits)

Pure NumPy.
"""

from __future__ import annotations

import enum

import numpy as np

from .constants import F32_MAN_BITS
from .formats import ElementFormat
from .params import check_choice, check_int

__all__ = [
    "ScaleRounding",
    "Rounding",
    "Accumulator",
    "scale_rounding_mode",
    "rounding_mode",
    "acc_mode",
    "check_sr_bits",
    "check_seed",
    "SR_BITS_MIN",
    "SR_BITS_MAX",
    "SR_DEFAULT_BITS",
    "SEED_MAX",
    "SR_WEYL",
    "SR_MIX_ROUNDS",
    "sr_mix",
    "sr_block_key",
    "sr_random_bits",
    "even_fraction_bits",
    "largest_fraction",
]


class ScaleRounding(str, enum.Enum):
    """How the shared exponent E is chosen from a block's largest magnitude (SPEC.md 8)."""

    FLOOR = "floor"   #: OCP v1.0: E = floor(log2(amax)) - emax_elem
    CEIL = "ceil"     #: smallest E with amax <= largest x 2^E (no clipping)
    EVEN = "even"     #: amax rounded half-up to the top binade's fraction bits, then floor


class Rounding(str, enum.Enum):
    """How an element is rounded to the format's grid (SPEC.md 3 and 9)."""

    RNE = "rne"                  #: round to nearest, ties to even
    STOCHASTIC = "stochastic"    #: u x floor((t + r) / 2^R), r an R-bit random integer


class Accumulator(str, enum.Enum):
    """The format the block results are accumulated in (SPEC.md 5 and 10)."""

    FP32 = "fp32"    #: IEEE binary32; the result is float32
    BF16 = "bf16"    #: bfloat16, one RNE rounding per step; the result is 16-bit bfloat16


def _mode(enum_cls, name: str, value):
    if isinstance(value, enum_cls):
        return value
    allowed = [m.value for m in enum_cls]
    key = value.strip().lower() if isinstance(value, str) else None
    if key not in allowed:
        check_choice(name, value, allowed)      # raises, showing the value as given
    return enum_cls(key)


def scale_rounding_mode(value, name: str = "scale_rounding") -> ScaleRounding:
    """``value`` as a :class:`ScaleRounding` (member or string; ValueError otherwise)."""
    return _mode(ScaleRounding, name, value)


def rounding_mode(value, name: str = "rounding") -> Rounding:
    """``value`` as a :class:`Rounding` (member or string; ValueError otherwise)."""
    return _mode(Rounding, name, value)


def acc_mode(value, name: str = "acc") -> Accumulator:
    """``value`` as an :class:`Accumulator` (member or string; ValueError otherwise)."""
    return _mode(Accumulator, name, value)


SR_BITS_MIN = 1
SR_BITS_MAX = 16
SR_DEFAULT_BITS = 8
SEED_MAX = (1 << 32) - 1


def _as_value_error(check, *args) -> int:
    try:
        return check(*args)
    except TypeError as e:
        raise ValueError(str(e)) from None


def check_sr_bits(value, name: str = "sr_bits") -> int:
    """``sr_bits``: an integer in [1, 16] (ValueError otherwise)."""
    return _as_value_error(check_int, name, value, SR_BITS_MIN, SR_BITS_MAX)


def check_seed(value, name: str = "seed") -> int:
    """``seed``: an integer in [0, 2^32 - 1] (ValueError otherwise)."""
    return _as_value_error(check_int, name, value, 0, SEED_MAX)


# ------------------------------------------------------------------------------------
# The stochastic-rounding generator (docs/stochastic_rounding.md)
# ------------------------------------------------------------------------------------

SR_WEYL = 0x9E37_79B9
"""The odd constant W that spreads block and element counters (2^32 / golden ratio)."""

SR_MIX_ROUNDS = ((17, 5), (13, 9), (15, 11), (16, 7))
"""``(a, b)`` of each round ``x ^= x >> a; x += x << b`` of :func:`sr_mix` (a bijection)."""

_U32 = np.uint32


def sr_mix(x, *, in_place: bool = False) -> np.ndarray:
    """The 32-bit mixing function: four xorshift-right / shift-add rounds (mod 2^32).

    ``in_place`` overwrites ``x`` (a uint32 array) instead of copying it.
    """
    x = x if in_place and isinstance(x, np.ndarray) and x.dtype == np.uint32 \
        else np.array(x, dtype=np.uint32, copy=True)
    tmp = np.empty_like(x)
    for a, b in SR_MIX_ROUNDS:
        np.right_shift(x, _U32(a), out=tmp)
        x ^= tmp
        np.left_shift(x, _U32(b), out=tmp)
        x += tmp
    return x


def _wrapping(fn):
    """Run ``fn`` with uint32 wrap-around allowed (NumPy warns on scalar overflow)."""
    def wrapped(*args, **kw):
        with np.errstate(over="ignore"):
            return fn(*args, **kw)
    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


@_wrapping
def sr_block_key(seed: int, block) -> np.ndarray:
    """Per-block key ``mix(mix(seed) + block x W)`` for block indices ``block`` (mod 2^32)."""
    s = sr_mix(np.uint32(seed))
    b = np.asarray(block).astype(np.uint64) & np.uint64(0xFFFF_FFFF)
    return sr_mix(s + b.astype(np.uint32) * _U32(SR_WEYL))


@_wrapping
def sr_random_bits(seed: int, block, element, sr_bits: int) -> np.ndarray:
    """The ``sr_bits``-bit random integer ``r`` of element ``element`` of block ``block``.

    ``block`` and ``element`` broadcast together (indices are taken mod 2^32). Returns
    uint32 values in ``[0, 2^sr_bits)``.
    """
    key = sr_block_key(seed, block)
    e = (np.asarray(element).astype(np.uint64) & np.uint64(0xFFFF_FFFF)).astype(np.uint32)
    return sr_mix(key + e * _U32(SR_WEYL)) >> _U32(32 - sr_bits)


# ------------------------------------------------------------------------------------
# Format numbers the scale rules need
# ------------------------------------------------------------------------------------

def even_fraction_bits(f: ElementFormat) -> int:
    """``m`` of the ``even`` rule: the fraction width of the format's top binade (SPEC.md 8).

    Derived from the top encoder segment: the quantum there is ``2^(max(emax, emin) - man_bits)``.
    """
    seg = f.segments[-1]
    return seg.man_bits - max(0, seg.emin - f.emax_elem)


def largest_fraction(f: ElementFormat) -> int:
    """The fraction of ``largest / 2^emax_elem`` in [1, 2) as a 23-bit integer (float32 field)."""
    q = f.values[f.max_code] / 2.0 ** f.emax_elem - 1.0     # exact: <= 7 fraction bits
    return int(q * (1 << F32_MAN_BITS))
