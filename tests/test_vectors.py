# amaranth: UnusedElaboratable=no
"""Vector-file regressions (``mxsf.sim.vectors``, ``mxsf.sim.vector_benches``): the
generated testbench on Verilator and Icarus against the golden model, the harness
catching a broken design on both, and agreement with the cocotb path."""

import dataclasses
from pathlib import Path
import hashlib
import re

import numpy as np
import pytest

from mxsf.golden import ELEMENT_FORMATS, get_format
from mxsf.hw.bf16_pe import BF16ProcessingElement
from mxsf.hw.maxexp import BlockMaxExponent
from mxsf.hw.pe import MXProcessingElement
from mxsf.hw.requant import TileRequantizer
from mxsf.hw.systolic import SystolicArray
from mxsf.sim import pe_stimulus as stim
from mxsf.sim import vector_benches as vb
from mxsf.sim import vectors
from mxsf.gen.built import Port
from mxsf.gen.files import write_if_changed
from mxsf.gen.verilog import build_verilog
from mxsf.sim.run import run_cocotb
from simsupport import require_simulator
from mxsf.sim.vector_benches import (array_case, array_results, array_tiles_beats, bf16_pe_case, maxexp_case,
                                     pe_beats_case, pe_pairs_case, pe_random_case, requant_case, run_case)

EIGHT_BIT = ["fp8_e4m3", "fp8_e5m2", "int8", "fp8_e2m5", "mxsf"]
#: PE of the code-pair sweeps on both simulators: the smallest with one beat per block
#: (4 lanes, so the rotating pair position still visits every lane and the adder tree);
#: a Verilator build of it costs a fraction of the shipped PE's (block 32, 32 lanes), which
#: runs on Verilator for MXSF (test_pe_vectors_shipped_pe).
PE_CONFIG = {"verilator": (4, 4), "icarus": (4, 4)}


def _pe(build_root, fmt, block_size, lanes):
    params = {"fmt": fmt, "block_size": block_size, "lanes": lanes}
    design = build_verilog(MXProcessingElement, params, name=f"mx_pe_{get_format(fmt).name}", root=build_root)
    return design, MXProcessingElement(**params)


# ------------------------------------------------------------------------------------
# Host-side pieces (no simulator)


def test_hex_and_field_roundtrip():
    layout = vectors.FieldLayout.of([("v", 1), ("x", 70), ("y", 13)])
    rng = np.random.default_rng(0)
    n = 50
    x_bytes = rng.integers(0, 256, size=(n, 9), dtype=np.uint8)
    y = rng.integers(0, 1 << 13, size=n)
    m = vectors.pack_fields(layout, n, {"v": 1, "x": x_bytes, "y": y})
    assert m.shape == (n, 11)
    assert (vectors.field_values(m, *layout.field("y")) == y).all()
    assert (vectors.field_values(m, *layout.field("v")) == 1).all()
    x_int = [int.from_bytes(bytes(r), "little") & ((1 << 70) - 1) for r in x_bytes]
    assert [vectors.field_int(r, *layout.field("x")) for r in m] == x_int
    back, unknown = vectors.from_hex_lines(vectors.to_hex_lines(m), m.shape[1])
    assert (back == m).all() and not unknown.any()
    line = vectors.to_hex_lines(m[:1]).decode()
    assert line == f"{int.from_bytes(bytes(m[0]), 'little'):022x}\n"
    matrix, unknown = vectors.from_hex_lines(b"0x\nzz\n0f\n", 1)
    assert unknown.tolist() == [True, True, False] and matrix[2, 0] == 0x0F


