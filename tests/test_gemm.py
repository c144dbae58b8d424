# amaranth: UnusedElaboratable=no
"""MX GEMM end to end: parameters, Amaranth-simulator run against golden quantize_tiles ->
matmul -> requantize_tile, the cocotb regression (all four transpose choices, output
stalls, back-to-back runs, exact timing) on Icarus and Verilator, and the vector-file
regression (the same runs from a stimulus file, on both simulators; a broken design's
report; ``mxsf test gemm --vectors``)."""

import dataclasses
import functools
import hashlib
import re

import numpy as np
import pytest
from amaranth.hdl import Const
from amaranth.sim import Simulator

from mxsf.golden import quantize_tiles
from mxsf.hw import gemm as gemm_mod
from mxsf.hw.gemm import MXGemm
from mxsf.gen.files import write_if_changed
from mxsf.gen.verilog import build_verilog
from simsupport import require_simulator
from mxsf.sim.run import run_checked
from mxsf.sim.tests.gemm_tests import expected_run, gemm_operands
from mxsf.sim.vector_benches import (GEMM_TRANSPOSE_RUNS, GemmRun, check_records, gemm_case, gemm_runs,
                                     run_case)
from mxsf.sim.vectors import field_values, output_layout

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


@pytest.mark.slow
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


# ------------------------------------------------------------------------------------
# Vector-file regression (mxsf.sim.vector_benches.gemm_case)

VEC_PARAMS = {"fmt": "mxsf", "rows": 2, "cols": 2, "block_size": 4, "lanes": 4, "dim": 8}
#: The cocotb ``transposes`` runs (the four transpose choices, stalls of 40 % and 80 %), then
#: three runs back to back (the middle one stalled) and an unstalled run on an idle GEMM.
VEC_RUNS = [*GEMM_TRANSPOSE_RUNS, GemmRun(False, True, follow=True), GemmRun(True, False, 0.5, follow=True),
            GemmRun(True, True, follow=True), GemmRun(False, False)]
#: Runs checked on exact cycles: unstalled and started on an idle GEMM.
VEC_EXACT = [True, True, False, True, False, False, False, False, True]


@functools.lru_cache(maxsize=None)
def _vector_design(build_root):
    """The GEMM and its Verilog, once per process (conversion takes seconds), under the CLI's
    module name: with ``bin`` stimulus as the CLI's, one Verilator build serves both."""
    gemm = MXGemm(**VEC_PARAMS)
    return gemm, build_verilog(MXGemm, VEC_PARAMS, name=gemm.module_name, root=build_root)


def _vector_case(build_root, *, seed=41, name="runs", runs=VEC_RUNS):
    gemm, design = _vector_design(build_root)
    xa, xb = gemm_operands(np.random.default_rng(seed), gemm)
    qa, qb = quantize_tiles(xa, "mxsf", (4, 4)), quantize_tiles(xb, "mxsf", (4, 4))
    return gemm, design, gemm_case(design, gemm, qa, qb, runs, seed=seed, name=name)


