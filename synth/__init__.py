"""mxsf.synth: Yosys synthesis onto a cell library, OpenSTA timing and power, reports.

The public entry point is :func:`synthesize`; see :mod:`mxsf.synth.flow` for the
flow, :mod:`mxsf.synth.libraries` for the libraries (``generic``: ``mxsf_generic.lib``,
areas in NAND2 gate equivalents from the Nangate FreePDK45 Open Cell Library;
``osu018``: the OSU 0.18 um cells), :mod:`mxsf.synth.sta` for OpenSTA,
:mod:`mxsf.synth.hier` for the module deduplication and :mod:`mxsf.synth.energy`
for power from simulated activity.

:mod:`mxsf.synth.compare` synthesises the registry designs (``mxsf synth``) and runs
area sweeps over designs, formats and array sizes (``mxsf compare``);
:mod:`mxsf.synth.plots` draws their PNG plots. They are not imported here, so the
flow stays free of Amaranth and matplotlib.
"""

from .flow import (
    DEFAULT_CLOCK_NS,
    FLOW_VERSION,
    SynthError,
    SynthReport,
    default_out_dir,
    format_report_markdown,
    format_report_table,
    synthesize,
    yosys_command,
)
from .liberty import CELLS, LIBERTY_PATH, CellSpec, cell_area_ge
from .libraries import LIBRARY_NAMES, Library, get_library, read_cells
from .sta import PowerResult, StaError, StaResult, run_sta

__all__ = [
    "CELLS",
    "DEFAULT_CLOCK_NS",
    "FLOW_VERSION",
    "LIBRARY_NAMES",
    "Library",
    "PowerResult",
    "StaError",
    "StaResult",
    "LIBERTY_PATH",
    "CellSpec",
    "SynthError",
    "SynthReport",
    "cell_area_ge",
    "get_library",
    "read_cells",
    "run_sta",
    "default_out_dir",
    "format_report_markdown",
    "format_report_table",
    "synthesize",
    "yosys_command",
]
