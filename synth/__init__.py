"""mxsf.synth: Yosys synthesis onto a generic standard-cell library, and area reports.

The public entry point is :func:`synthesize`; see :mod:`mxsf.synth.flow` for the
flow and :mod:`mxsf.synth.liberty` for the library (``mxsf_generic.lib``, areas in
NAND2 gate equivalents from the Nangate FreePDK45 Open Cell Library).

:mod:`mxsf.synth.compare` synthesises the registry designs (``mxsf synth``) and runs
area sweeps over designs, formats and array sizes (``mxsf compare``);
:mod:`mxsf.synth.plots` draws their PNG plots. They are not imported here, so the
flow stays free of Amaranth and matplotlib.
"""

from .flow import (
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
from .timing import TimingResult, analyze_netlist

__all__ = [
    "CELLS",
    "FLOW_VERSION",
    "LIBERTY_PATH",
    "CellSpec",
    "SynthError",
    "SynthReport",
    "TimingResult",
    "analyze_netlist",
    "cell_area_ge",
    "default_out_dir",
    "format_report_markdown",
    "format_report_table",
    "synthesize",
    "yosys_command",
]
