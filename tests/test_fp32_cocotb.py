# amaranth: UnusedElaboratable=no
"""The float32 adder on Verilator and Icarus: random pairs of every class against NumPy
(2^18 on Verilator by vector files and 20,000 on Icarus by cocotb by default; 2^18 and
2^20 on Verilator by cocotb with -m slow)."""

import numpy as np
import pytest

from mxsf.gen.verilog import build_verilog
from mxsf.sim.tests.fp32_tests import adder_operands, expected_sum
from mxsf.sim.vector_benches import fp32_adder_case, run_case
from simsupport import require_simulator
from mxsf.sim.run import run_checked
from mxsf.sim.wrappers import Float32AdderLanes


@pytest.mark.sim
def test_adder_random_pairs_verilator_vectors(build_root):
    """2^18 random pairs of every class (the operands of the cocotb test's seed 9) through
    two adder lanes on the vector-file path: every sum and the cycle of every valid output.
    (A two-lane build costs a quarter of the 16-lane one, and Verilator, not cocotb, runs the
    131,072 beats; the cocotb module runs on Icarus below, and on Verilator with -m slow.)"""
    require_simulator("verilator")
    design = build_verilog(Float32AdderLanes, {"lanes": 2}, name="fp32_add_lanes_2", root=build_root)
    a, b = adder_operands(np.random.default_rng([9, 32]), 1 << 18)
    case = fp32_adder_case(design, Float32AdderLanes(lanes=2), a, b, expected_sum(a, b), seed=9)
    r = run_case(case, "verilator", encoding="bin").check()
    assert r.compared_outputs == 1 << 17


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("pairs", [1 << 18, 1 << 20])
def test_adder_random_pairs_verilator(build_root, pairs):
    """2^18 and 2^20 random pairs of every class, 16 lanes a cycle from cocotb (-m slow: the
    default suite runs the cocotb module on Icarus, and 2^18 pairs on Verilator by vectors)."""
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