def test_gemm_vector_parameter_errors(build_root):
    with pytest.raises(ValueError, match=r"^stall_prob must be a number within \[0, 1\), not 1\.0$"):
        GemmRun(False, False, 1.0)
    with pytest.raises(ValueError, match=r"^transpose_b must be a bool \(or 0/1\), not 2$"):
        GemmRun(False, 2)
    with pytest.raises(ValueError, match=r"^count must be a positive integer, not 0$"):
        gemm_runs(np.random.default_rng(0), count=0)
    runs = gemm_runs(np.random.default_rng(0), count=9)
    assert runs[:5] == list(GEMM_TRANSPOSE_RUNS) and len(runs) == 9
    gemm, design = _vector_design(build_root)
    q = quantize_tiles(np.ones((8, 8), np.float32), "mxsf", (4, 4))
    small = quantize_tiles(np.ones((4, 4), np.float32), "mxsf", (4, 4))
    with pytest.raises(ValueError, match=r"^qb must be an MX matrix of 8 x 8 codes \(dim=8\), not shape \(4, 4\)$"):
        gemm_case(design, gemm, q, small, VEC_RUNS, seed=1)
    with pytest.raises(ValueError, match=r"^runs must hold at least one GemmRun"):
        gemm_case(design, gemm, q, q, [], seed=1)
    with pytest.raises(ValueError, match=r"^idle_prob must be within \[0, 1\], not 2$"):
        gemm_case(design, gemm, q, q, VEC_RUNS, seed=1, idle_prob=2)


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_gemm_vectors(build_root, sim):
    """2x2 MXSF GEMM (block 4, 4 lanes, dim 8): loads on all four ports in random order with
    idle cycles, the four transpose choices, o.ready stalls, back-to-back starts held on
    start.ready; every acc row and o beat equal to golden, exact cycles where defined. On
    Icarus, the records edited afterwards (a late, missing or extra beat, a changed payload
    while stalled, busy falling early) must each fail on the right port."""
    require_simulator(sim)
    gemm, design, case = _vector_case(build_root)
    r = run_case(case, sim, encoding="bin").check()
    t = case.expect.timing(r.got)
    assert (t.starts >= 0).all() and t.exact.tolist() == VEC_EXACT
    assert t.o_stall_cycles > 50, "o.ready never stalled a valid beat"
    assert t.start_wait_cycles > 20, "no start waited for start.ready (back-to-back runs untested)"
    per_run = gemm.tiles * gemm.rows
    tile_starts = t.acc_cycles[4 * per_run:5 * per_run:gemm.rows]         # the 80 % stalled run
    assert np.diff(tile_starts).max() > gemm.tile_period, "the stalled run never paused tile issue (credits)"
    assert r.compared_outputs >= 2 * len(VEC_RUNS) * per_run
    if sim == "icarus":          # the checks can fail: edited records are caught (no extra run)
        _assert_edits_caught(gemm, design, case, r.got)


def _edit(got, out, cycle, **fields):
    """``got`` with fields of the record of ``cycle`` replaced (a record is added if none)."""
    k = int(np.searchsorted(got.cycles, cycle))
    cycles, matrix, unknown = got.cycles, got.matrix.copy(), got.unknown
    if k == len(cycles) or cycles[k] != cycle:
        cycles = np.insert(cycles, k, cycle)
        matrix = np.insert(matrix, k, 0, axis=0)
        unknown = np.insert(unknown, k, False)
        fields = {"start__ready": 1, "cycle": cycle, **fields}
    word = int.from_bytes(bytes(matrix[k]), "little")
    for name, value in fields.items():
        offset, width = out.field(name)
        word = word & ~(((1 << width) - 1) << offset) | (value << offset)
    matrix[k] = np.frombuffer(word.to_bytes(matrix.shape[1], "little"), np.uint8)
    return dataclasses.replace(got, cycles=cycles, matrix=matrix, unknown=unknown)


