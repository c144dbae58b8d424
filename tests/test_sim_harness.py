# amaranth: UnusedElaboratable=no
"""Tests of the cocotb harness :mod:`mxsf.sim`, proven on :class:`~harness.examples.ExampleMac`.

The one-bit-bug tests are permanent: they show that a wrong LSB is caught and reported
with cycle, port, expected/got bits and the input that produced it.
"""

from __future__ import annotations

import functools
import importlib
import io
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import simsupport as pytest_support
from mxsf.gen.files import write_if_changed
from mxsf.gen.verilog import build_verilog
from mxsf.sim.cocotb_lib import InputCycle, Scoreboard
from mxsf.gen.built import BuiltDesign, Port
from harness.example_model import mac, mac_model, pack_operands
from harness.examples import ExampleMac
from mxsf.sim.regression import RegressionTest, run_regression
from mxsf.sim.run import build_simulator, run_cocotb

HARNESS_DIR = Path(__file__).parent / "harness"
EXAMPLE_TESTS = HARNESS_DIR / "example_tests.py"      # cocotb modules, run by path
HARNESS_TESTS = HARNESS_DIR / "harness_tests.py"
MODULES = ["mxsf.sim", "mxsf.gen", "mxsf.gen.built", "mxsf.gen.verilog", "mxsf.gen.files", "mxsf.gen.design",
           "mxsf.gen.registry", "mxsf.sim.run", "mxsf.sim.regression", "mxsf.sim.env", "simsupport",
           "mxsf.sim.cocotb_lib", "harness.examples", "harness.example_model", "harness.harness_tests"]
MISMATCH = re.compile(
    r"^example_mac mismatch at cycle (?P<cycle>\d+) \(t=[\d.]+ ns\) on port o__payload:\n"
    r"  expected 0x(?P<exp>[0-9a-f]{8}) = 0b[01]{32}\n"
    r"  got      0x(?P<got>[0-9a-f]{8}) = 0b[01]{32}\n"
    r"  differing bits: 0\n"
    r"  produced by input cycle \d+ \(t=[\d.]+ ns\), transaction #\d+: i__valid=0x1 i__payload=0x[0-9a-f]+\n")


# ----------------------------------------------------------------------------------------
# Host-side (no simulator)


