"""Gate-level simulation of a mapped netlist: outputs checked, toggles counted.

:func:`simulate_netlist` runs Icarus Verilog on a netlist written by ``mxsf.synth``
(``mapped.v`` + ``mapped.json``) with the library's Verilog cell models. A small
testbench (:func:`testbench_text`) reads one input vector per cycle from a hex file,
applies it after the falling clock edge, writes every output with its cycle number
just before the rising edge, and dumps a VCD of the netlist. The VCD gives, per net
bit, the number of 0/1 transitions and the time spent at 1 (X and Z count as
neither); :func:`activity_tcl` turns them into OpenSTA ``set_power_activity -pins``
commands (toggles per clock cycle and duty) for every cell pin (through
``sta::set_power_pin_activity``: the ``-pins`` option of OpenSTA 2.0.17 is broken).

:func:`pe_workload` builds a real workload for the processing elements: dot products
of tensors drawn from the accuracy study's distributions
(:data:`mxsf.studies.accuracy.DISTRIBUTIONS`, sampler passed in), quantized by the golden model, one beat
every cycle; :func:`run_workload` simulates it and compares every output cycle with
the golden cycle model, raising :class:`GateLevelMismatch` on the first difference.

The testbench is deliberately minimal and self-contained (``tb.v`` in the work folder),
so it can be swapped for the project's vector-file testbench generator.

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
    "check_outputs",
    "count_vcd",
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
        Wall time of compile + simulation + VCD counting.
    """

    outputs: list
    toggles: dict
    high_ns: dict
    window_cycles: int
    clock_ns: float
    sim_time_s: float


# --------------------------------------------------------------------------- netlist ports


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


def testbench_text(netlist: Mapping, top: str, *, clock: str = "clk", clock_ns: float,
                   cycles: int) -> tuple[str, list[tuple[str, int]], list[tuple[str, int]]]:
    """The testbench, and the (name, width) of the inputs (packed into each stimulus
    line, first input in the most significant bits) and of the outputs."""
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
    lines += [
        "  integer cyc, fd;",
        "  initial begin",
        '    $readmemh("stim.hex", stim);',
        '    fd = $fopen("out.txt", "w");',
        '    $dumpfile("gate.vcd");',
        "    $dumpvars(1, dut);",
        *[f"    $dumpvars(1, dut.{path});" for path in _instances(netlist, top)],
        f"    for (cyc = 0; cyc < {cycles}; cyc = cyc + 1) begin",
        "      cur = stim[cyc];",
        f"      #{half:.4f};",
        f'      $fwrite(fd, "{fmt}\\n", {args});',
        f"      {clock} = 1'b1;",
        f"      #{half:.4f};",
        f"      {clock} = 1'b0;",
        "    end",
        "    $fclose(fd);",
        "    $finish;",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines), inputs, outputs


# --------------------------------------------------------------------------- VCD


