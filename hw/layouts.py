"""The layouts that hardware ports carry: binary32, bfloat16, the E8M0 scale, element codes.

Every field width comes from :mod:`mxsf.golden.constants` (binary32, bfloat16, E8M0) or
from the golden format table (element codes), so the hardware and the golden model share
one set of numbers. Fields are listed LSB first; the bit positions are those of the
standard encodings (a ``Float32`` is the IEEE-754 word, an ``E8M0`` the scale byte).

The encoding structs (:class:`Encoding`) accept their raw bit pattern as a constant (``Float32.const(0x3F800000)``,
``E8M0.const(127)``, e.g. in ``ctx.set``), as well as a mapping of fields.
"""


from functools import lru_cache

from amaranth.hdl import Cat, Mux
from amaranth.lib import data

from mxsf.golden.constants import (BF16_MAN_BITS, E8M0_BIAS, E8M0_BITS, E8M0_NAN, F32_EXP_BITS,
                                   F32_EXP_SPECIAL, F32_MAN_BITS)
from mxsf.golden.formats import FormatKind, get_format

__all__ = ["Encoding", "Float32", "BFloat16", "E8M0", "element_layout"]


class Encoding(data.Struct):
    """Base of the encoding structs (:class:`Float32`, :class:`BFloat16`, :class:`E8M0`): one
    encoded number whose fields are views of its bits. A constant may also be given as the
    raw bit pattern; a bit-level codec may treat an ``Encoding`` as one integer leaf."""

    @classmethod
    def const(cls, init):
        if isinstance(init, int) and not isinstance(init, bool):
            return cls.from_bits(init)
        return type(cls).const(cls, init)


class _IEEEFields:
    """Predicates shared by the IEEE-like encodings (``mantissa``, ``exponent``, ``sign``)."""

    def is_zero(self):
        return (self.exponent == 0) & (self.mantissa == 0)

    def is_inf(self):
        return (self.exponent == F32_EXP_SPECIAL) & (self.mantissa == 0)

    def is_nan(self):
        return (self.exponent == F32_EXP_SPECIAL) & (self.mantissa != 0)

    def significand(self):
        """The fraction with the hidden bit (0 for zeros and subnormals)."""
        return Cat(self.mantissa, self.exponent != 0)

    def effective_exponent(self):
        """Biased exponent of the significand's weight: subnormals share exponent 1 with the
        smallest normals."""
        return Mux(self.exponent == 0, 1, self.exponent)


class Float32(_IEEEFields, Encoding):
    """IEEE-754 binary32: 23-bit ``mantissa``, 8-bit biased ``exponent``, ``sign`` (32 bits)."""

    mantissa: F32_MAN_BITS
    exponent: F32_EXP_BITS
    sign:     1


class BFloat16(_IEEEFields, Encoding):
    """bfloat16 (the top half of a binary32): 7-bit ``mantissa``, 8-bit ``exponent``, ``sign``."""

    mantissa: BF16_MAN_BITS
    exponent: F32_EXP_BITS
    sign:     1


class E8M0(Encoding):
    """The E8M0 shared scale (SPEC.md 2): one byte ``biased``, value ``2^(biased - 127)``,
    ``0xFF`` is NaN."""

    biased: E8M0_BITS

    def is_nan(self):
        return self.biased == E8M0_NAN

    def exponent(self):
        """The unbiased exponent ``biased - 127`` (signed; meaningless for NaN)."""
        return self.biased - E8M0_BIAS


def element_layout(fmt) -> type[Encoding]:
    """The element code of ``fmt`` as an :class:`Encoding` struct, fields LSB first: ``mant``,
    ``exp``, ``sign`` (an INT format: ``low``, the bits below the sign, and ``sign``).

    One class per format (``Element_fp8_e4m3``, ...), so equal formats give equal layouts."""
    return _element_struct(get_format(fmt))


@lru_cache(maxsize=None)
def _element_struct(f) -> type[Encoding]:
    if f.kind is FormatKind.INT:
        fields = {"low": f.bits - 1, "sign": 1}
    else:
        fields = {"mant": f.man_bits, "exp": f.exp_bits, "sign": 1}
    doc = f"Element code of {f.name} ({f.bits} bits), fields LSB first: {', '.join(fields)}."
    return type(f"Element_{f.name}", (Encoding,), {"__annotations__": fields, "__doc__": doc,
                                                     "__module__": __name__})
