"""Synthesis of registry designs, and area sweeps over designs x formats x array sizes.

Two layers:

- :func:`make_job` / :func:`run_jobs` turn a design of :mod:`mxsf.gen.registry` and its
  constructor parameters into Verilog (:func:`mxsf.gen.verilog.build_verilog`) and a
  :class:`~mxsf.synth.flow.SynthReport`, several at a time in worker processes.
  Everything lives under one synthesis folder (default ``build/synth``)::

      <synth_dir>/rtl/<top>-<hash>/<top>.v   generated Verilog
      <synth_dir>/<verilog-hash>/            Yosys work folder (report.json, report.md, ...)
      <synth_dir>/index/<job-key>.json       job -> Verilog hash, so a re-run skips
                                             Verilog generation as well as Yosys

  The index key covers the component class, its parameters, the top name, the source
  of ``mxsf.hw`` and ``mxsf.golden``, the Amaranth version and the synthesis flow key;
  any change there misses the index and rebuilds (Yosys may still hit its own cache).

- :func:`plan_compare`, :func:`compare_rows` and :func:`write_compare` build the
  ``mxsf compare`` sweep: the requested designs over the element formats (and array
  sizes for designs with ``rows``/``cols``), always with the BF16 PE baseline
  (``bf16-pe``, 1 lane) and the MXFP8 E4M3 PE as references, written as
  ``compare.md``, ``compare.csv``, ``compare.json`` and PNG plots
  (:mod:`mxsf.synth.plots`). Outputs go to temporary names first and are renamed
  together at the end, so a failed run leaves no result files.

When :mod:`mxsf.studies.accuracy` provides ``default_sqnr(fmt)``, PE rows gain the
columns ``sqnr_1d_db`` and ``sqnr_tile_db`` and a ``pareto.png`` plot; without it these
are left out.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TextIO

from mxsf.gen.files import atomic_write

from .flow import DEFAULT_CLOCK_NS, SynthReport, _flow_key, default_out_dir, synthesize
from .libraries import get_library

__all__ = [
    "ACCURACY_COLUMNS",
    "ARRAY_MAX",
    "BASELINE",
    "COLUMNS",
    "REFERENCE_FORMAT",
    "CompareResult",
    "OUTPUT_FILES",
    "POWER_COLUMNS",
    "ProgressBar",
    "SynthJob",
    "SynthResult",
    "compare_rows",
    "format_compare_markdown",
    "format_params",
    "load_accuracy",
    "make_job",
    "parse_array_sizes",
    "parse_designs",
    "parse_formats",
    "plan_compare",
    "run_compare",
    "run_job",
    "run_jobs",
    "write_compare",
]

#: Largest rows/cols of an array size in a sweep.
ARRAY_MAX = 16
#: The BF16 baseline every sweep includes: (design, parameters).
BASELINE = ("bf16-pe", {"lanes": 1})
#: Element format of the MX reference PE every sweep includes.
REFERENCE_FORMAT = "fp8_e4m3"

#: Columns of compare.csv / compare.json rows, in order (accuracy columns only when
#: :func:`load_accuracy` finds the model).
COLUMNS: tuple[str, ...] = (
    "design", "format", "params", "top", "reference", "macs_per_cycle", "area_ge", "comb_ge",
    "seq_ge", "flops", "ge_per_mac", "ratio_vs_bf16", "ratio_vs_fp8_e4m3", "depth",
    "delay_ps", "transistors",
)
ACCURACY_COLUMNS: tuple[str, ...] = ("sqnr_1d_db", "sqnr_tile_db")
#: Columns added for a library with power tables (``--lib osu018``): Fmax, vectorless power
#: at the analysis clock, pJ/MAC from gate-level activity (PEs) and vectorless, and the
#: activity pJ/MAC (vectorless where there is none) over the BF16 PE's and MXFP8 E4M3 PE's.
POWER_COLUMNS: tuple[str, ...] = (
    "fmax_mhz", "clock_ns", "power_mw", "power_activity_mw", "utilisation",
    "pj_per_mac", "pj_per_mac_vectorless", "pj_ratio_vs_bf16", "pj_ratio_vs_fp8_e4m3",
)

#: Files :func:`write_compare` may produce (stale ones are removed after a run).
OUTPUT_FILES: tuple[str, ...] = ("compare.md", "compare.csv", "compare.json",
                                 "area_per_format.png", "area_per_mac.png",
                                 "area_vs_array.png", "pareto.png", "pj_per_mac.png",
                                 "energy_breakdown.png", "pareto_energy.png")

_INDEX_FORMAT = 1
_PE_DESIGNS = ("pe", "bf16-pe")


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class SynthJob:
    """One design to synthesise.

    Attributes
    ----------
    design : str
        Registry name (``pe``, ``bf16-pe``, ...).
    params : dict
        Constructor keywords, canonical (the component's own ``params`` when it has them:
        format names resolved, defaults filled in).
    top : str
        Verilog top module (the component's ``module_name``).
    macs : int
        Multiply-accumulates per cycle (0 for blocks without any).
    """

    design: str
    params: dict = field(hash=False)
    top: str
    macs: int

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the job: design and canonical parameter JSON."""
        return self.design, json.dumps(self.params, sort_keys=True)

    @property
    def fmt(self) -> str | None:
        """Element format name (``bf16`` for the BF16 PE, None for designs without one)."""
        if "fmt" in self.params:
            return str(self.params["fmt"])
        return "bf16" if self.design == "bf16-pe" else None

    def describe(self) -> str:
        """Short label, e.g. ``pe fp8_e4m3 block_size=32 lanes=32``."""
        return " ".join(p for p in (self.design, self.fmt if "fmt" in self.params else None,
                                    format_params(self.params)) if p)


@dataclass(frozen=True)
class SynthResult:
    """A job with its Verilog, synthesis report and (with an activity function) the
    gate-level energy figures (see :func:`mxsf.cli.energy.measure_energy`)."""

    job: SynthJob
    report: SynthReport
    verilog_path: str
    energy: dict | None = None


def format_params(params: Mapping[str, Any], *, skip: Iterable[str] = ("fmt",)) -> str:
    """``key=value`` pairs separated by spaces (the format is left out: it has its column)."""
    skip = set(skip)
    return " ".join(f"{k}={v}" for k, v in params.items() if k not in skip)


def make_job(design, params: Mapping[str, Any] | None = None) -> SynthJob:
    """Describe the synthesis job of a design.

    ``design`` is a resolved :class:`~mxsf.gen.design.Design`, or a design name with its
    ``params``, resolved here by :func:`mxsf.gen.design.resolve_design` (the one place
    design parameters are checked), so every parameter error shows up before any
    Verilog is built.

    Raises
    ------
    ValueError
        Unknown design, a parameter it does not take, a missing required parameter, or a
        value the component rejects (its own message).
    """
    from mxsf.gen.design import Design, resolve_design

    if not isinstance(design, Design):
        design = resolve_design(design, dict(params or {}))
    return SynthJob(design=design.name, params=dict(design.all_params), top=design.top, macs=design.macs)


@lru_cache(maxsize=None)
def _source_digest() -> str:
    """Hash of what generated Verilog depends on: mxsf.hw, mxsf.golden, Amaranth."""
    import amaranth

    h = hashlib.sha256(f"amaranth={getattr(amaranth, '__version__', '?')}".encode())
    for package in ("mxsf.hw", "mxsf.golden", "mxsf.gen"):
        module = importlib.import_module(package)
        root = Path(module.__file__)
        files = sorted(root.parent.glob("*.py")) if root.name == "__init__.py" else [root]
        for path in files:
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _index_path(job: SynthJob, synth_dir: Path, lib: str = "generic",
                clock_ns: float | None = None) -> Path:
    from mxsf.gen.registry import get_design_spec

    target = get_design_spec(job.design).target
    text = "\0".join([str(_INDEX_FORMAT), job.design, target, job.key[1], job.top,
                      _source_digest(), _job_flow_key(job.top, lib, clock_ns)])
    return synth_dir / "index" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"


def _job_flow_key(top: str, lib: str, clock_ns: float | None) -> str:
    delay = None
    if get_library(lib).power:
        delay = int(round(1000 * (clock_ns or DEFAULT_CLOCK_NS)))
    return _flow_key(top, delay, lib, clock_ns)


def _lookup(job: SynthJob, synth_dir: Path, lib: str = "generic",
            clock_ns: float | None = None) -> SynthResult | None:
    """The stored result of ``job`` if the index and the report are still valid."""
    try:
        entry = json.loads(_index_path(job, synth_dir, lib, clock_ns).read_text())
        folder = entry["verilog_hash"] if lib == "generic" else f"{lib}-{entry['verilog_hash']}"
        work = synth_dir / folder
        data = json.loads((work / "report.json").read_text())
        if (data.get("flow_key") != _job_flow_key(job.top, lib, clock_ns)
                or data.get("top") != job.top):
            return None
        report = SynthReport.from_json(data, cached=True)
        verilog = Path(entry["verilog_path"])
        if not verilog.is_file():
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return SynthResult(job=job, report=report, verilog_path=str(verilog))


def run_job(job: SynthJob, synth_dir: str | os.PathLike[str], cache: bool = True,
            lib: str = "generic", clock_ns: float | None = None,
            activity: Callable[..., dict | None] | None = None) -> SynthResult:
    """Build the Verilog of ``job``, synthesise it onto ``lib`` and (with ``activity``,
    called as ``activity(job, report)``) measure its gate-level energy. Runs in worker
    processes or on Dask workers; everything it returns is plain data.

    Raises
    ------
    SynthError
        If Yosys or OpenSTA fails; whatever ``activity`` raises.
    """
    from mxsf.gen.registry import get_design_spec
    from mxsf.gen.verilog import build_verilog

    synth_dir = Path(synth_dir)
    hit = _lookup(job, synth_dir, lib, clock_ns) if cache else None
    if hit is not None:
        result = hit
    else:
        spec = get_design_spec(job.design)
        built = build_verilog(spec.component_class, job.params, name=job.top,
                              root=synth_dir / "rtl")
        report = synthesize(built.verilog_path, job.top, out_dir=synth_dir, cache=cache,
                            lib=lib, clock_ns=clock_ns)
        atomic_write(_index_path(job, synth_dir, lib, clock_ns), json.dumps({
            "design": job.design, "params": job.params, "top": job.top,
            "verilog_path": str(built.verilog_path), "verilog_hash": report.verilog_hash,
        }, indent=1) + "\n")
        result = SynthResult(job=job, report=report, verilog_path=str(built.verilog_path))
    if activity is not None:
        result = SynthResult(job=job, report=result.report, verilog_path=result.verilog_path,
                             energy=activity(job, result.report))
    return result


class ProgressBar:
    """A text progress bar on a stream (stderr): redrawn in place on a terminal,
    one line per step otherwise."""

    def __init__(self, total: int, *, stream: TextIO | None = None, width: int = 24,
                 title: str = "synth") -> None:
        self.total = max(int(total), 0)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.title = title
        self.started = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def _bar(self) -> str:
        filled = self.width * self.done // self.total if self.total else self.width
        return "[" + "#" * filled + "." * (self.width - filled) + "]"

    def advance(self, label: str = "") -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        text = f"{self.title} {self._bar()} {self.done}/{self.total} {elapsed:6.1f} s  {label}"
        if self._tty:
            self.stream.write("\r\x1b[K" + text)
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


#: Designs built of many PEs: :func:`run_jobs` starts them first.
_COMPOSITE_DESIGNS = ("array", "gemm")


def run_jobs(jobs: Sequence[SynthJob], *, synth_dir: str | os.PathLike[str] | None = None,
             cache: bool = True, workers: int | None = None,
             progress: ProgressBar | None = None, lib: str = "generic",
             clock_ns: float | None = None,
             activity: Callable[..., dict | None] | None = None,
             scheduler: str | None = None) -> list[SynthResult]:
    """Run ``jobs``: cache hits first, then the rest on ``workers`` local processes, or
    on the Dask distributed cluster at ``scheduler`` (``tcp://host:port``) when given.

    Returns the results in the order of ``jobs``; a result does not depend on where its
    job ran. The first failure cancels the jobs not yet started, waits for the running
    ones (locally) and is re-raised.

    Raises
    ------
    ValueError
        ``workers`` < 1, unknown ``lib``, bad ``clock_ns``.
    ConnectionError
        The Dask scheduler cannot be reached (``OSError`` from ``distributed``).
    """
    get_library(lib)
    if clock_ns is not None and not (isinstance(clock_ns, (int, float)) and clock_ns > 0):
        raise ValueError(f"clock_ns must be > 0, not {clock_ns!r}")
    synth_dir = Path(synth_dir if synth_dir is not None else default_out_dir()).resolve()
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    results: list[SynthResult | None] = [None] * len(jobs)
    todo: list[int] = []
    for i, job in enumerate(jobs):
        hit = _lookup(job, synth_dir, lib, clock_ns) if cache and activity is None else None
        if hit is None:
            todo.append(i)
            continue
        results[i] = hit
        if progress is not None:
            progress.advance(f"{job.describe()} (cached)")

    def finished(i: int, result: SynthResult) -> None:
        results[i] = result
        if progress is not None:
            state = "cached" if result.report.cached else f"{result.report.wall_time_s:.1f} s"
            progress.advance(f"{result.job.describe()} ({state})")

    # The longest jobs first, so they do not start last on an otherwise idle pool: a
    # design built of many PEs (array, GEMM) takes several times a PE's synthesis and
    # gate-level simulation. Results keep the order of ``jobs``.
    todo.sort(key=lambda i: jobs[i].design not in _COMPOSITE_DESIGNS)
    args = (str(synth_dir), cache, lib, clock_ns, activity)
    if scheduler is not None and todo:
        _run_dask(scheduler, [(i, jobs[i]) for i in todo], args, finished)
    elif len(todo) == 1 or (todo and workers == 1):
        for i in todo:
            finished(i, run_job(jobs[i], *args))
    elif todo:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                                   mp_context=get_context("spawn"))
        try:
            pending = {pool.submit(run_job, jobs[i], *args): i for i in todo}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    finished(i, future.result())  # re-raises a worker's error
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return results  # type: ignore[return-value]


