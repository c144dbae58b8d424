"""The BF16 baseline processing element: float32 product and float32 accumulation per element."""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from mxsf.golden.constants import (BF16_MAN_BITS, F32_BIAS, F32_BITS, F32_CANONICAL_NAN,
                                   F32_EXP_SPECIAL, F32_INF_BITS)
from mxsf.golden.params import check_int

from .base import MXComponent
from .fp32 import Float32Adder, IntToFloat32
from .layouts import BFloat16, Float32

__all__ = ["BF16ProcessingElement", "BF16Multiplier", "bf16_beat_layout", "BFloat16",
           "MAX_BF16_LANES"]

MAX_BF16_LANES = 64
"""Most element pairs per beat of the BF16 PE (its float32 adders are chained in one cycle)."""

# bfloat16 product: (sa * sb) x 2^(ea + eb - _PROD_K), sa and sb 8-bit significands.
_SIG_BITS = BF16_MAN_BITS + 1                   # significand with the hidden bit
_PROD_BITS = 2 * _SIG_BITS                      # exact significand product
_PROD_INT_WIDTH = _PROD_BITS + 2                # signed product, as the rounder takes it
_PROD_K = 2 * F32_BIAS + 2 * BF16_MAN_BITS      # bfloat16 shares binary32's exponent bias
_EXP_EFF_MIN, _EXP_EFF_MAX = 1, F32_EXP_SPECIAL - 1   # effective exponents of finite values


def bf16_beat_layout(lanes: int) -> data.StructLayout:
    """One input beat of the BF16 PE: ``lanes`` bfloat16 codes of A and of B, framing."""
    return data.StructLayout({
        "a": data.ArrayLayout(BFloat16, lanes),
        "b": data.ArrayLayout(BFloat16, lanes),
        "first": 1,
        "last": 1,
    })


class BF16Multiplier(MXComponent):
    """float32 product of two bfloat16 values, IEEE RNE (combinational).

    The 8 x 8-bit significand product is exact; it is rounded once to float32
    only when it leaves float32's range (subnormal results, overflow to Inf).
    NaN inputs and Inf x 0 give the canonical qNaN; Inf x non-zero gives Inf.

    Parameters
    ----------
    None.

    Members
    -------
    a, b : In(BFloat16)
        The operands.
    o : Out(32)
        binary32 bits of ``a * b`` (a :class:`~mxsf.hw.layouts.Float32` encoding).

    Raises
    ------
    Nothing: the unit has no parameters.

    Latency
    -------
    ``latency == 0`` (combinational).
    """

    a: In(BFloat16)
    b: In(BFloat16)
    o: Out(F32_BITS)

    def __init__(self):
        super().__init__(params={})

    @property
    def latency(self) -> int:
        return 0

    @property
    def module_name(self) -> str:
        return "bf16_mul"

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b

        # significand (hidden bit for normals) and effective exponent
        def unpack(x):
            return x.significand(), x.effective_exponent(), x.is_zero(), x.is_inf(), x.is_nan()

        sa, ea, za, ia, na = unpack(a)
        sb, eb, zb, ib, nb = unpack(b)
        neg = a.sign ^ b.sign

        # product = (sa * sb) x 2^(ea + eb - _PROD_K)
        rnd = IntToFloat32(int_width=_PROD_INT_WIDTH, exp_min=2 * _EXP_EFF_MIN - _PROD_K,
                           exp_max=2 * _EXP_EFF_MAX - _PROD_K)
        m.submodules.round = rnd
        prod = Signal(_PROD_BITS)
        m.d.comb += [
            prod.eq(sa * sb),
            rnd.s.eq(Mux(neg, -prod, prod)),
            rnd.k.eq(ea + eb - _PROD_K),
        ]
        with m.If(na | nb | (ia & zb) | (za & ib)):
            m.d.comb += self.o.eq(F32_CANONICAL_NAN)
        with m.Elif(ia | ib):
            m.d.comb += self.o.eq(Cat(Const(F32_INF_BITS, F32_BITS - 1), neg))
        with m.Elif(za | zb):
            m.d.comb += self.o.eq(Cat(Const(0, F32_BITS - 1), neg))   # IEEE: the sign of a zero product
        with m.Else():
            m.d.comb += self.o.eq(rnd.o)
        return m


class BF16ProcessingElement(MXComponent):
    """BF16 baseline PE (SPEC.md section 5): ``acc = f32(acc + f32(a) * f32(b))`` per element.

    Parameters
    ----------
    lanes : int
        Element pairs per beat, in [1, ``MAX_BF16_LANES`` = 64]. They are accumulated in lane order, so
        ``lanes`` float32 adders are chained in the accumulator loop.

    Members
    -------
    i : In(stream.Signature(bf16_beat_layout(lanes), always_ready=True))
        Beats of bfloat16 ``a``/``b`` codes with ``first``/``last`` marks, framed like
        the MX PE's (a dot product starts at ``first`` or after ``last``).
    o : Out(stream.Signature(Float32, always_ready=True))
        float32 result, valid one cycle, ``latency`` cycles after the ``last`` beat.

    Raises
    ------
    TypeError
        ``lanes`` is not an integer.
    ValueError
        ``lanes`` out of range.

    Latency
    -------
    ``latency == 2`` for every parameter: multiply | accumulate. One beat per cycle, no
    back-pressure.
    """

    def __init__(self, *, lanes=1):
        check_int("lanes", lanes, 1, MAX_BF16_LANES)
        self._lanes = lanes
        super().__init__({
            "i": In(stream.Signature(bf16_beat_layout(lanes), always_ready=True)),
            "o": Out(stream.Signature(Float32, always_ready=True)),
        }, params={"lanes": lanes})

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def latency(self) -> int:
        """Cycles from the cycle of a dot product's ``last`` beat to its result."""
        return 2

    @property
    def module_name(self) -> str:
        return f"bf16_pe_l{self._lanes}"

    def elaborate(self, platform):
        m = Module()
        beat = self.i.payload
        dot_fresh = Signal(init=1)
        with m.If(self.i.valid):
            m.d.sync += dot_fresh.eq(beat.last)

        # ---- stage 0: products ----------------------------------------------------------
        v1 = Signal()
        first1 = Signal()
        last1 = Signal()
        prods1 = [Signal(Float32, name=f"prod{n}_s1") for n in range(self._lanes)]
        m.d.sync += [v1.eq(self.i.valid), first1.eq(beat.first | dot_fresh), last1.eq(beat.last)]
        for n in range(self._lanes):
            mul = BF16Multiplier()
            m.submodules[f"mul{n}"] = mul
            m.d.comb += [mul.a.eq(beat.a[n]), mul.b.eq(beat.b[n])]
            m.d.sync += prods1[n].eq(mul.o)

        # ---- stage 1: accumulate in lane order ----------------------------------------------
        acc = Signal(Float32)
        run = Mux(first1, 0, acc)
        for n in range(self._lanes):
            add = Float32Adder()
            m.submodules[f"add{n}"] = add
            m.d.comb += [add.a.eq(run), add.b.eq(prods1[n])]
            run = add.o
        with m.If(v1):
            m.d.sync += acc.eq(run)
        m.d.sync += [self.o.valid.eq(v1 & last1), self.o.payload.eq(run)]
        return m
