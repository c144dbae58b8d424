"""Tests of mxsf.synth: the generic library, OpenSTA timing and the Yosys flow."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from simsupport import _HAVE_YOSYS, needs_yosys
from mxsf.synth import (
    LIBERTY_PATH,
    SynthError,
    SynthReport,
    cell_area_ge,
    format_report_table,
    synthesize,
    yosys_command,
)
from mxsf.synth.liberty import (CELLS, DRIVE_PS_PER_FF, PIN_CAP_FF, SETUP_PS, cells_by_name,
                                render_liberty)
from mxsf.synth.sta import run_sta

needs_sta = pytest.mark.skipif(shutil.which("sta") is None, reason="OpenSTA (sta) not installed")



# --------------------------------------------------------------------------- designs


class _Adder(wiring.Component):
    """Combinational ``s = a + b``."""

    def __init__(self, *, width: int) -> None:
        self._width = width
        super().__init__({"a": In(width), "b": In(width), "s": Out(width + 1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.s.eq(self.a + self.b)
        return m


class _Accumulator(wiring.Component):
    """Registered ``acc += i`` when ``en``, synchronous reset to 5."""

    def __init__(self, *, width: int) -> None:
        self._width = width
        super().__init__({"i": In(width), "en": In(1), "o": Out(width)})

    def elaborate(self, platform):
        m = Module()
        acc = Signal(self._width, init=5)
        with m.If(self.en):
            m.d.sync += acc.eq(acc + self.i)
        m.d.comb += self.o.eq(acc)
        return m


# Every flip-flop flavour Yosys can infer from plain Verilog, bar latches.
_EDGE_FFS = """\
module edge_ffs(input clk, input rst, input rstn, input en, input [3:0] d,
                output reg [3:0] q_neg, output reg [3:0] q_ar, output reg [3:0] q_as,
                output reg [3:0] q_en, output reg [3:0] q_sr);
  always @(negedge clk) q_neg <= d;
  always @(posedge clk or posedge rst) if (rst) q_ar <= 4'b0; else q_ar <= d ^ q_ar;
  always @(posedge clk or negedge rstn) if (!rstn) q_as <= 4'b1111; else q_as <= d + q_as;
  always @(posedge clk) if (en) q_en <= d;
  always @(posedge clk) if (rst) q_sr <= 4'b1010; else q_sr <= d;
endmodule
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def designs(tmp_path_factory) -> dict[str, Path]:
    """Verilog of the test designs, in a /tmp folder (which yowasp cannot see by path)."""
    src = tmp_path_factory.mktemp("verilog")
    return {
        "add8": _write(src / "add8.v", verilog.convert(_Adder(width=8), name="add8")),
        "add16": _write(src / "add16.v", verilog.convert(_Adder(width=16), name="add16")),
        "acc16": _write(src / "acc16.v", verilog.convert(_Accumulator(width=16), name="acc16")),
        "edge_ffs": _write(src / "edge_ffs.v", _EDGE_FFS),
    }


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="module")
def acc16(designs, out_dir) -> SynthReport:
    return synthesize(designs["acc16"], "acc16", out_dir=out_dir)


@pytest.fixture(scope="module")
def add8(designs, out_dir) -> SynthReport:
    return synthesize(designs["add8"], "add8", out_dir=out_dir)


# --------------------------------------------------------------------------- modules


@pytest.mark.parametrize("name", ["mxsf.synth", "mxsf.synth.flow", "mxsf.synth.liberty",
                                  "mxsf.synth.sta", "mxsf.synth.hier", "mxsf.synth.libraries",
                                  "mxsf.synth.energy"])
def test_all_names_exist(name):
    module = importlib.import_module(name)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"


# --------------------------------------------------------------------------- liberty


def test_liberty_file_matches_table():
    assert LIBERTY_PATH.read_text() == render_liberty(), \
        "mxsf_generic.lib is stale: run python -m mxsf.synth --write-liberty"


def test_liberty_areas_are_nangate_thirds():
    expected = {"INV": Fraction(2, 3), "BUF": 1, "NAND2": 1, "NAND3": Fraction(4, 3),
                "NOR2": 1, "NOR3": Fraction(4, 3), "AND2": Fraction(4, 3), "OR2": Fraction(4, 3),
                "XOR2": 2, "XNOR2": 2, "AOI21": Fraction(4, 3), "OAI21": Fraction(4, 3),
                "MUX2": Fraction(7, 3), "DFF": Fraction(17, 3), "DFFR": Fraction(20, 3),
                "DFFS": Fraction(20, 3)}
    areas = cell_area_ge()
    assert set(areas) == set(expected)
    for name, area in expected.items():
        assert areas[name] == pytest.approx(float(area), abs=1e-9), name
    text = LIBERTY_PATH.read_text()
    for name, area in expected.items():
        block = re.search(rf"cell \({name}\) \{{\s*area : ([0-9.]+);", text)
        assert block is not None, name
        assert float(block.group(1)) == pytest.approx(float(area), abs=1e-6), name
    assert "Nangate FreePDK45" in text