@pytest.mark.parametrize("name", MODULES)
def test_module_all_is_complete(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


def test_build_is_deterministic_and_idempotent(build_root: Path) -> None:
    first = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    mtime = first.verilog_path.stat().st_mtime_ns
    second = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    assert second == first
    assert second.verilog_path.stat().st_mtime_ns == mtime
    assert not write_if_changed(first.verilog_path, first.verilog_path.read_text())
    assert BuiltDesign.from_json(first.to_json()) == first


def test_build_ports_latency_and_folder(build_root: Path) -> None:
    design = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    assert design.top == "example_mac"
    assert design.latency == 3  # ExampleMac.latency == pipeline_depth
    assert design.build_dir.parent == build_root.resolve()
    assert re.fullmatch(r"example_mac-[0-9a-f]{10}", design.build_dir.name)
    assert design.verilog_path == design.build_dir / "example_mac.v"
    assert set(design.ports) == {
        Port("clk", "in", 1), Port("rst", "in", 1), Port("i__valid", "in", 1),
        Port("i__payload", "in", 48), Port("o__valid", "out", 1), Port("o__payload", "out", 32)}
    assert design.const_ports == {"i__ready": 1, "o__ready": 1}

    stalling = build_verilog(ExampleMac, {"pipeline_depth": 3, "backpressure": True}, root=build_root)
    assert stalling.build_dir != design.build_dir
    assert stalling.port("i__ready") == Port("i__ready", "out", 1)
    assert stalling.port("o__ready") == Port("o__ready", "in", 1)
    assert stalling.const_ports == {}


def _count_conversions(monkeypatch: pytest.MonkeyPatch) -> list:
    """Count the Amaranth conversions that :func:`build_verilog` makes from now on."""
    import mxsf.gen.verilog as gv

    calls = []
    convert = gv.verilog.convert
    monkeypatch.setattr(gv.verilog, "convert", lambda *a, **k: calls.append(1) or convert(*a, **k))
    return calls


def _fresh_source_digest(monkeypatch: pytest.MonkeyPatch, files: list) -> None:
    """Make the conversion cache hash ``files`` instead of the package's sources."""
    import mxsf.gen.verilog as gv

    monkeypatch.setattr(gv, "_source_files", lambda: tuple(files))
    monkeypatch.setattr(gv, "_source_digest", functools.lru_cache(maxsize=None)(gv._source_digest.__wrapped__))


def test_conversion_cache_reuses_verilog_until_the_source_changes(tmp_path: Path, monkeypatch) -> None:
    """A package design is converted once per source state; an edited source file, a
    source newer than the process, or an edited ``.v`` converts again (same Verilog)."""
    import os
    import sys
    from mxsf.hw.maxexp import BlockMaxExponent

    source = tmp_path / "source.py"
    source.write_text("A = 1\n")
    old = sys.modules["mxsf"].IMPORTED_AT_NS - 10**10
    os.utime(source, ns=(old, old))
    _fresh_source_digest(monkeypatch, [source])
    calls = _count_conversions(monkeypatch)
    params = {"n": 8, "lanes": 4}
    first = build_verilog(BlockMaxExponent, params, root=tmp_path)
    assert (first.build_dir / "convert.json").is_file()
    assert build_verilog(BlockMaxExponent, params, root=tmp_path) == first
    assert len(calls) == 1                              # the second call read the cache

    source.write_text("A = 2\n")                        # an edit: another key
    os.utime(source, ns=(old, old))
    _fresh_source_digest(monkeypatch, [source])
    assert build_verilog(BlockMaxExponent, params, root=tmp_path) == first
    assert len(calls) == 2

    first.verilog_path.write_text(first.verilog_path.read_text() + "// edited\n")
    assert build_verilog(BlockMaxExponent, params, root=tmp_path) == first
    assert len(calls) == 3 and first.verilog_path.read_text().endswith("endmodule\n")

    os.utime(source)                                    # modified after this process started
    _fresh_source_digest(monkeypatch, [source])
    assert build_verilog(BlockMaxExponent, params, root=tmp_path) == first
    assert build_verilog(BlockMaxExponent, params, root=tmp_path) == first
    assert len(calls) == 5                              # no cache read, no cache write


def test_conversion_cache_skips_classes_outside_the_package(tmp_path: Path, monkeypatch) -> None:
    """A component defined outside the package (a test's broken design) is always converted."""
    calls = _count_conversions(monkeypatch)
    design = build_verilog(ExampleMac, {"pipeline_depth": 2}, root=tmp_path)
    assert build_verilog(ExampleMac, {"pipeline_depth": 2}, root=tmp_path) == design
    assert len(calls) == 2 and not (design.build_dir / "convert.json").exists()


def test_build_rejects_bad_arguments(build_root: Path) -> None:
    with pytest.raises(TypeError, match=r"^component_cls must be a wiring\.Component subclass, not <class 'int'>$"):
        build_verilog(int, {}, root=build_root)
    with pytest.raises(TypeError, match=r"^params must be a mapping of constructor keyword arguments, not \[\]$"):
        build_verilog(ExampleMac, [], root=build_root)
    with pytest.raises(ValueError, match=r"^name must be a Verilog identifier .*, not '1mac'$"):
        build_verilog(ExampleMac, {}, name="1mac", root=build_root)


def test_example_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match=r"^data_width must be at least 1, not 0$"):
        ExampleMac(data_width=0)
    with pytest.raises(TypeError, match=r"^pipeline_depth must be an int, not '2'$"):
        ExampleMac(pipeline_depth="2")
    with pytest.raises(TypeError, match=r"^bug must be a bool, not 1$"):
        ExampleMac(bug=1)


