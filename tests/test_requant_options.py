# amaranth: UnusedElaboratable=no
"""The re-quantizer's numerics options (SPEC.md 8, 9): the stochastic element encoder on
the Amaranth simulator against the golden encoder, the re-quantizer with every scale
rule and both roundings against its cycle model (Amaranth simulator), the generated
Verilog of the defaults unchanged, and the cocotb regression on Verilator and Icarus."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from mxsf.golden import ELEMENT_FORMATS, get_format
from mxsf.golden.quantize import encode_stochastic
from mxsf.golden.requant_model import StreamCycle, requant_cycle_model
from mxsf.hw.maxexp import BlockMaxExponent
from mxsf.hw.requant import ElementEncoder, TileRequantizer, requant_out_layout
from mxsf.gen.verilog import build_verilog
from mxsf.sim.packing import LayoutCodec
from simsupport import require_simulator
from mxsf.sim.run import run_checked
from mxsf.sim.tests.maxexp_tests import pack_beats, unpack_beat
from mxsf.sim.tests.requant_tests import midpoint_values, random_tile_bits, scale_edge_tile_bits, special_tile_bits

from test_maxexp import compare_rows, run_amaranth_stream

REQUANT_TESTS = "mxsf.sim.tests.requant_tests"


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^scale_rounding must be one of floor, ceil, even; not 'up'$"):
        TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=4, scale_rounding="up")
    with pytest.raises(ValueError, match=r"^rounding must be one of rne, stochastic; not 'sr'$"):
        TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=4, rounding="sr")
    with pytest.raises(ValueError, match=r"^sr_bits must be an integer in \[1, 16\], not 0$"):
        TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=4, sr_bits=0)
    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 4294967295\], not -1$"):
        TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=4, seed=-1)
    with pytest.raises(ValueError, match=r"^rounding must be one of rne, stochastic; not 3$"):
        ElementEncoder(fmt="mxsf", rounding=3)
    with pytest.raises(TypeError):
        TileRequantizer("mxsf", 4, 8, 4)          # the options are keyword-only
    with pytest.raises(ValueError, match=r"^scale_rounding must be one of floor, ceil, even; not 'x'$"):
        BlockMaxExponent(n=8, lanes=8, scale_rounding="x", fmt="mxsf")


@pytest.mark.parametrize("fmt", ["mx9", "mx6", "mx4"])
def test_bdr_parameter_errors(fmt):
    """SPEC.md 8 and 9 define no other scale rule and no stochastic rounding for BDR (SPEC.md 11)."""
    for sr in ("ceil", "even"):
        with pytest.raises(ValueError, match=rf"^scale_rounding='{sr}' is not defined for {fmt}: BDR formats "
                                             r"support only scale_rounding='floor' and rounding='rne' \(SPEC\.md 11\)$"):
            TileRequantizer(fmt=fmt, lanes=4, scale_rounding=sr)
    with pytest.raises(ValueError, match=rf"^rounding='stochastic' is not defined for {fmt}: BDR formats "
                                         r"support only scale_rounding='floor' and rounding='rne' \(SPEC\.md 11\)$"):
        TileRequantizer(fmt=fmt, lanes=4, rounding="stochastic", sr_bits=8, seed=3)
    rq = TileRequantizer(fmt=fmt, lanes=4, scale_rounding="floor", rounding="rne", sr_bits=5, seed=7)
    assert rq.options == {} and (rq.rows, rq.cols) == (1, 16)


def test_properties():
    rq = TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=4, scale_rounding="ceil", rounding="stochastic", sr_bits=5, seed=7)
    assert rq.params == {"fmt": "mxsf", "rows": 4, "cols": 8, "lanes": 4, "stages": 1,
                         "scale_rounding": "ceil", "rounding": "stochastic", "sr_bits": 5, "seed": 7}
    assert rq.module_name == "requant_mxsf_4x8_l4_ceil_sr5"
    assert rq.latency == rq.stages + 3                          # the options cost no cycle
    assert TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=4, sr_bits=5).params == TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=4).params
    enc = ElementEncoder.probe(fmt="int8", rounding="stochastic", sr_bits=12)
    assert len(enc.rand) == 12 and enc.latency == 0
    assert not hasattr(ElementEncoder.probe(fmt="int8"), "rand")


# ------------------------------------------------------------------------------------
# Stochastic encoder (Amaranth simulator)


def _encode_sr_hw(fmt, R, bits, exps, rands):
    dut = ElementEncoder(fmt=fmt, rounding="stochastic", sr_bits=R)
    got = []

    async def bench(ctx):
        for b, e, r in zip(bits, exps, rands):
            ctx.set(dut.value.as_value(), int(b))
            ctx.set(dut.exp, int(e))
            ctx.set(dut.rand, int(r))
            got.append(ctx.get(dut.code.as_value()))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got)


@pytest.mark.parametrize("fmt,R", [("mxsf", 8), ("fp8_e4m3", 16), ("int8", 3), ("fp4_e2m1", 1),
                                   ("fp8_e5m2", 8), ("fp6_e3m2", 5), ("fp6_e2m3", 8), ("fp8_e2m5", 12)])
def test_stochastic_encoder(fmt, R):
    """Every value and midpoint with its float32 neighbours at three scales, and random
    values over 40 binades below the scale; r random, 0 and 2^R - 1."""
    rng = np.random.default_rng(R)
    f = get_format(fmt)
    base = midpoint_values(fmt)
    xs, es = [], []
    for E in (-127, 0, 127 - f.emax_elem):
        x = np.ldexp(base, E).astype(np.float32)
        with np.errstate(over="ignore"):
            x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))])
        xs.append(x[np.isfinite(x)])
        es.append(np.full(xs[-1].size, E))
    n = 400
    E = rng.integers(-110, 110, n)
    x = np.ldexp(rng.standard_normal(n), E + f.emax_elem - rng.integers(0, 40, n)).astype(np.float32)
    xs.append(x)
    es.append(E)
    x = np.concatenate(xs)
    E = np.concatenate(es)
    rands = rng.integers(0, 1 << R, x.size)
    rands[::7] = 0
    rands[1::7] = (1 << R) - 1
    y = np.ldexp(x.astype(np.float64), -E).astype(np.float32)
    ok = np.abs(y) < 2.0 ** (f.emax_elem + 2)
    x, E, y, rands = x[ok], E[ok], y[ok], rands[ok]
    want = encode_stochastic(y, rands.astype(np.uint32), fmt, R).astype(np.int64)
    got = _encode_sr_hw(fmt, R, x.view(np.uint32), E, rands)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} of {x.size} wrong, first: x={x[bad[0]]!r} E={E[bad[0]]} "
                           f"r={rands[bad[0]]} expected {want[bad[0]]:#x} got {got[bad[0]]:#x}")


# ------------------------------------------------------------------------------------
# Re-quantizer on the Amaranth simulator, against the cycle model


AMARANTH_CASES = [
    ("fp8_e4m3", 2, 4, 2, 1, dict(scale_rounding="ceil")),
    ("int8", 1, 4, 4, 0, dict(scale_rounding="even")),
    ("mxsf", 2, 4, 4, 1, dict(rounding="stochastic", sr_bits=8, seed=5)),
    ("fp4_e2m1", 3, 2, 3, 1, dict(scale_rounding="even", rounding="stochastic", sr_bits=3, seed=2 ** 32 - 1)),
]


@pytest.mark.parametrize("fmt,rows,cols,lanes,stages,options", AMARANTH_CASES)
def test_requant_options_amaranth(fmt, rows, cols, lanes, stages, options):
    rng = np.random.default_rng(rows * cols * lanes)
    dut = TileRequantizer(fmt=fmt, rows=rows, cols=cols, lanes=lanes, stages=stages, **options)
    n = rows * cols
    tiles = special_tile_bits(rng, fmt, n)[::3] + random_tile_bits(rng, n, 8) + scale_edge_tile_bits(fmt, n, rng)[::4]
    beats = pack_beats(tiles, lanes)
    inputs, outputs = run_amaranth_stream(dut, beats, rng=rng, idle_prob=0.3, stall_prob=0.4,
                                          drain=dut.latency + 2 * dut.beats_per_tile + 4)
    trace = [StreamCycle(unpack_beat(p, lanes) if v else None, bool(r)) for v, p, r in inputs]
    rows_out = requant_cycle_model(trace, fmt=fmt, rows=rows, cols=cols, lanes=lanes, latency=dut.latency,
                                   **options)
    codec = LayoutCodec(requant_out_layout(fmt, lanes))

    def pack(b):
        return codec.pack({"codes": list(b.codes), "scale": b.scale, "first": int(b.first), "last": int(b.last)})

    assert sum(r.o_valid and ready for r, (_, _, ready) in zip(rows_out, inputs)) == len(beats)
    bad = compare_rows(rows_out, outputs, pack)
    assert bad is None, f"first mismatch at cycle {bad[0]}: {bad[1]}"


# ------------------------------------------------------------------------------------
# cocotb regression (the smallest designs that exercise each option)

#: ceil, even, rne and stochastic each on Icarus, ceil + stochastic also on Verilator
#: (floor/rne is test_requant.py's); the last two designs run behind ``-m slow``.
COCOTB_DESIGNS = [
    ("fp8_e4m3", 2, 4, 4, dict(scale_rounding="ceil")),
    ("int8", 1, 4, 4, dict(scale_rounding="even")),
    ("fp4_e2m1", 2, 4, 2, dict(scale_rounding="ceil", rounding="stochastic", sr_bits=3, seed=2 ** 32 - 1)),
    ("mxsf", 2, 4, 4, dict(rounding="stochastic", sr_bits=8, seed=5)),
    ("fp8_e5m2", 2, 4, 4, dict(scale_rounding="even", rounding="stochastic", sr_bits=16, seed=1)),
]
_IDS = [f"{d[0]}-{'-'.join(map(str, d[4].values()))}" for d in COCOTB_DESIGNS]


def _design(build_root, fmt, rows, cols, lanes, options):
    return build_verilog(TileRequantizer, {"fmt": fmt, "rows": rows, "cols": cols, "lanes": lanes, **options},
                         name=f"requant_{get_format(fmt).name}", root=build_root)


@pytest.mark.sim
@pytest.mark.parametrize("fmt,rows,cols,lanes,options",
                         [d if k == 2 else pytest.param(*d, marks=pytest.mark.slow) for k, d in enumerate(COCOTB_DESIGNS[:3])],
                         ids=_IDS[:3])
def test_requant_options_verilator(build_root, fmt, rows, cols, lanes, options):
    require_simulator("verilator")
    run_checked(_design(build_root, fmt, rows, cols, lanes, options), REQUANT_TESTS, sim="verilator", seed=41,
                testcase=["random_tiles", "special_tiles", "midpoints", "scale_edges", "backpressure"],
                config={"count": 24})


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt,rows,cols,lanes,options", COCOTB_DESIGNS[3:], ids=_IDS[3:])
def test_requant_options_more_verilator(build_root, fmt, rows, cols, lanes, options):
    require_simulator("verilator")
    run_checked(_design(build_root, fmt, rows, cols, lanes, options), REQUANT_TESTS, sim="verilator", seed=42,
                config={"count": 60}, timeout_s=3600)


@pytest.mark.sim
@pytest.mark.parametrize("fmt,rows,cols,lanes,options", COCOTB_DESIGNS[:3], ids=_IDS[:3])
def test_requant_options_icarus(build_root, fmt, rows, cols, lanes, options):
    require_simulator("icarus")
    run_checked(_design(build_root, fmt, rows, cols, lanes, options), REQUANT_TESTS, sim="icarus", seed=43,
                testcase=["random_tiles", "special_tiles", "midpoints", "scale_edges"], config={"count": 12})


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", [f for f in ELEMENT_FORMATS if not get_format(f).microexp_group])
@pytest.mark.parametrize("options", [dict(scale_rounding="ceil"), dict(scale_rounding="even"),
                                     dict(rounding="stochastic", sr_bits=8, seed=3)])
def test_requant_options_all_formats_verilator(build_root, fmt, options):
    require_simulator("verilator")
    run_checked(_design(build_root, fmt, 4, 8, 4, options), REQUANT_TESTS, sim="verilator", seed=44,
                config={"count": 60}, timeout_s=3600)


# ------------------------------------------------------------------------------------
# MXGemm's output re-quantizer with the options


GEMM_OPTIONS = dict(scale_rounding="ceil", rounding="stochastic", sr_bits=4, seed=9)


def test_gemm_options_amaranth():
    from mxsf.golden import matmul, quantize_tiles
    from mxsf.hw.gemm import MXGemm
    from mxsf.sim.tests.gemm_tests import expected_run, gemm_operands
    from test_gemm import amaranth_gemm

    rng = np.random.default_rng(32)
    gemm = MXGemm(fmt="mxsf", rows=2, cols=2, block_size=4, lanes=4, dim=8, **GEMM_OPTIONS)
    assert gemm.params["scale_rounding"] == "ceil" and gemm.module_name.endswith("_ceil_sr4")
    xa, xb = gemm_operands(rng, gemm)
    qa, qb = quantize_tiles(xa, "mxsf", (4, 4)), quantize_tiles(xb, "mxsf", (4, 4))
    runs = [(0, 1, 0.0), (1, 0, 0.5)]
    for index, ((ta, tb, _), got) in enumerate(zip(runs, amaranth_gemm(gemm, qa, qb, runs, rng))):
        acc, o = expected_run(gemm, qa, qb, ta, tb, tile_offset=index * gemm.tiles)
        assert got["acc"] == acc, f"float32 C differs (transpose_a={ta}, transpose_b={tb})"
        assert got["o"] == o, f"MX C differs (transpose_a={ta}, transpose_b={tb})"
    # the first run, tile by tile from reset, is quantize_tiles of the whole C
    c = matmul(qa, qb.T)
    q = quantize_tiles(c, "mxsf", (2, 2), **GEMM_OPTIONS)
    _, o = expected_run(gemm, qa, qb, 0, 1)
    n_tc = gemm.dim // 2
    for k, beat in enumerate(o):
        t, r = divmod(k, 2)
        assert beat["codes"] == [int(x) for x in q.codes[(t // n_tc) * 2 + r, (t % n_tc) * 2:(t % n_tc) * 2 + 2]]
        assert beat["scale"] == int(q.scale_e8m0[t // n_tc, t % n_tc])


@pytest.mark.sim
def test_gemm_options_icarus(build_root):
    from mxsf.hw.gemm import MXGemm
    require_simulator("icarus")
    design = build_verilog(MXGemm, {"fmt": "fp8_e4m3", "rows": 2, "cols": 2, "block_size": 4, "lanes": 4,
                                    "dim": 8, **GEMM_OPTIONS}, name="gemm_fp8_e4m3", root=build_root)
    run_checked(design, "mxsf.sim.tests.gemm_tests", sim="icarus", seed=45)
