"""Element format registry (SPEC.md section 1).

One frozen :class:`ElementFormat` per format, built from a single table of
(kind, bits, exponent bits, mantissa bits, bias). Everything else -- the value of
every code, the largest and smallest values, ``emax_elem``, the integer
significand of every code used by the exact dot product -- is derived from it.

Every element format is described to the encoder (:mod:`mxsf.golden.quantize`)
as one or two *segments* of a floating-point staircase: a segment covers the
unbiased exponents ``ky >= ky_lo`` (up to the next segment) and has ``man_bits``
mantissa bits and its smallest normal exponent ``emin``. Plain FP formats are one segment; MXSF is two (E3M2 below 1,
E2M5 from 1 up); INT8 is one all-subnormal segment (a fixed-point grid of 2^-6).

The shared-microexponent formats (``FormatKind.BDR``: ``mx9``, ``mx6``, ``mx4``, SPEC.md
section 11) are not a staircase: an element's step depends on its pair's microexponent.
Their codec is :mod:`mxsf.golden.bdr`; here their code table reads a code with
microexponent 0 (``value = (-1)^s x m x 2^-(p-1)`` relative to the block's 2^E).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .constants import BDR_BLOCK_SIZE, BDR_MICROEXP_BITS, BDR_PAIR_SIZE, DEFAULT_BLOCK_SIZE, E8M0_BITS

__all__ = [
    "FormatKind",
    "Specials",
    "ElementFormat",
    "Segment",
    "FORMATS",
    "ALIASES",
    "ELEMENT_FORMATS",
    "get_format",
    "format_names",
    "decode",
]


class FormatKind(str, enum.Enum):
    """How a code's bits are read: the codec of the format.

    ``FP`` and ``INT`` need nothing but their table row; a new kind (a format that is
    neither plain FP nor INT) brings its codec: a value function here, its encoder
    segments, and its branch of :class:`mxsf.hw.formats.ElementDecoder`.
    """

    FP = "fp"        #: sign | exponent | mantissa, IEEE-like subnormals
    INT = "int"      #: two's complement fixed point, value = code x 2^-(bits-2)
    MXSF = "mxsf"    #: MX-SAFE: E2M5, whose exponent-0 codes re-read as an E3M2 float
    BDR = "bdr"      #: shared microexponents (SPEC.md 11): sign | p-bit magnitude, a pair's tau shifts it


class Specials(str, enum.Enum):
    """Which codes are not finite numbers."""

    NONE = "-"              #: every code is a number
    NAN_MAX_CODE = "NaN"    #: OCP E4M3: only S.1111.111 is NaN; no Inf
    IEEE = "NaN,Inf"        #: all-ones exponent: Inf when the mantissa is 0, else NaN


@dataclass(frozen=True)
class Segment:
    """One binade staircase of an element format, as the encoder sees it.

    For an input whose unbiased exponent is ``ky`` (``ky >= ky_lo`` of this segment),
    the quantum is ``2^(max(ky, emin) - man_bits)`` and the magnitude code is
    ``(max(ky, emin) - emin) * 2^man_bits + n`` where ``n`` is the
    rounded significand in quanta (``n`` may reach ``2^(man_bits+1)``, which carries
    into the next binade's code, as in IEEE).
    """

    ky_lo: int
    emin: int
    man_bits: int


@dataclass(frozen=True)
class ElementFormat:
    """Description of one element format (frozen).

    Attributes
    ----------
    name : str
        Canonical name (``fp8_e4m3``, ..., ``mxsf``, ``bf16``).
    kind : FormatKind
        How the code is read (the format's codec).
    bits : int
        Code width.
    exp_bits, man_bits : int
        Field widths (INT8: 0 and 7; MXSF: the E2M5 view, 2 and 5; BDR: 0 and the
        magnitude width p).
    bias : int
        Exponent bias (0 for INT8 and MXSF, whose values are given in SPEC.md).
    emax_elem : int
        Unbiased exponent of the largest value (SPEC.md section 1).
    specials : Specials
        Which codes are NaN / Inf.
    ocp_name : str or None
        The OCP MX name (``mxfp8_e4m3``, ...), accepted as an alias.
    is_element : bool
        An MX element format (False only for the bf16 baseline).
    """

    name: str
    kind: FormatKind
    bits: int
    exp_bits: int
    man_bits: int
    bias: int
    emax_elem: int
    specials: Specials
    ocp_name: str | None = None
    is_element: bool = True

    @property
    def has_inf(self) -> bool:
        """Whether some codes are +/-Inf."""
        return self.specials is Specials.IEEE

    @property
    def has_nan(self) -> bool:
        """Whether some codes are NaN."""
        return self.specials is not Specials.NONE

    # -- derived tables -------------------------------------------------------------

    @cached_property
    def values(self) -> np.ndarray:
        """float64 value of every code (index = code); NaN/Inf where the code is one."""
        return _value_table(self)

    @property
    def n_codes(self) -> int:
        return 1 << self.bits

    @property
    def sign_mask(self) -> int:
        return 1 << (self.bits - 1)

    @cached_property
    def max_code(self) -> int:
        """Magnitude code (sign bit clear) of the largest finite value."""
        mags = self.values[: self.sign_mask]
        finite = np.flatnonzero(np.isfinite(mags))
        return int(finite[np.argmax(mags[finite])])

    @property
    def max_value(self) -> float:
        """Largest finite value."""
        return float(self.values[self.max_code])

    @cached_property
    def min_value(self) -> float:
        """Smallest value > 0."""
        v = self.values[: self.sign_mask]
        return float(np.min(v[np.isfinite(v) & (v > 0)]))

    @property
    def lsb_exp(self) -> int:
        """Exponent of the smallest value > 0: every finite value is an integer times 2^lsb_exp."""
        return int(np.log2(self.min_value))

    @cached_property
    def int_values(self) -> np.ndarray:
        """int64 significand of every code: value = int_values[code] * 2^lsb_exp (0 for NaN/Inf)."""
        if not self.is_element:
            raise ValueError(f"{self.name} is not an MX element format: it has no integer significand table")
        v = self.values
        out = np.zeros(v.shape, dtype=np.int64)
        fin = np.isfinite(v)
        out[fin] = np.ldexp(v[fin], -self.lsb_exp).astype(np.int64)
        assert np.array_equal(np.ldexp(out[fin].astype(np.float64), self.lsb_exp), v[fin])
        return out

    @property
    def max_int(self) -> int:
        """Largest |int_values| (bounds the exact block sums)."""
        return int(np.max(np.abs(self.int_values)))

    @cached_property
    def is_nan(self) -> np.ndarray:
        """bool per code: the code is NaN."""
        return np.isnan(self.values)

    @cached_property
    def is_inf(self) -> np.ndarray:
        """bool per code: the code is +/-Inf."""
        return np.isinf(self.values)

    # -- block structure ----------------------------------------------------------------

    @property
    def fixed_block_size(self) -> int | None:
        """The block size the format prescribes (16 for BDR), or None when any size works."""
        return BDR_BLOCK_SIZE if self.kind is FormatKind.BDR else None

    @property
    def default_block_size(self) -> int:
        """The block size used when none is given: the fixed one, else 32 (OCP)."""
        return self.fixed_block_size or DEFAULT_BLOCK_SIZE

    @property
    def microexp_group(self) -> int | None:
        """Elements sharing one microexponent (2 for BDR), None for single-level formats."""
        return BDR_PAIR_SIZE if self.kind is FormatKind.BDR else None

    @property
    def microexp_bits(self) -> int:
        """Width of a microexponent (1 for BDR, 0 for single-level formats)."""
        return BDR_MICROEXP_BITS if self.kind is FormatKind.BDR else 0

    @property
    def allows_tiles(self) -> bool:
        """Whether 2D tiles are defined (SPEC.md 4); BDR blocks are 1D along K (SPEC.md 11)."""
        return self.kind is not FormatKind.BDR

    def bits_per_element(self, block_size: int | None = None) -> float:
        """Storage per element with the scale overhead: code + 8/block + microexponent bits/group.

        ``block_size`` defaults to :attr:`default_block_size` (MXFP8 at 32: 8.25; MX9: 9).
        """
        bs = self.default_block_size if block_size is None else block_size
        extra = self.microexp_bits / self.microexp_group if self.microexp_group else 0.0
        return self.bits + E8M0_BITS / bs + extra

    @property
    def has_neg_zero(self) -> bool:
        """Whether the sign bit with magnitude 0 is a distinct (negative) zero."""
        return self.kind is not FormatKind.INT

    @cached_property
    def segments(self) -> tuple[Segment, ...]:
        """The encoder's staircase description (see module docstring)."""
        if self.kind is FormatKind.FP:
            emin = 1 - self.bias
            return (Segment(ky_lo=-(1 << 30), emin=emin, man_bits=self.man_bits),)
        if self.kind is FormatKind.INT:
            # value = n * 2^-(bits-2) for n < 2^(bits-1): an all-subnormal grid (INT8: quantum 2^-6).
            return (Segment(ky_lo=-(1 << 30), emin=1, man_bits=self.man_bits),)
        if self.kind is FormatKind.MXSF:
            return (
                # E3M2 mode (exponent field 0): 2^(E-8) (1 + M/4), subnormals 2^-7 (M/4).
                Segment(ky_lo=-(1 << 30), emin=-7, man_bits=2),
                # E2M5 mode: 2^(e-1) (1 + m/32) for e = 1..3; ky = 0 with n = 32 is code 32 (= 1.0).
                Segment(ky_lo=0, emin=0, man_bits=5),
            )
        if self.kind is FormatKind.BDR:
            # At a given microexponent the magnitudes are a fixed-point grid: m x 2^(1-p) below 2
            # for the exponent E - tau (an all-subnormal segment, like INT). Element encoding at
            # ``E - tau`` is SPEC.md 11 step 3; E and tau themselves come from mxsf.golden.bdr.
            return (Segment(ky_lo=-(1 << 30), emin=1, man_bits=self.man_bits),)
        raise ValueError(f"format {self.name!r} has no element encoder")

    @property
    def field_text(self) -> tuple[str, str, str]:
        """(exponent bits, mantissa bits, bias) as shown in the format table."""
        if self.kind is FormatKind.FP:
            return str(self.exp_bits), str(self.man_bits), str(self.bias)
        if self.kind is FormatKind.MXSF:
            return "2|3", "5|2", "-"            # E2M5 mode | E3M2 mode
        if self.kind is FormatKind.BDR:
            return "-", str(self.man_bits), "-"  # the p-bit magnitude (the exponent is shared)
        return "-", "-", "-"

    def describe(self) -> dict:
        """Plain-dict summary (for the CLI table and JSON sidecars)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.update(kind=self.kind.value, specials=self.specials.value, has_inf=self.has_inf,
                 has_nan=self.has_nan, max_value=self.max_value, min_value=self.min_value,
                 lsb_exp=self.lsb_exp, fixed_block_size=self.fixed_block_size,
                 microexp_group=self.microexp_group, bits_per_element=self.bits_per_element())
        return d


def _fp_value(s, e, m, exp_bits, man_bits, bias):
    """Value of IEEE-like sign/exponent/mantissa fields (subnormal when e == 0)."""
    e = np.asarray(e, dtype=np.int64)
    m = np.asarray(m, dtype=np.float64)
    frac = m / (1 << man_bits)
    mag = np.where(e == 0, np.ldexp(frac, 1 - bias), np.ldexp(1.0 + frac, e - bias))
    return np.where(s != 0, -mag, mag)


def _value_table(f: ElementFormat) -> np.ndarray:
    codes = np.arange(1 << f.bits, dtype=np.int64)
    s = (codes >> (f.bits - 1)) & 1
    if f.kind is FormatKind.INT:
        signed = np.where(s != 0, codes - (1 << f.bits), codes)
        return np.ldexp(signed.astype(np.float64), 1 - f.man_bits)
    e = (codes >> f.man_bits) & ((1 << f.exp_bits) - 1)
    m = codes & ((1 << f.man_bits) - 1)
    if f.kind is FormatKind.MXSF:
        wide = np.ldexp(1.0 + m / 32.0, e - 1)  # E2M5 mode, e != 0
        E = (m >> 2) & 7
        M = m & 3
        narrow = np.where(E == 0, np.ldexp(M / 4.0, -7), np.ldexp(1.0 + M / 4.0, E - 8))
        mag = np.where(e != 0, wide, narrow)
        return np.where(s != 0, -mag, mag)
    if f.kind is FormatKind.BDR:
        # SPEC.md 11 with tau = 0, relative to 2^E: m x 2^-(p-1), m the p low bits
        mag = np.ldexp((codes & ((1 << f.man_bits) - 1)).astype(np.float64), 1 - f.man_bits)
        return np.where(s != 0, -mag, mag)
    v = _fp_value(s, e, m, f.exp_bits, f.man_bits, f.bias)
    emax_field = (1 << f.exp_bits) - 1
    if f.specials is Specials.NAN_MAX_CODE:  # OCP E4M3: S.1111.111 is NaN, no Inf
        v = np.where((e == emax_field) & (m == (1 << f.man_bits) - 1), np.nan, v)
    elif f.specials is Specials.IEEE:  # IEEE-like (E5M2, BF16): all-ones exponent is Inf/NaN
        special = np.where(m == 0, np.where(s != 0, -np.inf, np.inf), np.nan)
        v = np.where(e == emax_field, special, v)
    return v


_FP, _INT, _MXSF, _BDR = FormatKind.FP, FormatKind.INT, FormatKind.MXSF, FormatKind.BDR
_NO, _E4M3_NAN, _IEEE = Specials.NONE, Specials.NAN_MAX_CODE, Specials.IEEE

# The format table (SPEC.md sections 1 and 11). Adding a plain FP or INT element format is one
# row; a new kind also brings its codec. BDR rows: bits = 1 + p, man_bits = p (the magnitude),
# emax_elem = 0 (E = floor(log2 max|V|), SPEC.md 11); block 16 and pairs come with the kind.
# name:        (kind,  bits, exp_bits, man_bits, bias, emax_elem, specials,   OCP alias)
_TABLE = {
    "fp8_e4m3": (_FP,   8, 4, 3, 7, 8, _E4M3_NAN, "mxfp8_e4m3"),
    "fp8_e5m2": (_FP,   8, 5, 2, 15, 15, _IEEE, "mxfp8_e5m2"),
    "fp6_e3m2": (_FP,   6, 3, 2, 3, 4, _NO, "mxfp6_e3m2"),
    "fp6_e2m3": (_FP,   6, 2, 3, 1, 2, _NO, "mxfp6_e2m3"),
    "fp4_e2m1": (_FP,   4, 2, 1, 1, 2, _NO, "mxfp4_e2m1"),
    "int8":     (_INT,  8, 0, 7, 0, 0, _NO, "mxint8"),
    "fp8_e2m5": (_FP,   8, 2, 5, 1, 2, _NO, None),
    "mxsf":     (_MXSF, 8, 2, 5, 0, 2, _NO, None),
    "mx9":      (_BDR,  8, 0, 7, 0, 0, _NO, None),
    "mx6":      (_BDR,  5, 0, 4, 0, 0, _NO, None),
    "mx4":      (_BDR,  3, 0, 2, 0, 0, _NO, None),
}
_BASELINES = {
    "bf16":     (_FP,  16, 8, 7, 127, 127, _IEEE, None),
}

FORMATS: dict[str, ElementFormat] = {
    **{name: ElementFormat(name, *row[:-1], ocp_name=row[-1]) for name, row in _TABLE.items()},
    **{name: ElementFormat(name, *row[:-1], ocp_name=row[-1], is_element=False)
       for name, row in _BASELINES.items()},
}
"""Canonical name -> format, in SPEC.md order."""

ALIASES: dict[str, str] = {f.ocp_name: n for n, f in FORMATS.items() if f.ocp_name}
"""OCP names accepted wherever a format is named."""

ELEMENT_FORMATS: tuple[str, ...] = tuple(n for n, f in FORMATS.items() if f.is_element)
"""The MX element formats (bf16 is only the baseline)."""


def format_names(*, include_bf16: bool = True, include_aliases: bool = False) -> list[str]:
    names = list(FORMATS if include_bf16 else ELEMENT_FORMATS)
    if include_aliases:
        names += list(ALIASES)
    return names


def get_format(fmt, *, element_only: bool = False, param: str = "fmt") -> ElementFormat:
    """Return the :class:`ElementFormat` for a name, an OCP alias or a format.

    Raises
    ------
    ValueError
        Unknown name (the message lists the allowed names), or ``bf16`` when
        ``element_only`` (bf16 is not an MX element format).
    """
    if isinstance(fmt, ElementFormat):
        f = fmt
    elif isinstance(fmt, str):
        key = fmt.strip().lower()
        key = ALIASES.get(key, key)
        if key not in FORMATS:
            allowed = ", ".join(format_names(include_bf16=not element_only, include_aliases=True))
            raise ValueError(f"{param} must be one of {allowed}; not {fmt!r}")
        f = FORMATS[key]
    else:
        raise ValueError(f"{param} must be a format name (str), not {fmt!r}")
    if element_only and not f.is_element:
        allowed = ", ".join(format_names(include_bf16=False, include_aliases=True))
        raise ValueError(f"{param} must be an MX element format ({allowed}); not {f.name!r}")
    return f


def decode(codes, fmt) -> np.ndarray:
    """float64 value of each element code (NaN/Inf for special codes)."""
    f = get_format(fmt)
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() >= f.n_codes):
        bad = codes[(codes < 0) | (codes >= f.n_codes)].ravel()[0]
        raise ValueError(f"codes must be integers in [0, {f.n_codes - 1}] for {f.name}, not {bad!r}")
    return f.values[codes.astype(np.int64)]
