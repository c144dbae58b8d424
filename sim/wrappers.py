"""Test wrappers: clocked, many-lane shells around combinational units, so a
cocotb regression can push many vectors per simulated cycle through them."""

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mxsf.golden.params import check_int
from mxsf.hw.fp32 import Float32Adder

__all__ = ["Float32AdderLanes"]


class Float32AdderLanes(wiring.Component):
    """``lanes`` :class:`~mxsf.hw.fp32.Float32Adder` side by side, inputs and outputs
    registered.

    Members
    -------
    i : In(stream.Signature(ArrayLayout(StructLayout({"a": 32, "b": 32}), lanes), always_ready=True))
    o : Out(stream.Signature(ArrayLayout(9 + man_width, lanes), always_ready=True))
        ``o.payload[n] = a[n] + b[n]`` of the input beat ``latency`` cycles earlier
        (rounded to ``man_width`` fraction bits: 23 binary32, 7 bfloat16).

    Latency
    -------
    ``latency == 2`` (input register, adder, output register).
    """

    latency = 2

    def __init__(self, lanes=16, *, man_width=23):
        self._lanes = check_int("lanes", lanes, 1, 256)
        self._man_width = Float32Adder.probe(man_width=man_width).man_width
        pair = data.StructLayout({"a": 32, "b": 32})
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(pair, lanes), always_ready=True)),
            "o": Out(stream.Signature(data.ArrayLayout(9 + man_width, lanes), always_ready=True)),
        })

    lanes = property(lambda self: self._lanes)
    man_width = property(lambda self: self._man_width)

    def elaborate(self, platform):
        m = Module()
        valid = Signal()
        beat = Signal.like(self.i.payload)
        m.d.sync += [valid.eq(self.i.valid), beat.eq(self.i.payload)]
        for n in range(self._lanes):
            add = Float32Adder() if self._man_width == 23 else Float32Adder(man_width=self._man_width)
            m.submodules[f"add{n}"] = add
            m.d.comb += [add.a.eq(beat[n].a), add.b.eq(beat[n].b)]
            m.d.sync += self.o.payload[n].eq(add.o)
        m.d.sync += self.o.valid.eq(valid)
        return m
