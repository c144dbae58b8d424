# amaranth: UnusedElaboratable=no
"""Tile re-quantizer and element encoder: parameters, the encoder on every rounding
boundary (Amaranth simulator), the re-quantizer against its cycle model (Amaranth
simulator), Verilog generation, and the cocotb regression on Verilator and Icarus."""

import re

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from mxsf.golden import ELEMENT_FORMATS, get_format
from mxsf.golden.quantize import encode_exact
from mxsf.golden.requant_model import StreamCycle, requant_cycle_model
from mxsf.hw import requant as requant_mod
from mxsf.hw.requant import ElementEncoder, TileRequantizer, requant_out_layout
from mxsf.gen.verilog import build_verilog
from mxsf.sim.packing import LayoutCodec
from simsupport import require_simulator
from mxsf.sim.run import run_checked
from mxsf.sim.tests.maxexp_tests import pack_beats, unpack_beat
from mxsf.sim.tests.requant_tests import midpoint_tile_bits, midpoint_values, random_tile_bits, special_tile_bits

from test_maxexp import compare_rows, run_amaranth_stream

REQUANT_TESTS = "mxsf.sim.tests.requant_tests"


def test_all():
    for name in requant_mod.__all__:
        assert hasattr(requant_mod, name), name


# ------------------------------------------------------------------------------------
# Parameters


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^fmt must be one of .*; not 'fp9'$"):
        TileRequantizer(fmt="fp9", rows=4, cols=8, lanes=8)
    with pytest.raises(ValueError, match=r"^fmt must be an MX element format .*; not 'bf16'$"):
        TileRequantizer(fmt="bf16", rows=4, cols=8, lanes=8)
    with pytest.raises(ValueError, match=r"^rows must be an integer in \[1, 1024\], not 0$"):
        TileRequantizer(fmt="mxsf", rows=0, cols=8, lanes=8)
    with pytest.raises(TypeError, match=r"^cols must be an integer, not '8'$"):
        TileRequantizer(fmt="mxsf", rows=4, cols="8", lanes=8)
    with pytest.raises(ValueError, match=r"^rows \* cols must be at most 65536, not 512 \* 256 = 131072$"):
        TileRequantizer(fmt="mxsf", rows=512, cols=256, lanes=8)
    with pytest.raises(ValueError, match=r"^lanes must divide rows\*cols=32 \(one of \[1, 2, 4, 8, 16, 32\]\), not 3$"):
        TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=3)
    with pytest.raises(ValueError, match=r"^lanes must be an integer in \[1, 32\], not 64$"):
        TileRequantizer(fmt="mxsf", rows=4, cols=8, lanes=64)
    with pytest.raises(ValueError, match=r"^stages must be an integer in \[0, 0\], not 1$"):
        TileRequantizer(fmt="mxsf", rows=1, cols=32, lanes=32, stages=1)      # one beat a tile: no tree register
    with pytest.raises(ValueError, match=r"^stages must be an integer in \[0, 3\], not 4$"):
        TileRequantizer(fmt="mxsf", rows=32, cols=32, lanes=8, stages=4)
    with pytest.raises(ValueError, match=r"^fmt must be one of .*; not 'e4m3'$"):
        ElementEncoder(fmt="e4m3")


def test_properties_and_latency():
    rq = TileRequantizer(fmt="mxfp8_e4m3", rows=32, cols=32, lanes=8)
    assert rq.fmt.name == "fp8_e4m3" and rq.beats_per_tile == 128 and rq.stages == 1
    assert rq.latency == rq.stages + 3
    assert TileRequantizer(fmt="mxsf", rows=1, cols=32, lanes=32).stages == 0            # capped at beats - 1
    assert TileRequantizer(fmt="mxsf", rows=32, cols=32).lanes == 32
    assert TileRequantizer(fmt="int8", rows=2, cols=2, lanes=2, stages=1).latency == 4
    assert rq.params == {"fmt": "fp8_e4m3", "rows": 32, "cols": 32, "lanes": 8, "stages": 1}


# ------------------------------------------------------------------------------------
# Element encoder on the Amaranth simulator


def _encode_hw(fmt, bits, exps):
    dut = ElementEncoder(fmt=fmt)
    got = []

    async def bench(ctx):
        for b, e in zip(bits, exps):
            ctx.set(dut.value.as_value(), int(b))
            ctx.set(dut.exp, int(e))
            got.append(ctx.get(dut.code.as_value()))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got)


