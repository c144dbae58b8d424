# amaranth: UnusedElaboratable=no
"""MX processing element: decoder and PE on Amaranth's simulator (fast), and the cocotb
regression on Verilator and Icarus against the golden cycle model."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from mxsf.golden import ELEMENT_FORMATS, get_format
from mxsf.golden.models import pe_cycle_model
from mxsf.hw.formats import ElementDecoder
from mxsf.hw.pe import MXProcessingElement
from mxsf.sim import pe_stimulus as stim
from mxsf.gen.verilog import build_verilog
from simsupport import require_simulator
from mxsf.sim.run import run_checked, run_cocotb

PE_TESTS = "mxsf.sim.tests.pe_tests"
EIGHT_BIT = ["fp8_e4m3", "fp8_e5m2", "int8", "fp8_e2m5", "mxsf"]
BDR = [f for f in ELEMENT_FORMATS if get_format(f).microexp_group]          # mx9, mx6, mx4
SINGLE_SCALE = [f for f in ELEMENT_FORMATS if f not in BDR]


# ------------------------------------------------------------------------------------
# Element decoder: every code of every format


@pytest.mark.parametrize("fmt", SINGLE_SCALE)
def test_decoder_every_code(fmt):
    f = get_format(fmt)
    dut = ElementDecoder(fmt=fmt)
    got = []

    async def bench(ctx):
        for code in range(f.n_codes):
            ctx.set(dut.code, code)
            await ctx.delay(1e-9)
            o = ctx.get(dut.o)
            got.append((o["sign"], o["sig"] << o["shift"], o["zero"], o["inf"], o["nan"]))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    for code, (sign, mag, zero, inf, nan) in enumerate(got):
        v = f.values[code]
        assert nan == np.isnan(v), code
        assert inf == np.isinf(v), code
        if np.isfinite(v):
            assert mag == abs(int(f.int_values[code])), (code, mag, f.int_values[code])
            assert zero == (v == 0), code
            assert sign == (code >> (f.bits - 1) & 1), code


@pytest.mark.parametrize("fmt", BDR)
def test_bdr_decoder_every_code_and_microexponent(fmt):
    """BDR: magnitude m x 2^(1 - tau) in units of 2^-p, sign from the top bit (SPEC.md 11)."""
    f = get_format(fmt)
    p = f.man_bits
    dut = ElementDecoder(fmt=fmt)
    got = {}

    async def bench(ctx):
        for tau in (0, 1):
            for code in range(f.n_codes):
                ctx.set(dut.code, code)
                ctx.set(dut.micro, tau)
                await ctx.delay(1e-9)
                o = ctx.get(dut.o)
                got[code, tau] = (o["sign"], o["sig"] << o["shift"], o["zero"], o["inf"], o["nan"])

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == 2 * f.n_codes
    for (code, tau), (sign, mag, zero, inf, nan) in got.items():
        m = code & ((1 << p) - 1)
        assert (sign, mag, zero, inf, nan) == (code >> p, m << (1 - tau), int(m == 0), 0, 0), (code, tau)


# ------------------------------------------------------------------------------------
# Parameters


def test_pe_parameter_errors():
    with pytest.raises(ValueError, match=r"^fmt must be one of .*; not 'fp9'$"):
        MXProcessingElement(fmt="fp9")
    with pytest.raises(ValueError, match=r"^fmt must be an MX element format .*; not 'bf16'$"):
        MXProcessingElement(fmt="bf16")
    with pytest.raises(ValueError, match=r"^block_size must be an integer in \[1, 1024\], not 0$"):
        MXProcessingElement(fmt="mxsf", block_size=0)
    with pytest.raises(ValueError, match=r"^lanes must divide block_size=32 \(one of \[1, 2, 4, 8, 16, 32\]\), not 12$"):
        MXProcessingElement(fmt="mxsf", block_size=32, lanes=12)
    with pytest.raises(ValueError, match=r"^lanes must be an integer in \[1, 32\], not 64$"):
        MXProcessingElement(fmt="mxsf", block_size=32, lanes=64)
    with pytest.raises(TypeError, match=r"^block_size must be an integer, not '32'$"):
        MXProcessingElement(fmt="mxsf", block_size="32")


@pytest.mark.parametrize("fmt", BDR)
def test_bdr_pe_parameter_errors(fmt):
    with pytest.raises(ValueError, match=rf"^block_size must be 16 for {fmt} \(SPEC\.md 11.*not 32$"):
        MXProcessingElement(fmt=fmt, block_size=32, lanes=32)
    for bad in (1, 3, 6, 12, 24, 40):
        with pytest.raises(ValueError, match=rf"^lanes must be one of \[2, 4, 8, 16\] or a multiple of 16 "
                                             rf"up to 1024 for {fmt} .*, not {bad}$"):
            MXProcessingElement(fmt=fmt, block_size=16, lanes=bad)
    with pytest.raises(ValueError, match=r"^lanes must be an integer in \[1, 1024\], not 1040$"):
        MXProcessingElement(fmt=fmt, block_size=16, lanes=1040)
    pe = MXProcessingElement(fmt=fmt, block_size=16, lanes=48)
    assert (pe.blocks_per_beat, pe.beats_per_block) == (3, 1)
    assert MXProcessingElement(fmt=fmt, block_size=16, lanes=4).beats_per_block == 4


def test_pe_aliases_and_properties():
    pe = MXProcessingElement(fmt="mxfp8_e4m3", block_size=16, lanes=4)
    assert pe.fmt.name == "fp8_e4m3" and pe.beats_per_block == 4
    assert pe.latency == 3
    assert pe.params == {"fmt": "fp8_e4m3", "block_size": 16, "lanes": 4}


# ------------------------------------------------------------------------------------
# Amaranth simulator: quick check of every format (no external simulator needed)


def _amaranth_run(dut, beats, rng, idle_prob=0.3):
    trace = []
    for b in beats:
        while rng.random() < idle_prob:
            trace.append(None)
        trace.append(b)
    expected = pe_cycle_model(trace, fmt=dut.fmt.name, block_size=dut.block_size, lanes=dut.lanes,
                              latency=dut.latency, acc=dut.acc)
    got = []

    async def drive(ctx):
        for b in trace:
            if b is None:
                ctx.set(dut.i.valid, 0)
            else:
                ctx.set(dut.i.valid, 1)
                v = {"a": b.a, "b": b.b, "scale_a": b.scale_a, "scale_b": b.scale_b,
                     "first": int(b.first), "last": int(b.last)}
                if b.micro_a is not None:
                    v.update(micro_a=b.micro_a, micro_b=b.micro_b)
                ctx.set(dut.i.payload, v)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)

    async def check(ctx):
        for _ in expected:
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload.as_value())
            got.append(payload if valid else None)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(drive)
    sim.add_testbench(check)
    sim.run()
    return expected, got


@pytest.mark.parametrize("fmt,block_size,lanes", [(f, 8, 4) for f in SINGLE_SCALE]
                         + [(f, 16, lanes) for f in BDR for lanes in (4, 32)])
def test_pe_amaranth_random(fmt, block_size, lanes):
    rng = np.random.default_rng(7)
    dut = MXProcessingElement(fmt=fmt, block_size=block_size, lanes=lanes)
    beats = (stim.random_mx_dots(rng, fmt, block_size=block_size, lanes=lanes, count=12)
             + stim.framing_mx_beats(rng, fmt, block_size=block_size, lanes=lanes)
             + stim.cancelling_mx_dots(rng, fmt, block_size=block_size, lanes=lanes, count=4))
    expected, got = _amaranth_run(dut, beats, rng)
    assert sum(e is not None for e in expected) > 10
    bad = [(c, e, g) for c, (e, g) in enumerate(zip(expected, got)) if e != g]
    assert not bad, f"{len(bad)} mismatches, first (cycle, expected, got): {bad[:3]}"


# ------------------------------------------------------------------------------------
# cocotb regression


def _design(build_root, fmt, block_size=32, lanes=32, cls=MXProcessingElement):
    block_size = get_format(fmt).fixed_block_size or block_size      # mx9/mx6/mx4: 16
    return build_verilog(cls, {"fmt": fmt, "block_size": block_size, "lanes": lanes},
                         name=f"mx_pe_{get_format(fmt).name}", root=build_root)


# The bulk data of the single-scale formats (every code pair of every format on both
# simulators, random dot products, framing, cancellation) runs on the vector-file path:
# tests/test_vectors.py. The cocotb regression of MXSF keeps one configuration (multi-beat
# blocks, random idle cycles driven from Python) on Icarus, sharing the Verilog with the
# vector tests of that configuration. Its Verilator run is in -m slow: by default the same
# design runs on Verilator through vector files (test_pe_vectors_framing_multibeat) and a
# cocotb replay (test_vector_and_cocotb_paths_agree), and this cocotb module runs on
# Verilator for MX6 (test_bdr_pe_verilator).


@pytest.mark.sim
@pytest.mark.parametrize("sim", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_pe_cocotb(build_root, sim):
    require_simulator(sim)
    design = _design(build_root, "mxsf", 32, 8)
    config = {"count": 60, "pair_sample": 400} if sim == "verilator" else {"count": 12, "pair_sample": 60}
    run_checked(design, PE_TESTS, sim=sim, seed=11, config=config)


# The BDR formats (SPEC.md 11) are not on the vector-file path (its stimulus and packing
# know no microexponents): their regression is cocotb, on both simulators.


@pytest.mark.sim
@pytest.mark.parametrize("fmt,lanes", [pytest.param("mx9", 32, marks=pytest.mark.slow), ("mx6", 32),
                                       pytest.param("mx4", 32, marks=pytest.mark.slow),
                                       pytest.param("mx6", 4, marks=pytest.mark.slow),
                                       pytest.param("mx9", 16, marks=pytest.mark.slow)])
def test_bdr_pe_verilator(build_root, fmt, lanes):
    """Random multi-block dot products, back to back, cancellation, framing, sampled code pairs
    (32 lanes: two 16-element blocks a beat). MX6 shares the build of its exhaustive sweep;
    MX9, MX4 and the 4-lane MX6 run on Icarus (``test_bdr_pe_icarus_subset``)."""
    require_simulator("verilator")
    design = _design(build_root, fmt, 16, lanes)
    run_checked(design, PE_TESTS, sim="verilator", seed=11,
                config={"count": 60, "pair_sample": 400})


@pytest.mark.sim
@pytest.mark.parametrize("fmt,lanes", [("mx6", 32), pytest.param("mx4", 32, marks=pytest.mark.slow)])
def test_bdr_pe_all_code_pairs_verilator(build_root, fmt, lanes):
    """MX6 and MX4: every code pair x every microexponent pair (tau_a, tau_b) x {neutral,
    subnormal, overflow} exponents, bit for bit (32 lanes, the pair in either block; the
    same builds as ``test_bdr_pe_verilator``). MX4's 768 run on Icarus in the default suite."""
    require_simulator("verilator")
    design = _design(build_root, fmt, 16, lanes)
    run_checked(design, PE_TESTS, sim="verilator", testcase="code_pairs", seed=3,
                config={"exhaustive": True}, timeout_s=1200)


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_mx9_pe_all_code_pairs(build_root, sim):
    """MX9: all 65,536 code pairs x 4 microexponent pairs x 3 exponent sets (786,432 dot products)."""
    require_simulator(sim)
    design = _design(build_root, "mx9", 16, 16)
    run_checked(design, PE_TESTS, sim=sim, testcase="code_pairs", seed=3,
                config={"exhaustive": True}, timeout_s=6 * 3600)