def test_pe_pairs_rotating_scales(build_root):
    """``rotate_scales``: every code pair exactly once, pair ``k`` under scale set ``k % 3``
    (so every set is used), against the full sweep's pairs x sets."""
    fmt = "fp4_e2m1"
    design, comp = _pe(build_root, fmt, *PE_CONFIG["icarus"])
    sets = stim.pair_scale_sets(fmt)
    leaf = vb.design_leaf_layout(comp, vectors.input_layout(design.ports))

    def dots(case):
        m = case.stimulus[vectors.field_values(case.stimulus, *leaf.field("i__valid")).astype(bool)]
        a = np.stack([vectors.field_values(m, *leaf.field(f"i.a[{j}]")) for j in range(4)], 1).sum(1)
        b = np.stack([vectors.field_values(m, *leaf.field(f"i.b[{j}]")) for j in range(4)], 1).sum(1)
        sa, sb = (vectors.field_values(m, *leaf.field(n)) for n in ("i.scale_a", "i.scale_b"))
        return sorted(zip(a.tolist(), b.tolist(), sa.tolist(), sb.tolist()))

    full = dots(pe_pairs_case(design, comp, seed=3, scales=sets))
    rot = dots(pe_pairs_case(design, comp, seed=3, scales=sets, rotate_scales=True))
    n = get_format(fmt).n_codes ** 2
    assert len(full) == 3 * n and len(rot) == n
    assert sorted({(a, b) for a, b, _, _ in rot}) == sorted({(a, b) for a, b, _, _ in full})
    assert set(rot) <= set(full)
    assert {(sa, sb) for *_, sa, sb in rot} == {tuple(v) for v in sets.values()}


def test_testbench_parameter_errors():
    ports = [Port("clk", "in", 1), Port("i__valid", "in", 1), Port("i__payload", "in", 8),
             Port("o__valid", "out", 1), Port("o__payload", "out", 8)]
    with pytest.raises(ValueError, match=r"^encoding must be 'hex' or 'bin', not 'txt'$"):
        vectors.testbench_verilog("dut", ports, encoding="txt")
    with pytest.raises(ValueError, match=r"^chunk must be an integer in \[1, 1048576\], not 0$"):
        vectors.testbench_verilog("dut", ports, chunk=0)
    with pytest.raises(ValueError, match=r"^top must be a Verilog identifier, not '1dut'$"):
        vectors.testbench_verilog("1dut", ports)
    with pytest.raises(ValueError, match=r"^ports must include the clock 'clk'"):
        vectors.testbench_verilog("dut", ports[1:])
    with pytest.raises(ValueError, match=r"^held must name an input stream with valid and ready ports; "
                                         r"dut has no output i__ready \(held='i'\)$"):
        vectors.testbench_verilog("dut", ports, held="i")
    text = vectors.testbench_verilog("dut", ports, vcd=True)
    assert "`timescale 1ns/1ps" in text and "$dumpvars(0, dut);" in text and "$readmemh" in text
    assert "$fread" in vectors.testbench_verilog("dut", ports, encoding="bin")
    with pytest.raises(ValueError, match=r"^sources must name at least one Verilog file"):
        vectors.build_vector_sim([], "dut", ports, "icarus")


# ------------------------------------------------------------------------------------
# MX PE: every code pair, random dot products, framing, on both simulators


@pytest.mark.sim
@pytest.mark.parametrize("fmt", EIGHT_BIT)
def test_pe_vectors_verilator(build_root, fmt):
    """Every code pair x {neutral, subnormal, overflow} scales (196,608 dot products),
    random multi-block dot products (NaN/Inf scales and codes), framing corner cases and
    exact cancellation through the 4-lane PE: one Verilator build serves them all."""
    require_simulator("verilator")
    bs, lanes = PE_CONFIG["verilator"]
    design, comp = _pe(build_root, fmt, bs, lanes)
    r = run_case(pe_pairs_case(design, comp, seed=3, scales=stim.pair_scale_sets(fmt)), "verilator",
                 encoding="bin").check()
    assert r.compared_outputs == 3 * get_format(fmt).n_codes ** 2
    r = run_case(pe_random_case(design, comp, count=2000, seed=11, max_blocks=8), "verilator",
                 encoding="bin").check()
    assert r.compared_outputs == 2000
    rng = np.random.default_rng(5)
    beats = (stim.framing_mx_beats(rng, fmt, block_size=bs, lanes=lanes)
             + stim.cancelling_mx_dots(rng, fmt, block_size=bs, lanes=lanes, count=12))
    run_case(pe_beats_case(design, comp, beats, seed=5, name="framing"), "verilator", encoding="bin").check()


@pytest.mark.sim
def test_pe_vectors_shipped_pe(build_root):
    """The shipped MXSF PE (block 32, 32 lanes) on Verilator: random multi-block dot
    products, framing corner cases, exact cancellation."""
    require_simulator("verilator")
    design, comp = _pe(build_root, "mxsf", 32, 32)
    r = run_case(pe_random_case(design, comp, count=2000, seed=11), "verilator", encoding="bin").check()
    assert r.compared_outputs == 2000
    rng = np.random.default_rng(5)
    beats = (stim.framing_mx_beats(rng, "mxsf", block_size=32, lanes=32)
             + stim.cancelling_mx_dots(rng, "mxsf", block_size=32, lanes=32, count=12))
    run_case(pe_beats_case(design, comp, beats, seed=5, name="framing"), "verilator", encoding="bin").check()