def test_model_delays_and_stalls() -> None:
    w = 4
    txn = pack_operands(3, 5, 7, data_width=w)
    assert mac(txn, data_width=w) == 22
    idle = {"i__valid": 0, "i__payload": 0xFFF}
    rows = mac_model([{"i__valid": 1, "i__payload": txn}, idle, idle], 2, data_width=w)
    assert rows == [{"o__valid": 0, "o__payload": None}, {"o__valid": 0, "o__payload": None},
                    {"o__valid": 1, "o__payload": 22}]
    # Output stalled by o__ready: the result is held and i__ready drops.
    trace = [{"i__valid": 1, "i__payload": txn, "o__ready": 0}, {"i__valid": 0, "i__payload": 0, "o__ready": 0},
             {"i__valid": 0, "i__payload": 0, "o__ready": 1}, {"i__valid": 0, "i__payload": 0, "o__ready": 1}]
    rows = mac_model(trace, 1, data_width=w, backpressure=True)
    assert [(r["o__valid"], r["o__payload"], r["i__ready"]) for r in rows] == [
        (0, None, 1), (1, 22, 0), (1, 22, 1), (0, None, 1)]


def test_scoreboard_reports_first_mismatch() -> None:
    w = 4
    txns = [pack_operands(a, 2, 1, data_width=w) for a in (1, 2, 3)]
    inputs = [InputCycle(k, 10.0 * k, {"i__valid": int(k < 3), "i__payload": txns[k] if k < 3 else 0},
                         k if k < 3 else None) for k in range(5)]
    model = functools.partial(mac_model, data_width=w)
    good = [{"o__valid": r["o__valid"], "o__payload": r["o__payload"] or 0} for r in model(
        [c.ports for c in inputs], 1)]
    scoreboard = Scoreboard(model, latency=1, widths={"o__valid": 1, "o__payload": 8},
                            qualifiers={"o__payload": "o__valid"}, name="mac")
    assert scoreboard.check(inputs, good) == 5 + 3
    bad = [dict(row) for row in good]
    bad[2]["o__payload"] ^= 1
    bad[4]["o__payload"] = 0x55  # valid low: don't care
    with pytest.raises(AssertionError) as info:
        scoreboard.check(inputs, bad)
    assert str(info.value).startswith(
        "mac mismatch at cycle 2 (t=20 ns) on port o__payload:\n"
        "  expected 0x05 = 0b00000101\n"
        "  got      0x04 = 0b00000100\n"
        "  differing bits: 0\n"
        "  produced by input cycle 1 (t=10 ns), transaction #1: i__valid=0x1 i__payload=0x122\n")
    assert "1 of 5 cycles mismatched; latency 1" in str(info.value)


def test_unknown_simulator_and_module(build_root: Path) -> None:
    design = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    with pytest.raises(ValueError, match=r"^sim must be one of \('verilator', 'icarus'\), not 'xsim'$"):
        run_cocotb(design, EXAMPLE_TESTS, sim="xsim")
    with pytest.raises(ModuleNotFoundError, match=r"^test module 'mxsf\.sim\.tests\.nope' is not importable"):
        run_cocotb(design, "mxsf.sim.tests.nope", sim="icarus")


