"""Run a list of cocotb regressions with one progress line per test (for ``mxsf test``)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, TextIO

from amaranth.lib import wiring

from mxsf.gen.verilog import build_verilog
from .run import (SIMULATORS, BuildError, RunResult, Simulator, SimulatorUnavailable,
                  rerun_failures_with_waves, run_cocotb)

__all__ = ["TESTBENCHES", "RegressionTest", "design_regression", "run_regression"]

TESTBENCHES = {
    "pe": "mxsf.sim.tests.pe_tests",
    "bf16-pe": "mxsf.sim.tests.bf16_pe_tests",
    "maxexp": "mxsf.sim.tests.maxexp_tests",
    "requantizer": "mxsf.sim.tests.requant_tests",
    "array": "mxsf.sim.tests.systolic_tests",
    "gemm": "mxsf.sim.tests.gemm_tests",
}
"""The cocotb testbench module of every registry design (:data:`mxsf.gen.registry.DESIGNS`)."""


@dataclass(frozen=True)
class RegressionTest:
    """One design and the cocotb tests to run on it.

    Parameters
    ----------
    name : str
        Shown in the progress lines.
    component : type
        ``wiring.Component`` subclass, built with ``build_verilog(component, params)``.
    test_module : str
        Dotted cocotb test module (or ``.py`` path), see :func:`~mxsf.sim.run.run_cocotb`.
    params : mapping
        Constructor keyword arguments.
    testcase : str or sequence of str, optional
        Only these cocotb tests; all of the module when None.
    config : mapping, optional
        Test configuration passed to the cocotb tests.
    top : str, optional
        Verilog top-module name; defaults to the snake_case class name.
    """

    name: str
    component: type[wiring.Component]
    test_module: str
    params: Mapping[str, Any] = field(default_factory=dict)
    testcase: str | Sequence[str] | None = None
    config: Mapping[str, Any] | None = None
    top: str | None = None


def design_regression(design, *, config: Mapping[str, Any] | None = None,
                      testcase: str | Sequence[str] | None = None) -> RegressionTest:
    """The regression of a resolved :class:`~mxsf.gen.design.Design` (its registry testbench)."""
    return RegressionTest(name=design.name, component=design.component_class,
                          test_module=TESTBENCHES[design.name], params=design.params,
                          testcase=testcase, config=config, top=design.top)


def _indent(text: str, prefix: str = "    ") -> str:
    """Indent every line after the first."""
    return text.replace("\n", "\n" + prefix)


def _report_run(name: str, sim: str, result: RunResult, out: TextIO) -> tuple[int, int]:
    """Print one line per cocotb test of a run; return (passed, failed)."""
    passed = failed = 0
    if result.error is not None:
        print(f"FAIL {name} [{sim}]: {_indent(result.error)}", file=out)
        failed += 1
    for case in result.cases:
        label = f"{name}.{case.name} [{sim}]"
        if case.status == "passed":
            print(f"PASS {label} ({case.time_s:.2f} s)", file=out)
            passed += 1
        elif case.status == "skipped":
            print(f"SKIP {label}", file=out)
        else:
            print(f"FAIL {label}: {_indent(case.message)}", file=out)
            failed += 1
    if failed:
        print(f"     rerun with seed={result.seed}; log {result.log_path}", file=out)
        if result.waves_path is not None:
            print(f"     waves: {result.waves_path}", file=out)
    return passed, failed


def run_regression(tests: Iterable[RegressionTest], *, sims: Sequence[Simulator] = ("verilator",),
                   seed: int | None = None, waves: bool = False, root: str | os.PathLike[str] = "build",
                   timeout_s: float | None = 600.0, out: TextIO | None = None) -> int:
    """Build and run every test on every simulator; print progress and a summary.

    Prints ``PASS name.case [sim] (0.12 s)`` (cocotb's wall time of the test) or ``FAIL name.case [sim]: message`` per
    cocotb test (with the seed, log and waveform path after a failure), then
    ``N passed, M failed``. A missing simulator or a build error counts as a failure.

    Returns
    -------
    int
        0 when nothing failed, else 1 (a process exit code).

    Raises
    ------
    ValueError
        If a simulator name is not supported.
    """
    for sim in sims:
        if sim not in SIMULATORS:
            raise ValueError(f"sims must be among {SIMULATORS}, not {sim!r}")
    out = out if out is not None else sys.stdout
    passed = failed = 0
    for test in tests:
        for sim in sims:
            try:
                design = build_verilog(test.component, test.params, name=test.top, root=root)
                result = run_cocotb(design, test.test_module, sim=sim, testcase=test.testcase,
                                    config=test.config, seed=seed, waves=waves, timeout_s=timeout_s)
            except (SimulatorUnavailable, BuildError, ImportError, FileNotFoundError) as exc:
                print(f"FAIL {test.name} [{sim}]: {_indent(str(exc))}", file=out)
                failed += 1
                continue
            if not result.passed and not waves:
                result = rerun_failures_with_waves(result, design, test.test_module, config=test.config,
                                                   timeout_s=timeout_s)
            run_passed, run_failed = _report_run(test.name, sim, result, out)
            passed += run_passed
            failed += run_failed
            out.flush()
    print(f"{passed} passed, {failed} failed", file=out)
    return 0 if failed == 0 else 1