@needs_yosys
def test_liberty_parses_in_yosys(tmp_path):
    (tmp_path / "lib.lib").write_text(LIBERTY_PATH.read_text())
    (tmp_path / "t.ys").write_text("read_liberty -lib lib.lib\ndesign -reset\n"
                                   "read_liberty lib.lib\nls\n")
    command = [*yosys_command(), "-q", "-l", "t.log", "-s", "t.ys"]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, check=False)
    log = (tmp_path / "t.log").read_text()
    assert proc.returncode == 0, log[-2000:]
    assert log.count(f"Imported {len(CELLS)} cell types from liberty file.") == 2


# --------------------------------------------------------------------------- timing (OpenSTA)


def _sta_netlist(tmp_path, text: str):
    (tmp_path / "n.v").write_text(text)
    return tmp_path


@needs_sta
def test_sta_combinational_chain(tmp_path):
    # a -> INV -> NAND2(b) -> y; INV drives one pin (1 fF), NAND2 the output port (1 fF).
    work = _sta_netlist(tmp_path, """
module top(a, b, y);
  input a; input b; output y; wire n;
  INV u1 (.A(a), .ZN(n));
  NAND2 u2 (.A1(n), .A2(b), .ZN(y));
endmodule
""")
    lib = cells_by_name()
    result = run_sta(work, netlist="n.v", liberty=LIBERTY_PATH, top="top", clock_ns=10,
                     clock_port=None, output_load=PIN_CAP_FF, power=False)
    expected = (lib["INV"].delay_ps + DRIVE_PS_PER_FF) + (lib["NAND2"].delay_ps + DRIVE_PS_PER_FF)
    assert 1000 * result.critical_path_ns == pytest.approx(expected)
    assert result.path_cells == ("INV", "NAND2")


@needs_sta
def test_sta_register_loop_is_cut_at_the_flop(tmp_path):
    # DFF.Q -> INV -> DFF.D: clock-to-Q + INV + setup.
    work = _sta_netlist(tmp_path, """
module top(clk);
  input clk; wire d; wire q;
  DFF r (.CK(clk), .D(d), .Q(q));
  INV u (.A(q), .ZN(d));
endmodule
""")
    lib = cells_by_name()
    result = run_sta(work, netlist="n.v", liberty=LIBERTY_PATH, top="top", clock_ns=10,
                     power=False)
    expected = (lib["DFF"].delay_ps + DRIVE_PS_PER_FF) + (lib["INV"].delay_ps + DRIVE_PS_PER_FF) + SETUP_PS
    assert 1000 * result.critical_path_ns == pytest.approx(expected)
    assert result.fmax_mhz == pytest.approx(1e6 / expected)


# --------------------------------------------------------------------------- flow


@needs_yosys
def test_report_has_every_field(acc16):
    report = acc16
    assert report.design == report.top == "acc16"
    assert re.fullmatch(r"[0-9a-f]{16}", report.verilog_hash)
    assert report.flop_count == 16
    assert report.cell_counts["DFF"] == 16
    assert report.seq_area_ge == pytest.approx(16 * 17 / 3, abs=1e-3)
    assert report.comb_area_ge > 0
    assert report.area_ge == pytest.approx(report.comb_area_ge + report.seq_area_ge)
    assert report.cell_count == sum(report.cell_counts.values())
    assert report.logic_depth > 0
    assert report.delay_ps is not None and report.delay_ps > 0
    # start point (a flop instance or an input port), cell types, end point
    assert len(report.critical_path) >= 3
    assert set(report.critical_path[1:-1]) <= set(cell_area_ge())
    assert report.fmax_mhz == pytest.approx(1e6 / report.delay_ps, rel=1e-3)
    assert report.library == "generic" and report.power is None
    assert report.transistors is not None and report.transistors > 0
    assert re.match(r"\d+\.\d+", report.yosys_version)
    assert report.wall_time_s > 0
    assert report.liberty == "mxsf_generic"
    work = Path(report.work_dir)
    assert work.name == report.verilog_hash
    for name in ("design.v", "report.json", "report.md", "yosys.log", "mapped.v", "stat.json"):
        assert (work / name).is_file(), name
    assert not list(work.glob(".run-*")) and not list(work.glob(".*.tmp"))
    stored = json.loads((work / "report.json").read_text())
    assert SynthReport.from_json(stored) == report
    assert "| total area | " in (work / "report.md").read_text()


@needs_yosys
def test_cells_all_come_from_the_liberty(acc16, add8):
    library = set(cell_area_ge())
    for report in (acc16, add8):
        assert set(report.cell_counts) <= library, report.cell_counts


@needs_yosys
def test_area_agrees_with_yosys_stat(acc16):
    stat = json.loads((Path(acc16.work_dir) / "stat.json").read_text())["design"]
    assert acc16.area_ge == pytest.approx(stat["area"], abs=1e-3)
    assert acc16.seq_area_ge == pytest.approx(stat["sequential_area"], abs=1e-3)


