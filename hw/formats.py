"""Element formats in hardware: code layouts and the element decoder.

Everything is derived from the golden format table (:mod:`mxsf.golden.formats`):
a code is decoded to a sign, an unsigned integer significand ``sig`` and a left
shift ``shift`` such that the element's magnitude is ``(sig << shift) x 2^lsb_exp``
(``lsb_exp`` is the exponent of the format's smallest value). Products of two
elements are then ``(sig_a * sig_b) << (shift_a + shift_b)`` in units of
``2^(lsb_a + lsb_b)``, which is how the MX PE forms exact block sums.

Shared-microexponent (BDR) formats (SPEC.md 11) have one more level: the decoder also
takes the element's pair microexponent ``tau`` and returns ``sig = m``, ``shift = 1 - tau``
in units of ``2^unit_exp = 2^(lsb_exp - 1)`` (one bit below the code table's LSB). The
helpers :func:`unit_exp` and :func:`max_magnitude` give every format's units this way
(``unit_exp == lsb_exp`` for the single-scale formats).
"""

from __future__ import annotations

from functools import lru_cache

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from mxsf.golden.formats import ElementFormat, get_format

__all__ = [
    "ElementDecoder",
    "element_layout",
    "decoded_layout",
    "sig_width",
    "shift_max",
    "product_width",
    "unit_exp",
    "max_magnitude",
    "check_int",
]


def check_int(value, name: str, lo: int, hi: int) -> int:
    """Shared constructor check: ``value`` must be an int in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], not {value!r}")
    return value


@lru_cache(maxsize=None)
def _sig_shift_table(name: str) -> tuple[tuple[int, int], ...]:
    """(sig, shift) of every magnitude code, as the decoder computes it (for widths)."""
    f = get_format(name)
    out = []
    for code in range(f.sign_mask):
        out.append(_decode_int(f, code))
    return tuple(out)


def _decode_int(f: ElementFormat, code: int) -> tuple[int, int]:
    """Reference (sig, shift) of a magnitude code, mirroring the hardware decoder."""
    if f.kind == "int":
        return code, 0
    if f.kind == "bdr":                      # with microexponent 0: m << 1 in 2^(lsb_exp - 1) units
        return code & ((1 << f.man_bits) - 1), 1
    if f.kind == "mxsf":
        e, m = code >> 5, code & 31
        if e:
            return 32 + m, e + 3
        E, M = m >> 2, m & 3
        return (4 + M, E - 1) if E else (M, 0)
    e, m = code >> f.man_bits, code & ((1 << f.man_bits) - 1)
    return ((1 << f.man_bits) | m, e - 1) if e else (m, 0)


def sig_width(fmt) -> int:
    """Bits of the decoded significand."""
    f = get_format(fmt, element_only=True)
    if f.kind == "int":
        return 8  # |-128| = 128
    return max(s for s, _ in _sig_shift_table(f.name)).bit_length()


def shift_max(fmt) -> int:
    """Largest decoded shift over the finite codes."""
    f = get_format(fmt, element_only=True)
    fin = [sh for c, (_, sh) in enumerate(_sig_shift_table(f.name)) if not (f.is_nan[c] or f.is_inf[c])]
    return max(fin)


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


def element_layout(fmt) -> data.StructLayout:
    """The code's fields: sign, exponent, mantissa (INT8: sign and 7 low bits)."""
    f = get_format(fmt)
    if f.kind == "int":
        return data.StructLayout({"low": 7, "sign": 1})
    if f.kind == "bdr":
        return data.StructLayout({"mag": f.man_bits, "sign": 1})
    return data.StructLayout({"mant": f.man_bits, "exp": f.exp_bits, "sign": 1})


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


class ElementDecoder(wiring.Component):
    """Combinational decoder of one element code (any MX element format).

    Parameters
    ----------
    fmt : str
        Element format name or OCP alias (not bf16).

    Members
    -------
    code : In(bits)
        The element code.
    micro : In(1), BDR formats only
        The microexponent ``tau`` of the element's pair.
    o : Out(decoded_layout(fmt))
        ``sign``; ``sig`` and ``shift`` with magnitude ``sig << shift`` in units of
        ``2^unit_exp(fmt)`` (MXSF: E2M5 mode when the exponent field is non-zero, else the
        five low bits read as E3M2; INT8: the two's complement magnitude; BDR: ``m`` shifted
        by ``1 - tau``); ``zero``; ``inf`` and ``nan`` for the non-finite codes of E4M3/E5M2
        (``sig`` is 0 then).

    Latency
    -------
    0 (combinational).
    """

    def __init__(self, fmt):
        self._fmt = get_format(fmt, element_only=True, param="fmt")
        ports = {"code": In(self._fmt.bits), "o": Out(decoded_layout(self._fmt))}
        if self._fmt.microexp_group:
            ports["micro"] = In(self._fmt.microexp_bits)
        super().__init__(ports)

    @property
    def fmt(self) -> ElementFormat:
        return self._fmt

    latency = 0

    def elaborate(self, platform):
        m = Module()
        f = self._fmt
        code = data.View(element_layout(f), self.code)
        o = self.o
        nan = Signal()
        inf = Signal()

        if f.kind == "int":
            neg = code.sign
            m.d.comb += [
                o.sign.eq(neg),
                o.sig.eq(Mux(neg, -self.code.as_signed(), self.code)),
                o.shift.eq(0),
            ]
        elif f.kind == "bdr":                       # SPEC.md 11: m x 2^(1 - tau) x 2^(E - p)
            m.d.comb += [o.sign.eq(code.sign), o.sig.eq(code.mag), o.shift.eq(~self.micro)]
        elif f.kind == "mxsf":
            e, mant = code.exp, code.mant
            E, M = mant[2:5], mant[0:2]
            with m.If(e != 0):                      # FP8 E2M5 mode: 2^(e-1) (1 + m/32)
                m.d.comb += [o.sig.eq(Cat(mant, 1)), o.shift.eq(e + 3)]
            with m.Elif(E != 0):                    # FP5 E3M2 mode: 2^(E-8) (1 + M/4)
                m.d.comb += [o.sig.eq(Cat(M, 1)), o.shift.eq(E - 1)]
            with m.Else():                          # E3M2 subnormals: 2^-7 M/4
                m.d.comb += [o.sig.eq(M), o.shift.eq(0)]
            m.d.comb += o.sign.eq(code.sign)
        else:
            e, mant = code.exp, code.mant
            emax_field = (1 << f.exp_bits) - 1
            if f.name == "fp8_e4m3":
                m.d.comb += nan.eq((e == emax_field) & (mant == (1 << f.man_bits) - 1))
            elif f.has_inf:
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