@pytest.mark.sim
@pytest.mark.parametrize("fmt,lanes", [("mx9", 32), ("mx4", 32), ("mx6", 4)])
def test_bdr_pe_icarus_subset(build_root, fmt, lanes):
    require_simulator("icarus")
    design = _design(build_root, fmt, 16, lanes)
    run_checked(design, PE_TESTS, sim="icarus", seed=5, config={"count": 12, "pair_sample": 60})


@pytest.mark.sim
@pytest.mark.parametrize("fmt,lanes", [pytest.param("mx6", 16, marks=pytest.mark.slow), ("mx4", 32)])
def test_bdr_pe_all_code_pairs_icarus(build_root, fmt, lanes):
    """MX6 and MX4 exhaustive pairs on Icarus too (12,288 and 768 dot products; MX6 slow)."""
    require_simulator("icarus")
    design = _design(build_root, fmt, 16, lanes)
    run_checked(design, PE_TESTS, sim="icarus", testcase="code_pairs", seed=3,
                config={"exhaustive": True}, timeout_s=3600)


# ------------------------------------------------------------------------------------
# The harness catches a one-bit error in the hardware


class RoundsDownSometimesPE(wiring.Component):
    """A broken PE for the harness self-test: the float32 result loses its LSB whenever
    the result's three low bits are 0b011 (like a rounding that truncates)."""

    def __init__(self, fmt, block_size=32, lanes=None):
        self.inner = MXProcessingElement(fmt=fmt, block_size=block_size, lanes=lanes)
        self.latency = self.inner.latency
        super().__init__(self.inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe = pe = self.inner
        m.d.comb += [
            pe.i.valid.eq(self.i.valid),
            pe.i.payload.eq(self.i.payload),
            self.o.valid.eq(pe.o.valid),
            self.o.payload.eq(pe.o.payload.as_value() ^ (pe.o.payload.as_value()[0:3] == 0b011)),
        ]
        return m


@pytest.mark.sim
def test_harness_catches_wrong_bit(build_root):
    require_simulator("icarus")
    design = build_verilog(RoundsDownSometimesPE, {"fmt": "mxsf", "block_size": 32, "lanes": 8},
                           name="broken_pe", root=build_root)
    result = run_cocotb(design, PE_TESTS, sim="icarus", testcase="random_dots", seed=11,
                        config={"count": 30})
    assert not result.passed
    msg = result.failures[0].message
    assert "broken_pe mismatch at cycle" in msg and "on port o__payload" in msg
    assert "differing bits: 0" in msg and "expected 0x" in msg and "got      0x" in msg
    assert "produced by input cycle" in msg


# ------------------------------------------------------------------------------------
# Directed vectors on Amaranth's simulator (each compared with the golden cycle model)


def _check_directed(dut, beats, idle_prob=0.0, seed=1):
    expected, got = _amaranth_run(dut, beats, np.random.default_rng(seed), idle_prob=idle_prob)
    n = sum(e is not None for e in expected)
    assert n == sum(b.last for b in beats), "every dot product must give a result"
    bad = [(c, e, g) for c, (e, g) in enumerate(zip(expected, got)) if e != g]
    assert not bad, f"{len(bad)} mismatches, first (cycle, expected, got): {bad[:3]}"
    return expected


def _extreme_codes(f):
    """(largest positive code, code of the largest magnitude of the other sign)."""
    vals = np.where(np.isfinite(f.values), f.values, 0)
    return int(np.argmax(vals)), int(np.argmin(vals))


@pytest.mark.parametrize("fmt,lanes", [(f, n) for f in SINGLE_SCALE for n in (1, 3, 32)]
                         + [(f, n) for f in BDR for n in (2, 16, 32)])
def test_pe_every_lane_at_largest_code(fmt, lanes):
    """Every lane of a beat at the largest code, all products of one sign (both signs and,
    for int8, -2 x -2), at neutral scales and at scales where the block sum overflows
    (BDR: blocks of 16, microexponents 0, two blocks a beat at 32 lanes)."""
    f = get_format(fmt)
    pos, neg = _extreme_codes(f)
    bs = f.fixed_block_size or lanes
    k = max(bs, lanes)
    nblk = k // bs
    dut = MXProcessingElement(fmt=fmt, block_size=bs, lanes=lanes)
    beats = []
    sets = stim.pair_scale_sets(fmt)
    mu = {"micro_a": [0] * (k // 2), "micro_b": [0] * (k // 2)} if f.microexp_group else {}
    for a, b in [(pos, pos), (pos, neg), (neg, pos), (neg, neg)]:
        for sa, sb in (sets["neutral"], sets["overflow"], (127, 127 + 60)):
            beats += stim.dot_beats([a] * k, [b] * k, [sa] * nblk, [sb] * nblk, block_size=bs, lanes=lanes, **mu)
    expected = _check_directed(dut, beats)
    results = [e for e in expected if e is not None]
    assert any(r & 0x7FFFFFFF == 0x7F800000 for r in results), "no overflow to Inf was exercised"
    assert {r >> 31 for r in results} == {0, 1}, "both product signs must occur"


def test_pe_inf_times_finite_and_zero():
    """fp8_e5m2 Inf codes: +/-Inf x finite, 0 x Inf and Inf x 0 in both operand orders,
    alone in a block and with finite neighbours, and +Inf and -Inf products together."""
    fmt = "fp8_e5m2"
    inf, ninf, zero, nzero, one, three = 0x7C, 0xFC, 0x00, 0x80, 0x3C, 0x42
    dut = MXProcessingElement(fmt=fmt, block_size=8, lanes=4)
    pairs = [(inf, one), (one, inf), (ninf, three), (three, ninf), (inf, ninf),
             (zero, inf), (inf, zero), (nzero, ninf), (ninf, nzero)]
    beats = []
    rng = np.random.default_rng(2)
    for a, b in pairs:
        for neighbours in (False, True):
            ac = rng.integers(0x00, 0x78, size=8) if neighbours else np.zeros(8, np.int64)
            bc = rng.integers(0x00, 0x78, size=8) if neighbours else np.zeros(8, np.int64)
            ac[5], bc[5] = a, b
            beats += stim.dot_beats(ac, bc, [127], [127], block_size=8, lanes=4)
    beats += stim.dot_beats([inf, 0, 0, 0, 0, 0, 0, 0], [one] * 8, [127], [127], block_size=8, lanes=4) \
        + stim.dot_beats([inf] + [0] * 7, [ninf] + [0] * 7, [127], [127], block_size=8, lanes=4)
    expected = [e for e in _check_directed(dut, beats, idle_prob=0.3) if e is not None]
    assert 0x7F800000 in expected and 0xFF800000 in expected and 0x7FC00000 in expected


@pytest.mark.parametrize("fmt", ["mxsf", "fp8_e4m3", "int8"])
def test_pe_nan_scale_each_side(fmt):
    """A NaN scale (0xFF) on A alone, on B alone, and in one block of a two-block dot
    product: the result is NaN (canonical) whatever the codes, zero codes included."""
    dut = MXProcessingElement(fmt=fmt, block_size=4, lanes=2)
    rng = np.random.default_rng(3)
    f = get_format(fmt)
    finite = np.flatnonzero(np.isfinite(f.values))
    beats = []
    for sa, sb in [(0xFF, 127), (127, 0xFF), (0xFF, 0)]:
        beats += stim.dot_beats(rng.choice(finite, 4), rng.choice(finite, 4), [sa], [sb], block_size=4, lanes=2)
        beats += stim.dot_beats([0] * 4, [0] * 4, [sa], [sb], block_size=4, lanes=2)
    beats += stim.dot_beats(rng.choice(finite, 8), rng.choice(finite, 8), [127, 0xFF], [127, 127],
                            block_size=4, lanes=2)
    expected = [e for e in _check_directed(dut, beats, idle_prob=0.2) if e is not None]
    assert expected == [0x7FC00000] * 7


def test_pe_abandoned_mid_block():
    """A dot product abandoned by ``first`` after 2 of a block's 4 beats (and one after a
    whole block plus a beat): the next result holds none of its elements."""
    fmt = "mxsf"
    dut = MXProcessingElement(fmt=fmt, block_size=8, lanes=2)
    rng = np.random.default_rng(4)
    beats = []
    for cut in (2, 5, 1):
        part = stim.dot_beats(rng.integers(1, 0x7F, 16), rng.integers(1, 0x7F, 16), [127, 127], [127, 127],
                              block_size=8, lanes=2)[:cut]
        beats += part + stim.dot_beats(rng.integers(0, 256, 8), rng.integers(0, 256, 8), [127], [127],
                                       block_size=8, lanes=2)
    _check_directed(dut, beats, idle_prob=0.3)