#: Seconds to wait for the Dask scheduler before giving up (a cluster that is still
#: starting its scheduler gets this long).
SCHEDULER_TIMEOUT_S = 30.0


def _run_dask(scheduler: str, items: Sequence[tuple[int, SynthJob]], args: tuple,
              finished: Callable[[int, SynthResult], None]) -> None:
    """Run ``run_job(job, *args)`` for each item on the Dask cluster at ``scheduler``."""
    try:
        from distributed import Client, as_completed
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise ValueError(f"--scheduler needs the 'distributed' package ({error})") from None
    try:
        client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler!r}: "
                              f"{str(error).splitlines()[0] if str(error) else error!r}") from None
    try:
        futures = {client.submit(run_job, job, *args, pure=False,
                                 key=f"mxsf-{job.describe().replace(' ', '-')}-{i}"): i
                   for i, job in items}
        try:
            for future in as_completed(list(futures)):
                finished(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    finally:
        client.close()


# --------------------------------------------------------------------------- compare: inputs


def parse_designs(text: str) -> list[str]:
    """Comma-separated registry names, checked, duplicates dropped."""
    from mxsf.gen.registry import get_design_spec

    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise ValueError(f"designs must be a comma-separated list of design names, not {text!r}")
    for name in names:
        get_design_spec(name)
    return list(dict.fromkeys(names))


def parse_formats(text: str) -> list[str]:
    """``all`` (the MX element formats) or comma-separated formats (OCP aliases accepted);
    canonical names.

    ``bf16`` may be listed: it applies to designs that take a bf16 variant (the BF16
    array); the PE's BF16 counterpart, the BF16 PE, is in every sweep anyway.
    """
    from mxsf.golden import ELEMENT_FORMATS, get_format

    text = str(text).strip()
    if text.lower() == "all":
        return list(ELEMENT_FORMATS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"formats must be 'all' or a comma-separated list of formats, not {text!r}")
    out = [get_format(n).name for n in names]
    return list(dict.fromkeys(out))


_ARRAY_RE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def parse_array_sizes(text: str) -> list[tuple[int, int]]:
    """``2x2,4x4,8x8`` -> ``[(2, 2), (4, 4), (8, 8)]``; each side in [1, :data:`ARRAY_MAX`]."""
    items = [t for t in str(text).split(",")]
    sizes = []
    for item in items:
        match = _ARRAY_RE.fullmatch(item)
        if match is None:
            raise ValueError(f"array size must be RxC (e.g. 4x4), not {item.strip()!r}")
        r, c = int(match.group(1)), int(match.group(2))
        if not (1 <= r <= ARRAY_MAX and 1 <= c <= ARRAY_MAX):
            raise ValueError(f"array size must be RxC with R and C in [1, {ARRAY_MAX}], "
                             f"not {item.strip()!r}")
        sizes.append((r, c))
    return list(dict.fromkeys(sizes))


def _fixed_block(params: dict, lanes_param: bool) -> dict:
    """A format with a fixed block (mx9/mx6/mx4: 16, SPEC.md 11) takes it instead of the
    sweep's ``block_size``; its ``lanes`` stay those of the other formats (given, or the
    sweep's block size: the same MACs a cycle), so a 32-lane PE carries two blocks a beat."""
    from mxsf.golden import get_format

    if "block_size" in params and params.get("fmt") not in (None, "bf16"):
        fixed = get_format(params["fmt"]).fixed_block_size
        if fixed is not None:
            out = {**params, "block_size": fixed}
            sweep = params["block_size"]
            if lanes_param and "lanes" not in out and (sweep % fixed == 0 or sweep in (2, 4, 8)):
                out["lanes"] = sweep
            return out
    return params


def _bdr_without_option(params: dict) -> bool:
    """A BDR format (mx9/mx6/mx4) with a scale rule other than ``floor`` or stochastic
    rounding: SPEC.md 11 defines neither, so the sweep leaves that design out."""
    from mxsf.golden import get_format

    fmt = params.get("fmt")
    if fmt in (None, "bf16") or not get_format(fmt).microexp_group:
        return False
    return (params.get("scale_rounding", "floor") != "floor"
            or params.get("rounding", "rne") != "rne")


def plan_compare(designs: Sequence[str], formats: Sequence[str], *, block_size: int = 32,
                 lanes: int | None = None,
                 arrays: Sequence[tuple[int, int]] | None = None,
                 options: Mapping[str, Any] | None = None) -> list[SynthJob]:
    """The jobs of a sweep, references first, duplicates dropped.

    Each design takes from the sweep the parameters it has: ``fmt`` from ``formats``,
    ``block_size`` (and ``n``, the inputs of a max-exponent finder) from ``block_size``,
    ``lanes`` from ``lanes`` when given (the BF16 PE otherwise has 1 lane), ``rows`` and
    ``cols`` from ``arrays`` (default 4x4), and the numerics options it takes from
    ``options`` (``acc``, ``scale_rounding``, ``rounding``, ``sr_bits``, ``seed``; SPEC.md
    8-10). References (always default options): the BF16 PE with 1 lane and the
    ``fp8_e4m3`` PE with ``block_size`` and ``lanes``. Formats with a fixed block size
    (``mx9``/``mx6``/``mx4``: 16) use it instead of ``block_size``.

    Raises
    ------
    ValueError
        Bad names or parameters (before anything is built), ``arrays`` given without a
        design that takes rows and cols.
    """
    from mxsf.gen.registry import get_design_spec

    specs = [get_design_spec(name) for name in designs]
    if arrays is not None and not any({"rows", "cols"} <= set(s.params) for s in specs):
        raise ValueError("--array needs a design with rows and cols in --designs "
                         "(array, gemm or requantizer)")
    arrays = list(arrays) if arrays else [(4, 4)]
    formats = list(formats)
    if not formats:
        raise ValueError("formats must name at least one element format")

    base_name, base_params = BASELINE
    choices = [(base_name, dict(base_params)),
               ("pe", {"fmt": REFERENCE_FORMAT, "block_size": block_size,
                       **({"lanes": lanes} if lanes is not None else {})})]
    for spec in specs:
        axes: list[list[dict[str, Any]]] = []  # each axis: the choices of some parameters
        if "fmt" in spec.params:
            axes.append([{"fmt": f} for f in formats if f != "bf16" or spec.name != "pe"])
        if "block_size" in spec.params:
            axes.append([{"block_size": block_size}])
        if "n" in spec.params:
            axes.append([{"n": block_size}])
        if "lanes" in spec.params:
            if lanes is not None:
                axes.append([{"lanes": lanes}])
            elif spec.name == base_name:
                axes.append([{"lanes": base_params["lanes"]}])
        if {"rows", "cols"} <= set(spec.params):
            axes.append([{"rows": r, "cols": c} for r, c in arrays])
        taken = {k: v for k, v in (options or {}).items() if v is not None and k in spec.params}
        if taken:
            axes.append([taken])
        combos: list[dict[str, Any]] = [{}]
        for axis in axes:
            combos = [{**combo, **choice} for combo in combos for choice in axis]
        choices += [(spec.name, _fixed_block(combo, "lanes" in spec.params)) for combo in combos
                    if not _bdr_without_option(combo)]

    jobs: dict[tuple[str, str], SynthJob] = {}
    for name, params in choices:
        job = make_job(name, params)
        jobs.setdefault(job.key, job)
    return list(jobs.values())


# --------------------------------------------------------------------------- compare: rows


def load_accuracy() -> Callable[[str], Mapping[str, float]]:
    """The accuracy columns' source: :func:`mxsf.studies.accuracy.default_sqnr`."""
    from mxsf.studies.accuracy import default_sqnr

    return default_sqnr


def _ratio(value: float | None, ref: float | None) -> float | None:
    if value is None or not ref:
        return None
    return round(value / ref, 4)


def compare_rows(results: Sequence[SynthResult], *,
                 accuracy: Callable[[str], Mapping[str, float]] | None = None,
                 block_size: int | None = None, lanes: int | None = None) -> list[dict[str, Any]]:
    """One row per result (keys :data:`COLUMNS`, plus :data:`ACCURACY_COLUMNS` when
    ``accuracy`` is given), sorted: BF16 PE, MX PEs by format, then the other designs.

    Ratios divide a row's GE/MAC by the BF16 baseline PE's (1 lane) and by the
    ``fp8_e4m3`` reference PE's (``block_size``/``lanes`` when given, else the first
    ``fp8_e4m3`` PE).

    Raises
    ------
    ValueError
        If a reference PE is not among ``results``.
    """
    from mxsf.golden import ELEMENT_FORMATS

    base_name, base_params = BASELINE
    bf16 = next((r for r in results if r.job.design == base_name
                 and all(r.job.params.get(k) == v for k, v in base_params.items())), None)
    e4m3 = [r for r in results if r.job.design == "pe" and r.job.params.get("fmt") == REFERENCE_FORMAT]
    e4m3 = next((r for r in e4m3 if (block_size is None or r.job.params.get("block_size") == block_size)
                 and (lanes is None or r.job.params.get("lanes") == lanes)), e4m3[0] if e4m3 else None)
    if bf16 is None or e4m3 is None:
        raise ValueError("the sweep must contain the BF16 PE (1 lane) and an fp8_e4m3 PE")

    def per_mac(r: SynthResult) -> float | None:
        return r.report.area_ge / r.job.macs if r.job.macs > 0 else None

    ref_bf16, ref_e4m3 = per_mac(bf16), per_mac(e4m3)
    order = {name: i for i, name in enumerate(ELEMENT_FORMATS)}
    rows = []
    for r in results:
        rep, job = r.report, r.job
        gpm = per_mac(r)
        row = {
            "design": job.design,
            "format": job.fmt,
            "params": {k: v for k, v in job.params.items() if k != "fmt"},
            "top": job.top,
            "reference": "bf16" if r is bf16 else (REFERENCE_FORMAT if r is e4m3 else None),
            "macs_per_cycle": job.macs,
            "area_ge": round(rep.area_ge, 2),
            "comb_ge": round(rep.comb_area_ge, 2),
            "seq_ge": round(rep.seq_area_ge, 2),
            "flops": rep.flop_count,
            "ge_per_mac": None if gpm is None else round(gpm, 2),
            "ratio_vs_bf16": _ratio(gpm, ref_bf16),
            "ratio_vs_fp8_e4m3": _ratio(gpm, ref_e4m3),
            "depth": rep.logic_depth,
            "delay_ps": None if rep.delay_ps is None else round(rep.delay_ps, 1),
            "transistors": rep.transistors,
        }
        if rep.power is not None:
            from .energy import vectorless_pj_per_mac

            vl = vectorless_pj_per_mac(rep, job.macs)
            energy = r.energy or {}
            row.update({
                "fmax_mhz": None if rep.fmax_mhz is None else round(rep.fmax_mhz, 2),
                "clock_ns": rep.clock_ns,
                "power_mw": round(1e3 * float(rep.power["total"]), 4),
                "power_activity_mw": energy.get("power_mw"),
                "utilisation": energy.get("utilisation"),
                "pj_per_mac": energy.get("pj_per_mac"),
                "pj_per_mac_vectorless": None if vl is None else round(vl, 4),
                "energy_groups_mw": energy.get("groups_mw") or {
                    g: [round(1e3 * v, 6) for v in vals]
                    for g, vals in rep.power.get("groups", {}).items()},
                "energy_source": "activity" if energy.get("pj_per_mac") else "vectorless",
            })
        rows.append(row)

    def best_pj(row):
        return row.get("pj_per_mac") or row.get("pj_per_mac_vectorless")

    if any("power_mw" in row for row in rows):
        ref_rows = {row["reference"]: row for row in rows if row["reference"]}
        for row in rows:
            for ref, column in (("bf16", "pj_ratio_vs_bf16"),
                                (REFERENCE_FORMAT, "pj_ratio_vs_fp8_e4m3")):
                base = ref_rows.get(ref)
                same_kind = base is not None and (base.get("pj_per_mac") is None) == (row.get("pj_per_mac") is None)
                row[column] = (_ratio(best_pj(row), best_pj(base))
                               if base is not None and same_kind and "power_mw" in row else None)

    if accuracy is not None:
        memo: dict[str, Mapping[str, float]] = {}
        for row in rows:
            fmt = row["format"]
            values = None
            if row["design"] in _PE_DESIGNS and fmt is not None:
                if fmt not in memo:
                    memo[fmt] = accuracy(fmt)
                values = memo[fmt]
            for column in ACCURACY_COLUMNS:
                row[column] = None if values is None else round(float(values[column]), 3)

    design_rank = {base_name: 0, "pe": 1}

    def sort_key(row):
        p = row["params"]
        return (design_rank.get(row["design"], 2), row["design"],
                order.get(row["format"], -1), p.get("rows", 0) * p.get("cols", 0),
                json.dumps(p, sort_keys=True))

    rows.sort(key=sort_key)
    return rows


# --------------------------------------------------------------------------- compare: outputs


_MD_HEAD = {
    "design": "design", "format": "format", "params": "params", "top": "top",
    "reference": "ref", "macs_per_cycle": "MACs/cycle", "area_ge": "area (GE)",
    "comb_ge": "comb (GE)", "seq_ge": "seq (GE)", "flops": "flops", "ge_per_mac": "GE/MAC",
    "ratio_vs_bf16": "x BF16 PE", "ratio_vs_fp8_e4m3": "x MXFP8 E4M3 PE", "depth": "depth",
    "delay_ps": "delay (ps)", "transistors": "transistors", "sqnr_1d_db": "SQNR 1D (dB)",
    "sqnr_tile_db": "SQNR tile (dB)", "fmax_mhz": "Fmax (MHz)", "clock_ns": "clock (ns)",
    "power_mw": "P vectorless (mW)", "power_activity_mw": "P activity (mW)",
    "utilisation": "util", "pj_per_mac": "pJ/MAC", "pj_per_mac_vectorless": "pJ/MAC vectorless",
    "pj_ratio_vs_bf16": "pJ x BF16 PE", "pj_ratio_vs_fp8_e4m3": "pJ x MXFP8 E4M3 PE",
}
_MD_SKIP = ("top", "transistors", "clock_ns", "comb_ge", "seq_ge")


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "params":
        return format_params(value) or "-"
    if key.startswith("ratio") or key.startswith("pj_ratio"):
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:.1f}" if key in ("delay_ps",) else f"{value:.2f}"
    return str(value)


