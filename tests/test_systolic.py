# amaranth: UnusedElaboratable=no
"""Systolic array: parameters, the cycle model, every format on Amaranth's simulator
(every cycle against the golden cycle model), and the cocotb regression on Verilator and
Icarus.

Builds are what the simulator tests cost (Verilator: 15-70 CPU-seconds per array, Icarus:
1-3), so the default suite runs the cocotb array regression on Icarus: every format (mx9 for the BDR family) as a 2x2 array on Icarus (blocks of 4 in one
beat), the 4x4 MXSF and MX6 arrays on Icarus (blocks in several beats: the skew, the
pair microexponents). Verilator runs the arrays of the vector-file and inference tests.
``-m slow`` adds the other formats on Amaranth's simulator, 2x2 and 4x4 arrays of every
format on Verilator (one beat and two beats per block) and 8x8 arrays.
"""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from mxsf.golden import ELEMENT_FORMATS, get_format
from mxsf.golden.systolic_model import ArrayBeat, last_spacing_ready, systolic_cycle_model
from mxsf.hw import systolic as systolic_mod
from mxsf.hw.pe import MXProcessingElement
from mxsf.hw.systolic import SystolicArray, array_beat_layout, array_row_layout
from mxsf.gen.verilog import build_verilog
from mxsf.sim.packing import LayoutCodec
from simsupport import require_simulator
from mxsf.sim.run import run_checked, run_cocotb
from mxsf.sim.tests import systolic_tests as stim

SYSTOLIC_TESTS = "mxsf.sim.tests.systolic_tests"
ALL_FORMATS = [*ELEMENT_FORMATS, "bf16"]


def test_all():
    for name in systolic_mod.__all__:
        assert hasattr(systolic_mod, name), name


# ------------------------------------------------------------------------------------
# Parameters and properties


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^fmt must be one of .*; not 'fp9'$"):
        SystolicArray(fmt="fp9", rows=2, cols=2)
    with pytest.raises(ValueError, match=r"^rows must be an integer in \[1, 64\], not 0$"):
        SystolicArray(fmt="mxsf", rows=0, cols=2)
    with pytest.raises(ValueError, match=r"^cols must be an integer in \[1, 64\], not 65$"):
        SystolicArray(fmt="mxsf", rows=2, cols=65)
    with pytest.raises(TypeError, match=r"^rows must be an integer, not '2'$"):
        SystolicArray(fmt="mxsf", rows="2", cols=2)
    with pytest.raises(ValueError, match=r"^block_size must be an integer in \[1, 1024\], not 0$"):
        SystolicArray(fmt="mxsf", rows=2, cols=2, block_size=0)
    with pytest.raises(ValueError, match=r"^lanes must divide block_size=8 \(one of \[1, 2, 4, 8\]\), not 3$"):
        SystolicArray(fmt="mxsf", rows=2, cols=2, block_size=8, lanes=3)
    with pytest.raises(ValueError, match=r"^lanes must be an integer in \[1, 64\], not 65$"):
        SystolicArray(fmt="bf16", rows=2, cols=2, lanes=65)


def test_bdr_parameter_errors():
    with pytest.raises(ValueError, match=r"^block_size must be 16 for mx9 \(SPEC\.md 11.*not 32$"):
        SystolicArray(fmt="mx9", rows=2, cols=2, block_size=32)
    with pytest.raises(ValueError, match=r"^lanes must be one of \[2, 4, 8, 16\] or a multiple of 16 .*not 3$"):
        SystolicArray(fmt="mx6", rows=2, cols=2, lanes=3)
    with pytest.raises(ValueError, match=r"^lanes must be one of \[2, 4, 8, 16\] for a mx4 array .*not 32$"):
        SystolicArray(fmt="mx4", rows=2, cols=2, lanes=32)
    a = SystolicArray(fmt="mx9", rows=2, cols=2, lanes=4)
    assert (a.block_size, a.lanes) == (16, 4)
    assert array_beat_layout("mx9", 2, 3, 4).size == 2 * 4 * 8 + 3 * 4 * 8 + 5 * 8 + 5 * 2 + 2
    from mxsf.hw.gemm import MXGemm
    with pytest.raises(ValueError, match=r"^fmt must be a format with 2D tiles for the GEMM .*not 'mx9'"):
        MXGemm(fmt="mx9", rows=2, cols=2, block_size=16)


