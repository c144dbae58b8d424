"""Element formats in hardware: the element decoder and the widths it implies.

Everything is derived from the golden format table (:mod:`mxsf.golden.formats`): the
code's kind (:class:`~mxsf.golden.formats.FormatKind`), field widths and special codes
(:class:`~mxsf.golden.formats.Specials`); nothing here branches on a format's name, so a
new plain FP or INT row of the table needs no change here. A code is decoded to a sign, an
unsigned integer significand ``sig`` and a left shift ``shift`` such that the element's
magnitude is ``(sig << shift) x 2^lsb_exp`` (``lsb_exp`` is the exponent of the format's
smallest value). Products of two elements are then ``(sig_a * sig_b) << (shift_a + shift_b)``
in units of ``2^(lsb_a + lsb_b)``, which is how the MX PE forms exact block sums.

Shared-microexponent (BDR) formats (SPEC.md 11) have one more level: the decoder also
takes the element's pair microexponent ``tau`` and returns ``sig = m``, ``shift = 1 - tau``
in units of ``2^unit_exp = 2^(lsb_exp - 1)`` (one bit below the code table's LSB). The
helpers :func:`unit_exp` and :func:`max_magnitude` give every format's units this way
(``unit_exp == lsb_exp`` for the single-scale formats).
"""

from __future__ import annotations

from functools import lru_cache

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from mxsf.golden.formats import ElementFormat, FormatKind, Specials, get_format

from .base import MXComponent
from .layouts import element_layout

__all__ = [
    "ElementDecoder",
    "element_layout",
    "decoded_layout",
    "sig_width",
    "shift_max",
    "product_width",
    "unit_exp",
    "max_magnitude",
]

# MXSF codec (SPEC.md 1): an E2M5 code whose exponent-0 codes re-read their five
# mantissa bits as an E3M2 float.
_MXSF_E3M2_MAN = 2                  # E3M2 mantissa bits (the low bits of the E2M5 mantissa)
_MXSF_E3M2_EXP = 3                  # E3M2 exponent bits (above them)
_MXSF_WIDE_SHIFT = 3                # E2M5 mode: LSB 2^(e-6) over the format's LSB 2^-9, shift e + 3


@lru_cache(maxsize=None)
def _sig_shift_table(name: str) -> tuple[tuple[int, int], ...]:
    """(sig, shift) of every magnitude code, as the decoder computes it (for widths)."""
    f = get_format(name)
    return tuple(_decode_int(f, code) for code in range(f.sign_mask))


def _decode_int(f: ElementFormat, code: int) -> tuple[int, int]:
    """Reference (sig, shift) of a magnitude code, mirroring the hardware decoder."""
    if f.kind is FormatKind.INT:
        return code, 0
    if f.kind is FormatKind.BDR:            # with microexponent 0: m << 1 in 2^(lsb_exp - 1) units
        return code & ((1 << f.man_bits) - 1), 1
    e, m = code >> f.man_bits, code & ((1 << f.man_bits) - 1)
    if f.kind is FormatKind.MXSF:
        if e:                           # E2M5 mode: lsb 2^-9, 2^(e-1) (1 + m/32)
            return (1 << f.man_bits) | m, e + _MXSF_WIDE_SHIFT
        E, M = m >> _MXSF_E3M2_MAN, m & ((1 << _MXSF_E3M2_MAN) - 1)
        return ((1 << _MXSF_E3M2_MAN) | M, E - 1) if E else (M, 0)
    return ((1 << f.man_bits) | m, e - 1) if e else (m, 0)


def sig_width(fmt) -> int:
    """Bits of the decoded significand."""
    f = get_format(fmt, element_only=True)
    if f.kind is FormatKind.INT:
        return f.bits               # |most negative code| = 2^(bits-1)
    return max(s for s, _ in _sig_shift_table(f.name)).bit_length()


def shift_max(fmt) -> int:
    """Largest decoded shift over the finite codes."""
    f = get_format(fmt, element_only=True)
    return max(sh for c, (_, sh) in enumerate(_sig_shift_table(f.name))
               if not (f.is_nan[c] or f.is_inf[c]))


def unit_exp(fmt) -> int:
    """Exponent of the decoder's magnitude unit: ``lsb_exp`` minus the microexponent width."""
    f = get_format(fmt, element_only=True)
    return f.lsb_exp - f.microexp_bits


def max_magnitude(fmt) -> int:
    """Largest decoded magnitude ``sig << shift`` of a finite element, in units of 2^unit_exp."""
    f = get_format(fmt, element_only=True)
    return f.max_int << f.microexp_bits


def product_width(fmt) -> int:
    """Bits of the largest |product| of two finite elements, in units of 2^(2 unit_exp)."""
    return (max_magnitude(fmt) ** 2).bit_length()


