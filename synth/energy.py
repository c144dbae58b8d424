"""Power from simulated activity, and energy per multiply-accumulate.

:func:`activity_power` re-runs OpenSTA on a report's netlist with an activity file
(``set_power_activity`` commands written by :mod:`mxsf.sim.gate_activity`, which this
package does not import) at the report's analysis clock. :func:`pj_per_mac` turns a
power into energy per MAC::

    pJ/MAC = power (W) x clock period (s) / (MACs per cycle x utilisation) x 1e12
"""

from __future__ import annotations

from pathlib import Path

from .flow import SynthError, SynthReport
from .libraries import get_library
from .sta import PowerResult, StaError, run_sta

__all__ = ["activity_power", "pj_per_mac", "vectorless_pj_per_mac"]


def _clock_port(report: SynthReport) -> str | None:
    netlist = Path(report.work_dir) / "mapped.v"
    head = netlist.read_text(errors="replace")[:200000]
    import re

    match = re.search(rf"^module\s+{re.escape(report.top)}\s*\((.*?)\);", head, re.S | re.M)
    if match and re.search(r"(^|[\s,])clk([\s,]|$)", match.group(1)):
        return "clk"
    return None


def activity_power(report: SynthReport, activity_file: str, *,
                   clock_ns: float | None = None, tag: str = "activity_power") -> PowerResult:
    """Power of ``report``'s netlist with the activity in ``activity_file`` (a file name in
    the report's work folder) at ``clock_ns`` (default: the report's analysis clock).

    Raises
    ------
    ValueError
        The report's library has no power tables, or a bad clock.
    SynthError
        OpenSTA failed.
    """
    library = get_library(report.library)
    if not library.power:
        raise ValueError(f"library {report.library!r} has no power tables")
    clock = clock_ns if clock_ns is not None else report.clock_ns
    try:
        result = run_sta(report.work_dir, netlist="mapped.v", liberty=library.liberty,
                         top=report.top, clock_ns=clock, clock_port=_clock_port(report),
                         power=True, activity_file=activity_file, tag=tag)
    except StaError as error:
        raise SynthError(str(error)) from None
    assert result.power is not None
    return result.power


def pj_per_mac(power_w: float, clock_ns: float, macs_per_cycle: float,
               utilisation: float = 1.0) -> float | None:
    """Energy per MAC in pJ (None for a design without MACs).

    Raises
    ------
    ValueError
        Non-positive clock or utilisation outside (0, 1].
    """
    if not clock_ns > 0:
        raise ValueError(f"clock_ns must be > 0, not {clock_ns!r}")
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], not {utilisation!r}")
    if macs_per_cycle <= 0:
        return None
    return power_w * clock_ns * 1e-9 / (macs_per_cycle * utilisation) * 1e12


def vectorless_pj_per_mac(report: SynthReport, macs_per_cycle: int) -> float | None:
    """pJ/MAC of the report's vectorless power at its analysis clock, every cycle busy."""
    if not report.power or not report.clock_ns or macs_per_cycle <= 0:
        return None
    return pj_per_mac(float(report.power["total"]), report.clock_ns, macs_per_cycle)