def test_properties():
    a = SystolicArray(fmt="mxfp8_e4m3", rows=3, cols=5, block_size=16, lanes=4)
    assert (a.rows, a.cols, a.lanes, a.fmt.name) == (3, 5, 4, "fp8_e4m3")
    assert a.pe_latency == MXProcessingElement.probe(fmt="fp8_e4m3", block_size=16, lanes=4).latency
    assert a.latency == 1 + a.pe_latency + 5
    assert a.drain_cycles == a.last_spacing == 3
    assert a.macs_per_cycle == 3 * 5 * 4
    assert a.params == {"fmt": "fp8_e4m3", "rows": 3, "cols": 5, "block_size": 16, "lanes": 4}
    b = SystolicArray(fmt="bf16", rows=2, cols=2, block_size=8)
    assert b.lanes == 8 and b.latency == 1 + 2 + 2 and "scale_a" not in array_beat_layout("bf16", 2, 2, 8).members
    assert b.module_name == "systolic_bf16_2x2_l8"


def test_registry_entry():
    from mxsf.gen.registry import get_design_spec
    spec = get_design_spec("array")
    c = spec.instantiate(fmt="mxsf", rows=2, cols=4, block_size=8, lanes=4)
    assert spec.macs(c) == 2 * 4 * 4


def test_last_spacing_model():
    # rows = 3: a last beat is refused until 3 cycles after the previous accepted last
    drive = [(1, 1), (1, 1), (1, 0), (1, 1), (1, 1), (0, 1), (1, 1)]
    assert last_spacing_ready(drive, 3) == [(1, True), (0, False), (1, True), (1, True), (0, False),
                                            (0, False), (1, True)]


# ------------------------------------------------------------------------------------
# Amaranth simulator: every cycle against the golden cycle model


