"""A small pipelined component that the harness is proven on.

:class:`ExampleMac` is not part of the MX datapath: it exists so that
``tests/test_sim_harness.py`` can check the build cache, both simulators, the driver
with random idle cycles and backpressure, and that a one-bit bug (``bug=True``) is caught.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ExampleMac"]


def _check_int(name: str, value: object, minimum: int) -> None:
    """Raise TypeError unless ``value`` is an int, ValueError unless it is >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")


def _check_bool(name: str, value: object) -> None:
    """Raise TypeError unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")


class ExampleMac(wiring.Component):
    """Pipelined unsigned multiply-add ``o = a * b + c``.

    Parameters
    ----------
    data_width : int
        Width of ``a``, ``b`` and ``c``; the result has ``2 * data_width`` bits and
        never overflows.
    pipeline_depth : int
        Register stages. With 2 or more, stage 0 registers the product and stage 1 the
        sum; the rest only delay.
    backpressure : bool
        Give both streams a ``ready``; the whole pipeline stalls while ``o.valid`` is
        high and ``o.ready`` low. Otherwise both streams are ``always_ready``.
    bug : bool
        Flip the least significant bit of every result (a harness self-test).

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": data_width, "b": data_width, "c": data_width})))
        Operands; ``a`` at bit 0 of the payload.
    o : Out(stream.Signature(unsigned(2 * data_width)))
        Results, in input order.

    Raises
    ------
    TypeError
        If a width or depth is not an int, or a flag not a bool.
    ValueError
        If ``data_width < 1`` or ``pipeline_depth < 0``.

    Latency
    -------
    ``latency = pipeline_depth`` cycles from ``i`` transfer to ``o.valid``. Throughput is
    one result per cycle; with ``backpressure``, ``i.ready = ~o.valid | o.ready``.
    """

    def __init__(self, *, data_width: int = 16, pipeline_depth: int = 2,
                 backpressure: bool = False, bug: bool = False) -> None:
        _check_int("data_width", data_width, 1)
        _check_int("pipeline_depth", pipeline_depth, 0)
        _check_bool("backpressure", backpressure)
        _check_bool("bug", bug)
        self._data_width = data_width
        self._pipeline_depth = pipeline_depth
        self._backpressure = backpressure
        self._bug = bug
        operands = data.StructLayout({"a": data_width, "b": data_width, "c": data_width})
        super().__init__({
            "i": In(stream.Signature(operands, always_ready=not backpressure)),
            "o": Out(stream.Signature(unsigned(2 * data_width), always_ready=not backpressure)),
        })

    @property
    def data_width(self) -> int:
        """Operand width."""
        return self._data_width

    @property
    def pipeline_depth(self) -> int:
        """Register stages."""
        return self._pipeline_depth

    @property
    def latency(self) -> int:
        """Cycles from an ``i`` transfer to the matching ``o.valid``: ``pipeline_depth``."""
        return self._pipeline_depth

    def elaborate(self, platform: object) -> Module:
        m = Module()
        w = self._data_width
        # Constants: product and sum both fit in 2*w bits, (2^w-1)^2 + 2^w-1 < 2^(2w).
        result_width = 2 * w

        enable = Signal()
        if self._backpressure:
            m.d.comb += enable.eq(~self.o.valid | self.o.ready)
            m.d.comb += self.i.ready.eq(enable)
        else:
            m.d.comb += enable.eq(1)

        a, b, c = self.i.payload.a, self.i.payload.b, self.i.payload.c
        valid, value = self.i.valid, (a * b + c)[:result_width]
        for stage in range(self._pipeline_depth):
            stage_valid = Signal(name=f"stage{stage}_valid")
            if stage == 0 and self._pipeline_depth >= 2:
                product = Signal(result_width, name="stage0_product")
                addend = Signal(w, name="stage0_addend")
                with m.If(enable):
                    m.d.sync += [stage_valid.eq(valid), product.eq(a * b), addend.eq(c)]
                valid, value = stage_valid, (product + addend)[:result_width]
            else:
                stage_value = Signal(result_width, name=f"stage{stage}_value")
                with m.If(enable):
                    m.d.sync += [stage_valid.eq(valid), stage_value.eq(value)]
                valid, value = stage_valid, stage_value

        m.d.comb += self.o.valid.eq(valid)
        m.d.comb += self.o.payload.eq(value ^ 1 if self._bug else value)
        return m
