"""cocotb regression of the BF16 baseline PE (:class:`mxsf.hw.bf16_pe.BF16ProcessingElement`)
against :func:`mxsf.golden.models.bf16_pe_cycle_model`, every cycle."""

import cocotb
import numpy as np

from mxsf.golden.models import Beat, bf16_pe_cycle_model
from mxsf.hw.bf16_pe import bf16_beat_layout
from mxsf.sim import pe_stimulus as stim
from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_seed, get_test_config, run_stream_test
from mxsf.sim.packing import LayoutCodec

__all__ = ["random_dots", "back_to_back"]


def _model(codec):
    def model(inputs, latency):
        trace = []
        for cyc in inputs:
            if cyc.get("i__valid"):
                v = codec.unpack(cyc["i__payload"], depth=2)
                trace.append(Beat(a=v["a"], b=v["b"], first=bool(v["first"]), last=bool(v["last"])))
            else:
                trace.append(None)
        out = bf16_pe_cycle_model(trace, latency=latency)
        return [{"o__valid": int(r is not None), "o__payload": r} for r in out[:len(inputs)]]
    return model


async def _run(dut, name, *, idle_prob):
    lanes = get_design().params.get("lanes", 1)
    cfg = get_test_config()
    rng = np.random.default_rng([get_seed(), sum(map(ord, name))])
    beats = stim.random_bf16_dots(rng, lanes=lanes, count=cfg.get("count", 100))
    codec = LayoutCodec(bf16_beat_layout(lanes))
    txns = [codec.pack({"a": b.a, "b": b.b, "first": int(b.first), "last": int(b.last)}) for b in beats]
    await clock_and_reset(dut)
    trace = await run_stream_test(dut, txns, _model(codec), idle_prob=idle_prob, seed_salt=name,
                                  one_to_one=False)
    assert sum(1 for row in trace.expected if row.get("o__valid")) > 0


@cocotb.test()
async def random_dots(dut):
    """Random and special (zero, subnormal, Inf, NaN) BF16 dot products with idle cycles."""
    await _run(dut, "random_dots", idle_prob=get_test_config().get("idle_prob", 0.3))


@cocotb.test()
async def back_to_back(dut):
    """The same, one beat every cycle."""
    await _run(dut, "back_to_back", idle_prob=0.0)
