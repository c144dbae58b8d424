"""IEEE-754 binary32 arithmetic: the accumulator adder and the block-sum rounder.

Both units are purely combinational and round to nearest, ties to even (RNE). Subnormal inputs
and results are kept (no flush to zero), overflow gives +/-Inf, and every NaN result is the
canonical quiet NaN ``0x7FC00000`` (see ``SPEC.md`` section 5). :func:`leading_zeros` is the
one leading-zero counter of the hardware (also used by :mod:`mxsf.hw.requant`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib.wiring import In, Out

from mxsf.golden.constants import (BF16_MAN_BITS, F32_BIAS, F32_BITS, F32_CANONICAL_NAN, F32_EXP_BITS,
                                   F32_EXP_SPECIAL, F32_MAN_BITS)
from mxsf.golden.params import check_int

from .base import MXComponent
from .layouts import Float32

__all__ = ["Float32", "Float32Adder", "IntToFloat32", "CANONICAL_NAN"]


#: The one NaN encoding the units produce (``mxsf.golden.constants.F32_CANONICAL_NAN``).
CANONICAL_NAN = F32_CANONICAL_NAN

# IntToFloat32 parameter limits.
_MAX_INT_WIDTH = 256
_MAX_ABS_EXP = 4096


def _signed_width(value):
    """Smallest width of a two's complement signal able to hold ``value``."""
    return (value if value >= 0 else ~value).bit_length() + 1


def leading_zeros(m, value, name="lz"):
    """Number of leading zeros of ``value`` (``len(value)`` when it is zero), as a log-depth tree.

    The value is padded at the LSB end with a single one (then zeros) to a power of two, so the
    tree never sees an all-zero word and needs no validity flags beyond each half's "is zero".
    Every node drives a signal in ``m``: its "is zero" flag is used three times, and a plain
    expression would be repeated in the netlist at every use (exponential in the depth).
    """
    width = 1
    while width < len(value) + 1:
        width *= 2
    padded = Cat(Const(0, width - len(value) - 1), Const(1, 1), value)

    def tree(bits):
        # Returns (all_zero, count); count is only meaningful when not all_zero.
        if len(bits) == 1:
            return ~bits[0], Const(0, 0)
        half = len(bits) // 2
        hi_zero, hi_count = tree(bits[half:])
        lo_zero, lo_count = tree(bits[:half])
        zero = Signal(name=f"{name}_zero")
        count = Signal(len(hi_count) + 1, name=f"{name}_count")
        m.d.comb += [zero.eq(hi_zero & lo_zero), count.eq(Cat(Mux(hi_zero, lo_count, hi_count), hi_zero))]
        return zero, count

    return tree(padded)[1]


