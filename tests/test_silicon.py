"""Tests of the real-library flow (osu018), OpenSTA power, gate-level activity and the
Dask scheduler of ``mxsf compare``.

Skipped when OpenSTA or the OSU library is missing, except under MXSF_REQUIRE_SIMS=1
(as CI sets it), where they fail.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import stat
from pathlib import Path

import pytest

from mxsf.sim.gate_activity import (GateLevelError, GateLevelMismatch, activity_tcl, check_outputs,
                                    count_samples, instrument_netlist, pe_workload, probe_nets,
                                    run_workload, simulate_netlist)
from mxsf.sim.gate_activity import testbench_text as gate_testbench
from mxsf.synth import SynthError, get_library, read_cells, synthesize
from mxsf.synth.energy import activity_power, pj_per_mac
from mxsf.studies.accuracy import make_distribution
from mxsf.synth.hier import dedup_verilog

_OSU = get_library("osu018")
_HAVE = shutil.which("sta") is not None and _OSU.liberty.is_file() and shutil.which("iverilog")
needs_osu = pytest.mark.skipif(not _HAVE and os.environ.get("MXSF_REQUIRE_SIMS") != "1",
                               reason="needs OpenSTA (opensta), qflow-tech-osu018 and iverilog")

_PIPE = """\
module pipe{w}(input clk, input [{m}:0] a, input [{m}:0] b, input [{m}:0] c,
               output reg [{q}:0] q);
  reg [{m}:0] ra, rb, rc;
  always @(posedge clk) begin ra <= a; rb <= b; rc <= c; q <= ra * rb + rc; end
endmodule
"""
_REGS = """\
module regs(input clk, input [7:0] d, output reg [7:0] q);
  always @(posedge clk) q <= d;
endmodule
"""

#: Two instances of pipe4 (kept as a module by the hierarchical flow) and top glue.
_PIPES2 = """\
module pipes2(input clk, input [3:0] a, input [3:0] b, input [3:0] c, output [7:0] q);
  wire [7:0] q0, q1;
  pipe4 u0(.clk(clk), .a(a), .b(b), .c(c), .q(q0));
  pipe4 u1(.clk(clk), .a(q0[3:0]), .b(q0[7:4]), .c(a ^ c), .q(q1));
  assign q = q0 ^ q1;
