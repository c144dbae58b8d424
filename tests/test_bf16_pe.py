# amaranth: UnusedElaboratable=no
"""BF16 baseline PE: multiplier on Amaranth's simulator, PE regression on Verilator and Icarus."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mxsf.golden.matmul import CANONICAL_NAN_BITS
from mxsf.hw.bf16_pe import BF16Multiplier, BF16ProcessingElement
from mxsf.gen.verilog import build_verilog
from simsupport import require_simulator
from mxsf.sim.run import run_checked

BF16_TESTS = "mxsf.sim.tests.bf16_pe_tests"


def test_multiplier_against_numpy():
    rng = np.random.default_rng(1)
    n = 3000
    a = rng.integers(0, 1 << 16, size=n)
    b = rng.integers(0, 1 << 16, size=n)
    special = np.array([0, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x8001, 0x7F7F, 0x0080, 0x3F80])
    a[:100] = np.repeat(special, 10)
    b[:100] = np.tile(special, 10)
    dut = BF16Multiplier()
    got = []

    async def bench(ctx):
        for x, y in zip(a, b):
            ctx.set(dut.a.as_value(), int(x))
            ctx.set(dut.b.as_value(), int(y))
            await ctx.delay(1e-9)
            got.append(ctx.get(dut.o))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    fa = (a.astype(np.uint32) << 16).view(np.float32)
    fb = (b.astype(np.uint32) << 16).view(np.float32)
    with np.errstate(all="ignore"):
        prod = fa * fb
    ref = np.where(np.isnan(prod), CANONICAL_NAN_BITS, prod.view(np.uint32))
    assert np.array_equal(np.array(got, dtype=np.uint32), ref.astype(np.uint32))


def test_bf16_pe_parameter_errors():
    with pytest.raises(ValueError, match=r"^lanes must be an integer in \[1, 64\], not 0$"):
        BF16ProcessingElement(lanes=0)
    with pytest.raises(TypeError, match=r"^lanes must be an integer, not 1.5$"):
        BF16ProcessingElement(lanes=1.5)


@pytest.mark.sim
@pytest.mark.parametrize("sim,lanes", [pytest.param("verilator", 1, marks=pytest.mark.slow),
                                       pytest.param("verilator", 4, marks=pytest.mark.slow),
                                       ("icarus", 1), ("icarus", 4)])
def test_bf16_pe(build_root, sim, lanes):
    """1 and 4 lanes on Icarus (on Verilator: -m slow; the BF16 PE's vector regression runs
    there in the default suite)."""
    require_simulator(sim)
    design = build_verilog(BF16ProcessingElement, {"lanes": lanes}, name="bf16_pe", root=build_root)
    run_checked(design, BF16_TESTS, sim=sim, seed=2, config={"count": 150 if sim == "verilator" else 40})
