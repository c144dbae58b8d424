"""cocotb tests of the harness itself (configuration transport, timeouts).

Each test is skipped unless its configuration key is present, so running the whole
module is harmless.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import Timer

from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_test_config

__all__ = ["config_roundtrip", "hang"]


@cocotb.test(skip="token" not in get_test_config())
async def config_roundtrip(dut) -> None:
    """The config and the design description reach the simulator intact."""
    config = get_test_config()
    design = get_design()
    assert config["token"] == "mxsf", f"config token {config['token']!r}"
    assert design.latency == config["expect_latency"], \
        f"design latency {design.latency} != expected {config['expect_latency']}"
    await clock_and_reset(dut)


@cocotb.test(skip=not get_test_config().get("hang"))
async def hang(dut) -> None:
    """Never finish, so that the wall-clock timeout of run_cocotb can be tested."""
    while True:
        await Timer(1, "us")