endmodule
"""


def _pipe(width: int) -> str:
    return _PIPE.format(w=width, m=width - 1, q=2 * width - 1)


@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict[str, Path]:
    src = tmp_path_factory.mktemp("verilog")
    out = {}
    for name, text in (("pipe4", _pipe(4)), ("pipe8", _pipe(8)), ("regs", _REGS),
                       ("pipes2", _PIPES2 + _pipe(4))):
        out[name] = src / f"{name}.v"
        out[name].write_text(text)
    return out


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="module")
def pipe4(designs, out_dir):
    return synthesize(designs["pipe4"], "pipe4", out_dir=out_dir, lib="osu018")


@pytest.fixture(scope="module")
def pipes2(designs, out_dir):
    return synthesize(designs["pipes2"], "pipes2", out_dir=out_dir, lib="osu018")


@pytest.fixture(scope="module")
def pipe8(designs, out_dir):
    return synthesize(designs["pipe8"], "pipe8", out_dir=out_dir, lib="osu018")


# --------------------------------------------------------------------------- flow


def _check_fields(report) -> None:
    cells = read_cells(_OSU.liberty)
    assert report.library == "osu018"
    assert set(report.cell_counts) <= set(cells), "unmapped cells"
    area = sum(cells[k].area * v for k, v in report.cell_counts.items())
    assert report.area_lib == pytest.approx(area) and area > 0
    assert report.area_ge == pytest.approx(area / 24.0)
    assert report.area_ge == pytest.approx(report.comb_area_ge + report.seq_area_ge)
    assert report.cell_count == sum(report.cell_counts.values()) > 0
    assert report.flop_count == sum(v for k, v in report.cell_counts.items() if cells[k].sequential)
    assert report.delay_ps > 0 and report.fmax_mhz == pytest.approx(1e6 / report.delay_ps, rel=1e-3)
    # default analysis clock: the design's own critical path, so no negative slack
    assert report.clock_ns == pytest.approx(report.delay_ps / 1000, rel=1e-4)
    assert report.wns_ns == 0.0
    p = report.power
    for key in ("internal", "switching", "leakage", "total"):
        assert p[key] > 0, key
    assert p["total"] == pytest.approx(p["internal"] + p["switching"] + p["leakage"], rel=1e-3)
    assert set(p["groups"]) == {"sequential", "combinational"}
    work = Path(report.work_dir)
    for name in ("mapped.v", "mapped.json", "report.json", "report.md", "sta.log", "power.log"):
        assert (work / name).is_file(), name
    text = (work / "report.md").read_text()
    assert "| Fmax |" in text and "vectorless" in text


@needs_osu
def test_osu_small_design_has_every_field(pipe4):
    _check_fields(pipe4)
    assert pipe4.flop_count == 3 * 4 + 8


@needs_osu
def test_same_verilog_same_figures(designs, out_dir, pipe4):
    again = synthesize(designs["pipe4"], "pipe4", out_dir=out_dir, lib="osu018", cache=False)
    skip = {"wall_time_s", "sta_time_s"}
    a = {k: v for k, v in pipe4.to_json().items() if k not in skip}
    b = {k: v for k, v in again.to_json().items() if k not in skip}
    assert a == b


@needs_osu
def test_wider_design_more_area_longer_path(pipe4, pipe8):
    assert pipe8.area_ge > pipe4.area_ge
    assert pipe8.delay_ps >= pipe4.delay_ps
    assert pipe8.flop_count > pipe4.flop_count


@needs_osu
def test_register_only_design_has_no_combinational_area(designs, out_dir):
    report = synthesize(designs["regs"], "regs", out_dir=out_dir, lib="osu018")
    assert report.flop_count == 8
    assert report.comb_area_ge == 0.0 and report.seq_area_ge > 0


@needs_osu
def test_requested_clock_gives_wns(designs, out_dir, pipe4):
    fast = synthesize(designs["pipe4"], "pipe4", out_dir=out_dir, lib="osu018",
                      clock_ns=pipe4.delay_ps / 2000)
    assert fast.wns_ns < 0
    slow = synthesize(designs["pipe4"], "pipe4", out_dir=out_dir, lib="osu018", clock_ns=100.0)
    assert slow.wns_ns == 0.0 and slow.clock_ns == 100.0
    assert slow.power["total"] < pipe4.power["total"]      # same activity per cycle, slower clock


@needs_osu
def test_pe_through_the_cli(tmp_path, capsys):
    from mxsf.cli import main

    assert main(["synth", "bf16-pe", "--lanes", "1", "--lib", "osu018", "--dots", "2", "--k", "32",
                 "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for item in ("Fmax (MHz)", "WNS (ns)", "power vectorless (mW)", "pJ/MAC vectorless",
                 "power from activity (mW)", "pJ/MAC (activity)", "2 results checked",
                 "(icarus) /"):                 # auto: a small netlist runs on Icarus
        assert item in out, item
    report = json.loads(next(tmp_path.glob("osu018-*/report.json")).read_text())
    cells = read_cells(_OSU.liberty)
    assert set(report["cell_counts"]) <= set(cells)
    assert report["flop_count"] > 50 and report["power"]["total"] > 0


# --------------------------------------------------------------------------- hierarchy


def test_dedup_merges_identical_instances():
    sub = """module \\top.u{i} (clk, a, q);
  input clk; input a; output reg q;
  reg \\$auto$x.cc:1:f${n} = 0;
  always @(posedge clk) q <= ~a;