def amaranth_run(dut, beats, rng, idle_prob=0.25):
    """Drive ``beats`` (holding each until ``ready``), record ready/output every cycle and
    return ``(expected, got)`` per-cycle lists from the cycle model and the DUT."""
    fmt = dut.fmt.name
    bf16 = fmt == "bf16"
    codec = LayoutCodec(array_beat_layout(fmt, dut.rows, dut.cols, dut.lanes))
    out_codec = LayoutCodec(array_row_layout(dut.rows, dut.cols, dut.result_layout))
    gaps = [int(rng.integers(1, 4)) if rng.random() < idle_prob else 0 for _ in beats]
    n_cycles = len(beats) * (dut.rows + 4) + dut.latency + dut.rows + 8
    driven, got = [], []

    async def bench(ctx):
        idx, gap = 0, gaps[0] if gaps else 0
        for _ in range(n_cycles):
            present = idx < len(beats) and gap == 0
            if present:
                payload = codec.pack(stim.beat_payload(beats[idx], bf16))
            else:
                payload = int.from_bytes(rng.bytes(codec.width // 8 + 1), "little") & ((1 << codec.width) - 1)
            ctx.set(dut.i.valid, int(present))
            ctx.set(dut.i.payload.as_value(), payload)
            await ctx.delay(1e-9)
            ready = ctx.get(dut.i.ready)
            ov, op = ctx.get(dut.o.valid), ctx.get(dut.o.payload.as_value())
            driven.append((present, payload, ready))
            got.append({"ready": ready, "o": out_codec.unpack(op, depth=2) if ov else None})
            if present and ready:
                idx += 1
                gap = gaps[idx] if idx < len(gaps) else 0
            elif not present and gap:
                gap -= 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    last_off = codec.layout["last"].offset
    spacing = last_spacing_ready([(v, (p >> last_off) & 1) for v, p, _ in driven], dut.rows)
    trace = []
    for (v, p, _), (_, acc) in zip(driven, spacing):
        if acc:
            b = codec.unpack(p, depth=3)
            trace.append(ArrayBeat(a=b["a"], b=b["b"], scale_a=b.get("scale_a"), scale_b=b.get("scale_b"),
                                   first=bool(b["first"]), last=bool(b["last"]),
                                   micro_a=b.get("micro_a"), micro_b=b.get("micro_b")))
        else:
            trace.append(None)
    model = systolic_cycle_model(trace, fmt=fmt, rows=dut.rows, cols=dut.cols, block_size=dut.block_size,
                                 lanes=dut.lanes, latency=dut.latency, acc=dut.acc)
    expected = [{"ready": r, "o": model[c]} for c, (r, _) in enumerate(spacing)]
    return expected, got


def check_cycles(expected, got):
    assert sum(e["o"] is not None for e in expected) > 0
    bad = [(c, e, g) for c, (e, g) in enumerate(zip(expected, got)) if e != g]
    assert not bad, f"{len(bad)} mismatching cycles, first (cycle, expected, got): {bad[:2]}"


@pytest.mark.parametrize("fmt", [f if f in ("mxsf", "bf16", "mx6") else pytest.param(f, marks=pytest.mark.slow)
                                 for f in ALL_FORMATS])
def test_array_amaranth(fmt):
    """2x3 array, blocks of 4 in 2 beats (mx9/mx6/mx4: 16 in 2 beats, with the microexponents):
    random tiles (K = 1, 2, 5 blocks), framing corners, random idle cycles and last-beat
    spacing stalls, every cycle."""
    rng = np.random.default_rng(3)
    bs = _block(fmt, 4)
    dut = SystolicArray(fmt=fmt, rows=2, cols=3, block_size=bs, lanes=bs // 2)
    beats = (stim.random_tile_beats(rng, fmt, 2, 3, block_size=bs, lanes=bs // 2, count=6)
             + stim.framing_beats(rng, fmt, 2, 3, block_size=bs, lanes=bs // 2))
    check_cycles(*amaranth_run(dut, beats, rng))


def _block(fmt, default):
    """The test's block size, or the format's fixed one (16 for mx9/mx6/mx4)."""
    return get_format(fmt).fixed_block_size or default if fmt != "bf16" else default


def test_array_amaranth_matrices_back_to_back():
    """Whole matrices back to back through a 3x2 array; the rows equal golden matmul."""
    rng = np.random.default_rng(5)
    dut = SystolicArray(fmt="mxsf", rows=3, cols=2, block_size=4, lanes=4)
    jobs = [stim.matrix_beats(rng, "mxsf", 3, 2, block_size=4, lanes=4, k_blocks=k, tiled=t)
            for k, t in ((3, True), (1, False))]
    expected, got = amaranth_run(dut, [b for j in jobs for b in j[0]], rng, idle_prob=0.0)
    check_cycles(expected, got)
    rows = [g["o"]["c"] for g in got if g["o"] is not None]
    pos = 0
    for _, c, M, N in jobs:
        for mi in range(M // 3):
            for nj in range(N // 2):
                tile = np.array(rows[pos:pos + 3], dtype=np.uint32)
                pos += 3
                assert np.array_equal(tile, c[mi * 3:(mi + 1) * 3, nj * 2:(nj + 1) * 2])


def test_array_full_rate():
    """Tiles of at least ``rows`` beats go in one beat a cycle with no stall: the array
    takes rows x cols x lanes MACs every cycle."""
    rng = np.random.default_rng(9)
    dut = SystolicArray(fmt="fp8_e4m3", rows=2, cols=2, block_size=4, lanes=2)
    beats = stim.random_tile_beats(rng, "fp8_e4m3", 2, 2, block_size=4, lanes=2, count=6, k_blocks=(1, 2))
    expected, got = amaranth_run(dut, beats, rng, idle_prob=0.0)
    check_cycles(expected, got)
    assert all(g["ready"] for g in got[:len(beats)])


# ------------------------------------------------------------------------------------
# cocotb regression

SMALL = dict(block_size=4, lanes=4)


def _design(build_root, fmt, n, block_size=4, lanes=4, cls=SystolicArray, name=None):
    block_size = _block(fmt, block_size)                  # mx9/mx6/mx4: 16 (in 4 or 8 beats)
    return build_verilog(cls, {"fmt": fmt, "rows": n, "cols": n, "block_size": block_size, "lanes": lanes},
                         name=name or f"systolic_{get_format(fmt).name}_{n}x{n}", root=build_root)


def _run(build_root, sim, fmt, n, count=24, lanes=None, **kw):
    require_simulator(sim)
    if lanes is None:
        lanes = 2 if fmt == "bf16" else 4        # bf16: 2 chained float32 adders per PE
    design = _design(build_root, fmt, n, lanes=lanes,
                     name=f"systolic_{get_format(fmt).name}_{n}x{n}_l{lanes}")
    run_checked(design, SYSTOLIC_TESTS, sim=sim, seed=13 + n, config={"count": count, **kw})


def _bdr_slow(formats, keep=()):
    """The BDR formats other than ``keep`` go to the slow suite (each is one more Verilator build)."""
    return [pytest.param(f, marks=pytest.mark.slow)
            if f != "bf16" and get_format(f).microexp_group and f not in keep else f for f in formats]


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_array_2x2_verilator(build_root, fmt):
    """2x2, blocks of 4 in one beat (bf16: 2 beats): the Icarus run below, on Verilator."""
    _run(build_root, "verilator", fmt, 2)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_array_4x4_verilator(build_root, fmt):
    """4x4, blocks of 4 in 2 beats of 2 lanes."""
    _run(build_root, "verilator", fmt, 4, count=12, lanes=2)


#: Formats whose arrays the default suite simulates elsewhere (MXSF: the 4x4 array on
#: Icarus, vector files and inference on Verilator; E4M3: inference on Verilator).
_ARRAYS_ELSEWHERE = ("mxsf", "fp8_e4m3")


@pytest.mark.sim
@pytest.mark.parametrize("fmt", [pytest.param(f, marks=pytest.mark.slow) if f in _ARRAYS_ELSEWHERE else f
                                 for f in _bdr_slow(ALL_FORMATS, keep=("mx9",))])
def test_array_2x2_icarus(build_root, fmt):
    """2x2, 2 lanes (blocks of 4 in 2 beats; BDR blocks of 16 in 8): every format's PE
    inside an array (widths of codes, scales and block sums through the skew and drain)."""
    _run(build_root, "icarus", fmt, 2, count=12, lanes=2)


@pytest.mark.sim
@pytest.mark.parametrize("fmt", ["mxsf", pytest.param("mx6", marks=pytest.mark.slow)])
def test_array_4x4_icarus(build_root, fmt):
    """4x4, blocks in several beats of 2 lanes (MX6: blocks of 16 in 8 beats, the pair
    microexponents travel through the skew with their elements). Every format goes
    through the 2x2 array (MX9's with blocks of 16 in 8 beats and their microexponents);
    the larger array's skew and multi-beat blocks are format-independent, so the default
    suite builds it for MXSF only (MX6 with -m slow)."""
    _run(build_root, "icarus", fmt, 4, count=6, lanes=2)


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_array_4x4_verilator_full_lanes(build_root, fmt):
    """4x4 with every block in one beat (bf16: 2 beats), more matrices."""
    _run(build_root, "verilator", fmt, 4, count=40)


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", ["mxsf", "bf16", "fp8_e5m2"])
def test_array_8x8_verilator(build_root, fmt):
    """8x8 arrays, blocks of 8 (bf16: 2 lanes); mxsf and bf16 share the build of
    ``benchmarks/array_bench.py`` (same name and parameters)."""
    require_simulator("verilator")
    lanes = 2 if fmt == "bf16" else 8
    design = build_verilog(SystolicArray, {"fmt": fmt, "rows": 8, "cols": 8, "block_size": 8, "lanes": lanes},
                           name=f"bench_{fmt}_8x8", root=build_root)
    run_checked(design, SYSTOLIC_TESTS, sim="verilator", seed=17, config={"count": 16, "k_blocks": [1, 2, 5]},
                timeout_s=3600)


# ------------------------------------------------------------------------------------
# The regression catches a wrong result


class SwappedDrainArray(wiring.Component):
    """A broken array for the self-test: output columns 0 and 1 swapped in odd rows
    (a drain/deskew wiring error)."""

    def __init__(self, fmt, rows, cols, block_size=32, lanes=None):
        self.inner = SystolicArray(fmt=fmt, rows=rows, cols=cols, block_size=block_size, lanes=lanes)
        self.latency = self.inner.latency
        super().__init__(self.inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = a = self.inner
        wiring.connect(m, wiring.flipped(self.i), a.i)
        c = a.o.payload.c
        m.d.comb += [self.o.valid.eq(a.o.valid), self.o.payload.eq(a.o.payload)]
        with m.If(a.o.payload.row[0]):
            m.d.comb += [self.o.payload.c[0].eq(c[1]), self.o.payload.c[1].eq(c[0])]
        return m


@pytest.mark.sim
def test_regression_catches_swapped_drain(build_root):
    require_simulator("icarus")
    design = _design(build_root, "mxsf", 2, cls=SwappedDrainArray, name="broken_array")
    result = run_cocotb(design, SYSTOLIC_TESTS, sim="icarus", testcase="random_tiles", seed=13,
                        config={"count": 6})
    assert not result.passed
    msg = result.failures[0].message
    assert "broken_array mismatch at cycle" in msg and "on port o__payload" in msg