@pytest.mark.sim
@pytest.mark.parametrize("fmt", [f for f in ELEMENT_FORMATS if not get_format(f).microexp_group])
def test_pe_vectors_icarus(build_root, fmt):
    # the BDR formats (mx9/mx6/mx4) carry microexponents this path does not pack: cocotb (test_pe.py)
    """Every code pair on Icarus (4-lane PE, the design of the Verilator sweep): the 6- and
    4-bit formats (4,096 and 256 pairs) under each of the 3 scale sets, with framing and
    cancellation; the 8-bit ones once each, pair ``k`` under scale set ``k % 3`` (Icarus
    runs ~100x slower per cycle; Verilator runs every pair under every set)."""
    require_simulator("icarus")
    bs, lanes = PE_CONFIG["icarus"]
    design, comp = _pe(build_root, fmt, bs, lanes)
    rotate = fmt in EIGHT_BIT
    r = run_case(pe_pairs_case(design, comp, seed=3, scales=stim.pair_scale_sets(fmt), rotate_scales=rotate),
                 "icarus", encoding="bin").check()
    assert r.compared_outputs == (1 if rotate else 3) * get_format(fmt).n_codes ** 2
    if not rotate:
        rng = np.random.default_rng(5)
        beats = (stim.framing_mx_beats(rng, fmt, block_size=bs, lanes=lanes)
                 + stim.cancelling_mx_dots(rng, fmt, block_size=bs, lanes=lanes, count=12))
        run_case(pe_beats_case(design, comp, beats, seed=5, name="framing"), "icarus", encoding="bin").check()
    r = run_case(pe_random_case(design, comp, count=300, seed=11, max_blocks=6), "icarus", encoding="bin").check()
    assert r.compared_outputs == 300


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_pe_vectors_framing_multibeat(build_root, sim):
    """Blocks of several beats (block 32, 8 lanes): abandoned dot products, ``last`` mid-block."""
    require_simulator(sim)
    design, comp = _pe(build_root, "mxsf", 32, 8)
    rng = np.random.default_rng(9)
    beats = (stim.framing_mx_beats(rng, "mxsf", block_size=32, lanes=8)
             + stim.random_mx_dots(rng, "mxsf", block_size=32, lanes=8, count=20))
    r = run_case(pe_beats_case(design, comp, beats, seed=9), sim).check()
    assert r.compared_outputs > 20


@pytest.mark.sim
@pytest.mark.parametrize("fmt,lanes", [("fp8_e5m2", 8), ("fp4_e2m1", 4), ("int8", 16)])
def test_pe_vectors_multibeat_formats(build_root, fmt, lanes):
    """Blocks of 32 over 2-8 beats for the widest (e5m2), narrowest (e2m1) and integer formats."""
    require_simulator("icarus")
    design, comp = _pe(build_root, fmt, 32, lanes)
    rng = np.random.default_rng(10)
    beats = (stim.framing_mx_beats(rng, fmt, block_size=32, lanes=lanes)
             + stim.cancelling_mx_dots(rng, fmt, block_size=32, lanes=lanes, count=9))
    run_case(pe_beats_case(design, comp, beats, seed=10, name="framing"), "icarus", encoding="bin").check()
    r = run_case(pe_random_case(design, comp, count=60, seed=10, max_blocks=6), "icarus", encoding="bin").check()
    assert r.compared_outputs == 60


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt", EIGHT_BIT)
def test_pe_all_code_pairs_icarus_shipped_pe(build_root, fmt):
    """Every code pair x 3 scale sets through the shipped 32-lane PE on Icarus (slow)."""
    require_simulator("icarus")
    design, comp = _pe(build_root, fmt, 32, 32)
    run_case(pe_pairs_case(design, comp, seed=3, scales=stim.pair_scale_sets(fmt)), "icarus",
             encoding="bin", timeout_s=6 * 3600).check()


# ------------------------------------------------------------------------------------
# A broken design fails with the scoreboard's report, on both simulators