endmodule
"""
    top = """module top(clk, a, q0, q1);
  input clk; input a; output q0; output q1;
  \\top.u0  u0 (.clk(clk), .a(a), .q(q0));
  \\top.u1  u1 (.clk(clk), .a(q0), .q(q1));
endmodule
"""
    plan = dedup_verilog(top + sub.format(i=0, n=3) + sub.format(i=1, n=9), "top")
    assert plan.modules_before == 3 and plan.modules_after == 2
    assert plan.keep == ("top_u0",) and plan.instances == {"top_u0": 2}
    assert plan.verilog.count("top_u0  u") == 2
    # a different body is not merged
    other = sub.format(i=1, n=9).replace("~a", "a")
    plan = dedup_verilog(top + sub.format(i=0, n=3) + other, "top")
    assert plan.modules_after == 3 and plan.keep == ()


def test_dedup_ignores_port_order_and_generated_port_names():
    """Amaranth lists the ports of equal instances in different orders and names a port
    driven by an expression ``port$<id>$0`` with a global id: still the same hardware."""
    sub = """module \\top.u{i} ({ports});
  input clk; input \\port${pid}$0 ; output reg q;
  always @(posedge clk) q <= ~\\port${pid}$0 ;
endmodule
"""
    top = """module top(clk, a, q0, q1);
  input clk; input a; output q0; output q1;
  \\top.u0  u0 (.clk(clk), .\\port$7$0 (a), .q(q0));
  \\top.u1  u1 (.q(q1), .\\port$12$0 (q0), .clk(clk));
