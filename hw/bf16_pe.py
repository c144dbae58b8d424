"""The BF16 baseline processing element: float32 product and float32 accumulation per element."""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .formats import check_int
from .fp32 import CANONICAL_NAN, Float32Adder, IntToFloat32

__all__ = ["BF16ProcessingElement", "BF16Multiplier", "bf16_beat_layout", "BFloat16"]

_F32_INF = 0x7F800000


class BFloat16(data.Struct):
    """Fields of a bfloat16 code (LSB first)."""

    mantissa: 7
    exponent: 8
    sign: 1


def bf16_beat_layout(lanes: int) -> data.StructLayout:
    """One input beat of the BF16 PE: ``lanes`` bfloat16 codes of A and of B, framing."""
    return data.StructLayout({
        "a": data.ArrayLayout(BFloat16, lanes),
        "b": data.ArrayLayout(BFloat16, lanes),
        "first": 1,
        "last": 1,
    })


class BF16Multiplier(wiring.Component):
    """float32 product of two bfloat16 values, IEEE RNE (combinational).

    The 8 x 8-bit significand product is exact; it is rounded once to float32
    only when it leaves float32's range (subnormal results, overflow to Inf).
    NaN inputs and Inf x 0 give the canonical qNaN; Inf x non-zero gives Inf.

    Members
    -------
    a, b : In(BFloat16)
    o : Out(32)
        float32 bits of ``a * b``.

    Latency
    -------
    0 (combinational).
    """

    a: In(BFloat16)
    b: In(BFloat16)
    o: Out(32)

    latency = 0

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b

        # significand (8 bits, hidden bit for normals) and effective exponent
        def unpack(x):
            sig = Cat(x.mantissa, x.exponent != 0)
            eff = Mux(x.exponent == 0, 1, x.exponent)
            zero = (x.exponent == 0) & (x.mantissa == 0)
            inf = (x.exponent == 0xFF) & (x.mantissa == 0)
            nan = (x.exponent == 0xFF) & (x.mantissa != 0)
            return sig, eff, zero, inf, nan

        sa, ea, za, ia, na = unpack(a)
        sb, eb, zb, ib, nb = unpack(b)
        neg = a.sign ^ b.sign

        # product = (sa * sb) x 2^(ea + eb - 2*127 - 2*7)
        rnd = IntToFloat32(int_width=18, exp_min=2 - 268, exp_max=2 * 254 - 268)
        m.submodules.round = rnd
        prod = Signal(16)
        m.d.comb += [
            prod.eq(sa * sb),
            rnd.s.eq(Mux(neg, -prod, prod)),
            rnd.k.eq(ea + eb - 268),
        ]
        with m.If(na | nb | (ia & zb) | (za & ib)):
            m.d.comb += self.o.eq(CANONICAL_NAN)
        with m.Elif(ia | ib):
            m.d.comb += self.o.eq(Cat(Const(_F32_INF, 31), neg))
        with m.Elif(za | zb):
            m.d.comb += self.o.eq(Cat(Const(0, 31), neg))      # IEEE: the sign of a zero product
        with m.Else():
            m.d.comb += self.o.eq(rnd.o)
        return m


class BF16ProcessingElement(wiring.Component):
    """BF16 baseline PE (SPEC.md section 5): ``acc = f32(acc + f32(a) * f32(b))`` per element.

    Parameters
    ----------
    lanes : int
        Element pairs per beat, in [1, 64]. They are accumulated in lane order, so
        ``lanes`` float32 adders are chained in the accumulator loop.

    Members
    -------
    i : In(stream.Signature(bf16_beat_layout(lanes), always_ready=True))
        Beats of bfloat16 ``a``/``b`` codes with ``first``/``last`` marks, framed like
        the MX PE's (a dot product starts at ``first`` or after ``last``).
    o : Out(stream.Signature(32, always_ready=True))
        float32 result, valid one cycle, ``latency`` cycles after the ``last`` beat.

    Latency
    -------
    ``latency == 2``: multiply | accumulate. One beat per cycle, no back-pressure.
    """

    LATENCY = 2

    def __init__(self, lanes=1):
        self._lanes = check_int(lanes, "lanes", 1, 64)
        super().__init__({
            "i": In(stream.Signature(bf16_beat_layout(lanes), always_ready=True)),
            "o": Out(stream.Signature(32, always_ready=True)),
        })

    lanes = property(lambda self: self._lanes)
    latency = property(lambda self: self.LATENCY, doc="cycles from a last beat to its result")

    @property
    def params(self) -> dict:
        return {"lanes": self._lanes}

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
        prods1 = [Signal(32, name=f"prod{n}_s1") for n in range(self._lanes)]
        m.d.sync += [v1.eq(self.i.valid), first1.eq(beat.first | dot_fresh), last1.eq(beat.last)]
        for n in range(self._lanes):
            mul = BF16Multiplier()
            m.submodules[f"mul{n}"] = mul
            m.d.comb += [mul.a.eq(beat.a[n]), mul.b.eq(beat.b[n])]
            m.d.sync += prods1[n].eq(mul.o)

        # ---- stage 1: accumulate in lane order ----------------------------------------------
        acc = Signal(32)
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
