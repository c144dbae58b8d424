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
    o : Out(stream.Signature(ArrayLayout(32, lanes), always_ready=True))
        ``o.payload[n] = a[n] + b[n]`` of the input beat ``latency`` cycles earlier.

    Latency
    -------
    ``latency == 2`` (input register, adder, output register).
    """

    latency = 2

    def __init__(self, lanes=16):
        self._lanes = check_int("lanes", lanes, 1, 256)
        pair = data.StructLayout({"a": 32, "b": 32})
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(pair, lanes), always_ready=True)),
            "o": Out(stream.Signature(data.ArrayLayout(32, lanes), always_ready=True)),
        })

    lanes = property(lambda self: self._lanes)

    def elaborate(self, platform):
        m = Module()
        valid = Signal()
        beat = Signal.like(self.i.payload)
        m.d.sync += [valid.eq(self.i.valid), beat.eq(self.i.payload)]
        for n in range(self._lanes):
            add = Float32Adder()
            m.submodules[f"add{n}"] = add
            m.d.comb += [add.a.eq(beat[n].a), add.b.eq(beat[n].b)]
            m.d.sync += self.o.payload[n].eq(add.o)
        m.d.sync += self.o.valid.eq(valid)
        return m