class Float32Adder(MXComponent):
    """IEEE-754 adder of two binary32 operands, rounded once to binary32 or bfloat16 (RNE),
    purely combinational.

    One alignment shifter (with a sticky bit), one adder/subtractor, one leading-zero count and
    normalization shifter, then guard/round/sticky rounding; the operands are first swapped so
    that ``|x| >= |y|``, which keeps the difference non-negative. It is meant for the
    accumulator loop ``acc <= acc + d`` (SPEC.md 5, and 10 with a bfloat16 ``acc``: a bfloat16
    is the top half of a binary32, so it enters as ``Cat(Const(0, 16), acc)``).

    The sum before rounding is the exact sum rounded to odd at 2^-26 of ``x``'s significand
    (the sticky bit OR-ed into the aligned ``y`` makes ``y``, hence ``x +/- y``, round-to-odd);
    with at least ``man_width + 3`` bits it rounds once, correctly, to ``man_width`` fraction
    bits, so one datapath serves binary32 (23) and bfloat16 (7).

    Parameters
    ----------
    man_width : int (keyword-only)
        Fraction bits of the result: 23 (binary32, default) or 7 (bfloat16); the result
        keeps binary32's 8-bit exponent either way.

    Members
    -------
    a : In(32)
        First operand, binary32 encoding.
    b : In(32)
        Second operand, binary32 encoding.
    o : Out(9 + man_width)
        ``a + b`` rounded to nearest even to ``man_width`` fraction bits (binary32 or bfloat16
        encoding). Subnormal inputs and results are kept; overflow gives +/-Inf; an exact zero
        sum is +0 except ``(-0) + (-0) = -0``; ``Inf + (-Inf)`` and any NaN input give the
        canonical quiet NaN (``0x7FC00000``, bfloat16 ``0x7FC0``).

    Raises
    ------
    ValueError
        ``man_width`` not 23 or 7.

    Latency
    -------
    ``latency = 0``: ``o`` follows ``a`` and ``b`` in the same cycle. A new pair can be applied
    every cycle; there is no handshake and no backpressure.
    """

    MAN_WIDTHS = (F32_MAN_BITS, BF16_MAN_BITS)

    def __init__(self, *, man_width: int = F32_MAN_BITS):
        if isinstance(man_width, bool) or man_width not in self.MAN_WIDTHS:
            raise ValueError(f"man_width must be one of {', '.join(map(str, self.MAN_WIDTHS))}; "
                             f"not {man_width!r}")
        self._man_width = man_width
        super().__init__({"a": In(F32_BITS), "b": In(F32_BITS), "o": Out(1 + F32_EXP_BITS + man_width)},
                         params={} if man_width == F32_MAN_BITS else {"man_width": man_width})

    # Internal widths.
    _SIG_WIDTH   = F32_MAN_BITS + 1        # significand with the hidden bit
    _GRS_WIDTH   = 3                      # guard, round and sticky bits below the significand
    _ALIGN_WIDTH = _SIG_WIDTH + _GRS_WIDTH  # aligned operands
    _SUM_WIDTH   = _ALIGN_WIDTH + 1       # sum, with the carry of an effective addition

    man_width = property(lambda self: self._man_width, doc="fraction bits of the result")

    @property
    def latency(self):
        return 0

    @property
    def module_name(self):
        return "fp32_add" if self._man_width == F32_MAN_BITS else f"fp32_add_m{self._man_width}"

    def elaborate(self, platform):
        m = Module()
        drop = F32_MAN_BITS - self._man_width    # result fraction bits dropped below binary32's
        o_width = 1 + F32_EXP_BITS + self._man_width

        a = Float32(self.a)
        b = Float32(self.b)

        # Order the operands by magnitude: x is the larger one (ties keep a).
        swap = self.b[:F32_BITS - 1] > self.a[:F32_BITS - 1]   # |b| > |a|
        x = Signal(Float32)
        y = Signal(Float32)
        m.d.comb += [
            x.eq(Mux(swap, self.b, self.a)),
            y.eq(Mux(swap, self.a, self.b)),
        ]

        x_exp = Signal(F32_EXP_BITS)
        y_exp = Signal(F32_EXP_BITS)
        m.d.comb += [
            x_exp.eq(x.effective_exponent()),
            y_exp.eq(y.effective_exponent()),
        ]
        # Significands with room for guard/round/sticky; value = sig * 2^(x_exp - 127 - 26).
        x_sig = Cat(Const(0, self._GRS_WIDTH), x.significand())
        y_sig = Cat(Const(0, self._GRS_WIDTH), y.significand())

        # Alignment: shift y right by the exponent difference, OR-ing lost bits into the LSB.
        align = Signal(range(self._ALIGN_WIDTH + 1))
        exp_diff = x_exp - y_exp
        m.d.comb += align.eq(Mux(exp_diff > self._ALIGN_WIDTH, self._ALIGN_WIDTH, exp_diff))
        shifted = y_sig >> align
        align_sticky = Cat(y_sig[i] & (align > i)
                           for i in range(self._GRS_WIDTH, self._ALIGN_WIDTH)).any()
        y_aligned = Cat(shifted[0] | align_sticky, shifted[1:])

        # One adder: x + y, or x - y as x + ~y + 1 (never negative since |x| >= |y|).
        subtract = x.sign ^ y.sign
        total = Signal(self._SUM_WIDTH)
        y_term = Cat(y_aligned, Const(0, 1)) ^ subtract.replicate(self._SUM_WIDTH)
        m.d.comb += total.eq(x_sig + y_term + subtract)

        # Normalization: shift left by the leading zeros, but never below exponent field 1.
        # Afterwards bit 27 is the hidden bit (or 0 for a subnormal result) and bits 3..0 hold
        # guard, round and sticky.
        lzc = leading_zeros(m, total)
        norm_shift = Signal(range(self._SUM_WIDTH + 1))
        m.d.comb += norm_shift.eq(Mux(lzc > x_exp, x_exp, lzc))
        norm = Signal(self._SUM_WIDTH)
        m.d.comb += norm.eq(total << norm_shift)
        # Biased exponent before rounding: x_exp + 1 - norm_shift when the hidden bit is set,
        # and 0 for a subnormal result (then norm_shift == x_exp).
        exp_field = Signal(F32_EXP_BITS + 1)
        m.d.comb += exp_field.eq(x_exp - norm_shift + norm[-1])

        # Round to nearest even on {exponent, mantissa}: a carry out of the mantissa bumps the
        # exponent, from subnormal to normal and from the largest finite to Inf alike. The
        # guard sits ``drop`` bits higher for a narrower result (bfloat16's subnormal grid is
        # binary32's cut the same way, so subnormal results round in place too).
        g = self._GRS_WIDTH + drop
        lsb   = norm[g + 1]
        guard = norm[g]
        round_sticky = norm[:g].any()
        round_up = guard & (lsb | round_sticky)
        rounded = Signal(o_width)
        m.d.comb += rounded.eq(Cat(norm[g + 1:-1], exp_field) + round_up)

        with m.If(a.is_nan() | b.is_nan() | (a.is_inf() & b.is_inf() & (a.sign != b.sign))):
            m.d.comb += self.o.eq(CANONICAL_NAN >> drop)
        with m.Elif(x.exponent == F32_EXP_SPECIAL):
            m.d.comb += self.o.eq(x.as_value()[drop:])
        with m.Elif(total == 0):
            m.d.comb += self.o.eq(Cat(Const(0, o_width - 1), a.sign & b.sign))
        with m.Elif(exp_field >= F32_EXP_SPECIAL):
            m.d.comb += self.o.eq(Cat(Const(0, self._man_width), Const(F32_EXP_SPECIAL, F32_EXP_BITS), x.sign))
        with m.Else():
            m.d.comb += self.o.eq(Cat(rounded[:o_width - 1], x.sign))

        return m