def format_compare_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """The comparison table as Markdown (numbers right-aligned)."""
    shown = [c for c in columns if c not in _MD_SKIP]
    text_cols = {"design", "format", "params", "reference"}
    cells = [[_cell(c, row.get(c)) for c in shown] for row in rows]
    head = [_MD_HEAD.get(c, c) for c in shown]
    widths = [max(len(x) for x in [h, *(r[i] for r in cells)]) for i, h in enumerate(head)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) if c in text_cols else v.rjust(w)
                                 for v, w, c in zip(values, widths, shown)) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if c in text_cols else ("-" * (w + 1) + ":")
                          for w, c in zip(widths, shown)) + "|"
    return "\n".join([line(head), rule, *map(line, cells)]) + "\n"


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else
                         (format_params(row[c]) if c == "params" else row[c]) for c in columns])
    return buffer.getvalue()


def _markdown_document(rows, columns, settings, plots, reports) -> str:
    base = next(r for r in rows if r["reference"] == "bf16")
    e4m3 = next(r for r in rows if r["reference"] == REFERENCE_FORMAT)
    yosys = sorted({r.yosys_version for r in reports})
    lines = [
        "# mxsf compare: area of MX datapaths",
        "",
        "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + ".",
        "",
        (f"Library mxsf_generic (areas in NAND2 gate equivalents, Nangate FreePDK45 ratios); "
         f"Yosys {', '.join(yosys)}. Depth is in cells, delay in ps from OpenSTA under the "
         f"library's uncharacterised delay model."
         if settings.get("lib", "generic") == "generic" else
         f"Library {settings.get('lib')} (GE = area / NAND2 area); Yosys {', '.join(yosys)}; "
         f"timing and power from OpenSTA at each design's analysis clock (its own Fmax "
         f"unless a clock is given). P vectorless: input ports toggle 0.1 times per cycle. "
         f"pJ/MAC: power from gate-level activity of a golden-checked workload (PEs), "
         f"divided by clock x MACs/cycle x utilisation; pJ ratios use it where both rows "
         f"have it, else the vectorless figure."),
        "",
        f"References: the BF16 PE ({format_params(base['params'])}), "
        f"{base['ge_per_mac']:.2f} GE per MAC/cycle, and the MXFP8 E4M3 PE "
        f"({format_params(e4m3['params'])}), {e4m3['ge_per_mac']:.2f} GE per MAC/cycle. "
        f"The ratio columns divide a row's GE/MAC by theirs.",
        "",
        format_compare_markdown(rows, columns).rstrip("\n"),
    ]
    if any(c in columns for c in ACCURACY_COLUMNS):
        lines += ["", "SQNR: mean over the default tensor distributions of "
                      "mxsf.studies.accuracy, 1D blocks of 32 and 32x32 tiles."]
    if plots:
        lines += ["", "## Plots"]
        for name in plots:
            lines += ["", f"![{Path(name).stem.replace('_', ' ')}]({name})"]
    return "\n".join(lines) + "\n"


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """COLUMNS, the power columns when the library has power, the accuracy columns."""
    power = [c for c in POWER_COLUMNS if any("power_mw" in r for r in rows)]
    return [*COLUMNS, *power, *(c for c in ACCURACY_COLUMNS if any(c in r for r in rows))]