def _broken(build_root, design, pattern, replacement):
    text = design.verilog_path.read_text()
    broken, n = re.subn(pattern, replacement, text, count=1)
    assert n == 1, f"pattern {pattern!r} not found in {design.verilog_path}"
    path = build_root / "broken" / f"{design.top}-{hashlib.sha256(broken.encode()).hexdigest()[:10]}.v"
    write_if_changed(path, broken)
    return dataclasses.replace(design, verilog_path=path,
                               verilog_sha256=hashlib.sha256(broken.encode()).hexdigest())


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_broken_pe_fails_with_report(build_root, sim):
    """One operator of the PE's adder tree flipped (+ to -) in the Verilog text."""
    require_simulator(sim)
    design, comp = _pe(build_root, "mxsf", *PE_CONFIG[sim])
    broken = _broken(build_root, design, r"(\$signed\(term\d+\)) \+ (\$signed\(term\d+\))", r"\1 - \2")
    case = pe_random_case(broken, comp, count=200, seed=11, name="broken_random_dots")
    r = run_case(case, sim, encoding="bin")
    assert not r.passed
    assert re.search(rf"^mx_pe_mxsf mismatch at cycle \d+ on port o__payload \[{sim}, vector file\]:$",
                     r.report, re.M), r.report
    assert re.search(r"^  expected 0x[0-9a-f]{8}$", r.report, re.M)
    assert re.search(r"^  got      0x[0-9a-f]{8}$", r.report, re.M)
    assert re.search(r"^  differing bits: \d", r.report, re.M)
    assert re.search(r"^  produced by input cycle \d+ \(stimulus line \d+\): i__valid=0x1 i.a=\[", r.report, re.M)
    assert "i.last=0x1" in r.report and "scale_a=" in r.report
    assert re.search(r"expected records mismatched; latency 3; seed 11$", r.report, re.M)
    # the same stimulus passes on the unbroken design
    run_case(dataclasses.replace(case, design=design, name="unbroken_random_dots"), sim, encoding="bin").check()


@pytest.mark.sim
def test_broken_valid_is_caught(build_root):
    """A design whose output valid comes a cycle late is reported on port o__valid."""
    require_simulator("icarus")
    design, comp = _pe(build_root, "mxsf", *PE_CONFIG["icarus"])
    text = design.verilog_path.read_text()
    m = re.search(r"^\s*o__valid <= (.*?);$", text, re.M)
    assert m, "no o__valid register in the PE"
    broken = _broken(build_root, design, r"(?m)^(\s*)o__valid <= (.*?);$",
                     r"\1o__valid <= late_valid;\n  always @(posedge clk)\n\1late_valid <= \2;")
    broken_text = broken.verilog_path.read_text().replace(
        "reg o__valid", "reg late_valid = 1'h0;\n  reg o__valid", 1)
    write_if_changed(broken.verilog_path, broken_text)
    broken = dataclasses.replace(broken, verilog_sha256=hashlib.sha256(broken_text.encode()).hexdigest())
    r = run_case(pe_random_case(broken, comp, count=20, seed=2, name="late_valid"), "icarus")
    assert not r.passed
    assert re.search(r"mismatch at cycle \d+ on port o__valid", r.report), r.report
    assert "expected 0x1 (0b1)" in r.report and "got      0x0 (0b0)" in r.report


# ------------------------------------------------------------------------------------
# Same stimulus through cocotb: same records


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_vector_and_cocotb_paths_agree(build_root, sim):
    """The vector testbench and a cocotb replay of the same seeded stimulus record the
    same output beats in the same cycles, and both equal the golden model."""
    require_simulator(sim)
    design, comp = _pe(build_root, "mxsf", 32, 8)
    case = pe_random_case(design, comp, count=40 if sim == "verilator" else 12, seed=21)
    r = run_case(case, sim, encoding="hex").check()
    vec_records = (r.run_dir / "out.hex").read_text()
    stim_files = sorted(r.run_dir.glob("stim_*.hex"), key=lambda p: int(p.stem.split("_")[1]))
    out = r.run_dir / f"cocotb-{sim}.hex"
    res = run_cocotb(design, "mxsf.sim.tests.vector_replay_tests", sim=sim, seed=21,
                     config={"stim": [str(p) for p in stim_files], "out": str(out), "cycles": case.cycles})
    assert res.passed, res.report()
    assert out.read_text() == vec_records
    assert vec_records.count("\n") == case.results + 1          # every result, and cycle 0


