"""cocotb regression of :class:`harness.examples.ExampleMac`: the pattern for every block.

Run through :func:`mxsf.sim.run.run_cocotb`; parameters come from the design
description (:func:`~mxsf.sim.cocotb_lib.get_design`), knobs from the test config
(``count``, ``idle_prob``, ``stall_prob``).
"""

from __future__ import annotations

import functools
import random

import cocotb

from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_test_config, make_rng, run_stream_test
from example_model import mac_model, pack_operands  # this folder is on the simulator's path

__all__ = ["back_to_back", "random_idle", "random_stalls"]


def _operands(rng: random.Random, count: int, data_width: int) -> list[int]:
    """Corner operands (zeros, all ones) followed by random ones, packed."""
    top = (1 << data_width) - 1
    corners = [(0, 0, 0), (top, top, top), (top, 1, 0), (1, top, top)]
    randoms = [tuple(rng.getrandbits(data_width) for _ in range(3)) for _ in range(count)]
    return [pack_operands(a, b, c, data_width=data_width) for a, b, c in corners + randoms]


async def _run(dut, test_name: str, *, idle_prob: float, stall_prob: float = 0.0) -> None:
    """Reset, then drive corner and random operands and check every cycle against the model."""
    design = get_design()
    config = get_test_config()
    data_width = design.params.get("data_width", 16)
    model = functools.partial(mac_model, data_width=data_width,
                              backpressure=design.params.get("backpressure", False))
    await clock_and_reset(dut)
    await run_stream_test(dut, _operands(make_rng(test_name), config.get("count", 40), data_width), model,
                          idle_prob=idle_prob, stall_prob=stall_prob, seed_salt=test_name)


@cocotb.test()
async def back_to_back(dut) -> None:
    """One transaction per cycle, no gaps."""
    await _run(dut, "back_to_back", idle_prob=0.0)


@cocotb.test()
async def random_idle(dut) -> None:
    """Seeded random idle cycles between transactions."""
    await _run(dut, "random_idle", idle_prob=get_test_config().get("idle_prob", 0.4))


@cocotb.test(skip=not (get_design() and get_design().params.get("backpressure")))
async def random_stalls(dut) -> None:
    """Random idle cycles and random output backpressure (designs with ``backpressure``)."""
    config = get_test_config()
    await _run(dut, "random_stalls", idle_prob=config.get("idle_prob", 0.3),
               stall_prob=config.get("stall_prob", 0.4))
