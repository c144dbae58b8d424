# amaranth: UnusedElaboratable=no
"""MX GEMM end to end: parameters, Amaranth-simulator run against golden quantize_tiles ->
matmul -> requantize_tile, and the cocotb regression (all four transpose choices, output
stalls, back-to-back runs, exact timing) on Icarus and Verilator."""

import numpy as np
import pytest
from amaranth.hdl import Const
from amaranth.sim import Simulator

from mxsf.golden import quantize_tiles
from mxsf.hw import gemm as gemm_mod
from mxsf.hw.gemm import MXGemm
from mxsf.gen.verilog import build_verilog
from simsupport import require_simulator
from mxsf.sim.run import run_checked
from mxsf.sim.tests.gemm_tests import expected_run, gemm_operands

GEMM_TESTS = "mxsf.sim.tests.gemm_tests"


def test_all():
    for name in gemm_mod.__all__:
        assert hasattr(gemm_mod, name), name


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^fmt must be an MX element format .*; not 'bf16'$"):
        MXGemm(fmt="bf16", rows=2, cols=2, block_size=4)
    with pytest.raises(ValueError, match=r"^rows must be a power of two in \[1, 4\], not 3$"):
        MXGemm(fmt="mxsf", rows=3, cols=2, block_size=4)
    with pytest.raises(ValueError, match=r"^cols must be a power of two in \[1, 4\], not 8$"):
        MXGemm(fmt="mxsf", rows=2, cols=8, block_size=4)
    with pytest.raises(ValueError, match=r"^dim must be a multiple of block_size=4, not 10$"):
        MXGemm(fmt="mxsf", rows=2, cols=2, block_size=4, dim=10)
    with pytest.raises(ValueError, match=r"^dim must be an integer in \[4, 16384\], not 2$"):
        MXGemm(fmt="mxsf", rows=2, cols=2, block_size=4, dim=2)
    with pytest.raises(ValueError, match=r"^block_size must be a power of two in \[1, 1024\], not 12$"):
        MXGemm(fmt="mxsf", rows=2, cols=2, block_size=12)


def test_properties_and_registry():
    g = MXGemm(fmt="mxsf", rows=2, cols=4, block_size=8, lanes=4, dim=32)
    assert (g.tile_beats, g.tile_period, g.tiles) == (8, 8, 16 * 8)
    assert g.acc_latency == 1 + 2 + 8 - 1 + (1 + 3 + 4)
    assert g.latency == g.acc_latency + 2 - 1 + 2 + g._requant.latency
    assert g.fifo_depth >= 2 * g.rows and g.fifo_depth % g.rows == 0
    from mxsf.gen.registry import get_design_spec
    spec = get_design_spec("gemm")
    assert spec.macs(spec.instantiate(fmt="mxsf", rows=2, cols=4, block_size=8, lanes=4)) == 32


def amaranth_gemm(gemm, qa, qb, runs, rng):
    """Load, run ``runs`` (transpose_a, transpose_b, stall_prob) one after the other; return
    per run the acc rows and o beats seen."""
    bs, d = gemm.block_size, gemm.dim
    out = [{"acc": [], "o": []} for _ in runs]
    n = gemm.tiles * gemm.rows

    async def bench(ctx):
        for port, q, w in ((gemm.a_codes, qa, gemm.a_word), (gemm.b_codes, qb, gemm.b_word)):
            for r in range(d):
                for s in range(d // w):
                    ctx.set(port.valid, 1)
                    ctx.set(port.payload, {"row": r, "seg": s, "codes": q.codes[r, s * w:(s + 1) * w].tolist()})
                    await ctx.tick()
            ctx.set(port.valid, 0)
        for port, q in ((gemm.a_scale, qa), (gemm.b_scale, qb)):
            for i in range(d // bs):
                for j in range(d // bs):
                    ctx.set(port.valid, 1)
                    ctx.set(port.payload, {"tile_row": i, "tile_col": j, "scale": int(q.scale_e8m0[i, j])})
                    await ctx.tick()
            ctx.set(port.valid, 0)
        for k, (ta, tb, stall) in enumerate(runs):
            ctx.set(gemm.start.valid, 1)
            ctx.set(gemm.start.payload, {"transpose_a": ta, "transpose_b": tb})
            started = False
            for _ in range(20000):
                ready = int(rng.random() >= stall)
                ctx.set(gemm.o.ready, ready)
                await ctx.delay(1e-9)
                if not started and ctx.get(gemm.start.ready):
                    started = True
                if ctx.get(gemm.acc.valid):
                    out[k]["acc"].append([Const.cast(x).value for x in ctx.get(gemm.acc.payload)["c"]])
                if ctx.get(gemm.o.valid) and ready:
                    p = ctx.get(gemm.o.payload)
                    out[k]["o"].append({"codes": [Const.cast(c).value for c in p["codes"]],
                                        "scale": Const.cast(p["scale"]).value, "first": p["first"],
                                        "last": p["last"]})
                await ctx.tick()
                if started:
                    ctx.set(gemm.start.valid, 0)
                if len(out[k]["o"]) == n:
                    break

    sim = Simulator(gemm)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("fmt,rows,cols,lanes", [("mxsf", 2, 2, 4),
                                                 pytest.param("fp8_e5m2", 2, 4, 2, marks=pytest.mark.slow)])
def test_gemm_amaranth(fmt, rows, cols, lanes):
    rng = np.random.default_rng(31)
    gemm = MXGemm(fmt=fmt, rows=rows, cols=cols, block_size=4, lanes=lanes, dim=8)
    xa, xb = gemm_operands(rng, gemm)
    qa, qb = quantize_tiles(xa, fmt, (4, 4)), quantize_tiles(xb, fmt, (4, 4))
    runs = [(0, 1, 0.0), (1, 0, 0.5)]
    for (ta, tb, _), got in zip(runs, amaranth_gemm(gemm, qa, qb, runs, rng)):
        acc, o = expected_run(gemm, qa, qb, ta, tb)
        assert got["acc"] == acc, f"float32 C differs (transpose_a={ta}, transpose_b={tb})"
        assert got["o"] == o, f"MX C differs (transpose_a={ta}, transpose_b={tb})"


# ------------------------------------------------------------------------------------
# cocotb regression


def _design(build_root, fmt, rows=2, cols=2, block_size=4, lanes=4, dim=8):
    return build_verilog(MXGemm, {"fmt": fmt, "rows": rows, "cols": cols, "block_size": block_size,
                                  "lanes": lanes, "dim": dim}, name=f"gemm_{fmt}", root=build_root)


@pytest.mark.sim
@pytest.mark.parametrize("fmt", ["mxsf", "fp8_e4m3"])
def test_gemm_icarus(build_root, fmt):
    require_simulator("icarus")
    run_checked(_design(build_root, fmt), GEMM_TESTS, sim="icarus", seed=41)


@pytest.mark.sim
@pytest.mark.parametrize("fmt", ["mxsf", "int8"])
def test_gemm_verilator(build_root, fmt):
    require_simulator("verilator")
    run_checked(_design(build_root, fmt), GEMM_TESTS, sim="verilator", seed=42)


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", ["mxsf", "fp8_e5m2", "fp4_e2m1", "int8"])
def test_gemm_4x4_icarus(build_root, fmt):
    require_simulator("icarus")
    run_checked(_design(build_root, fmt, rows=4, cols=4, block_size=8, lanes=4, dim=16), GEMM_TESTS,
                sim="icarus", seed=43, timeout_s=3600)