def write_compare(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str], *,
                  settings: Mapping[str, Any] | None = None,
                  reports: Sequence[SynthReport] = (), plots: bool = True) -> list[Path]:
    """Write ``compare.md``, ``compare.csv``, ``compare.json`` and the PNG plots.

    Every file is first written under a temporary name; they are renamed together once
    all exist, and outputs of earlier runs that this one did not produce (e.g. an old
    ``pareto.png``) are removed. Returns the paths written.
    """
    from . import plots as plot_module

    out = Path(out_dir)
    settings = dict(settings or {})
    columns = _columns(rows)
    out.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.tmp"
    staged: dict[str, Path] = {}
    try:
        plot_names: list[str] = []
        if plots:
            for name, fn in plot_module.compare_plots(rows):
                tmp = out / f".{name}{suffix}"
                staged[name] = tmp
                fn(rows, tmp)
                plot_names.append(name)
        texts = {
            "compare.csv": _csv_text(rows, columns),
            "compare.json": json.dumps({
                "generator": "mxsf compare",
                "settings": settings,
                "yosys": sorted({r.yosys_version for r in reports}),
                "columns": columns,
                "rows": [{c: row.get(c) for c in columns} for row in rows],
            }, indent=2) + "\n",
            "compare.md": _markdown_document(rows, columns, settings, plot_names, reports),
        }
        for name, text in texts.items():
            tmp = out / f".{name}{suffix}"
            staged[name] = tmp
            tmp.write_text(text)
        written = []
        for name, tmp in staged.items():
            os.replace(tmp, out / name)
            written.append(out / name)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    for name in OUTPUT_FILES:
        if name not in staged:
            (out / name).unlink(missing_ok=True)
    order = {name: i for i, name in enumerate(OUTPUT_FILES)}
    return sorted(written, key=lambda p: order.get(p.name, len(order)))