def count_vcd(path: str | os.PathLike[str], *, start_ns: float, end_ns: float,
              root_depth: int = 2) -> tuple[dict, dict]:
    """Transitions and time at 1 of every bit in a VCD, inside [start_ns, end_ns).

    Keys are ``(scope, net)``: the scope below the first ``root_depth`` levels
    (testbench, DUT) joined with ``/``, the net name with ``[i]`` for bit i of a
    vector. Timescale must be 10 ps or finer as written by the testbench (the header's
    ``$timescale`` is honoured).
    """
    ids: dict[str, list[tuple[tuple[str, str], int]]] = {}
    widths: dict[str, int] = {}
    scope: list[str] = []
    unit_ns = 1.0
    with open(path, "r", errors="replace") as f:
        header = []
        for line in f:
            header.append(line)
            if "$enddefinitions" in line:
                break
        text = "".join(header)
        ts = re.search(r"\$timescale\s+(\d+)\s*(s|ms|us|ns|ps|fs)\s+\$end", text)
        if ts:
            unit_ns = int(ts.group(1)) * {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0,
                                          "ps": 1e-3, "fs": 1e-6}[ts.group(2)]
        for tok in re.finditer(r"\$scope\s+\S+\s+(\S+)\s+\$end|\$upscope\s+\$end|"
                               r"\$var\s+\S+\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+\[(\d+)(?::(\d+))?\])?\s+\$end",
                               text):
            if tok.group(1) is not None:
                scope.append(tok.group(1))
            elif tok.group(0).startswith("$upscope"):
                scope.pop()
            else:
                width, code, ref = int(tok.group(2)), tok.group(3), tok.group(4).lstrip("\\")
                msb = tok.group(5)
                lsb = tok.group(6)
                sc = "/".join(scope[root_depth:])
                if width == 1:
                    name = ref if msb is None or lsb is not None else f"{ref}[{msb}]"
                    keys = [((sc, name), 0)]
                else:
                    hi = int(msb) if msb is not None else width - 1
                    lo = int(lsb) if lsb is not None else 0
                    step = -1 if hi >= lo else 1
                    # the value string is written MSB (index ``hi``) first
                    keys = [((sc, f"{ref}[{hi + step * i}]"), i) for i in range(width)]
                ids.setdefault(code, []).extend(keys)
                widths[code] = width
        # Value changes.
        value: dict[str, str] = {}
        since: dict[str, float] = {}
        toggles: dict[tuple[str, str], int] = {}
        high: dict[tuple[str, str], float] = {}
        now = 0.0

        def settle(code: str, new: str, t: float) -> None:
            old = value.get(code)
            width = widths[code]
            if old is not None:
                t0 = max(since[code], start_ns)
                t1 = min(t, end_ns)
                for key, pos in ids[code]:
                    was = old[pos] if pos < len(old) else "x"
                    if t1 > t0 and was == "1":
                        high[key] = high.get(key, 0.0) + (t1 - t0)
                    if start_ns <= t < end_ns:
                        now_bit = new[pos] if pos < len(new) else "x"
                        if was != now_bit and was in "01" and now_bit in "01":
                            toggles[key] = toggles.get(key, 0) + 1
            value[code] = new
            since[code] = t
            _ = width

        for line in f:
            c = line[0] if line else ""
            if c == "#":
                now = int(line[1:]) * unit_ns
            elif c in "01xzXZ":
                code = line[1:].strip()
                if code in ids:
                    settle(code, c.lower(), now)
            elif c in "bB":
                bits, code = line[1:].split()
                if code in ids:
                    w = widths[code]
                    bits = bits.lower()
                    pad = bits[0] if bits[0] in "xz" else "0"
                    settle(code, bits.rjust(w, pad)[-w:], now)
        for code in list(value):
            settle(code, value[code], end_ns)
    for keys in ids.values():
        for key, _ in keys:
            toggles.setdefault(key, 0)
            high.setdefault(key, 0.0)
    return toggles, high


# --------------------------------------------------------------------------- simulation