def decoded_layout(fmt) -> data.StructLayout:
    """Decoded element: magnitude ``sig << shift`` (in 2^lsb_exp units), sign, class flags."""
    return data.StructLayout({
        "sign": 1,
        "sig": sig_width(fmt),
        "shift": unsigned(shift_max(fmt).bit_length() or 1),
        "zero": 1,
        "inf": 1,
        "nan": 1,
    })


class ElementDecoder(MXComponent):
    """Combinational decoder of one element code (any MX element format).

    Parameters
    ----------
    fmt : str
        Element format name or OCP alias (not bf16).

    Members
    -------
    code : In(bits)
        The element code (``bits`` = the format's code width; its fields are
        :func:`element_layout`).
    micro : In(1), BDR formats only
        The microexponent ``tau`` of the element's pair (SPEC.md 11).
    o : Out(decoded_layout(fmt))
        ``sign``; ``sig`` and ``shift`` with magnitude ``sig << shift`` in units of
        ``2^unit_exp(fmt)`` (MXSF: E2M5 mode when the exponent field is non-zero, else the
        five low bits read as E3M2; INT: the two's complement magnitude; BDR: ``m`` shifted
        by ``1 - tau``); ``zero``;
        ``inf`` and ``nan`` for the non-finite codes (E4M3's S.1111.111, E5M2's
        all-ones exponent; ``sig`` is 0 then).

    Raises
    ------
    ValueError
        Unknown format, or bf16.

    Latency
    -------
    ``latency == 0`` (combinational).
    """

    def __init__(self, *, fmt):
        f = get_format(fmt, element_only=True, param="fmt")
        self._fmt = f
        ports = {"code": In(f.bits), "o": Out(decoded_layout(f))}
        if f.microexp_group:
            ports["micro"] = In(f.microexp_bits)
        super().__init__(ports, params={"fmt": f.name})

    @property
    def fmt(self) -> ElementFormat:
        return self._fmt

    @property
    def latency(self) -> int:
        return 0

    @property
    def module_name(self) -> str:
        return f"dec_{self._fmt.name}"

    def elaborate(self, platform):
        m = Module()
        f = self._fmt
        code = data.View(element_layout(f), self.code)
        o = self.o
        nan = Signal()
        inf = Signal()

        if f.kind is FormatKind.INT:
            neg = code.sign
            m.d.comb += [
                o.sign.eq(neg),
                o.sig.eq(Mux(neg, -self.code.as_signed(), self.code)),
                o.shift.eq(0),
            ]
        elif f.kind is FormatKind.BDR:              # SPEC.md 11: m x 2^(1 - tau) x 2^(E - p)
            m.d.comb += [o.sign.eq(code.sign), o.sig.eq(code.mant), o.shift.eq(~self.micro)]
        elif f.kind is FormatKind.MXSF:
            e, mant = code.exp, code.mant
            M = mant[:_MXSF_E3M2_MAN]
            E = mant[_MXSF_E3M2_MAN:_MXSF_E3M2_MAN + _MXSF_E3M2_EXP]
            with m.If(e != 0):                      # FP8 E2M5 mode: 2^(e-1) (1 + m/32)
                m.d.comb += [o.sig.eq(Cat(mant, 1)), o.shift.eq(e + _MXSF_WIDE_SHIFT)]
            with m.Elif(E != 0):                    # FP5 E3M2 mode: 2^(E-8) (1 + M/4)
                m.d.comb += [o.sig.eq(Cat(M, 1)), o.shift.eq(E - 1)]
            with m.Else():                          # E3M2 subnormals: 2^-7 M/4
                m.d.comb += [o.sig.eq(M), o.shift.eq(0)]
            m.d.comb += o.sign.eq(code.sign)
        else:
            e, mant = code.exp, code.mant
            emax_field = (1 << f.exp_bits) - 1
            if f.specials is Specials.NAN_MAX_CODE:
                m.d.comb += nan.eq((e == emax_field) & (mant == (1 << f.man_bits) - 1))
            elif f.specials is Specials.IEEE:
                m.d.comb += [
                    nan.eq((e == emax_field) & (mant != 0)),
                    inf.eq((e == emax_field) & (mant == 0)),
                ]
            with m.If(nan | inf):
                m.d.comb += [o.sig.eq(0), o.shift.eq(0)]
            with m.Elif(e != 0):
                m.d.comb += [o.sig.eq(Cat(mant, 1)), o.shift.eq(e - 1)]
            with m.Else():
                m.d.comb += [o.sig.eq(mant), o.shift.eq(0)]
            m.d.comb += o.sign.eq(code.sign)

        m.d.comb += [
            o.nan.eq(nan),
            o.inf.eq(inf),
            o.zero.eq((o.sig == 0) & ~nan & ~inf),
        ]
        return m