# ------------------------------------------------------------------------------------
# Other blocks


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_bf16_pe_vectors(build_root, sim):
    require_simulator(sim)
    design = build_verilog(BF16ProcessingElement, {"lanes": 2}, name="bf16_pe", root=build_root)
    comp = BF16ProcessingElement(lanes=2)
    beats = stim.random_bf16_dots(np.random.default_rng(4), lanes=2, count=400 if sim == "verilator" else 100)
    r = run_case(bf16_pe_case(design, comp, beats, seed=4), sim).check()
    assert r.compared_outputs == (400 if sim == "verilator" else 100)


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_array_vectors(build_root, sim):
    """2x2 MXSF array, one-beat blocks: whole matrices equal golden ``matmul``; tiles of
    one beat make the array refuse ``last`` beats (``i.ready`` low), which the held
    stimulus and the model must agree on."""
    from mxsf.golden import matmul, quantize

    require_simulator(sim)
    params = {"fmt": "mxsf", "rows": 2, "cols": 2, "block_size": 8, "lanes": 8}
    design = build_verilog(SystolicArray, params, name="systolic_mxsf_2x2", root=build_root)
    comp = SystolicArray(**params)
    rng = np.random.default_rng(8)
    M, K, N = 6, 8, 4                                             # one beat per tile: stalls
    x = (rng.standard_normal((M, K)) * np.exp2(rng.integers(-30, 30, (M, K)))).astype(np.float32)
    w = rng.standard_normal((K, N)).astype(np.float32)
    qa, qb = quantize(x, "mxsf", 8, axis=1), quantize(w, "mxsf", 8, axis=0)
    values, n, grid = array_tiles_beats(qa.codes, qb.codes, qa.scale_per_element()[:, ::8],
                                        qb.scale_per_element()[::8, :], rows=2, cols=2, block_size=8, lanes=8)
    case = array_case(design, comp, values, n, seed=8, idle_prob=0.0)
    r = run_case(case, sim).check()
    got = r.got
    ready = vectors.field_values(got.matrix, *vectors.output_layout(design.ports).field("i__ready"))
    assert (ready == 0).any(), "no back-pressure happened: the test would not cover the held stream"
    assert (array_results(case, got, grid) == matmul(qa, qb).view(np.uint32)).all()


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_requant_and_maxexp_vectors(build_root, sim):
    """Re-quantizer and max-exponent finder with seeded idle cycles and output back-pressure."""
    from mxsf.sim.tests.maxexp_tests import random_group_bits, special_group_bits
    from mxsf.sim.tests.requant_tests import random_tile_bits, special_tile_bits

    require_simulator(sim)
    rng = np.random.default_rng(6)
    p = {"fmt": "mxsf", "rows": 4, "cols": 8, "lanes": 8}
    design = build_verilog(TileRequantizer, p, name="requant_mxsf_4x8", root=build_root)
    tiles = random_tile_bits(rng, 32, 60) + special_tile_bits(rng, "mxsf", 32)
    r = run_case(requant_case(design, TileRequantizer(**p), tiles, seed=6, stall_prob=0.4), sim).check()
    assert r.compared_outputs >= 4 * len(tiles)
    p = {"n": 16, "lanes": 4}
    design = build_verilog(BlockMaxExponent, p, name="maxexp_16x4", root=build_root)
    groups = random_group_bits(rng, 16, 80) + special_group_bits(rng, 16)
    r = run_case(maxexp_case(design, BlockMaxExponent(**p), groups, seed=6, stall_prob=0.4), sim).check()
    assert r.compared_outputs >= len(groups)


@pytest.mark.sim
@pytest.mark.parametrize("sim", [pytest.param("verilator", marks=pytest.mark.slow), "icarus"])
def test_vcd_of_the_dut(build_root, sim):
    """``vcd=True`` builds dump the DUT hierarchy to the VCD named at run time (Verilator's
    ``--trace`` build costs ~25 CPU-s: -m slow; gate-level activity uses Icarus)."""
    require_simulator(sim)
    design = build_verilog(BF16ProcessingElement, {"lanes": 1}, name="bf16_pe_1", root=build_root)
    vs = vectors.build_design_vector_sim(design, sim, vcd=True)
    n = 40
    st = vectors.pack_fields(vs.in_layout, n, {"i__valid": np.arange(n) % 2})
    run_dir = build_root / "vcd-test" / sim
    vcd = run_dir / "dut.vcd"
    vcd.unlink(missing_ok=True)
    vs.run(st, run_dir, vcd_path=vcd)
    text = vcd.read_text()
    assert "$enddefinitions" in text and re.search(r"\$var \S+ \d+ \S+ o__payload", text)
    with pytest.raises(ValueError, match=r"^vcd_path needs a testbench built with vcd=True$"):
        vectors.build_design_vector_sim(design, sim).run(st, run_dir, vcd_path=vcd)