@needs_yosys
def test_same_verilog_same_numbers_and_cache_hit(designs, out_dir, acc16):
    again = synthesize(designs["acc16"], "acc16", out_dir=out_dir)
    assert again.cached and not acc16.cached
    assert again == acc16
    rerun = synthesize(designs["acc16"], "acc16", out_dir=out_dir, cache=False)
    assert not rerun.cached
    assert rerun.to_row() | {"wall_time_s": 0} == acc16.to_row() | {"wall_time_s": 0}
    assert rerun.cell_counts == acc16.cell_counts and rerun.critical_path == acc16.critical_path


@needs_yosys
def test_corrupt_cache_is_ignored(designs, tmp_path):
    first = synthesize(designs["add8"], "add8", out_dir=tmp_path)
    (Path(first.work_dir) / "report.json").write_text('{"area_ge": 1.0')
    second = synthesize(designs["add8"], "add8", out_dir=tmp_path)
    assert not second.cached
    assert second.area_ge == first.area_ge
    assert synthesize(designs["add8"], "add8", out_dir=tmp_path).cached


@needs_yosys
def test_wider_design_has_more_area(designs, out_dir, add8):
    add16 = synthesize(designs["add16"], "add16", out_dir=out_dir)
    assert add16.area_ge > add8.area_ge
    assert add16.cell_count > add8.cell_count


@needs_yosys
def test_combinational_design_has_no_sequential_area(add8):
    assert add8.flop_count == 0
    assert add8.seq_area_ge == 0.0 and isinstance(add8.seq_area_ge, float)
    assert add8.area_ge == pytest.approx(add8.comb_area_ge) and add8.area_ge > 0
    assert re.fullmatch(r"[ab](\[\d+\])?", add8.critical_path[0]), add8.critical_path
    assert re.fullmatch(r"s(\[\d+\])?", add8.critical_path[-1]), add8.critical_path


@needs_yosys
def test_every_flop_flavour_maps(designs, out_dir):
    report = synthesize(designs["edge_ffs"], "edge_ffs", out_dir=out_dir)
    assert set(report.cell_counts) <= set(cell_area_ge())
    assert report.flop_count == 20
    assert report.cell_counts["DFFR"] == 4 and report.cell_counts["DFFS"] == 4


@needs_yosys
def test_delay_target_is_a_separate_cache_entry(designs, out_dir, add8):
    fast = synthesize(designs["add8"], "add8", out_dir=out_dir, delay_target_ps=50)
    assert fast.delay_target_ps == 50 and not fast.cached
    assert fast.flow_key != add8.flow_key
    assert set(fast.cell_counts) <= set(cell_area_ge())


@needs_yosys
def test_broken_verilog_raises_one_line_error(tmp_path):
    source = _write(tmp_path / "src" / "bad.v", "module bad(input a, output b);\n"
                                                "  assign b = a +;\nendmodule\n")
    with pytest.raises(SynthError, match=r"^yosys failed on 'bad' from bad\.v \(exit \d+\): "
                                         r"design\.v:2: syntax error.*; see .*yosys\.log$") as info:
        synthesize(source, "bad", out_dir=tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message
    assert Path(message.rsplit("see ", 1)[1]).is_file()
    assert not list((tmp_path / "out").rglob("report.json"))


@needs_yosys
def test_missing_top_raises(designs, tmp_path):
    with pytest.raises(SynthError, match=r"^yosys failed on 'nosuch' .*Module `nosuch' not found"):
        synthesize(designs["add8"], "nosuch", out_dir=tmp_path)


@needs_yosys
def test_latch_is_rejected(tmp_path):
    source = _write(tmp_path / "lat.v", "module lat(input en, input d, output reg q);\n"
                                        "  always @* if (en) q = d;\nendmodule\n")
    with pytest.raises(SynthError, match=r"^yosys failed on 'lat' .*latches are not supported"):
        synthesize(source, "lat", out_dir=tmp_path / "out")


def test_parameter_checks(tmp_path):
    source = _write(tmp_path / "x.v", "module x; endmodule\n")
    with pytest.raises(ValueError, match=r"^top must be a plain Verilog module name, not 'a b'$"):
        synthesize(source, "a b", out_dir=tmp_path)
    with pytest.raises(TypeError, match=r"^top must be a str, not 3$"):
        synthesize(source, 3, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^delay_target_ps must be positive, not 0$"):
        synthesize(source, "x", out_dir=tmp_path, delay_target_ps=0)
    with pytest.raises(TypeError, match=r"^delay_target_ps must be an int or None, not '5'$"):
        synthesize(source, "x", out_dir=tmp_path, delay_target_ps="5")
    with pytest.raises(FileNotFoundError):
        synthesize(tmp_path / "missing.v", "x", out_dir=tmp_path)


# --------------------------------------------------------------------------- formatting


@needs_yosys
def test_report_table(acc16, add8):
    table = format_report_table([add8, acc16])
    lines = table.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("| design | top | area (GE) |")
    assert lines[2].startswith("| add8 | add8 | ")
    assert f"| {acc16.area_ge:.2f} |" in lines[3]
    row = acc16.to_row()
    assert list(row) == ["design", "top", "area_ge", "comb_ge", "seq_ge", "flops", "cells",
                         "depth", "delay_ps", "transistors", "wall_time_s", "verilog_hash"]
    assert row["flops"] == 16
