# amaranth: UnusedElaboratable=no
"""The MX PE and systolic array with a bfloat16 accumulator (SPEC.md 10): parameters, the
adder's interface, the PE on Amaranth's simulator for every format, and the cocotb
regression (every format on Verilator, two on Icarus) against the golden cycle model."""

import numpy as np
import pytest

from mxsf.golden import ELEMENT_FORMATS, get_format
from mxsf.golden.options import Accumulator
from mxsf.hw.fp32 import Float32Adder
from mxsf.hw.layouts import BFloat16
from mxsf.hw.pe import MXProcessingElement
from mxsf.hw.systolic import SystolicArray
from mxsf.sim import pe_stimulus as stim
from mxsf.gen.verilog import build_verilog
from simsupport import require_simulator
from mxsf.sim.run import run_checked

from test_pe import _amaranth_run

PE_TESTS = "mxsf.sim.tests.pe_tests"


def test_parameters():
    pe = MXProcessingElement.probe(fmt="mxsf", block_size=32, lanes=8, acc="bf16")
    assert pe.acc is Accumulator.BF16 and pe.result_layout is BFloat16 and len(pe.o.payload.as_value()) == 16
    assert pe.params == {"fmt": "mxsf", "block_size": 32, "lanes": 8, "acc": "bf16"}
    assert pe.module_name == "mx_pe_mxsf_b32_l8_accbf16"
    assert pe.latency == MXProcessingElement.probe(fmt="mxsf", block_size=32, lanes=8).latency
    assert MXProcessingElement.probe(fmt="mxsf", block_size=32, lanes=8, acc=Accumulator.FP32).params == MXProcessingElement.probe(fmt="mxsf", block_size=32, lanes=8).params
    with pytest.raises(ValueError, match=r"^acc must be one of fp32, bf16; not 'fp16'$"):
        MXProcessingElement.probe(fmt="mxsf", block_size=32, lanes=8, acc="fp16")
    with pytest.raises(TypeError):
        MXProcessingElement("mxsf", 32, 8)                # keyword-only
    arr = SystolicArray.probe(fmt="fp8_e4m3", rows=2, cols=3, block_size=8, lanes=4, acc="bf16")
    assert arr.result_layout is BFloat16 and len(arr.o.payload.c[0].as_value()) == 16 and arr.params["acc"] == "bf16"
    with pytest.raises(ValueError, match=r"^acc must be fp32 for the bf16 baseline array; not 'bf16'$"):
        SystolicArray(fmt="bf16", rows=2, cols=2, block_size=8, lanes=2, acc="bf16")
    add = Float32Adder.probe(man_width=7)
    assert len(add.o) == 16 and add.module_name == "fp32_add_m7" and add.latency == 0
    with pytest.raises(ValueError, match=r"^man_width must be one of 23, 7; not 10$"):
        Float32Adder(man_width=10)


BDR = [f for f in ELEMENT_FORMATS if get_format(f).microexp_group]          # mx9, mx6, mx4


@pytest.mark.parametrize("fmt,block_size,lanes", [(f, 8, 4) for f in ELEMENT_FORMATS if f not in BDR]
                         + [(f, 16, lanes) for f in BDR for lanes in (4, 32)])
def test_pe_bf16_amaranth(fmt, block_size, lanes):
    """Every format; BDR (SPEC.md 11) with a block over 4 beats and with two blocks a beat
    (32 lanes: two bfloat16 additions chained in the cycle, each rounded)."""
    rng = np.random.default_rng(17)
    dut = MXProcessingElement(fmt=fmt, block_size=block_size, lanes=lanes, acc="bf16")
    beats = (stim.random_mx_dots(rng, fmt, block_size=block_size, lanes=lanes, count=10, max_blocks=10)
             + stim.framing_mx_beats(rng, fmt, block_size=block_size, lanes=lanes)
             + stim.cancelling_mx_dots(rng, fmt, block_size=block_size, lanes=lanes, count=3))
    expected, got = _amaranth_run(dut, beats, rng)
    assert sum(e is not None for e in expected) > 10
    assert all(e is None or e < 1 << 16 for e in expected)
    bad = [(c, e, g) for c, (e, g) in enumerate(zip(expected, got)) if e != g]
    assert not bad, f"{len(bad)} mismatches, first (cycle, expected, got): {bad[:3]}"


def _design(build_root, fmt, block_size=8, lanes=4):
    return build_verilog(MXProcessingElement, {"fmt": fmt, "block_size": block_size, "lanes": lanes,
                                               "acc": "bf16"},
                         name=f"mx_pe_{get_format(fmt).name}_accbf16", root=build_root)


#: Default suite: one format of each kind (MXSF, FP with a NaN code, IEEE-like FP with
#: Inf/NaN, INT) on Icarus (cheap builds); every format on Verilator and
#: on Icarus behind ``-m slow`` (every format runs on the Amaranth simulator above in the
#: default suite).
DEFAULT_FORMATS = ["mxsf", "fp8_e4m3", "fp8_e5m2", "int8"]
PE_BF16_CASES = ["random_dots", "cancellation", "framing", "long_dots", "code_pairs"]


