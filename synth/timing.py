"""Static timing of a netlist mapped to the generic library.

ABC prints its own delay estimate (``stime -p``), but the WebAssembly build of
Yosys loses ABC's console output, so ``mxsf.synth`` times the mapped netlist
itself.  The delay model is the one written into ``mxsf_generic.lib`` (see
:mod:`mxsf.synth.liberty`); because its tables do not depend on the input
transition, a cell's delay is exactly::

    delay = intrinsic delay + DRIVE_PS_PER_FF * (load on its output, fF)

with every input pin loading its net by ``PIN_CAP_FF`` and every top-level
output bit by :data:`OUTPUT_LOAD_FF`.  Timing starts at the top-level inputs
(arrival 0) and at flip-flop outputs (clock-to-Q), and ends at the top-level
outputs and at flip-flop data pins (plus the setup time); asynchronous
clear/preset pins are endpoints without setup.  Clocks are ideal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .liberty import DRIVE_PS_PER_FF, PIN_CAP_FF, SETUP_PS, CellSpec, cells_by_name

__all__ = ["OUTPUT_LOAD_FF", "TimingError", "TimingResult", "analyze_netlist"]

#: Load of a top-level output bit, fF (one input pin of whatever it drives).
OUTPUT_LOAD_FF: float = PIN_CAP_FF


class TimingError(ValueError):
    """The netlist cannot be timed (unknown cell, missing module)."""


@dataclass(frozen=True)
class TimingResult:
    """Outcome of :func:`analyze_netlist`.

    Attributes
    ----------
    delay_ps:
        Critical path delay in ps (setup included when it ends at a flip-flop),
        ``None`` if a combinational loop prevents timing.
    depth:
        Most cells on any combinational path (flip-flops are path boundaries).
    critical_path:
        The critical path as ``"start", "CELL", ..., "end"`` strings: the start
        is ``"in:<port>"`` or ``"<FLOP>.Q"``, the end ``"out:<port>"`` or
        ``"<FLOP>.<pin>"``.
    loops:
        Number of cells left untimed because they sit on a combinational loop.
    """

    delay_ps: float | None
    depth: int
    critical_path: tuple[str, ...]
    loops: int = 0


@dataclass
class _Node:
    arrival: float
    depth: int
    via: int | None        # index of the comb cell driving it, None at a start point
    start: str


def _port_names(module: Mapping[str, Any]) -> dict[int, str]:
    names: dict[int, str] = {}
    for name, port in module.get("ports", {}).items():
        bits = port["bits"]
        for index, bit in enumerate(bits):
            if isinstance(bit, int):
                names.setdefault(bit, name if len(bits) == 1 else f"{name}[{index}]")
    return names


def analyze_netlist(netlist: Mapping[str, Any], top: str) -> TimingResult:
    """Time module ``top`` of a Yosys JSON netlist (``write_json``).

    Parameters
    ----------
    netlist:
        The parsed JSON written by Yosys ``write_json`` after mapping.
    top:
        Name of the (flattened) module to time.

    Raises
    ------
    TimingError
        If ``top`` is missing or a cell is not from the generic library.
    """
    modules = netlist.get("modules", {})
    if top not in modules:
        raise TimingError(f"module {top!r} not in the netlist (have {sorted(modules)!r})")
    module = modules[top]
    library = cells_by_name()
    port_names = _port_names(module)

    # Per-cell views: (spec, {pin: [bits]}).
    cells: list[tuple[str, CellSpec, dict[str, list[Any]]]] = []
    for name, cell in module.get("cells", {}).items():
        spec = library.get(cell["type"])
        if spec is None:
            raise TimingError(f"cell {name!r} has type {cell['type']!r}, "
                              f"which is not in the generic library")
        cells.append((name, spec, cell["connections"]))

    # Loads on every net.
    load: dict[int, float] = {}
    for _name, spec, conns in cells:
        input_pins = [pin for pin, _sense in spec.inputs]
        if spec.clock is not None:
            input_pins.append(spec.clock)
        for pin in input_pins:
            for bit in conns.get(pin, []):
                if isinstance(bit, int):
                    load[bit] = load.get(bit, 0.0) + PIN_CAP_FF
    for port in module.get("ports", {}).values():
        if port["direction"] in ("output", "inout"):
            for bit in port["bits"]:
                if isinstance(bit, int):
                    load[bit] = load.get(bit, 0.0) + OUTPUT_LOAD_FF

    def cell_delay(spec: CellSpec, bit: Any) -> float:
        return spec.delay_ps + DRIVE_PS_PER_FF * (load.get(bit, 0.0) if isinstance(bit, int) else 0.0)

    # Start points.
    nodes: dict[int, _Node] = {}
    for name, port in module.get("ports", {}).items():
        if port["direction"] in ("input", "inout"):
            for bit in port["bits"]:
                if isinstance(bit, int):
                    nodes[bit] = _Node(0.0, 0, None, f"in:{port_names.get(bit, name)}")
    comb: list[int] = []
    for index, (_name, spec, conns) in enumerate(cells):
        if spec.is_sequential:
            for bit in conns.get(spec.output, []):
                if isinstance(bit, int):
                    nodes[bit] = _Node(cell_delay(spec, bit), 0, None, f"{spec.name}.{spec.output}")
        else:
            comb.append(index)

    # Kahn's order over combinational cells.
    driver: dict[int, int] = {}
    for index in comb:
        _name, spec, conns = cells[index]
        for bit in conns.get(spec.output, []):
            if isinstance(bit, int):
                driver[bit] = index
    waiting: dict[int, int] = {}
    users: dict[int, list[int]] = {}
    for index in comb:
        _name, spec, conns = cells[index]
        count = 0
        for pin, _sense in spec.inputs:
            for bit in conns.get(pin, []):
                if isinstance(bit, int) and bit in driver:
                    count += 1
                    users.setdefault(driver[bit], []).append(index)
        waiting[index] = count
    ready = [index for index in comb if waiting[index] == 0]
    timed = 0
    while ready:
        index = ready.pop()
        timed += 1
        _name, spec, conns = cells[index]
        arrival, depth, start = 0.0, 0, "const"
        for pin, _sense in spec.inputs:
            for bit in conns.get(pin, []):
                node = nodes.get(bit) if isinstance(bit, int) else None
                if node is None:
                    continue
                if node.arrival >= arrival:
                    arrival, start = node.arrival, node.start
                depth = max(depth, node.depth)
        for bit in conns.get(spec.output, []):
            if isinstance(bit, int):
                nodes[bit] = _Node(arrival + cell_delay(spec, bit), depth + 1, index, start)
        for user in users.get(index, []):
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    loops = len(comb) - timed

    # End points.
    worst: tuple[float, int | None, str] | None = None   # (arrival, end bit, end label)
    ends: list[tuple[Any, float, str]] = []
    for name, port in module.get("ports", {}).items():
        if port["direction"] in ("output", "inout"):
            for bit in port["bits"]:
                ends.append((bit, 0.0, f"out:{port_names.get(bit, name)}"))
    for _name, spec, conns in cells:
        if spec.is_sequential:
            for pin, _sense in spec.inputs:
                extra = SETUP_PS if pin == "D" else 0.0
                for bit in conns.get(pin, []):
                    ends.append((bit, extra, f"{spec.name}.{pin}"))
    for bit, extra, label in ends:
        node = nodes.get(bit) if isinstance(bit, int) else None
        if node is None:
            continue
        total = node.arrival + extra
        if worst is None or total > worst[0]:
            worst = (total, bit, label)

    depth = max((node.depth for node in nodes.values()), default=0)
    if loops:
        return TimingResult(None, depth, (), loops)
    if worst is None:
        return TimingResult(0.0, depth, (), 0)

    delay, bit, label = worst
    path: list[str] = [label]
    node = nodes[bit]
    while node.via is not None:
        _name, spec, conns = cells[node.via]
        path.append(spec.name)
        # Step to the latest-arriving input of that cell.
        best: _Node | None = None
        for pin, _sense in spec.inputs:
            for in_bit in conns.get(pin, []):
                cand = nodes.get(in_bit) if isinstance(in_bit, int) else None
                if cand is not None and (best is None or cand.arrival >= best.arrival):
                    best = cand
        if best is None:
            break
        node = best
    path.append(node.start)
    return TimingResult(round(delay, 3), depth, tuple(reversed(path)), 0)