def _assert_edits_caught(gemm, design, case, got):
    """The records of a good run, edited: each rule of the expectation reports its port."""
    out = output_layout(design.ports)
    t = case.expect.timing(got)
    field = lambda name: field_values(got.matrix, *out.field(name)).astype(bool)     # noqa: E731
    stalled = got.cycles[field("o__valid") & ~case.expect.o_ready[got.cycles]]
    assert len(stalled) and t.exact[0]
    s0, c = int(t.starts[0]), int(stalled[0])
    assert field("o__valid")[np.searchsorted(got.cycles, c + 1)], "stalled beat not held in the next cycle"
    last_o = int(got.cycles[field("o__valid")][-1])
    edits = {
        "acc row of an exact run missing": (int(t.acc_cycles[3]), {"acc__valid": 0, "acc__payload": 0}, "acc__valid"),
        "busy falls a cycle early": (s0 + 1 + (gemm.tiles - 1) * gemm.tile_period,
                                     {"busy": 0, "start__ready": 1}, "start__ready"),
        "o dropped while stalled": (c + 1, {"o__valid": 0, "o__payload": 0}, "o__valid"),
        "o payload changed while stalled": (c + 1, {"o__payload": 1}, "o__payload"),
        "first o beat of an exact run late": (s0 + gemm.latency, {"o__valid": 0, "o__payload": 0}, "o__valid"),
        "last o beat missing": (last_o, {"o__valid": 0, "o__payload": 0}, "o__valid"),
        "extra acc row": (case.cycles - 1, {"acc__valid": 1}, "acc__valid"),
        "extra o beat": (case.cycles - 3, {"o__valid": 1, "o__payload": 5}, "o__valid"),
        "extra busy": (case.cycles - 2, {"busy": 1}, "busy"),
    }
    for what, (cycle, fields, port) in edits.items():
        passed, report, _ = check_records(case, _edit(got, out, cycle, **fields), "icarus")
        assert not passed, what
        assert re.search(rf"mismatch at cycle {cycle} on port {port} \[icarus, vector file\]:", report), \
            f"{what}:\n{report}"


@pytest.mark.sim
def test_broken_gemm_vectors_fail_with_report(build_root):
    """One operator of a PE's adder tree flipped (+ to -) in the GEMM's Verilog text (two
    runs: Icarus simulates this GEMM at a few hundred cycles per second)."""
    require_simulator("icarus")
    gemm, design, case = _vector_case(build_root, name="broken", runs=VEC_RUNS[:2])
    text = design.verilog_path.read_text()
    broken, n = re.subn(r"(\$signed\(term\d+\)) \+ (\$signed\(term\d+\))", r"\1 - \2", text, count=1)
    assert n == 1, "no adder-tree term in the GEMM's Verilog"
    path = build_root / "broken" / f"{design.top}-{hashlib.sha256(broken.encode()).hexdigest()[:10]}.v"
    write_if_changed(path, broken)
    run_case(case, "icarus", encoding="bin").check()              # the same stimulus passes unbroken
    case = dataclasses.replace(case, design=dataclasses.replace(
        design, verilog_path=path, verilog_sha256=hashlib.sha256(broken.encode()).hexdigest()))
    r = run_case(case, "icarus", encoding="bin")
    assert not r.passed
    top = re.escape(design.top)
    assert re.search(rf"^{top} mismatch at cycle \d+ on port acc__payload \[icarus, vector file\]:$",
                     r.report, re.M), r.report
    assert re.search(r"^  expected 0x[0-9a-f]{17}$", r.report, re.M)
    assert re.search(r"^  got      0x[0-9a-f]{17}$", r.report, re.M)
    assert re.search(r"^  differing bits: \d", r.report, re.M)
    assert re.search(r"^  produced by input cycle \d+ \(stimulus line \d+\): start.transpose_a=0x0 "
                     r"start.transpose_b=0x0 start__valid=0x1$", r.report, re.M), r.report
    assert re.search(r"^  run 0 of 2 \(transpose_a=0, transpose_b=0, o.ready stall probability 0; "
                     r"exact cycles\): acc row \d+ of 32 \(tile \d+, row \d\)$", r.report, re.M), r.report
    assert re.search(r"expected records mismatched; latency 16; seed 41$", r.report, re.M)


@pytest.mark.sim
def test_cli_gemm_vectors(capsys):
    from mxsf.cli.main import main

    require_simulator("verilator")
    code = main(["test", "gemm", "--fmt", "mxsf", "--rows", "2", "--cols", "2", "--block-size", "4", "--lanes", "4",
                 "--dim", "8", "--vectors", "3", "--sim", "verilator", "--seed", "5"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^PASS gemm\.runs \[verilator\] \(.* 96 beats, 192 results checked", out, re.M), out
    assert out.rstrip().endswith("1 passed, 0 failed")
