"""The float32 adder on Verilator and Icarus: random pairs of every class against NumPy
(2^18 on Verilator by default, 2^20 with -m slow)."""

import pytest

from mxsf.gen.verilog import build_verilog
from simsupport import require_simulator
from mxsf.sim.run import run_checked
from mxsf.sim.wrappers import Float32AdderLanes


@pytest.mark.sim
@pytest.mark.parametrize("pairs", [1 << 18, pytest.param(1 << 20, marks=pytest.mark.slow)])
def test_adder_random_pairs_verilator(build_root, pairs):
    """2^18 random pairs of every class (2^20: -m slow), 16 lanes a cycle from cocotb."""
    require_simulator("verilator")
    design = build_verilog(Float32AdderLanes, {"lanes": 16}, name="fp32_add_lanes", root=build_root)
    run_checked(design, "mxsf.sim.tests.fp32_tests", sim="verilator", seed=9,
                config={"pairs": pairs}, timeout_s=1200)


@pytest.mark.sim
def test_adder_pairs_icarus(build_root):
    require_simulator("icarus")
    design = build_verilog(Float32AdderLanes, {"lanes": 16}, name="fp32_add_lanes", root=build_root)
    run_checked(design, "mxsf.sim.tests.fp32_tests", sim="icarus", seed=9, config={"pairs": 20000})


@pytest.mark.sim
@pytest.mark.parametrize("sim", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_adder_bf16_result_pairs(build_root, sim):
    """``Float32Adder(man_width=7)``: a bfloat16 accumulator plus a float32, rounded once to
    bfloat16, against the golden ``bf16_add`` (exact sums, SPEC.md 10)."""
    require_simulator(sim)
    design = build_verilog(Float32AdderLanes, {"lanes": 16, "man_width": 7}, name="fp32_add_bf16_lanes",
                           root=build_root)
    run_checked(design, "mxsf.sim.tests.fp32_tests", sim=sim, seed=10,
                config={"pairs": (1 << 17) if sim == "verilator" else 8000}, timeout_s=1200)
