"""Static timing and power of a mapped netlist with OpenSTA (``sta``).

:func:`run_sta` writes a Tcl script next to the netlist, runs OpenSTA on it and parses
``report_checks`` (worst setup path), ``report_tns`` and ``report_power``:

- one clock on the ``clk`` port (a virtual clock for designs without one), inputs
  arriving and outputs required at the clock edge (input/output delay 0), so paths
  from and to ports count as one full cycle, like register-to-register paths; paths
  from the synchronous reset port ``rst`` are false paths (its fan-out tree is built
  in place and route, like the ideal clock tree);
- the critical path delay is ``period - slack`` of the worst path (arrival plus the
  setup time of the end point); Fmax is its inverse;
- power at the clock period: vectorless (every input port toggles ``input_activity``
  times per clock period, OpenSTA propagates activity through the cell functions)
  or from an activity file of ``set_power_activity`` commands (gate-level simulation,
  see :mod:`mxsf.sim.gate_activity`).

Set ``$MXSF_STA`` to the command that runs OpenSTA (default ``sta``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PowerResult", "StaError", "StaResult", "run_sta", "sta_command", "sta_version"]

_DONE = "MXSF-STA-DONE"


class StaError(RuntimeError):
    """OpenSTA is missing or failed on a netlist; the message is one line."""


@dataclass(frozen=True)
class PowerResult:
    """``report_power`` totals in W, and the same split per group."""

    internal_w: float
    switching_w: float
    leakage_w: float
    total_w: float
    groups: Mapping[str, tuple[float, float, float, float]] = field(default_factory=dict)

    @property
    def dynamic_w(self) -> float:
        return self.internal_w + self.switching_w


@dataclass(frozen=True)
class StaResult:
    """Outcome of :func:`run_sta`.

    Attributes
    ----------
    clock_ns : float
        Clock period analysed.
    slack_ns : float or None
        Slack of the worst setup path (None: no constrained path).
    critical_path_ns : float or None
        ``clock_ns - slack_ns``: arrival time plus setup of the worst path.
    tns_ns : float
        Total negative slack.
    startpoint, endpoint : str
    path_cells : tuple of str
        Cell types along the worst path.
    power : PowerResult or None
        None when power was not requested.
    wall_time_s : float
    """

    clock_ns: float
    slack_ns: float | None
    critical_path_ns: float | None
    tns_ns: float
    startpoint: str
    endpoint: str
    path_cells: tuple[str, ...]
    power: PowerResult | None
    wall_time_s: float

    @property
    def fmax_mhz(self) -> float | None:
        if not self.critical_path_ns or self.critical_path_ns <= 0:
            return None
        return 1000.0 / self.critical_path_ns


def sta_command() -> list[str]:
    """Command prefix that runs OpenSTA: ``$MXSF_STA`` or ``sta``."""
    return shlex.split(os.environ.get("MXSF_STA") or "sta")


def sta_version() -> str:
    """OpenSTA's version line (part of cache keys); raises StaError if it is missing."""
    cmd = sta_command()
    if shutil.which(cmd[0]) is None:
        raise StaError(f"OpenSTA not found ({cmd[0]!r}); install the Debian package 'opensta' "
                       f"or set $MXSF_STA")
    try:
        proc = subprocess.run([*cmd, "-version"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StaError(f"cannot run OpenSTA ({cmd[0]}): {error}") from None
    return (proc.stdout.strip() or proc.stderr.strip() or "unknown").splitlines()[0]


_TIME_UNIT_RE = re.compile(r"time_unit\s*:\s*\"1(ns|ps)\"")


def _time_scale(liberty: Path) -> float:
    """Library time units per ns (OpenSTA takes command values in the library's units)."""
    with open(liberty, errors="replace") as f:
        head = f.read(20000)
    match = _TIME_UNIT_RE.search(head)
    return 1000.0 if match and match.group(1) == "ps" else 1.0


def _script(*, netlist: str, liberty: str, top: str, period: float, clock_port: str | None,
            output_load: float | None, power: bool, input_activity: float,
            activity_file: str | None) -> str:
    lines = [
        f"read_liberty {liberty}",
        f"read_verilog {netlist}",
        f"link_design {top}",
    ]
    if clock_port is not None:
        lines += [f"create_clock -name clk -period {period:.6g} [get_ports {clock_port}]",
                  f"set inputs [delete_from_list [all_inputs] [get_ports {clock_port}]]"]
    else:
        lines += [f"create_clock -name clk -period {period:.6g}", "set inputs [all_inputs]"]
    lines += [
        "set_input_delay 0 -clock clk $inputs",
        "set_output_delay 0 -clock clk [all_outputs]",
        # The reset tree is buffered in place and route, like the (ideal) clock tree:
        # synthesis leaves one gate driving every flop of an array, whose delay is not a
        # property of the datapath.
        "if {[llength [get_ports -quiet rst]] > 0} { set_false_path -from [get_ports rst] }",
    ]
    if output_load is not None:
        lines.append(f"set_load {output_load:.6g} [all_outputs]")
    lines += [
        "puts MXSF-CHECKS",
        "report_checks -path_delay max -digits 4 -fields {}",
        "report_tns -digits 4",
    ]
    if power:
        if activity_file is not None:
            lines.append(f"source {activity_file}")
        else:
            lines.append(f"set_power_activity -input -activity {input_activity:.6g} -duty 0.5")
        lines += ["puts MXSF-POWER", "report_power -digits 8"]
    lines += [f"puts {_DONE}", "exit", ""]
    return "\n".join(lines)


_SLACK_RE = re.compile(r"^\s*(-?[0-9.]+)\s+slack\s+\((MET|VIOLATED)\)", re.M)
_POINT_RE = re.compile(r"^(Startpoint|Endpoint):\s*(\S+)", re.M)
_PATH_CELL_RE = re.compile(r"^\s*-?[0-9.]+\s+-?[0-9.]+\s+[\^v]\s+\S+\s+\(([A-Za-z0-9_]+)\)\s*$", re.M)
_TNS_RE = re.compile(r"^tns\s+(-?[0-9.eE+-]+)", re.M)
_NUM = r"(-?[0-9.]+(?:e[-+]?\d+)?)"
_POWER_RE = re.compile(rf"^(Sequential|Combinational|Macro|Pad|Total)\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+{_NUM}",
                       re.M | re.I)


def _parse(text: str, *, period_ns: float, scale: float, power: bool, log: Path,
           elapsed: float) -> StaResult:
    checks = text.split("MXSF-CHECKS", 1)[-1].split("MXSF-POWER", 1)[0]
    slack_match = _SLACK_RE.search(checks)
    if slack_match is None and "No paths found" not in checks:
        raise StaError(f"OpenSTA reported no slack; see {log}")
    slack = None if slack_match is None else float(slack_match.group(1)) / scale
    points = dict(_POINT_RE.findall(checks))
    # Cell types along the data path: port pseudo-cells dropped, and the start flop's
    # clock and Q lines counted once.
    arrival = checks.split("data arrival time", 1)[0]
    cells = [c for c in _PATH_CELL_RE.findall(arrival) if c not in ("in", "out", "inout")]
    if len(cells) >= 2 and cells[0] == cells[1] and points.get("Startpoint", "").startswith("_"):
        cells = cells[1:]
    cells = tuple(cells)
    tns = _TNS_RE.search(checks)
    result_power = None
    if power:
        section = text.split("MXSF-POWER", 1)[-1]
        groups = {m.group(1).lower(): tuple(float(m.group(i)) for i in range(2, 6))
                  for m in _POWER_RE.finditer(section)}
        if "total" not in groups:
            raise StaError(f"OpenSTA printed no power report; see {log}")
        total = groups.pop("total")
        result_power = PowerResult(*total, groups={k: v for k, v in groups.items()
                                                   if k in ("sequential", "combinational")})
    return StaResult(
        clock_ns=period_ns, slack_ns=None if slack is None else round(slack, 6),
        critical_path_ns=None if slack is None else round(period_ns - slack, 6),
        tns_ns=0.0 if tns is None else float(tns.group(1)) / scale,
        startpoint=points.get("Startpoint", ""), endpoint=points.get("Endpoint", ""),
        path_cells=cells, power=result_power, wall_time_s=round(elapsed, 3))


def run_sta(work_dir: str | os.PathLike[str], *, netlist: str, liberty: str | os.PathLike[str],
            top: str, clock_ns: float, clock_port: str | None = "clk",
            output_load: float | None = None, power: bool = True, input_activity: float = 0.1,
            activity_file: str | None = None, tag: str = "sta",
            timeout_s: float | None = 3600) -> StaResult:
    """Time (and optionally power) ``netlist`` in ``work_dir`` with OpenSTA.

    Parameters
    ----------
    work_dir : path
        Folder holding ``netlist`` (and ``activity_file``), where ``<tag>.tcl`` and
        ``<tag>.log`` are written; OpenSTA runs there.
    netlist : str
        Netlist file name, relative to ``work_dir``.
    liberty : path
        The Liberty file (absolute, or relative to ``work_dir``).
    clock_ns : float
        Clock period in ns (> 0).
    clock_port : str or None
        Clock input port; None for a virtual clock.
    output_load : float or None
        Load on every output port, in the library's capacitance unit.
    input_activity : float
        Vectorless activity of the input ports, toggles per clock period.
    activity_file : str or None
        Tcl file of ``set_power_activity`` commands (relative to ``work_dir``) used
        instead of the vectorless input activity.

    Raises
    ------
    ValueError
        ``clock_ns`` not positive.
    StaError
        OpenSTA missing, failing, timing out, or printing no report.
    """
    if isinstance(clock_ns, bool) or not isinstance(clock_ns, (int, float)) or not clock_ns > 0:
        raise ValueError(f"clock_ns must be a number > 0, not {clock_ns!r}")
    if activity_file is not None and Path(activity_file).name == f"{tag}.tcl":
        raise ValueError(f"activity_file must not be the script itself ({tag}.tcl)")
    work = Path(work_dir)
    liberty = Path(liberty)
    scale = _time_scale(liberty if liberty.is_absolute() else work / liberty)
    script = work / f"{tag}.tcl"
    log = work / f"{tag}.log"
    script.write_text(_script(netlist=netlist, liberty=str(liberty), top=top,
                              period=clock_ns * scale, clock_port=clock_port,
                              output_load=output_load, power=power,
                              input_activity=input_activity, activity_file=activity_file))
    cmd = sta_command()
    if shutil.which(cmd[0]) is None:
        raise StaError(f"OpenSTA not found ({cmd[0]!r}); install the Debian package 'opensta' "
                       f"or set $MXSF_STA")
    started = time.perf_counter()
    try:
        with open(log, "w") as out:
            proc = subprocess.run([*cmd, "-no_init", "-exit", script.name], cwd=work,
                                  stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise StaError(f"OpenSTA timed out after {timeout_s} s on {top!r}; see {log}") from None
    except OSError as error:
        raise StaError(f"cannot run OpenSTA ({cmd[0]}): {error}") from None
    elapsed = time.perf_counter() - started
    text = log.read_text(errors="replace")
    errors = [ln.strip() for ln in text.splitlines() if ln.lstrip().startswith("Error")]
    if errors or proc.returncode != 0 or _DONE not in text:
        reason = errors[0] if errors else f"exit {proc.returncode}, no complete report"
        raise StaError(f"OpenSTA failed on {top!r}: {reason}; see {log}")
    return _parse(text, period_ns=float(clock_ns), scale=scale, power=power, log=log,
                  elapsed=elapsed)