def simulate_netlist(work_dir: str | os.PathLike[str], *, top: str,
                     cell_models: str | os.PathLike[str], vectors: Sequence[Mapping[str, int]],
                     clock_ns: float = 10.0, count_from: int = 0, netlist: str = "mapped.v",
                     netlist_json: str = "mapped.json", tag: str = "gate",
                     timeout_s: float | None = 3600) -> GateSim:
    """Simulate ``vectors`` (one dict of input values per cycle; missing inputs are 0)
    on the netlist in ``work_dir`` and count toggles from cycle ``count_from`` on.

    Files go to ``work_dir/<tag>/`` (testbench, stimulus, outputs, VCD; the VCD is
    deleted after counting).

    Raises
    ------
    ValueError
        Empty vectors, unknown input names, clock_ns <= 0, count_from out of range.
    GateLevelError
        Icarus missing or failing.
    """
    if not vectors:
        raise ValueError("vectors must hold at least one cycle")
    if not clock_ns > 0:
        raise ValueError(f"clock_ns must be > 0, not {clock_ns!r}")
    if not 0 <= count_from < len(vectors):
        raise ValueError(f"count_from must be in [0, {len(vectors) - 1}], not {count_from!r}")
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            raise GateLevelError(f"{tool} not found; install the Debian package iverilog")
    started = time.perf_counter()
    work = Path(work_dir)
    run = work / tag
    run.mkdir(parents=True, exist_ok=True)
    data = json.loads((work / netlist_json).read_text())
    tb, inputs, outputs = testbench_text(data, top, clock_ns=clock_ns, cycles=len(vectors))
    known = {n for n, _ in inputs}
    for vec in vectors[:1]:
        unknown = set(vec) - known
        if unknown:
            raise ValueError(f"vectors name inputs the netlist lacks: {sorted(unknown)!r}")
    (run / "tb.v").write_text(tb)
    (run / "netlist.v").write_text("`timescale 1ns/10ps\n" + (work / netlist).read_text())
    lines = []
    for vec in vectors:
        word = 0
        for name, width in inputs:
            word = (word << width) | (int(vec.get(name, 0)) & ((1 << width) - 1))
        lines.append(f"{word:x}")
    (run / "stim.hex").write_text("\n".join(lines) + "\n")
    compile_cmd = ["iverilog", "-g2005", "-o", "tb.vvp", "-s", "mxsf_gate_tb", "tb.v",
                   "netlist.v", str(Path(cell_models).resolve())]
    proc = subprocess.run(compile_cmd, cwd=run, capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        first = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[0]
        raise GateLevelError(f"iverilog failed on {top!r}: {first}")
    proc = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=run, capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not (run / "out.txt").exists():
        first = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[0]
        raise GateLevelError(f"vvp failed on {top!r}: {first}")
    rows = []
    for line in (run / "out.txt").read_text().splitlines():
        parts = line.split()
        row = {}
        for (name, _w), text in zip(outputs, parts[1:]):
            row[name] = None if re.search(r"[xzXZ]", text) else int(text, 16)
        rows.append(row)
    if len(rows) != len(vectors):
        raise GateLevelError(f"gate-level simulation of {top!r} wrote {len(rows)} of "
                             f"{len(vectors)} cycles")
    vcd = run / "gate.vcd"
    toggles, high = count_vcd(vcd, start_ns=count_from * clock_ns,
                              end_ns=len(vectors) * clock_ns)
    vcd.unlink(missing_ok=True)
    return GateSim(outputs=rows, toggles=toggles, high_ns=high,
                   window_cycles=len(vectors) - count_from, clock_ns=float(clock_ns),
                   sim_time_s=round(time.perf_counter() - started, 3))


# --------------------------------------------------------------------------- activity


def _is_module(modules: Mapping, name: str) -> bool:
    """A user module of the netlist (not a library cell, which Yosys lists as a blackbox)."""
    mod = modules.get(name)
    if mod is None:
        return False
    blackbox = mod.get("attributes", {}).get("blackbox")
    return not (blackbox and str(blackbox).strip("0") != "")


def _instances(netlist: Mapping, top: str) -> list[str]:
    """Hierarchical paths (``a.b``) of the user-module instances below ``top``."""
    modules = netlist["modules"]
    out = []

    def walk(module: str, prefix: str) -> None:
        for name, cell in modules[module]["cells"].items():
            if _is_module(modules, cell["type"]):
                out.append(prefix + _esc(name).strip())
                walk(cell["type"], prefix + _esc(name) + ".")

    walk(top, "")
    return out


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
        names: dict[int, str] = {}
        for net, info in mod["netnames"].items():
            for i, bit in enumerate(info["bits"]):
                if isinstance(bit, int):
                    label = net if len(info["bits"]) == 1 else f"{net}[{i}]"
                    if bit not in names or (names[bit].startswith("$") and not label.startswith("$")):
                        names[bit] = label
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


def run_workload(work_dir: str | os.PathLike[str], *, top: str, cell_models: str,
                 workload: Workload, clock_ns: float, tag: str = "gate") -> tuple[GateSim, int]:
    """Simulate ``workload`` on the netlist, check every output cycle against the golden
    model, count activity after the reset cycles. Returns the simulation and the number
    of results compared.

    Raises
    ------
    GateLevelMismatch
        The netlist computed something else than the golden model.
    """
    sim = simulate_netlist(work_dir, top=top, cell_models=cell_models, vectors=workload.vectors,
                           clock_ns=clock_ns, count_from=workload.reset_cycles, tag=tag)
    compared = check_outputs(sim.outputs, workload.expected, top=top,
                             start=workload.reset_cycles)
    for cyc in workload.meta.get("ready_cycles", ()):
        if sim.outputs[cyc].get("i__ready") != 1:
            raise GateLevelMismatch(f"gate-level {top}: cycle {cyc}: i__ready is "
                                    f"{sim.outputs[cyc].get('i__ready')}, the workload "
                                    f"expects every beat accepted")
    return sim, compared