def test_require_simulator_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_support, "simulator_missing_reason", lambda sim: "iverilog not found")
    monkeypatch.delenv(pytest_support.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^iverilog not found \(set MXSF_REQUIRE_SIMS=1 to fail instead\)$"):
        pytest_support.require_simulator("icarus")
    monkeypatch.setenv(pytest_support.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"^iverilog not found \(MXSF_REQUIRE_SIMS is set\)$"):
        pytest_support.require_simulator("icarus")


# ----------------------------------------------------------------------------------------
# Simulator-backed


def test_example_passes(simulator: str, build_root: Path, request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("sim") is not None
    design = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    result = run_cocotb(design, EXAMPLE_TESTS, sim=simulator, seed=1).check()
    assert {c.name: c.status for c in result.cases} == {
        "back_to_back": "passed", "random_idle": "passed", "random_stalls": "skipped"}


def test_example_with_backpressure_passes(simulator: str, build_root: Path) -> None:
    design = build_verilog(ExampleMac, {"pipeline_depth": 2, "backpressure": True}, root=build_root)
    result = run_cocotb(design, EXAMPLE_TESTS, sim=simulator, seed=2, config={"count": 60}).check()
    assert [c.status for c in result.cases] == ["passed"] * 3


def test_one_bit_bug_is_caught(simulator: str, build_root: Path) -> None:
    design = build_verilog(ExampleMac, {"pipeline_depth": 3, "bug": True}, root=build_root)
    result = run_cocotb(design, EXAMPLE_TESTS, sim=simulator, testcase="random_idle", seed=3)
    assert not result.passed and result.error is None
    (case,) = result.failures
    match = MISMATCH.match(case.message)
    assert match, case.message
    assert int(match["exp"], 16) ^ int(match["got"], 16) == 1
    assert "seed 3" in case.message and "waveform: off" in case.message
    with pytest.raises(AssertionError, match=r"example_mac mismatch at cycle \d+"):
        result.check()


@pytest.mark.sim
def test_second_run_reuses_build(build_root: Path) -> None:
    pytest_support.require_simulator("verilator")
    design = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    first = run_cocotb(design, EXAMPLE_TESTS, sim="verilator", testcase="back_to_back", seed=4).check()
    binary = first.build.build_dir / design.top
    mtime = binary.stat().st_mtime_ns
    again = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    second = run_cocotb(again, EXAMPLE_TESTS, sim="verilator", testcase="back_to_back", seed=4).check()
    assert second.build.build_dir == first.build.build_dir
    assert not second.build.rebuilt and second.build.seconds < 1.0
    assert binary.stat().st_mtime_ns == mtime


@pytest.mark.sim
def test_concurrent_builds_build_once(build_root: Path) -> None:
    pytest_support.require_simulator("icarus")
    design = build_verilog(ExampleMac, {"pipeline_depth": 1, "data_width": 5}, root=build_root)
    shutil.rmtree(design.build_dir / "sim", ignore_errors=True)
    with ThreadPoolExecutor(2) as pool:
        builds = list(pool.map(lambda _: build_simulator(design, "icarus"), range(2)))
    assert sorted(b.rebuilt for b in builds) == [False, True]


@pytest.mark.sim
def test_waves_named_per_test_and_reported(build_root: Path) -> None:
    pytest_support.require_simulator("icarus")
    design = build_verilog(ExampleMac, {"pipeline_depth": 3, "bug": True}, root=build_root)
    result = run_cocotb(design, EXAMPLE_TESTS, sim="icarus", testcase="back_to_back", seed=5, waves=True)
    assert result.waves_path is not None and result.waves_path.name == "back_to_back.fst"
    assert result.waves_path.stat().st_size > 0
    assert f"waveform: {result.waves_path}" in result.failures[0].message


@pytest.mark.slow
@pytest.mark.sim
def test_verilator_waves(build_root: Path) -> None:
    pytest_support.require_simulator("verilator")
    design = build_verilog(ExampleMac, {"pipeline_depth": 3, "bug": True}, root=build_root)
    result = run_cocotb(design, EXAMPLE_TESTS, sim="verilator", testcase="back_to_back", seed=5, waves=True)
    assert result.waves_path is not None and result.waves_path.name == "back_to_back.vcd"
    assert f"waveform: {result.waves_path}" in result.failures[0].message


@pytest.mark.sim
def test_config_and_design_reach_the_test(build_root: Path) -> None:
    pytest_support.require_simulator("icarus")
    design = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    run_cocotb(design, HARNESS_TESTS, sim="icarus", testcase="config_roundtrip",
               config={"token": "mxsf", "expect_latency": 3}).check()
    wrong = run_cocotb(design, HARNESS_TESTS, sim="icarus", testcase="config_roundtrip",
                       config={"token": "mxsf", "expect_latency": 4})
    assert wrong.failures[0].message.startswith("design latency 3 != expected 4")


@pytest.mark.sim
def test_test_module_given_as_a_file(build_root: Path, tmp_path: Path) -> None:
    pytest_support.require_simulator("icarus")
    (tmp_path / "my_block_tests.py").write_text(
        "import cocotb\n"
        "from mxsf.sim.cocotb_lib import get_test_config\n"
        "@cocotb.test()\n"
        "async def reads_config(dut):\n"
        "    assert get_test_config() == {'x': [1, 2]}\n")
    design = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    result = run_cocotb(design, tmp_path / "my_block_tests.py", sim="icarus", config={"x": [1, 2]}).check()
    assert [(c.name, c.status) for c in result.cases] == [("reads_config", "passed")]


@pytest.mark.sim
def test_timeout_is_reported(build_root: Path) -> None:
    pytest_support.require_simulator("icarus")
    design = build_verilog(ExampleMac, {"pipeline_depth": 3}, root=build_root)
    result = run_cocotb(design, HARNESS_TESTS, sim="icarus", testcase="hang", config={"hang": True},
                        timeout_s=2)
    assert not result.passed
    assert result.error.startswith("wall-clock timeout of 2 s reached, simulator killed\nlog tail (")


@pytest.mark.sim
def test_run_regression_prints_progress(build_root: Path) -> None:
    pytest_support.require_simulator("icarus")
    tests = [
        RegressionTest("mac", ExampleMac, EXAMPLE_TESTS, {"pipeline_depth": 3}, testcase="back_to_back"),
        RegressionTest("mac_bug", ExampleMac, EXAMPLE_TESTS, {"pipeline_depth": 3, "bug": True},
                       testcase="back_to_back"),
    ]
    out = io.StringIO()
    assert run_regression(tests, sims=("icarus",), seed=6, root=build_root, out=out) == 1
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"PASS mac\.back_to_back \[icarus\] \(\d+\.\d\d s\)", lines[0])
    assert lines[1].startswith("FAIL mac_bug.back_to_back [icarus]: example_mac mismatch at cycle ")
    assert any(line.startswith("     rerun with seed=6; log ") for line in lines)
    assert lines[-1] == "1 passed, 1 failed"

    out = io.StringIO()
    assert run_regression(tests[:1], sims=("icarus",), seed=6, root=build_root, out=out) == 0
    assert out.getvalue().splitlines()[-1] == "1 passed, 0 failed"


def test_verilator_opt_level_from_the_environment(monkeypatch):
    """MXSF_VERILATOR_OPT picks the model's C++ optimisation (one file); unset leaves
    Verilator's own; anything else is a clear error."""
    from mxsf.sim import run

    monkeypatch.delenv(run.VERILATOR_OPT_ENV, raising=False)
    assert run.verilator_make_vars() == run.VERILATOR_MAKE_VARS
    monkeypatch.setenv(run.VERILATOR_OPT_ENV, "-O1")
    assert run.verilator_make_vars()[-4:] == ("OPT_FAST=-O1", "OPT_SLOW=-O1", "OPT_GLOBAL=-O1",
                                              "VM_PARALLEL_BUILDS=0")
    monkeypatch.setenv(run.VERILATOR_OPT_ENV, "-O9")
    with pytest.raises(ValueError, match=r"^MXSF_VERILATOR_OPT must be one of -O0, -O1, -O2, -O3, -Os or unset, not '-O9'$"):
        run.verilator_make_vars()