def _check_encoder(fmt, x32, exps):
    bits = np.ascontiguousarray(x32, dtype=np.float32).view(np.uint32)
    want = encode_exact(x32, exps, fmt).astype(np.int64)
    got = _encode_hw(fmt, bits, exps)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{bad.size} of {bits.size} wrong, first: x=0x{bits[bad[0]]:08x} "
                           f"E={exps[bad[0]]} expected {want[bad[0]]:#x} got {got[bad[0]]:#x}")


@pytest.mark.parametrize("fmt", ELEMENT_FORMATS)
def test_encoder_midpoints(fmt):
    """Every value and every midpoint of the format (ties, saturation) with its float32
    neighbours, at a low (subnormal float32 inputs), a neutral and a high scale."""
    base = midpoint_values(fmt)
    xs, es = [], []
    for E in (-127, 0, 127 - get_format(fmt).emax_elem):
        x = np.ldexp(base, E).astype(np.float32)
        with np.errstate(over="ignore"):
            x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))])
        x = x[np.isfinite(x)]
        xs.append(x)
        es.append(np.full(x.size, E))
    _check_encoder(fmt, np.concatenate(xs), np.concatenate(es))


@pytest.mark.parametrize("fmt", ELEMENT_FORMATS)
def test_encoder_random(fmt):
    """Random float32 values (subnormals and ±0 included) at random E in [-128, 127]."""
    rng = np.random.default_rng(sum(map(ord, fmt)))
    n = 500
    E = rng.integers(-128, 128, n)
    field = np.clip(E + 127 + rng.integers(-30, 6, n), 0, 254).astype(np.uint32)
    field[: n // 10] = 0                                             # float32 subnormals and zeros
    mant = rng.integers(0, 1 << 23, n, dtype=np.uint32)
    mant[: n // 40] = 0
    sign = rng.integers(0, 2, n, dtype=np.uint32) << np.uint32(31)
    bits = sign | field << np.uint32(23) | mant
    _check_encoder(fmt, bits.view(np.float32), E)


# ------------------------------------------------------------------------------------
# Re-quantizer on the Amaranth simulator, against the cycle model


@pytest.mark.parametrize("fmt,rows,cols,lanes,stages", [("mxsf", 2, 4, 2, 1), ("int8", 1, 4, 4, 0),
                                                        ("fp4_e2m1", 3, 2, 3, 1), ("mx6", 1, 16, 4, 1),
                                                        ("mx9", 1, 16, 16, 0)])
def test_requant_amaranth_against_model(fmt, rows, cols, lanes, stages):
    rng = np.random.default_rng(rows * cols * lanes)
    dut = TileRequantizer(fmt=fmt, rows=rows, cols=cols, lanes=lanes, stages=stages)
    n = rows * cols
    tiles = special_tile_bits(rng, fmt, n)[::2] + random_tile_bits(rng, n, 12)
    if get_format(fmt).microexp_group:                  # BDR: the midpoints of both pair grids too
        tiles += midpoint_tile_bits(fmt, n, [-127, 0], rng)[::3]
    beats = pack_beats(tiles, lanes)
    inputs, outputs = run_amaranth_stream(dut, beats, rng=rng, idle_prob=0.3, stall_prob=0.5,
                                          drain=dut.latency + 2 * dut.beats_per_tile + 4)
    trace = [StreamCycle(unpack_beat(p, lanes) if v else None, bool(r)) for v, p, r in inputs]
    rows_out = requant_cycle_model(trace, fmt=fmt, rows=rows, cols=cols, lanes=lanes, latency=dut.latency)
    codec = LayoutCodec(requant_out_layout(fmt, lanes))

    def pack(b):
        v = {"codes": list(b.codes), "scale": b.scale, "first": int(b.first), "last": int(b.last)}
        if b.micro is not None:
            v["micro"] = list(b.micro)
        return codec.pack(v)

    assert sum(r.o_valid and ready for r, (_, _, ready) in zip(rows_out, inputs)) == len(beats)
    bad = compare_rows(rows_out, outputs, pack)
    assert bad is None, f"first mismatch at cycle {bad[0]}: {bad[1]}"


# ------------------------------------------------------------------------------------
# Verilog


@pytest.mark.parametrize("fmt,rows,cols,lanes", [("mxsf", 32, 32, 8), ("int8", 1, 32, 16),
                                                 ("fp6_e3m2", 3, 5, 5), ("fp8_e5m2", 16, 16, 4)])
def test_verilog_convert(fmt, rows, cols, lanes, build_root):
    design = build_verilog(TileRequantizer, {"fmt": fmt, "rows": rows, "cols": cols, "lanes": lanes},
                           name="requant", root=build_root)
    ports = {p.name: p.width for p in design.ports}
    assert ports["i__payload"] == 32 * lanes
    assert ports["o__payload"] == get_format(fmt).bits * lanes + 10
    assert design.latency == TileRequantizer(fmt=fmt, rows=rows, cols=cols, lanes=lanes).latency


def test_parameters_change_the_design():
    def summary(**p):
        text = verilog.convert(TileRequantizer(**p), name="rq")
        mems = re.findall(r"reg \[(\d+):0\] (\w+) \[(\d+):0\];", text)
        depth = [(int(w) + 1, int(d) + 1) for w, name, d in mems]
        encoders = len(set(re.findall(r"^module \\rq\.enc(\d+) ", text, re.M)))
        return depth, encoders
    # memory: two tiles of beats (lanes float32 values a word); one encoder per lane
    assert summary(fmt="mxsf", rows=4, cols=8, lanes=4) == ([(128, 16)], 4)
    assert summary(fmt="mxsf", rows=4, cols=8, lanes=2) == ([(64, 32)], 2)
    assert summary(fmt="mxsf", rows=8, cols=8, lanes=2) == ([(64, 64)], 2)
    assert summary(fmt="fp4_e2m1", rows=3, cols=5, lanes=3) == ([(96, 10)], 3)


# ------------------------------------------------------------------------------------
# cocotb regression


def _design(build_root, fmt, rows, cols, lanes):
    return build_verilog(TileRequantizer, {"fmt": fmt, "rows": rows, "cols": cols, "lanes": lanes},
                         name=f"requant_{get_format(fmt).name}", root=build_root)


#: Default-suite designs: every format once, each with a different tile shape, so the
#: builds also cover a non-power-of-two tile (3 x 5), a 1D block of one beat (1 x 4),
#: a 32 x 32 tile and lanes from 2 to 5 (8 and 32 lanes: the slow suite and the benchmark).
DEFAULT_DESIGNS = [
    ("fp8_e4m3", 3, 5, 5),
    ("fp8_e5m2", 4, 8, 4),
    ("fp6_e3m2", 2, 8, 4),
    ("fp6_e2m3", 4, 8, 4),
    ("fp4_e2m1", 4, 4, 2),
    ("int8", 1, 4, 4),
    ("fp8_e2m5", 4, 8, 4),
    ("mxsf", 4, 8, 4),
    ("mxsf", 32, 32, 4),
    ("mx9", 1, 16, 16),         # BDR: a tile is one 1 x 16 block (SPEC.md 11)
    ("mx6", 1, 16, 4),
    ("mx4", 1, 16, 8),
]


def _requant_regression(build_root, sim, fmt, rows, cols, lanes):
    big = rows * cols > 64
    # BDR: both pair grids' midpoints at the clamp end, 2^0 and the top (the rest: -m slow)
    scales = {"scales": [-127, -126, 0, 127]} if get_format(fmt).microexp_group else {}
    run_checked(_design(build_root, fmt, rows, cols, lanes), REQUANT_TESTS, sim=sim, seed=31,
                testcase=["random_tiles", "special_tiles", "midpoints", "backpressure", "back_to_back"],
                config={"count": 12 if big else 50, **scales})


#: The design of the default suite on Verilator (the others run on Icarus, whose builds
#: cost 1-3 s against Verilator's 15-60): the 32 x 32 MXSF tile.
VERILATOR_DESIGNS = [("mxsf", 32, 32, 4)]


@pytest.mark.sim
@pytest.mark.parametrize("fmt,rows,cols,lanes", [d if d in VERILATOR_DESIGNS else pytest.param(*d, marks=pytest.mark.slow)
                                                 for d in DEFAULT_DESIGNS])
def test_requant_verilator(build_root, fmt, rows, cols, lanes):
    """Random tiles, special tiles, every midpoint at several scales, heavy back-pressure,
    and the sustained rate, every cycle against the cycle model."""
    require_simulator("verilator")
    _requant_regression(build_root, "verilator", fmt, rows, cols, lanes)


def _requant_vectors(build_root, sim, fmt, rows, cols, lanes):
    """The cocotb regression's stimulus through vector files: random, special and
    midpoint tiles (scales at both clamp ends) with input gaps and output stalls, heavy
    back-pressure, and back to back (one beat a cycle, no stall); every cycle's
    ``i.ready``, ``o.valid`` and valid payload against the cycle model."""
    from mxsf.sim.vector_benches import requant_case, run_case

    n = rows * cols
    rng = np.random.default_rng([37, n, lanes])
    design = _design(build_root, fmt, rows, cols, lanes)
    comp = TileRequantizer(fmt=fmt, rows=rows, cols=cols, lanes=lanes)
    f = get_format(fmt)
    scales = [-140, -127, -126 + f.emax_elem, -40, 0, 63, 127 - f.emax_elem]
    tiles = (random_tile_bits(rng, n, 50) + special_tile_bits(rng, fmt, n)
             + (midpoint_tile_bits(fmt, n, scales, rng) if n >= 2 else []))
    beats = n // lanes
    for name, tt, idle, stall in (("tiles", tiles, 0.2, 0.3),
                                  ("backpressure", random_tile_bits(rng, n, 25), 0.4, 0.7),
                                  ("back_to_back", random_tile_bits(rng, n, 12), 0.0, 0.0)):
        r = run_case(requant_case(design, comp, tt, seed=37, idle_prob=idle, stall_prob=stall, name=name),
                     sim, encoding="bin").check()
        assert r.compared_outputs >= beats * len(tt), name


@pytest.mark.sim
@pytest.mark.parametrize("fmt,rows,cols,lanes", [d for d in DEFAULT_DESIGNS if d not in VERILATOR_DESIGNS
                                                 and get_format(d[0]).microexp_group])
def test_requant_icarus(build_root, fmt, rows, cols, lanes):
    """The regression above on Icarus for the BDR designs (their microexponent outputs
    go through cocotb; the vector case packs codes and scales only)."""
    require_simulator("icarus")
    _requant_regression(build_root, "icarus", fmt, rows, cols, lanes)


@pytest.mark.sim
@pytest.mark.parametrize("fmt,rows,cols,lanes", [d for d in DEFAULT_DESIGNS if d not in VERILATOR_DESIGNS
                                                 and not get_format(d[0]).microexp_group])
def test_requant_vectors_icarus(build_root, fmt, rows, cols, lanes):
    """Every other default design on Icarus, through vector files (one build, no Python
    in the simulation loop)."""
    require_simulator("icarus")
    _requant_vectors(build_root, "icarus", fmt, rows, cols, lanes)


@pytest.mark.sim
@pytest.mark.parametrize("fmt,lanes", [pytest.param("mx9", 8, marks=pytest.mark.slow), ("mx6", 4),
                                       pytest.param("mx4", 16, marks=pytest.mark.slow)])
def test_bdr_requant_icarus(build_root, fmt, lanes):
    """MX9/MX6/MX4 re-quantizer on Icarus: every midpoint of both pair grids, specials, random."""
    require_simulator("icarus")
    run_checked(_design(build_root, fmt, 1, 16, lanes), REQUANT_TESTS, sim="icarus", seed=36,
                testcase=["random_tiles", "special_tiles", "midpoints", "backpressure"], config={"count": 40})


def test_bdr_requant_parameters():
    with pytest.raises(ValueError, match=r"^rows, cols must be 1, 16 for mx9 \(a tile is one block .*not 32, 32$"):
        TileRequantizer(fmt="mx9", rows=32, cols=32)
    with pytest.raises(ValueError, match=r"^lanes must be one of \[2, 4, 8, 16\] for mx6 .*not 1$"):
        TileRequantizer(fmt="mx6", rows=1, cols=16, lanes=1)
    rq = TileRequantizer(fmt="mx4")
    assert (rq.rows, rq.cols, rq.lanes) == (1, 16, 16)
    assert requant_out_layout("mx9", 8).size == 8 * 8 + 8 + 2 + 4


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", [f for f in ELEMENT_FORMATS if get_format(f).allows_tiles])
@pytest.mark.parametrize("lanes", [8, 32])
def test_requant_32x32_verilator(build_root, fmt, lanes):
    require_simulator("verilator")
    run_checked(_design(build_root, fmt, 32, 32, lanes), REQUANT_TESTS, sim="verilator", seed=34,
                config={"count": 60, "scales": [-150, -127, -126, -100, -30, 0, 1, 30, 100, 127 - get_format(fmt).emax_elem]},
                timeout_s=3600)


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", [f for f in ELEMENT_FORMATS if get_format(f).allows_tiles])
def test_requant_icarus_all_formats(build_root, fmt):
    require_simulator("icarus")
    run_checked(_design(build_root, fmt, 4, 8, 4), REQUANT_TESTS, sim="icarus", seed=35,
                testcase=["random_tiles", "special_tiles", "midpoints", "backpressure", "back_to_back"],
                config={"count": 30}, timeout_s=3600)
