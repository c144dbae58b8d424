"""The generic standard-cell library that ``mxsf.synth`` maps designs onto.

The library is described once, in :data:`CELLS`, and rendered to Liberty text by
:func:`render_liberty`.  The rendered text is shipped as ``mxsf_generic.lib``
next to this module (:data:`LIBERTY_PATH`); regenerate it after editing the table
with::

    python -c 'from mxsf.synth import liberty; liberty.main()'

Areas
-----
Areas are in NAND2 gate equivalents (GE).  They are the X1 cell areas of the
public Nangate FreePDK45 Open Cell Library (``NangateOpenCellLibrary_typical.lib``,
45 nm), divided by the area of ``NAND2_X1`` (0.798 um^2).  Every Nangate cell is a
whole number of 0.19 um x 1.4 um placement sites (0.266 um^2) wide and NAND2_X1 is
three sites, so every area is an exact multiple of 1/3 GE.

There is no enable or synchronous-reset flip-flop in that library, so the flow
builds those from ``DFF`` plus logic; ``DFFR``/``DFFS`` (active-low asynchronous
clear/preset) only appear for asynchronously reset registers.

Delays
------
Delays are *not* characterised.  Each cell has a load-independent intrinsic delay
roughly proportional to its logical complexity (a NAND2 is 10 ps), plus a
4 ps/fF load term with every input pin being 1 fF.  They exist so that ABC can map
for delay and report a path-delay estimate that ranks designs; treat that
estimate as a relative number, not a sign-off timing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "LIBERTY_NAME",
    "LIBERTY_PATH",
    "NAND2_AREA_UM2",
    "PIN_CAP_FF",
    "DRIVE_PS_PER_FF",
    "SETUP_PS",
    "CellSpec",
    "CELLS",
    "cells_by_name",
    "cell_area_ge",
    "flop_cell_names",
    "render_liberty",
    "main",
]

#: Name of the ``library (...)`` group.
LIBERTY_NAME: str = "mxsf_generic"

#: Where the rendered library is shipped (package data of ``mxsf.synth``).
LIBERTY_PATH: Path = Path(__file__).with_name(f"{LIBERTY_NAME}.lib")

#: Area of Nangate FreePDK45 ``NAND2_X1`` in um^2: the gate-equivalent unit.
NAND2_AREA_UM2: float = 0.798

# Delay model (see the module docstring); mxsf.synth.timing uses the same numbers.
#: Capacitance of every input pin, fF.
PIN_CAP_FF: float = 1.0
#: Delay slope against output load, ps/fF.
DRIVE_PS_PER_FF: float = 4.0
#: Flip-flop setup time, ps.
SETUP_PS: float = 20.0
_SLEW_PS = 10.0            # intrinsic output transition, ps
_LOAD_INDEX_FF = (0.0, 16.0)      # table index_2 (output load)
_SLEW_INDEX_PS = (0.0, 200.0)     # table index_1 (input transition)

Sense = Literal["positive_unate", "negative_unate", "non_unate"]


@dataclass(frozen=True)
class CellSpec:
    """One cell of the generic library.

    Parameters
    ----------
    name:
        Cell name in the generic library (``NAND2``).
    source:
        The Nangate FreePDK45 cell whose area is used (``NAND2_X1``).
    area_um2:
        Area of ``source`` in um^2.
    inputs:
        Data input pin names, in order; each maps to its ``timing_sense``.
    output:
        Output pin name.
    function:
        Liberty Boolean function of ``output`` (``IQ`` for flip-flops).
    delay_ps:
        Intrinsic delay at zero load (clock-to-Q for flip-flops).
    clock:
        Clock pin of a flip-flop, ``None`` for combinational cells.
    clear, preset:
        Liberty expressions of the asynchronous clear / preset of a flip-flop.
    """

    name: str
    source: str
    area_um2: float
    inputs: tuple[tuple[str, Sense], ...]
    output: str
    function: str
    delay_ps: float
    clock: str | None = None
    clear: str | None = None
    preset: str | None = None

    @property
    def area_ge(self) -> float:
        """Area in NAND2 gate equivalents (GE)."""
        return self.area_um2 / NAND2_AREA_UM2

    @property
    def is_sequential(self) -> bool:
        """True for flip-flops."""
        return self.clock is not None


_P: Sense = "positive_unate"
_N: Sense = "negative_unate"
_X: Sense = "non_unate"

#: The library.  Areas from Nangate FreePDK45 X1 cells (um^2); GE = area / 0.798.
CELLS: tuple[CellSpec, ...] = (
    CellSpec("INV",   "INV_X1",   0.532, (("A", _N),), "ZN", "!A", 7.0),
    CellSpec("BUF",   "BUF_X1",   0.798, (("A", _P),), "Z", "A", 14.0),
    CellSpec("NAND2", "NAND2_X1", 0.798, (("A1", _N), ("A2", _N)), "ZN", "!(A1 & A2)", 10.0),
    CellSpec("NAND3", "NAND3_X1", 1.064, (("A1", _N), ("A2", _N), ("A3", _N)), "ZN",
             "!(A1 & A2 & A3)", 13.0),
    CellSpec("NOR2",  "NOR2_X1",  0.798, (("A1", _N), ("A2", _N)), "ZN", "!(A1 | A2)", 12.0),
    CellSpec("NOR3",  "NOR3_X1",  1.064, (("A1", _N), ("A2", _N), ("A3", _N)), "ZN",
             "!(A1 | A2 | A3)", 17.0),
    CellSpec("AND2",  "AND2_X1",  1.064, (("A1", _P), ("A2", _P)), "ZN", "(A1 & A2)", 17.0),
    CellSpec("OR2",   "OR2_X1",   1.064, (("A1", _P), ("A2", _P)), "ZN", "(A1 | A2)", 19.0),
    CellSpec("XOR2",  "XOR2_X1",  1.596, (("A", _X), ("B", _X)), "Z", "(A ^ B)", 22.0),
    CellSpec("XNOR2", "XNOR2_X1", 1.596, (("A", _X), ("B", _X)), "ZN", "!(A ^ B)", 22.0),
    CellSpec("AOI21", "AOI21_X1", 1.064, (("A", _N), ("B1", _N), ("B2", _N)), "ZN",
             "!(A | (B1 & B2))", 15.0),
    CellSpec("OAI21", "OAI21_X1", 1.064, (("A", _N), ("B1", _N), ("B2", _N)), "ZN",
             "!(A & (B1 | B2))", 15.0),
    CellSpec("MUX2",  "MUX2_X1",  1.862, (("A", _P), ("B", _P), ("S", _X)), "Z",
             "((S & B) | (A & !S))", 24.0),
    CellSpec("DFF",   "DFF_X1",   4.522, (("D", _P),), "Q", "IQ", 40.0, clock="CK"),
    CellSpec("DFFR",  "DFFR_X1",  5.320, (("D", _P), ("RN", _P)), "Q", "IQ", 45.0,
             clock="CK", clear="!RN"),
    CellSpec("DFFS",  "DFFS_X1",  5.320, (("D", _P), ("SN", _P)), "Q", "IQ", 45.0,
             clock="CK", preset="!SN"),
)


def cells_by_name() -> dict[str, CellSpec]:
    """Return ``{cell name: CellSpec}`` for every cell of the library."""
    return {cell.name: cell for cell in CELLS}


def cell_area_ge() -> dict[str, float]:
    """Return ``{cell name: area in GE}`` for every cell of the library."""
    return {cell.name: cell.area_ge for cell in CELLS}


def flop_cell_names() -> frozenset[str]:
    """Return the names of the sequential cells of the library."""
    return frozenset(cell.name for cell in CELLS if cell.is_sequential)


def _fmt(value: float) -> str:
    return f"{value:.6f}"


def _table(kind: str, base_ps: float) -> list[str]:
    values = ", ".join(_fmt(base_ps + DRIVE_PS_PER_FF * load) for load in _LOAD_INDEX_FF)
    rows = " \\\n            ".join(f'"{values}"' for _ in _SLEW_INDEX_PS)
    return [
        f"        {kind} (delay_2x2) {{",
        f'          values ( {rows} );',
        "        }",
    ]


def _arc(related: str, sense: Sense | None, delay_ps: float, timing_type: str | None) -> list[str]:
    lines = ["      timing () {", f'        related_pin : "{related}";']
    if timing_type is not None:
        lines.append(f"        timing_type : {timing_type};")
    if sense is not None:
        lines.append(f"        timing_sense : {sense};")
    for kind in ("cell_rise", "cell_fall"):
        lines += _table(kind, delay_ps)
    for kind in ("rise_transition", "fall_transition"):
        lines += _table(kind, _SLEW_PS)
    lines.append("      }")
    return lines


def _input_pin(name: str, *, clock: bool = False, setup_from: str | None = None) -> list[str]:
    lines = [f"    pin ({name}) {{", "      direction : input;",
             f"      capacitance : {_fmt(PIN_CAP_FF)};"]
    if clock:
        lines.append("      clock : true;")
    if setup_from is not None:
        lines += [
            "      timing () {",
            f'        related_pin : "{setup_from}";',
            "        timing_type : setup_rising;",
            "        rise_constraint (constraint_1x1) {",
            f'          values ( "{_fmt(SETUP_PS)}" );',
            "        }",
            "        fall_constraint (constraint_1x1) {",
            f'          values ( "{_fmt(SETUP_PS)}" );',
            "        }",
            "      }",
        ]
    lines.append("    }")
    return lines


def _cell(cell: CellSpec) -> list[str]:
    lines = [
        f"  /* {cell.source}: {cell.area_um2:.3f} um^2 / {NAND2_AREA_UM2:.3f} um^2 */",
        f"  cell ({cell.name}) {{",
        f"    area : {_fmt(cell.area_ge)};",
    ]
    if cell.is_sequential:
        lines.append("    ff (IQ, IQN) {")
        lines.append('      next_state : "D";')
        lines.append(f'      clocked_on : "{cell.clock}";')
        if cell.clear is not None:
            lines.append(f'      clear : "{cell.clear}";')
        if cell.preset is not None:
            lines.append(f'      preset : "{cell.preset}";')
        lines.append("    }")
        lines += _input_pin(cell.clock, clock=True)
        for pin, _sense in cell.inputs:
            lines += _input_pin(pin, setup_from=cell.clock if pin == "D" else None)
        lines += [f"    pin ({cell.output}) {{", "      direction : output;",
                  f'      function : "{cell.function}";']
        lines += _arc(cell.clock, None, cell.delay_ps, "rising_edge")
        lines.append("    }")
    else:
        for pin, _sense in cell.inputs:
            lines += _input_pin(pin)
        lines += [f"    pin ({cell.output}) {{", "      direction : output;",
                  f'      function : "{cell.function}";']
        for pin, sense in cell.inputs:
            lines += _arc(pin, sense, cell.delay_ps, None)
        lines.append("    }")
    lines.append("  }")
    return lines


def render_liberty() -> str:
    """Render :data:`CELLS` as Liberty text (the content of ``mxsf_generic.lib``)."""
    slew = ", ".join(_fmt(v) for v in _SLEW_INDEX_PS)
    load = ", ".join(_fmt(v) for v in _LOAD_INDEX_FF)
    lines = [
        f"/* {LIBERTY_NAME}: generic standard cells for mxsf area/depth estimates.",
        " *",
        " * GENERATED by `liberty.main()` from synth/liberty.py (edit that).",
        " *",
        " * Areas are NAND2 gate equivalents (GE): the X1 cell areas of the public",
        " * Nangate FreePDK45 Open Cell Library (NangateOpenCellLibrary_typical.lib)",
        f" * divided by NAND2_X1 = {NAND2_AREA_UM2} um^2.",
        " * Delays are a simple uncharacterised model (intrinsic delay by cell",
        f" * complexity + {DRIVE_PS_PER_FF:g} ps/fF load, {PIN_CAP_FF:g} fF per input pin):",
        " * relative numbers for ranking designs, not sign-off timing.",
        " */",
        f"library ({LIBERTY_NAME}) {{",
        "  delay_model : table_lookup;",
        '  time_unit : "1ps";',
        '  voltage_unit : "1V";',
        '  current_unit : "1mA";',
        '  pulling_resistance_unit : "1kohm";',
        '  leakage_power_unit : "1nW";',
        "  capacitive_load_unit (1, ff);",
        "  nom_process : 1.0;",
        "  nom_temperature : 25.0;",
        "  nom_voltage : 1.1;",
        "  default_cell_leakage_power : 0.0;",
        "  default_inout_pin_cap : 1.0;",
        "  default_input_pin_cap : 1.0;",
        "  default_output_pin_cap : 0.0;",
        "  default_fanout_load : 1.0;",
        "  default_max_transition : 500.0;",
        "  input_threshold_pct_rise : 50.0;",
        "  input_threshold_pct_fall : 50.0;",
        "  output_threshold_pct_rise : 50.0;",
        "  output_threshold_pct_fall : 50.0;",
        "  slew_lower_threshold_pct_rise : 30.0;",
        "  slew_lower_threshold_pct_fall : 30.0;",
        "  slew_upper_threshold_pct_rise : 70.0;",
        "  slew_upper_threshold_pct_fall : 70.0;",
        "  lu_table_template (delay_2x2) {",
        "    variable_1 : input_net_transition;",
        "    variable_2 : total_output_net_capacitance;",
        f'    index_1 ("{slew}");',
        f'    index_2 ("{load}");',
        "  }",
        "  lu_table_template (constraint_1x1) {",
        "    variable_1 : constrained_pin_transition;",
        '    index_1 ("0.000000");',
        "  }",
    ]
    for cell in CELLS:
        lines += _cell(cell)
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(*, check: bool = False) -> int:
    """Write ``mxsf_generic.lib`` from :data:`CELLS`, or with ``check`` only compare.

    Returns the process exit status: 1 if ``check`` finds the file out of date.
    """
    text = render_liberty()
    if check:
        current = LIBERTY_PATH.read_text() if LIBERTY_PATH.exists() else ""
        if current != text:
            print(f"{LIBERTY_PATH} is out of date: regenerate it with mxsf.synth.liberty.main()",
                  file=sys.stderr)
            return 1
        print(f"{LIBERTY_PATH} is up to date")
        return 0
    LIBERTY_PATH.write_text(text)
    print(f"wrote {LIBERTY_PATH}")
    return 0
