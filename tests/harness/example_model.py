"""Cycle-level model of :class:`harness.examples.ExampleMac` (pure Python).

The model follows the scoreboard contract of :mod:`mxsf.sim.cocotb_lib`: it receives the
exact per-cycle input trace (every driven input port, idle cycles included) and the
latency, and returns the expected value of every compared output port for each cycle.
It imports neither Amaranth nor cocotb, so it runs inside the simulator as well.
"""

from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["pack_operands", "unpack_operands", "mac", "mac_model"]


def pack_operands(a: int, b: int, c: int, *, data_width: int) -> int:
    """Pack ``a``, ``b``, ``c`` into the ``i.payload`` struct (``a`` at bit 0)."""
    mask = (1 << data_width) - 1
    return (a & mask) | (b & mask) << data_width | (c & mask) << 2 * data_width


def unpack_operands(payload: int, *, data_width: int) -> tuple[int, int, int]:
    """Inverse of :func:`pack_operands`."""
    mask = (1 << data_width) - 1
    return payload & mask, payload >> data_width & mask, payload >> 2 * data_width & mask


def mac(payload: int, *, data_width: int) -> int:
    """Return ``a * b + c`` for a packed payload; it always fits in ``2 * data_width`` bits."""
    a, b, c = unpack_operands(payload, data_width=data_width)
    return a * b + c


def mac_model(inputs: Sequence[Mapping[str, int]], latency: int, *, data_width: int,
              backpressure: bool = False) -> list[dict[str, int | None]]:
    """Expected per-cycle outputs of ``ExampleMac`` for an input trace.

    The pipeline is ``latency`` register slots that all advance when the output is
    empty or accepted (``o__ready``), so ``i__ready`` equals that enable. Without
    ``backpressure`` the enable is always high and ``i__ready``/``o__ready`` are absent.
    ``o__payload`` is None (don't care) on cycles where ``o__valid`` is low.
    """
    slots: list[int | None] = [None] * latency
    expected: list[dict[str, int | None]] = []
    for cycle in inputs:
        o_ready = cycle.get("o__ready", 1) if backpressure else 1
        incoming = mac(cycle["i__payload"], data_width=data_width) if cycle["i__valid"] else None
        head = slots[-1] if slots else incoming
        enable = head is None or bool(o_ready)
        row: dict[str, int | None] = {"o__valid": int(head is not None), "o__payload": head}
        if backpressure:
            row["i__ready"] = int(enable) if slots else int(o_ready)
        expected.append(row)
        if slots and enable:
            slots = [incoming] + slots[:-1]
    return expected
