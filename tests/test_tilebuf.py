# amaranth: UnusedElaboratable=no
"""Tile buffer: parameters, both read orientations against the golden cycle model on
Amaranth's simulator, and the cocotb regression (every cycle, stalls, read-back of the
stored codes) on Verilator and Icarus."""

import numpy as np
import pytest
from amaranth.hdl import Const
from amaranth.sim import Simulator

from mxsf.golden import quantize_tiles
from mxsf.golden.systolic_model import tile_read_beats, tilebuf_cycle_model
from mxsf.hw import tilebuf as tilebuf_mod
from mxsf.hw.tilebuf import TileBuffer
from mxsf.gen.verilog import build_verilog
from simsupport import require_simulator
from mxsf.sim.run import run_checked

TILEBUF_TESTS = "mxsf.sim.tests.tilebuf_tests"


def test_all():
    for name in tilebuf_mod.__all__:
        assert hasattr(tilebuf_mod, name), name


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^fmt must be an MX element format .*; not 'bf16'$"):
        TileBuffer(fmt="bf16", rows=8, cols=8, block_size=4)
    with pytest.raises(ValueError, match=r"^block_size must be a power of two in \[1, 1024\], not 24$"):
        TileBuffer(fmt="mxsf", rows=48, cols=48, block_size=24)
    with pytest.raises(ValueError, match=r"^lanes must be a power of two in \[1, 8\], not 16$"):
        TileBuffer(fmt="mxsf", rows=16, cols=16, block_size=8, lanes=16)
    with pytest.raises(ValueError, match=r"^vecs must be a power of two in \[1, 8\], not 3$"):
        TileBuffer(fmt="mxsf", rows=16, cols=16, block_size=8, lanes=4, vecs=3)
    with pytest.raises(ValueError, match=r"^cols must be a multiple of block_size=8, not 12$"):
        TileBuffer(fmt="mxsf", rows=16, cols=12, block_size=8)
    with pytest.raises(TypeError, match=r"^rows must be an integer, not 16.0$"):
        TileBuffer(fmt="mxsf", rows=16.0, cols=16, block_size=8)


def test_properties():
    b = TileBuffer(fmt="mxfp8_e4m3", rows=16, cols=32, block_size=8, lanes=2, vecs=4)
    assert (b.word_size, b.latency) == (4, 2)
    assert (b.groups(False), b.groups(True)) == (4, 8)
    assert (b.beats(False), b.beats(True)) == (16, 8)
    assert b.params == {"fmt": "fp8_e4m3", "rows": 16, "cols": 32, "block_size": 8, "lanes": 2, "vecs": 4}


def test_read_model_is_the_transpose():
    """The golden read model: transposed beats of S are the stored beats of S.T."""
    rng = np.random.default_rng(1)
    q = quantize_tiles(rng.standard_normal((16, 8)).astype(np.float32), "mxsf", (4, 4))
    for g in range(2):
        t = tile_read_beats(q.codes, q.scale_e8m0, block_size=4, lanes=2, vecs=4, group=g, transpose=True)
        s = tile_read_beats(q.T.codes, q.T.scale_e8m0, block_size=4, lanes=2, vecs=4, group=g, transpose=False)
        assert t == s