# ------------------------------------------------------------------------------------
# CLI: mxsf test ... --vectors N


def test_cli_vectors_bad_input(capsys):
    from mxsf.cli.main import main
    from mxsf.gen.design import resolve_design
    from mxsf.sim.vector_regression import run_vector_regression

    assert main(["test", "pe", "--fmt", "mxsf", "--vectors", "0"]) == 2
    assert "--vectors: expected a positive integer" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^design must be one of pe, bf16-pe, maxexp, requantizer, array, gemm "
                                         r"for --vectors; not 'fp32-adder'$"):
        d = resolve_design("pe", {"fmt": "mxsf"})
        run_vector_regression(dataclasses.replace(d, spec=dataclasses.replace(d.spec, name="fp32-adder")))
    assert main(["test", "pe", "--fmt", "mxsf", "--vectors", "10", "--count", "3"]) == 2


@pytest.mark.sim
def test_cli_vectors_pass_lines(capsys):
    from mxsf.cli.main import main

    require_simulator("icarus")
    code = main(["test", "pe", "--fmt", "mxsf", "--block-size", "4", "--lanes", "4", "--vectors", "300",
                 "--sim", "icarus", "--seed", "7"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^PASS pe\.random_dots \[icarus\] \(.* 300 results checked", out, re.M), out
    assert out.rstrip().endswith("1 passed, 0 failed")


def test_array_vectorized_expectation_equals_cycle_model():
    """``array_case(tile_results=...)`` (batched_dot, vectorized timing) expects exactly the
    records the systolic cycle model gives, with and without back-pressure."""
    from mxsf.golden import quantize
    from mxsf.golden.matmul import batched_dot

    params = {"fmt": "fp8_e5m2", "rows": 2, "cols": 2, "block_size": 8, "lanes": 8}
    design = build_verilog(SystolicArray, params, name="systolic_e5m2_2x2", root="build")
    comp = SystolicArray(**params)
    rng = np.random.default_rng(12)
    M, K, N = 4, 16, 4
    qa = quantize((rng.standard_normal((M, K)) * 1e3).astype(np.float32), "fp8_e5m2", 8, axis=1)
    qb = quantize(rng.standard_normal((K, N)).astype(np.float32), "fp8_e5m2", 8, axis=0)
    sa, sb = qa.scale_per_element()[:, ::8], qb.scale_per_element()[::8, :]
    values, n, (mt, nt) = array_tiles_beats(qa.codes, qb.codes, sa, sb, rows=2, cols=2, block_size=8, lanes=8)
    c = batched_dot(np.repeat(qa.codes, N, 0), np.tile(qb.codes.T, (M, 1)), np.repeat(sa, N, 0),
                    np.tile(sb.T, (M, 1)), "fp8_e5m2", 8).view(np.uint32)
    tiles = c.reshape(mt, 2, nt, 2).transpose(0, 2, 1, 3).reshape(-1, 2, 2)
    for idle in (0.0, 0.5):
        slow = array_case(design, comp, values, n, seed=3, idle_prob=idle)
        fast = array_case(design, comp, values, n, seed=3, idle_prob=idle, tile_results=tiles)
        nb = vectors.output_layout(design.ports).nbytes
        no_events = vectors.Records(np.zeros(0, np.int64), np.zeros((0, nb), np.uint8), np.zeros(0, bool),
                                    len(slow.stimulus), 0.0, Path("."))
        e1, e2 = slow.expect(no_events), fast.expect(no_events)
        assert (e1.cycles == e2.cycles).all() and (e1.matrix == e2.matrix).all() and (e1.mask == e2.mask).all()
        assert len(e1.cycles) > 8
    wrong = tiles.copy()
    wrong[1, 0, 1] ^= 1
    bad = array_case(design, comp, values, n, seed=3, idle_prob=0.5, tile_results=wrong).expect(no_events)
    assert bad.matrix.shape == e1.matrix.shape and not (bad.matrix == e1.matrix).all()