class IntToFloat32(MXComponent):
    """Round ``s * 2^k`` to binary32, with ``s`` a signed integer: one RNE step, combinational.

    The block sum of a dot product (an exact integer) times its scale goes through here once,
    so subnormal results are rounded directly from the exact value (no double rounding).

    Parameters
    ----------
    int_width : int
        Width of the two's complement integer ``s``, in [2, 256].
    exp_min : int
        Smallest exponent ``k`` to support, in [-4096, 4096].
    exp_max : int
        Largest exponent ``k`` to support, in [``exp_min``, 4096].

    Members
    -------
    s : In(signed(int_width))
        The integer.
    k : In(signed(k_width))
        The power of two; ``k_width`` is the smallest signed width that holds ``exp_min`` and
        ``exp_max``. Every value of that shape is rounded exactly, not only the declared range.
    o : Out(32)
        Binary32 encoding of ``s * 2^k`` rounded to nearest even: +0 when ``s == 0``, +/-Inf on
        overflow, subnormals kept; a non-zero value that rounds to zero keeps its sign (-0 for
        ``s < 0``), as in IEEE-754.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range, or ``exp_max < exp_min``.

    Latency
    -------
    ``latency = 0``: ``o`` follows ``s`` and ``k`` in the same cycle; one conversion per cycle,
    no handshake and no backpressure.
    """

    def __init__(self, *, int_width, exp_min, exp_max):
        check_int("int_width", int_width, 2, _MAX_INT_WIDTH)
        check_int("exp_min", exp_min, -_MAX_ABS_EXP, _MAX_ABS_EXP)
        check_int("exp_max", exp_max, exp_min, _MAX_ABS_EXP)
        self._int_width = int_width
        self._exp_min = exp_min
        self._exp_max = exp_max
        self._k_width = max(_signed_width(exp_min), _signed_width(exp_max))
        super().__init__({
            "s": In(signed(int_width)),
            "k": In(signed(self._k_width)),
            "o": Out(F32_BITS),
        }, params={"int_width": int_width, "exp_min": exp_min, "exp_max": exp_max})

    @property
    def int_width(self):
        return self._int_width

    @property
    def exp_min(self):
        return self._exp_min

    @property
    def exp_max(self):
        return self._exp_max

    @property
    def k_width(self):
        return self._k_width

    @property
    def latency(self):
        return 0

    @property
    def module_name(self):
        def fmt(v):
            return f"m{-v}" if v < 0 else f"{v}"
        return f"int{self._int_width}_to_fp32_k{fmt(self._exp_min)}_{fmt(self._exp_max)}"

    def elaborate(self, platform):
        m = Module()

        # Internal widths. Bit i of |s| weighs 2^(i + k). "top" is the bit of |s| that lands on
        # the hidden-bit position: the leading one for a normal result, the bit weighing 2^-126
        # for a subnormal one. The 25-bit window below and at top holds the 24 kept bits and the
        # guard bit; every bit of |s| under the window is sticky.
        int_width = self._int_width
        window    = F32_MAN_BITS + 2                    # hidden bit, 23 fraction bits, guard bit
        pad       = window - 1                         # zeros under |s| so top - 24 may be < 0
        k_min     = -(1 << (self._k_width - 1))        # whole range of k's shape
        k_max     = (1 << (self._k_width - 1)) - 1
        e_min     = -1 + k_min + F32_BIAS             # biased exponent of the leading one
        e_max     = int_width - 1 + k_max + F32_BIAS
        top_sub_max = (1 - F32_BIAS) - k_min          # top of the smallest subnormal result
        top_limit = int_width + pad                    # any top >= this leaves only sticky bits

        magnitude = Signal(int_width)
        m.d.comb += magnitude.eq(abs(self.s))
        sign = self.s[-1]

        lzc = leading_zeros(m, magnitude)
        lead = int_width - 1 - lzc                     # position of the leading one
        exponent = Signal(range(e_min, e_max + 1))     # biased exponent before rounding
        m.d.comb += exponent.eq(lead + self.k + F32_BIAS)
        normal = exponent >= 1

        top = Signal(range(max(int_width, top_sub_max + 1)))
        with m.If(normal):
            m.d.comb += top.eq(lead)
        with m.Else():
            m.d.comb += top.eq((1 - F32_BIAS) - self.k)
        shift = Signal(range(top_limit + 1))
        m.d.comb += shift.eq(Mux(top > top_limit, top_limit, top))

        kept = Signal(window)
        m.d.comb += kept.eq(Cat(Const(0, pad), magnitude) >> shift)
        sticky = Cat(magnitude[i] & (shift > i + pad) for i in range(int_width)).any()

        lsb   = kept[1]
        guard = kept[0]
        round_up = guard & (lsb | sticky)
        exp_field = Mux(normal, exponent[:F32_EXP_BITS], 0)
        rounded = Signal(F32_BITS)
        m.d.comb += rounded.eq(Cat(kept[1:-1], exp_field) + round_up)

        with m.If(magnitude == 0):
            m.d.comb += self.o.eq(0)
        with m.Elif(exponent >= F32_EXP_SPECIAL):
            m.d.comb += self.o.eq(Cat(Const(0, F32_MAN_BITS), Const(F32_EXP_SPECIAL, F32_EXP_BITS), sign))
        with m.Else():
            m.d.comb += self.o.eq(Cat(rounded[:F32_BITS - 1], sign))

        return m