@dataclass(frozen=True)
class CompareResult:
    """What :func:`run_compare` produced."""

    rows: list
    columns: list
    results: list
    files: list


def run_compare(designs: Sequence[str], formats: Sequence[str], *, block_size: int = 32,
                lanes: int | None = None, arrays: Sequence[tuple[int, int]] | None = None,
                options: Mapping[str, Any] | None = None,
                out_dir: str | os.PathLike[str] = "build/compare",
                synth_dir: str | os.PathLike[str] | None = None, workers: int | None = None,
                cache: bool = True, progress: bool | TextIO = True,
                plots: bool = True, lib: str = "generic", clock_ns: float | None = None,
                activity: Callable[..., dict | None] | None = None,
                scheduler: str | None = None) -> CompareResult:
    """Plan, synthesise and write a sweep (see :func:`plan_compare`, :func:`write_compare`).

    ``progress`` is True (bar on stderr), False, or a stream for the bar.

    Raises
    ------
    ValueError
        Bad input, before anything is built or written.
    SynthError
        A synthesis failed; nothing is written to ``out_dir``.
    """
    jobs = plan_compare(designs, formats, block_size=block_size, lanes=lanes, arrays=arrays,
                        options=options)
    bar = None
    if progress:
        bar = ProgressBar(len(jobs), stream=None if progress is True else progress)
    results = run_jobs(jobs, synth_dir=synth_dir, cache=cache, workers=workers, progress=bar,
                       lib=lib, clock_ns=clock_ns, activity=activity, scheduler=scheduler)
    accuracy = load_accuracy()
    try:
        rows = compare_rows(results, accuracy=accuracy, block_size=block_size, lanes=lanes)
    except Exception as error:  # noqa: BLE001 -- the accuracy model is optional
        if accuracy is None:
            raise
        print(f"mxsf: warning: accuracy columns left out: {type(error).__name__}: {error}",
              file=sys.stderr)
        rows = compare_rows(results, block_size=block_size, lanes=lanes)
    settings = {
        "designs": ",".join(designs), "formats": ",".join(formats), "block_size": block_size,
        "lanes": "default" if lanes is None else lanes, "lib": lib,
    }
    if clock_ns is not None:
        settings["clock_ns"] = clock_ns
    if arrays:
        settings["arrays"] = ",".join(f"{r}x{c}" for r, c in arrays)
    files = write_compare(rows, out_dir, settings=settings,
                          reports=[r.report for r in results], plots=plots)
    columns = _columns(rows)
    return CompareResult(rows=rows, columns=columns, results=results, files=files)