def amaranth_run(buf, codes, scales, commands, rng, stall_prob=0.3):
    """Load, run ``commands``; return (per-cycle expected, per-cycle got) and the beats taken."""
    m = buf.word_size
    writes = [("c", r, s, [int(x) for x in codes[r, s * m:(s + 1) * m]])
              for r in range(buf.rows) for s in range(buf.cols // m)]
    writes += [("s", a, b, int(scales[a, b])) for a in range(scales.shape[0]) for b in range(scales.shape[1])]
    cycles, got = [], []
    n_beats = sum(buf.beats(t) for t, _ in commands)

    async def bench(ctx):
        ci, taken, cyc = 0, 0, 0
        while taken < n_beats:
            cyc += 1
            assert cyc < 10000
            op = writes[cyc - 1] if cyc - 1 < len(writes) else None
            row = {"w_codes": None, "w_scale": None, "cmd": None, "o_ready": int(rng.random() >= stall_prob)}
            ctx.set(buf.w_codes.valid, op is not None and op[0] == "c")
            ctx.set(buf.w_scale.valid, op is not None and op[0] == "s")
            if op is not None and op[0] == "c":
                ctx.set(buf.w_codes.payload, {"row": op[1], "seg": op[2], "codes": op[3]})
                row["w_codes"] = op[1:]
            elif op is not None:
                ctx.set(buf.w_scale.payload, {"tile_row": op[1], "tile_col": op[2], "scale": op[3]})
                row["w_scale"] = op[1:]
            present = op is None and ci < len(commands)
            ctx.set(buf.cmd.valid, present)
            if present:
                ctx.set(buf.cmd.payload, {"transpose": commands[ci][0], "group": commands[ci][1]})
                row["cmd"] = commands[ci]
            ctx.set(buf.o.ready, row["o_ready"])
            await ctx.delay(1e-9)
            ov = ctx.get(buf.o.valid)
            p = ctx.get(buf.o.payload)
            beat = ([[Const.cast(x).value for x in v] for v in p["codes"]], [Const.cast(x).value for x in p["scale"]],
                    bool(p["first"]), bool(p["last"])) if ov else None
            got.append({"cmd_ready": ctx.get(buf.cmd.ready), "o_valid": ov, "beat": beat})
            if present and ctx.get(buf.cmd.ready):
                ci += 1
            if ov and row["o_ready"]:
                taken += 1
            cycles.append(row)
            await ctx.tick()

    sim = Simulator(buf)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    expected = tilebuf_cycle_model(cycles, rows=buf.rows, cols=buf.cols, block_size=buf.block_size,
                                   lanes=buf.lanes, vecs=buf.vecs)
    return expected, got


@pytest.mark.parametrize("rows,cols,bs,lanes,vecs", [(8, 16, 4, 4, 4), (16, 8, 8, 2, 4), (8, 16, 8, 4, 2)])
def test_tilebuf_amaranth(rows, cols, bs, lanes, vecs):
    rng = np.random.default_rng(rows + cols + lanes)
    buf = TileBuffer(fmt="fp8_e5m2", rows=rows, cols=cols, block_size=bs, lanes=lanes, vecs=vecs)
    codes = rng.integers(0, 256, size=(rows, cols))
    scales = rng.integers(0, 256, size=(rows // bs, cols // bs))
    commands = [(t, g) for t in (0, 1) for g in range(buf.groups(t))]
    commands = [commands[i] for i in rng.permutation(len(commands))]
    expected, got = amaranth_run(buf, codes, scales, commands, rng)
    bad = [(c, e, g) for c, (e, g) in enumerate(zip(expected, got)) if e != g]
    assert not bad, f"{len(bad)} mismatching cycles, first: {bad[:2]}"


# ------------------------------------------------------------------------------------
# cocotb regression


def _design(build_root, **params):
    return build_verilog(TileBuffer, {"fmt": "mxsf", **params}, name="tilebuf", root=build_root)


@pytest.mark.slow
@pytest.mark.sim
def test_tilebuf_verilator(build_root):
    """(The GEMM's vector regression runs a tile buffer on Verilator in the default suite.)"""
    require_simulator("verilator")
    run_checked(_design(build_root, rows=16, cols=8, block_size=4, lanes=4, vecs=2), TILEBUF_TESTS,
                sim="verilator", seed=21)


@pytest.mark.sim
def test_tilebuf_icarus(build_root):
    require_simulator("icarus")
    run_checked(_design(build_root, rows=8, cols=16, block_size=8, lanes=2, vecs=4), TILEBUF_TESTS,
                sim="icarus", seed=22)
