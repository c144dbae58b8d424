# amaranth: UnusedElaboratable=no
"""Block max-exponent finder: parameters, Amaranth-simulator checks against the cycle model,
Verilog generation, and the cocotb regression on Verilator and Icarus."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from mxsf.golden.requant_model import StreamCycle, maxexp_cycle_model
from mxsf.hw import maxexp as maxexp_mod
from mxsf.hw.maxexp import BlockMaxExponent, register_levels, tree_depth
from mxsf.gen.verilog import build_verilog
from simsupport import require_simulator
from mxsf.sim.run import run_checked
from mxsf.sim.tests.maxexp_tests import pack_beats, random_group_bits, special_group_bits, unpack_beat

MAXEXP_TESTS = "mxsf.sim.tests.maxexp_tests"


def test_all():
    for name in maxexp_mod.__all__:
        assert hasattr(maxexp_mod, name), name


# ------------------------------------------------------------------------------------
# Parameters


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^n must be an integer in \[1, 65536\], not 0$"):
        BlockMaxExponent(n=0)
    with pytest.raises(TypeError, match=r"^n must be an integer, not 32.0$"):
        BlockMaxExponent(n=32.0)
    with pytest.raises(ValueError, match=r"^lanes must divide n=32 \(one of \[1, 2, 4, 8, 16, 32\]\), not 12$"):
        BlockMaxExponent(n=32, lanes=12)
    with pytest.raises(ValueError, match=r"^lanes must be an integer in \[1, 32\], not 64$"):
        BlockMaxExponent(n=32, lanes=64)
    with pytest.raises(ValueError, match=r"^stages must be an integer in \[0, 3\], not 4$"):
        BlockMaxExponent(n=32, lanes=8, stages=4)
    with pytest.raises(ValueError, match=r"^stages must be an integer in \[0, 0\], not 1$"):
        BlockMaxExponent(n=4, lanes=1, stages=1)


def test_properties_and_latency():
    mx = BlockMaxExponent(n=32, lanes=8)
    assert (mx.n, mx.lanes, mx.stages, mx.beats_per_group) == (32, 8, 1, 4)
    assert mx.latency == mx.stages + 1
    assert BlockMaxExponent(n=7).lanes == 7 and BlockMaxExponent(n=7).stages == tree_depth(7) // 2
    assert BlockMaxExponent(n=64, lanes=32, stages=5).latency == 6
    assert mx.params == {"n": 32, "lanes": 8, "stages": 1}


def test_register_levels():
    assert tree_depth(1) == 0 and tree_depth(2) == 1 and tree_depth(32) == 5 and tree_depth(33) == 6
    assert register_levels(32, 0) == ()
    assert register_levels(32, 2) == (2, 4)
    assert register_levels(32, 5) == (1, 2, 3, 4, 5)
    assert register_levels(4, 1) == (1,)


# ------------------------------------------------------------------------------------
# Amaranth simulator against the cycle model


def run_amaranth_stream(dut, beats, *, rng, idle_prob, stall_prob, drain, max_idle=3):
    """Drive packed ``beats`` into ``dut.i`` (seeded gaps) with random ``o.ready`` stalls;
    return the per-cycle driven inputs (valid, payload, o_ready) and the outputs
    (i_ready, o_valid, o_payload), ``drain`` cycles after the last beat is accepted."""
    width = len(dut.i.payload.as_value())
    inputs, outputs = [], []

    async def bench(ctx):
        k, gap, left = 0, 0, None
        while left is None or left > 0:
            presenting = k < len(beats) and gap == 0
            valid = int(presenting)
            payload = beats[k] if presenting else int(rng.integers(0, 1 << 62)) % (1 << width)
            ready = 1 if left is not None else int(rng.random() >= stall_prob)
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload.as_value(), payload)
            ctx.set(dut.o.ready, ready)
            i_ready = ctx.get(dut.i.ready)
            o_valid = ctx.get(dut.o.valid)
            o_payload = ctx.get(dut.o.payload.as_value())
            inputs.append((valid, payload, ready))
            outputs.append((i_ready, o_valid, o_payload))
            if presenting and i_ready:
                k += 1
                gap = int(rng.integers(1, max_idle + 1)) if rng.random() < idle_prob else 0
            elif not presenting and gap:
                gap -= 1
            if left is not None:
                left -= 1
            elif k == len(beats):
                left = drain
            await ctx.tick()
            if len(inputs) > 50 * (len(beats) + drain) + 100:
                raise AssertionError("the DUT stopped accepting input")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return inputs, outputs


def compare_rows(expected_rows, outputs, pack):
    """First mismatch between model rows and recorded outputs (None if all agree)."""
    for cyc, (row, (i_ready, o_valid, o_payload)) in enumerate(zip(expected_rows, outputs)):
        if int(row.i_ready) != i_ready or int(row.o_valid) != o_valid:
            return cyc, ("i_ready/o_valid", (int(row.i_ready), int(row.o_valid)), (i_ready, o_valid))
        if row.o_valid and pack(row.o) != o_payload:
            return cyc, ("payload", pack(row.o), o_payload)
    return None


def _pack_result(r):
    return r.max_exp | int(r.any_nan_inf) << 8 | int(r.all_zero) << 9


@pytest.mark.parametrize("n,lanes,stages", [(32, 8, 0), (32, 8, 3), (12, 3, 1), (5, 5, 2), (4, 1, 0), (16, 16, 2)])
def test_amaranth_against_model(n, lanes, stages):
    rng = np.random.default_rng(n * 100 + lanes * 10 + stages)
    dut = BlockMaxExponent(n=n, lanes=lanes, stages=stages)
    groups = special_group_bits(rng, n) + random_group_bits(rng, n, 20)
    beats = pack_beats(groups, lanes)
    inputs, outputs = run_amaranth_stream(dut, beats, rng=rng, idle_prob=0.3, stall_prob=0.4,
                                          drain=dut.latency + 3)
    trace = [StreamCycle(unpack_beat(p, lanes) if v else None, bool(r)) for v, p, r in inputs]
    rows = maxexp_cycle_model(trace, n=n, lanes=lanes, latency=dut.latency)
    assert sum(r.o_valid for r in rows) >= len(groups)
    bad = compare_rows(rows, outputs, _pack_result)
    assert bad is None, f"first mismatch at cycle {bad[0]}: {bad[1]}"


# ------------------------------------------------------------------------------------
# Verilog


@pytest.mark.parametrize("params", [dict(n=32, lanes=8, stages=0), dict(n=32, lanes=8, stages=3),
                                    dict(n=7), dict(n=1024, lanes=32, stages=2)])
def test_verilog_convert(params, build_root):
    design = build_verilog(BlockMaxExponent, params, name="maxexp", root=build_root)
    ports = {p.name: p.width for p in design.ports}
    lanes = params.get("lanes", params["n"])
    assert ports["i__payload"] == 32 * lanes and ports["o__payload"] == 10
    assert ports["i__ready"] == 1 and ports["o__ready"] == 1
    assert design.latency == BlockMaxExponent(**params).latency


def test_stages_add_registers():
    def flops(**p):
        text = verilog.convert(BlockMaxExponent(**p), name="mx")
        return text.count("always @(posedge clk)")
    assert flops(n=32, lanes=8, stages=0) < flops(n=32, lanes=8, stages=1) < flops(n=32, lanes=8, stages=3)


# ------------------------------------------------------------------------------------
# cocotb regression


def _design(build_root, n, lanes, stages):
    return build_verilog(BlockMaxExponent, {"n": n, "lanes": lanes, "stages": stages},
                         name="maxexp", root=build_root)


@pytest.mark.sim
@pytest.mark.parametrize("n,lanes,stages", [pytest.param(32, 8, 3, marks=pytest.mark.slow),
                                            pytest.param(24, 12, 0, marks=pytest.mark.slow),
                                            pytest.param(6, 3, 1, marks=pytest.mark.slow)])
def test_maxexp_verilator(build_root, n, lanes, stages):
    """(-m slow: the max-exponent finder's vector regression runs on Verilator by default.)"""
    require_simulator("verilator")
    run_checked(_design(build_root, n, lanes, stages), MAXEXP_TESTS, sim="verilator", seed=21,
                config={"count": 60})


@pytest.mark.sim
@pytest.mark.parametrize("n,lanes,stages", [(32, 8, 3), (24, 12, 0), (6, 3, 1)])
def test_maxexp_icarus(build_root, n, lanes, stages):
    require_simulator("icarus")
    run_checked(_design(build_root, n, lanes, stages), MAXEXP_TESTS, sim="icarus", seed=22,
                config={"count": 20})


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("n,lanes,stages", [(1024, 32, 5), (1024, 32, 0), (96, 16, 2), (32, 1, 0),
                                            (33, 11, 4)])
def test_maxexp_verilator_long(build_root, n, lanes, stages):
    require_simulator("verilator")
    run_checked(_design(build_root, n, lanes, stages), MAXEXP_TESTS, sim="verilator", seed=23,
                config={"count": 400})