endmodule
"""
    u0 = sub.format(i=0, ports="clk, \\port$7$0 , q", pid=7)
    u1 = sub.format(i=1, ports="q, \\port$12$0 , clk", pid=12)
    plan = dedup_verilog(top + u0 + u1, "top")
    assert plan.modules_after == 2 and plan.keep == ("top_u0",), plan.verilog
    assert plan.instances == {"top_u0": 2}
    # u1's instantiation now names the representative's port
    assert ".\\port$7$0 (q0)" in plan.verilog and "port$12$0" not in plan.verilog


# --------------------------------------------------------------------------- activity


def _random_vectors(width: int, cycles: int, rate: float, seed: int = 1) -> list:
    rng = random.Random(seed)
    mask = (1 << width) - 1
    a, b, c = 0x5 & mask, 0xA & mask, 0x3 & mask
    vectors = []
    for _ in range(cycles):
        for bit in range(width):
            if rng.random() < rate:
                a ^= 1 << bit
            if rng.random() < rate:
                b ^= 1 << bit
            if rng.random() < rate:
                c ^= 1 << bit
        vectors.append({"a": a, "b": b, "c": c})
    return vectors


def _activity_power(report, vectors, tag):
    sim = simulate_netlist(report.work_dir, top=report.top, cell_models=_OSU.cell_models,
                           vectors=vectors, clock_ns=report.clock_ns, count_from=4, tag=tag)
    text, pins = activity_tcl(Path(report.work_dir) / "mapped.json", report.top, sim)
    assert pins > 0
    (Path(report.work_dir) / f"{tag}.tcl").write_text(text)
    return sim, activity_power(report, f"{tag}.tcl", tag=f"{tag}-power")


@needs_osu
def test_constant_inputs_near_zero_switching(pipe8):
    toggling = _activity_power(pipe8, _random_vectors(8, 200, 0.25), "toggle")[1]
    sim, constant = _activity_power(pipe8, [{"a": 0x5A, "b": 0x33, "c": 0x0F}] * 200, "const")
    assert sum(v for (_scope, net), v in sim.toggles.items() if net != "clk") == 0
    assert constant.switching_w < 0.02 * toggling.switching_w
    assert constant.dynamic_w < toggling.dynamic_w


@needs_osu
def test_doubling_toggle_rate_raises_dynamic_power(pipe8):
    _, low = _activity_power(pipe8, _random_vectors(8, 300, 0.1), "rate1")
    _, high = _activity_power(pipe8, _random_vectors(8, 300, 0.2), "rate2")
    assert high.switching_w > 1.3 * low.switching_w
    assert high.dynamic_w > low.dynamic_w


@needs_osu
def test_verilator_and_icarus_count_the_same_activity(pipes2, tmp_path):
    """The same hierarchical netlist (two kept instances of a module) and vectors on both
    gate-level simulators (Icarus reads the nets from a testbench task, Verilator from
    probe wires added to each module): the same outputs after the first cycles (Icarus
    starts the flip-flops at X), the same toggles and time at 1 for every net bit of the
    counting window, in the top and in both instances."""
    from mxsf.synth.cellsim import verilator_cell_models

    models = verilator_cell_models(_OSU, tmp_path)
    assert models.read_text().count("module ") >= 30
    vectors = _random_vectors(4, 60, 0.3, seed=5)
    sims = {sim: simulate_netlist(pipes2.work_dir, top=pipes2.top, cell_models=_OSU.cell_models,
                                  verilator_cell_models=models, vectors=vectors, clock_ns=pipes2.clock_ns,
                                  count_from=4, tag=f"agree-{sim}", simulator=sim)
            for sim in ("icarus", "verilator")}
    ica, vl = sims["icarus"], sims["verilator"]
    assert (ica.simulator, vl.simulator) == ("icarus", "verilator")
    assert "mxsf_activity" in (Path(pipes2.work_dir) / "agree-verilator" / "netlist.v").read_text()
    assert "mxsf_activity" not in (Path(pipes2.work_dir) / "agree-icarus" / "netlist.v").read_text()
    assert ica.outputs[6:] == vl.outputs[6:] and all(r["q"] is not None for r in ica.outputs[6:])
    assert ica.toggles == vl.toggles and ica.high_ns == vl.high_ns
    scopes = {scope for scope, _net in ica.toggles}
    assert scopes == {"", "u0", "u1"}
    for scope in ("u0", "u1"):                          # each instance's datapath toggles
        assert sum(v for (s, _n), v in ica.toggles.items() if s == scope) > 60 * 2, scope
    assert ica.toggles[("", "clk")] == 2 * 56 and ica.high_ns[("", "clk")] == pytest.approx(56 * pipes2.clock_ns / 2)
    with pytest.raises(ValueError, match="simulator must be one of"):
        simulate_netlist(pipes2.work_dir, top=pipes2.top, vectors=vectors, simulator="xcelium")
    with pytest.raises(ValueError, match="'verilator' needs verilator_cell_models"):
        simulate_netlist(pipes2.work_dir, top=pipes2.top, vectors=vectors, simulator="verilator")


def test_probe_nets_name_every_net():
    netlist = {"modules": {
        "top": {"ports": {}, "cells": {"u0": {"type": "sub", "connections": {}},
                                       "g": {"type": "INVX1", "connections": {}}},
                "netnames": {"a": {"bits": [2]}, "b[0]": {"bits": [3]}, "w": {"bits": [4, 5, 6], "offset": 1},
                             "alias": {"bits": [2]}, "$auto": {"bits": [7]}, "k": {"bits": ["0"]},
                             "\\$38": {"bits": [8]}}},
        "sub": {"ports": {}, "cells": {}, "netnames": {"x": {"bits": [2]}}},
        "INVX1": {"attributes": {"blackbox": "00000000000000000000000000000001"}, "cells": {}}}}
    probes = probe_nets(netlist, "top")
    # JSON "\\$38" is the public name $38, in Verilog the escaped "\\$38 "; $auto, a
    # private name, is not in the Verilog text; a bit with two names is sampled once
    assert probes == {"top": [("a", "a"), ("b[0]", "\\b[0] "), ("w[0]", "w[1]"), ("w[1]", "w[2]"),
                              ("w[2]", "w[3]"), ("\\$38", "\\$38 ")], "sub": [("x", "x")]}
    tb, _inputs, _outputs = gate_testbench(netlist, "top", clock_ns=10.0, cycles=2, probes=probes)
    assert "mxsf_probe0[5:0] = {\n      dut.a, dut.\\b[0] , dut.w[1], dut.w[2], dut.w[3], dut.\\$38 };" in tb
    assert "mxsf_probe1[0:0] = {\n      dut.u0.x};" in tb and tb.count("      mxsf_sample;") == 2
    # Verilator's style: a probe wire in each module, written by the testbench
    text = "module top(a);\n  input a;\nendmodule\nmodule sub(x);\n  input x;\nendmodule\n"
    wired = instrument_netlist(text, netlist, probes)
    assert ("  wire [5:0] mxsf_activity;\n  assign mxsf_activity[5:0] = {\n    a, \\b[0] , w[1], "
            "w[2], w[3], \\$38 };\nendmodule\nmodule sub") in wired
    assert "  assign mxsf_activity[0:0] = {\n    x};\nendmodule\n" in wired
    tb, _inputs, _outputs = gate_testbench(netlist, "top", clock_ns=10.0, cycles=2, probes=probes,
                                           probe_style="wire")
    assert tb.count('$fwrite(fa, "%b%b\\n", dut.mxsf_activity, dut.u0.mxsf_activity);') == 2
    with pytest.raises(GateLevelError, match="lacks the module"):
        instrument_netlist(text.replace("module sub", "module other"), netlist, probes)


def test_sample_counting(tmp_path):
    """Two samples a cycle (before the rising edge, end of cycle) of two probes: toggles
    are counted into the window's samples (the first from the sample before it), half a
    cycle at 1 per sample at 1; X is neither."""
    path = tmp_path / "activity.txt"
    # probe 1: bit a; probe 2: bits v1 v0.     cycle 0: A B | cycle 1: A B | cycle 2: A B
    rows = ["x" "00", "0" "00", "1" "11", "1" "01", "1" "01", "x" "01"]
    path.write_text("".join(r + "\n" for r in rows))
    (a_t, a_h), (v_t, v_h) = count_samples(path, [1, 2], cycles=3, count_from=1, clock_ns=10.0)
    assert a_t.tolist() == [1]                  # 0->1 into cycle 1; 1->x is not a toggle
    assert a_h.tolist() == [15.0]               # three samples at 1, 5 ns each
    assert v_t.tolist() == [2, 1]               # v1: 0->1->0; v0: 0->1 into cycle 1
    assert v_h.tolist() == [5.0, 20.0]
    (a_t0, _), _ = count_samples(path, [1, 2], cycles=3, count_from=0, clock_ns=10.0)
    assert a_t0.tolist() == [1]                 # x->0 is not a toggle
    with pytest.raises(GateLevelError, match="expected 8 samples of 3 bits, got 24 bytes"):
        count_samples(path, [1, 2], cycles=4, count_from=0, clock_ns=10.0)


def test_pj_per_mac():
    assert pj_per_mac(0.01, 20.0, 32, 0.5) == pytest.approx(0.01 * 20e-9 / 16 * 1e12)
    assert pj_per_mac(0.01, 20.0, 0) is None
    with pytest.raises(ValueError, match=r"clock_ns must be > 0"):
        pj_per_mac(0.01, 0.0, 1)
    with pytest.raises(ValueError, match=r"utilisation must be in \(0, 1\]"):
        pj_per_mac(0.01, 1.0, 1, 1.5)


@pytest.fixture(scope="module")
def bf16_pe(tmp_path_factory):
    from mxsf.synth.compare import make_job, run_jobs

    job = make_job("bf16-pe", {"lanes": 1})
    (result,) = run_jobs([job], synth_dir=tmp_path_factory.mktemp("pe"), workers=1, lib="osu018")
    return result


@needs_osu
def test_gate_level_pe_matches_golden(bf16_pe):
    workload = pe_workload("bf16-pe", {"lanes": 1}, sample=make_distribution, dots=3, k=16, latency=2)
    sim, compared = run_workload(bf16_pe.report.work_dir, top=bf16_pe.report.top,
                                 cell_models=str(_OSU.cell_models), workload=workload,
                                 clock_ns=bf16_pe.report.clock_ns)
    assert compared == 3 and sim.window_cycles == workload.cycles - workload.reset_cycles
    # the check itself: a wrong expected value is reported with its cycle
    wrong = list(workload.expected)
    cycle = next(i for i, v in enumerate(wrong) if v is not None)
    wrong[cycle] ^= 1
    with pytest.raises(GateLevelMismatch, match=rf"cycle {cycle}: o__payload is 0x"):
        check_outputs(sim.outputs, wrong, top="t", start=workload.reset_cycles)


@needs_osu
def test_gate_level_bdr_pe_matches_golden(tmp_path):
    """An MX6 PE (microexponents in every beat) through the activity workload: the mapped
    netlist's outputs equal the golden model's (the workload once dropped the microexponents)."""
    from mxsf.synth.compare import make_job, run_jobs

    params = {"fmt": "mx6", "block_size": 16, "lanes": 4}
    (res,) = run_jobs([make_job("pe", params)], synth_dir=tmp_path, workers=1, lib="osu018")
    workload = pe_workload("pe", params, sample=make_distribution, dots=2, k=32, latency=_pe_latency(params))
    sim, compared = run_workload(res.report.work_dir, top=res.report.top, cell_models=str(_OSU.cell_models),
                                 workload=workload, clock_ns=res.report.clock_ns)
    assert compared == 2


def _pe_latency(params):
    from mxsf.gen.design import resolve_design

    return resolve_design("pe", params).latency


@needs_osu
def test_broken_netlist_fails_the_gate_level_check(bf16_pe, tmp_path):
    work = Path(bf16_pe.report.work_dir)
    for name in ("mapped.json",):
        shutil.copy(work / name, tmp_path / name)
    text = (work / "mapped.v").read_text()
    # one gate changed: the first XOR2X1 becomes an XNOR2X1 (same pins)
    broken, n = re.subn(r"\bXOR2X1\b", "XNOR2X1", text, count=1)
    assert n == 1
    (tmp_path / "mapped.v").write_text(broken)
    workload = pe_workload("bf16-pe", {"lanes": 1}, sample=make_distribution, dots=3, k=16, latency=2)
    with pytest.raises(GateLevelMismatch, match=r"gate-level bf16_pe_l1: cycle \d+"):
        run_workload(tmp_path, top=bf16_pe.report.top, cell_models=str(_OSU.cell_models),
                     workload=workload, clock_ns=bf16_pe.report.clock_ns)


# --------------------------------------------------------------------------- bad input


def test_bad_library_and_clock():
    with pytest.raises(ValueError, match=r"^lib must be one of generic, osu018; not 'tsmc'"):
        get_library("tsmc")
    with pytest.raises(ValueError, match=r"^clock_ns must be in \(0, 1e6\) ns, not 0"):
        synthesize(__file__, "x", lib="osu018", clock_ns=0)
    with pytest.raises(ValueError, match=r"^clock_ns must be in \(0, 1e6\) ns, not -2.0"):
        synthesize(__file__, "x", lib="osu018", clock_ns=-2.0)


@pytest.mark.parametrize("argv, message", [
    (["--lib", "tsmc"], r"--lib must be one of generic, osu018, not 'tsmc'"),
    (["--lib", "osu018", "--clock-ns", "0"], r"--clock-ns must be in \(0, 1e6\) ns, not '0'"),
    (["--lib", "osu018", "--clock-ns", "-5"], r"--clock-ns must be in \(0, 1e6\) ns, not '-5'"),
    (["--lib", "osu018", "--clock-ns", "fast"], r"--clock-ns must be a number of ns > 0"),
])
def test_cli_bad_input_exits_2(argv, message, capsys, tmp_path):
    from mxsf.cli import main

    assert main(["synth", "bf16-pe", "--out-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not list(tmp_path.rglob("report.json"))


def _fake_sta(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-sta"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@needs_osu
@pytest.mark.parametrize("kind", ["missing", "failing"])
def test_sta_missing_or_failing_exits_2_and_leaves_no_result(kind, tmp_path, capsys,
                                                             monkeypatch):
    from mxsf.cli import main

    if kind == "missing":
        monkeypatch.setenv("MXSF_STA", str(tmp_path / "no-such-sta"))
        pattern = r"OpenSTA not found"
    else:
        # runs, but fails on the netlist: prints an error like OpenSTA's and exits 1
        monkeypatch.setenv("MXSF_STA", _fake_sta(tmp_path, 'echo "Error: mapped.v line 1, '
                                                 'syntax error"; exit 1'))
        pattern = r"OpenSTA failed on '\S+': Error: mapped.v line 1, syntax error"
    out = tmp_path / "out"
    assert main(["synth", "maxexp", "--n", "4", "--lib", "osu018", "--out-dir", str(out),
                 "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(pattern, err), err
    assert not list(out.rglob("report.json")) and not list(out.rglob("report.md"))
    assert not list(out.rglob(".run-*"))


@needs_osu
def test_sta_error_is_a_synth_error(designs, tmp_path, monkeypatch):
    monkeypatch.setenv("MXSF_STA", _fake_sta(tmp_path, "exit 3"))
    with pytest.raises(SynthError, match=r"^OpenSTA failed on 'pipe4': exit 3"):
        synthesize(designs["pipe4"], "pipe4", out_dir=tmp_path / "o", lib="osu018", cache=False)


@pytest.mark.parametrize("name", ["mxsf.sim.gate_activity", "mxsf.cli.energy", "mxsf.synth.energy",
                                  "mxsf.synth.hier", "mxsf.synth.libraries", "mxsf.synth.sta"])
def test_all_names_exist(name):
    import importlib

    module = importlib.import_module(name)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"


def test_synth_does_not_import_sim():
    """The flow, STA and energy modules stay below the simulation layer: the glue lives in
    mxsf.cli.energy. (compare.py still builds Verilog through mxsf.sim.build until the
    generator layer of issue 12 lands.)"""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "synth"
    for path in root.glob("*.py"):
        if path.name == "compare.py":
            continue
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+mxsf\.sim\b", text, re.M), path.name


@needs_osu
def test_analysis_change_reuses_the_yosys_outputs(designs, tmp_path):
    first = synthesize(designs["pipe4"], "pipe4", out_dir=tmp_path, lib="osu018")
    work = Path(first.work_dir)
    data = json.loads((work / "report.json").read_text())
    data["flow_key"] = "stale"                     # as after an edit of the STA code
    (work / "report.json").write_text(json.dumps(data))
    log = work / "yosys.log"
    mtime = log.stat().st_mtime_ns
    again = synthesize(designs["pipe4"], "pipe4", out_dir=tmp_path, lib="osu018")
    assert not again.cached and log.stat().st_mtime_ns == mtime
    assert again.wall_time_s == first.wall_time_s
    assert (again.area_ge, again.delay_ps, again.power) == (first.area_ge, first.delay_ps, first.power)
    (work / "report.json").write_text(json.dumps(data))
    (work / "yosys.key").write_text('{"key": "0000000000000000", "wall_time_s": 1.0}')  # other netlist
    synthesize(designs["pipe4"], "pipe4", out_dir=tmp_path, lib="osu018")
    assert log.stat().st_mtime_ns != mtime