@pytest.mark.sim
@pytest.mark.parametrize("fmt", [pytest.param(f, marks=pytest.mark.slow) for f in ELEMENT_FORMATS if f not in BDR])
def test_pe_bf16_verilator(build_root, fmt):
    require_simulator("verilator")
    run_checked(_design(build_root, fmt), PE_TESTS, sim="verilator", seed=12, testcase=PE_BF16_CASES,
                config={"count": 30, "pair_sample": 200})


@pytest.mark.sim
@pytest.mark.parametrize("fmt,lanes", [pytest.param("mx9", 32, marks=pytest.mark.slow),
                                       pytest.param("mx6", 4, marks=pytest.mark.slow),
                                       pytest.param("mx4", 32, marks=pytest.mark.slow)])
def test_bdr_pe_bf16_verilator(build_root, fmt, lanes):
    """BDR with a bfloat16 accumulator (SPEC.md 11 + 10); 32 lanes: two blocks a beat, two
    chained bfloat16 additions."""
    require_simulator("verilator")
    run_checked(_design(build_root, fmt, 16, lanes), PE_TESTS, sim="verilator", seed=12, testcase=PE_BF16_CASES,
                config={"count": 30, "pair_sample": 200})


@pytest.mark.sim
def test_bdr_pe_bf16_icarus(build_root):
    """MX9 with a bfloat16 accumulator, 32 lanes (two blocks a beat) on Icarus."""
    require_simulator("icarus")
    run_checked(_design(build_root, "mx9", 16, 32), PE_TESTS, sim="icarus", seed=12, testcase=PE_BF16_CASES,
                config={"count": 8, "pair_sample": 60})


@pytest.mark.sim
@pytest.mark.parametrize("fmt", DEFAULT_FORMATS)
def test_pe_bf16_icarus(build_root, fmt):
    require_simulator("icarus")
    run_checked(_design(build_root, fmt), PE_TESTS, sim="icarus", seed=13, testcase=PE_BF16_CASES,
                config={"count": 10, "pair_sample": 100})


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", ELEMENT_FORMATS)
def test_pe_bf16_icarus_all_formats(build_root, fmt):
    require_simulator("icarus")
    run_checked(_design(build_root, fmt, 16 if fmt in BDR else 32, 8), PE_TESTS, sim="icarus", seed=14,
                config={"count": 20, "pair_sample": 100}, timeout_s=3600)


@pytest.mark.sim
@pytest.mark.parametrize("sim", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_array_bf16_acc(build_root, sim):
    """A 2x2 MXSF array with bfloat16 accumulators: every cycle against the golden cycle
    model, and whole matrices against golden ``matmul(acc="bf16")``."""
    require_simulator(sim)
    design = build_verilog(SystolicArray, {"fmt": "mxsf", "rows": 2, "cols": 2, "block_size": 4, "lanes": 4,
                                           "acc": "bf16"}, name="systolic_mxsf_accbf16", root=build_root)
    run_checked(design, "mxsf.sim.tests.systolic_tests", sim=sim, seed=15,
                testcase=["random_tiles", "matrices"], config={"count": 12 if sim == "verilator" else 4})


@pytest.mark.parametrize("fmt", BDR)
def test_array_bdr_bf16_amaranth(fmt):
    """A 2x2 BDR array with bfloat16 accumulators: every cycle against the golden cycle model,
    and whole matrices (1D blocks of 16 along K) against golden ``matmul(acc="bf16")``."""
    from test_systolic import amaranth_run, check_cycles
    from mxsf.sim.tests import systolic_tests as sstim
    rng = np.random.default_rng(19)
    dut = SystolicArray(fmt=fmt, rows=2, cols=2, block_size=16, lanes=8, acc="bf16")
    beats = sstim.random_tile_beats(rng, fmt, 2, 2, block_size=16, lanes=8, count=4)
    beats_m, c, M, N = sstim.matrix_beats(rng, fmt, 2, 2, block_size=16, lanes=8, k_blocks=3, acc="bf16")
    expected, got = amaranth_run(dut, beats + beats_m, rng, idle_prob=0.0)
    check_cycles(expected, got)
    rows = [g["o"]["c"] for g in got if g["o"] is not None][-M * N // 2:]
    assert all(e["o"] is None or all(v < 1 << 16 for v in e["o"]["c"]) for e in expected)
    pos = 0
    for mi in range(M // 2):
        for nj in range(N // 2):
            tile = np.array(rows[pos:pos + 2], dtype=np.uint32)
            pos += 2
            assert np.array_equal(tile, c[mi * 2:(mi + 1) * 2, nj * 2:(nj + 1) * 2])
