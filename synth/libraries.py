"""The cell libraries ``mxsf.synth`` maps onto, by the name the CLI uses.

- ``generic``: :data:`mxsf.synth.liberty.LIBERTY_PATH`, areas already in NAND2 gate
  equivalents, an uncharacterised delay model and no power tables (the fast default).
- ``osu018``: the OSU 0.18 um standard cells shipped by Debian's ``qflow-tech-osu018``
  (``/usr/share/qflow/tech/osu018/osu018_stdcells.lib``; override the folder with
  ``$MXSF_OSU018_DIR``). Characterised delays (NLDM), internal and leakage power; its
  ``NAND2X1`` is 24 area units, which is one GE. ``osu018_stdcells.v`` next to it holds
  the cell models (UDPs) for gate-level simulation.

:func:`read_cells` reads area and flip-flop/latch membership of every cell from the
Liberty text itself, so the report never depends on a hand-copied table.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .liberty import LIBERTY_PATH

__all__ = ["LIBRARY_NAMES", "CellInfo", "Library", "get_library", "read_cells"]

_OSU_DIR_DEFAULT = "/usr/share/qflow/tech/osu018"


@dataclass(frozen=True)
class CellInfo:
    """Area (library units) and kind of one Liberty cell."""

    name: str
    area: float
    sequential: bool


@dataclass(frozen=True)
class Library:
    """One cell library.

    Attributes
    ----------
    name : str
        CLI name (``generic``, ``osu018``).
    liberty : Path
        The Liberty file.
    ge_area : float
        Area of one NAND2 gate equivalent in the library's area unit.
    cell_models : Path or None
        Verilog models of the cells for gate-level simulation.
    power : bool
        Whether the library has power tables (power is reported only then).
    description : str
    """

    name: str
    liberty: Path
    ge_area: float
    cell_models: Path | None
    power: bool
    description: str

    def check(self) -> None:
        """Raise FileNotFoundError (one line) if the library's files are missing."""
        if not self.liberty.is_file():
            hint = (" (install the Debian package qflow-tech-osu018, or set $MXSF_OSU018_DIR)"
                    if self.name == "osu018" else "")
            raise FileNotFoundError(f"library {self.name!r}: Liberty file {self.liberty} "
                                    f"not found{hint}")


def _osu_dir() -> Path:
    return Path(os.environ.get("MXSF_OSU018_DIR") or _OSU_DIR_DEFAULT)


def _libraries() -> dict[str, Library]:
    osu = _osu_dir()
    return {
        "generic": Library("generic", LIBERTY_PATH, 1.0, None, False,
                           "mxsf_generic: Nangate FreePDK45 area ratios in GE, "
                           "uncharacterised delays, no power"),
        "osu018": Library("osu018", osu / "osu018_stdcells.lib", 24.0,
                          osu / "osu018_stdcells.v", True,
                          "OSU 0.18 um standard cells (qflow), 1.8 V typical corner"),
    }


#: Library names accepted by :func:`get_library` and ``--lib``.
LIBRARY_NAMES: tuple[str, ...] = ("generic", "osu018")


def get_library(name: str) -> Library:
    """The library called ``name``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    """
    libs = _libraries()
    if not isinstance(name, str) or name not in libs:
        raise ValueError(f"lib must be one of {', '.join(LIBRARY_NAMES)}; not {name!r}")
    return libs[name]


_CELL_RE = re.compile(r"^\s*cell\s*\(\s*\"?([A-Za-z0-9_]+)\"?\s*\)\s*\{", re.M)
_AREA_RE = re.compile(r"^\s*area\s*:\s*([0-9.eE+-]+)\s*;", re.M)
_SEQ_RE = re.compile(r"^\s*(ff|latch|ff_bank|latch_bank)\s*\(", re.M)


@lru_cache(maxsize=8)
def _read_cells_cached(path: str, mtime: float) -> dict[str, CellInfo]:
    text = Path(path).read_text(errors="replace")
    starts = [(m.start(), m.group(1)) for m in _CELL_RE.finditer(text)]
    cells: dict[str, CellInfo] = {}
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        body = text[start:end]
        area = _AREA_RE.search(body)
        cells[name] = CellInfo(name, float(area.group(1)) if area else 0.0,
                               bool(_SEQ_RE.search(body)))
    return cells


def read_cells(liberty: str | os.PathLike[str]) -> dict[str, CellInfo]:
    """Every cell of a Liberty file: name -> :class:`CellInfo` (area, sequential)."""
    path = Path(liberty)
    return _read_cells_cached(str(path), path.stat().st_mtime)
