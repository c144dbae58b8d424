"""cocotb-side library, imported by test modules inside the simulator.

Cycle convention: cycle ``k`` starts at the ``k``-th rising edge after reset. A
:class:`Driver` writes its inputs right after that edge, and once values settle
(``ReadOnly``) the :class:`Monitor` samples every output and the driver notes whether
its transaction was accepted (``valid & ready``). A register stage therefore moves a
value from cycle ``k`` to cycle ``k + 1``, and a design of latency ``L`` shows the
result of cycle ``k``'s input in cycle ``k + L``.

The :class:`Scoreboard` gives the cycle-level model the exact input trace (one dict of
driven port values per cycle, idle cycles included) and the latency, and compares the
model's per-cycle expectation with what the DUT produced on **every** cycle: control
ports (valid, ready) always, data ports only when their valid is expected high, and no
port whose expected value is None. The first mismatch raises an AssertionError naming the
cycle, sim time, port, expected and got bits, the input transaction that produced it, the
seed and the waveform path.

:func:`run_stream_test` wires these together for a one-in/one-out stream block.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence, Union

import cocotb
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.simtime import get_sim_time
from cocotb.task import Task
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from mxsf.gen.built import BuiltDesign

from .env import CONFIG_ENV, DESIGN_ENV, WAVES_ENV

__all__ = [
    "Transaction", "Model", "InputCycle", "StreamTrace",
    "get_test_config", "get_design", "get_waves_path", "get_seed", "make_rng",
    "format_bits", "read_port", "port_width",
    "start_clock", "reset", "clock_and_reset",
    "Driver", "ReadyDriver", "Monitor", "Scoreboard", "run_stream_test",
]

#: One input transaction: a payload int (single payload port) or ``{port: value}``.
Transaction = Union[int, Mapping[str, int]]
#: Cycle-level model: (per-cycle driven inputs, latency) -> per-cycle expected outputs.
Model = Callable[[Sequence[Mapping[str, int]], int], Sequence[Mapping[str, Union[int, None]]]]


# ----------------------------------------------------------------------------------------
# Context passed from the host (mxsf.sim.run.run_cocotb)


def get_test_config() -> dict[str, Any]:
    """Return the test configuration given to ``run_cocotb(config=...)`` ({} if none)."""
    text = os.environ.get(CONFIG_ENV, "")
    return json.loads(text) if text else {}


def get_design() -> BuiltDesign | None:
    """Return the design under test as described by the host, or None outside the harness."""
    text = os.environ.get(DESIGN_ENV, "")
    return BuiltDesign.from_json(text) if text else None


def get_waves_path() -> str | None:
    """Return the waveform file being written, or None when waves are off."""
    return os.environ.get(WAVES_ENV) or None


def get_seed() -> int:
    """Return the seed of this run (``run_cocotb(seed=...)``; pass it back to reproduce).

    This is the regression seed ``COCOTB_RANDOM_SEED``, not cocotb's per-test seed.
    """
    return int(os.environ.get("COCOTB_RANDOM_SEED") or getattr(cocotb, "RANDOM_SEED", 0))


def make_rng(*salt: object) -> random.Random:
    """Return a generator seeded from :func:`get_seed` and ``salt`` (e.g. the test name).

    The same seed and salt give the same sequence in every simulator and Python process.
    """
    return random.Random("/".join(map(str, (get_seed(), *salt))))


# ----------------------------------------------------------------------------------------
# Ports


def _handle(dut: SimHandleBase, name: str) -> Any:
    """Return the DUT port handle ``name`` with an error listing the ports if absent."""
    try:
        return getattr(dut, name)
    except AttributeError:
        design = get_design()
        ports = [p.name for p in design.ports] if design else "unknown"
        raise AttributeError(f"DUT has no port {name!r}; ports: {ports}") from None


def port_width(dut: SimHandleBase, name: str) -> int:
    """Width in bits of port ``name`` (from the design description, else the handle)."""
    design = get_design()
    if design is not None:
        try:
            return design.port(name).width
        except KeyError:
            pass
    try:
        return len(_handle(dut, name))
    except TypeError:
        return 1


def read_port(dut: SimHandleBase, name: str) -> int | str:
    """Return the port's value as an int, or its bit string when it holds X or Z."""
    value = _handle(dut, name).value
    try:
        return int(value)
    except ValueError:
        return str(value)


def format_bits(value: int | str | None, width: int) -> str:
    """Format a value as ``0x.. = 0b..`` padded to ``width`` bits (X/Z strings verbatim)."""
    if value is None:
        return "(don't care)"
    if isinstance(value, str):
        return f"{value} (not 0/1)"
    return f"0x{value:0{(width + 3) // 4}x} = 0b{value:0{width}b}"


def _format_ports(values: Mapping[str, int | str | None]) -> str:
    """Compact ``name=0x..`` list of port values."""
    parts = []
    for name, value in values.items():
        parts.append(f"{name}={value}" if isinstance(value, str) or value is None else f"{name}=0x{value:x}")
    return " ".join(parts)


# ----------------------------------------------------------------------------------------
# Clock and reset


def start_clock(dut: SimHandleBase, *, clk: str = "clk", period_ns: float = 10) -> Task[None]:
    """Start a free-running clock on port ``clk``; it stops at the end of the test."""
    return Clock(_handle(dut, clk), period_ns, unit="ns").start()


async def reset(dut: SimHandleBase, *, clk: str = "clk", rst: str = "rst", cycles: int = 2) -> None:
    """Hold the synchronous reset ``rst`` high for ``cycles`` rising edges, then release it."""
    if cycles < 1:
        raise ValueError(f"cycles must be at least 1, not {cycles!r}")
    _handle(dut, rst).value = 1
    await ClockCycles(_handle(dut, clk), cycles)
    _handle(dut, rst).value = 0


async def clock_and_reset(dut: SimHandleBase, *, clk: str = "clk", rst: str = "rst",
                          period_ns: float = 10, reset_cycles: int = 2) -> None:
    """Drive every other input to 0, start the clock and reset the design.

    The reset step is skipped when the design has no ``rst`` port.
    """
    design = get_design()
    if design is not None:
        for port in design.inputs:
            if port.name not in (clk, rst):
                _handle(dut, port.name).value = 0
    start_clock(dut, clk=clk, period_ns=period_ns)
    if design is None or any(p.name == rst for p in design.inputs):
        await reset(dut, clk=clk, rst=rst, cycles=reset_cycles)
    else:
        await ClockCycles(_handle(dut, clk), reset_cycles)


# ----------------------------------------------------------------------------------------
# Driver, monitor


@dataclass(frozen=True)
class InputCycle:
    """What the drivers put on the DUT inputs in one cycle.

    ``accepted`` is the index of the transaction transferred this cycle (None if none).
    """

    cycle: int
    time_ns: float
    ports: Mapping[str, int]
    accepted: int | None


class Driver:
    """Present transactions on a ``valid``/payload[/``ready``] input stream.

    Before each transaction, with probability ``idle_prob``, it inserts 1 to ``max_idle``
    idle cycles (valid low); the gaps come from ``rng``. Once valid is high it stays high
    with a stable payload until the DUT's ``ready`` (if any) accepts it.

    Parameters
    ----------
    dut : SimHandleBase
    transactions : sequence of Transaction
        Ints when there is one payload port, else dicts with every payload port.
    valid, payload, ready : str
        Port names; ``payload`` may be a sequence of ports; ``ready`` None means always ready.
    idle_prob : float
        Probability of a gap before each transaction (0 gives back-to-back transfers).
    max_idle : int
        Longest gap.
    idle_fill : "random", "zero" or "hold"
        Payload during idle cycles: seeded random bits (default, catches designs that
        ignore valid), zeros, or the previous transaction.
    rng : random.Random
    """

    def __init__(self, dut: SimHandleBase, transactions: Sequence[Transaction], *,
                 valid: str = "i__valid", payload: str | Sequence[str] = "i__payload",
                 ready: str | None = None, idle_prob: float = 0.0, max_idle: int = 3,
                 idle_fill: Literal["random", "zero", "hold"] = "random",
                 rng: random.Random | None = None) -> None:
        if not 0.0 <= idle_prob <= 1.0:
            raise ValueError(f"idle_prob must be within [0, 1], not {idle_prob!r}")
        if max_idle < 1:
            raise ValueError(f"max_idle must be at least 1, not {max_idle!r}")
        if idle_fill not in ("random", "zero", "hold"):
            raise ValueError(f"idle_fill must be 'random', 'zero' or 'hold', not {idle_fill!r}")
        self._dut = dut
        self._valid = valid
        self._payload = (payload,) if isinstance(payload, str) else tuple(payload)
        self._ready = ready
        self._idle_fill = idle_fill
        self._rng = rng if rng is not None else make_rng("driver")
        self._widths = {name: port_width(dut, name) for name in self._payload}
        self.transactions = [self._normalise(t) for t in transactions]
        self._gaps = [self._rng.randint(1, max_idle) if self._rng.random() < idle_prob else 0
                      for _ in self.transactions]
        self._index = 0
        self._gap = self._gaps[0] if self._gaps else 0
        self._presenting = False
        self._last = {name: 0 for name in self._payload}
        _handle(dut, valid).value = 0

    def _normalise(self, transaction: Transaction) -> dict[str, int]:
        """Turn a transaction into ``{payload port: int}``."""
        if isinstance(transaction, int):
            if len(self._payload) != 1:
                raise TypeError(f"transactions must be dicts over {self._payload}, not {transaction!r}")
            return {self._payload[0]: transaction}
        if not isinstance(transaction, Mapping) or set(transaction) != set(self._payload):
            raise TypeError(f"transaction must map exactly the ports {self._payload}, not {transaction!r}")
        return {name: int(transaction[name]) for name in self._payload}

    @property
    def done(self) -> bool:
        """True once every transaction was accepted."""
        return self._index >= len(self.transactions)

    @property
    def accepted(self) -> int:
        """Number of transactions accepted so far."""
        return self._index

    def drive(self) -> dict[str, int]:
        """Write this cycle's inputs (call right after the rising edge); return them."""
        self._presenting = not self.done and self._gap == 0
        if self._presenting:
            values = {self._valid: 1, **self.transactions[self._index]}
        elif self._idle_fill == "random":
            values = {self._valid: 0, **{n: self._rng.getrandbits(w) for n, w in self._widths.items()}}
        elif self._idle_fill == "zero":
            values = {self._valid: 0, **{n: 0 for n in self._payload}}
        else:
            values = {self._valid: 0, **self._last}
        for name, value in values.items():
            _handle(self._dut, name).value = value
        return values

    def settle(self) -> int | None:
        """Note the handshake (call in ``ReadOnly``); return the accepted index, if any."""
        if not self._presenting:
            self._gap = max(self._gap - 1, 0)
            return None
        if self._ready is not None and read_port(self._dut, self._ready) != 1:
            return None
        index = self._index
        self._last = self.transactions[index]
        self._index += 1
        self._gap = self._gaps[self._index] if self._index < len(self._gaps) else 0
        return index


class ReadyDriver:
    """Drive a sink-side ``ready`` input with seeded random stalls (backpressure)."""

    def __init__(self, dut: SimHandleBase, port: str = "o__ready", *, stall_prob: float = 0.0,
                 rng: random.Random | None = None) -> None:
        if not 0.0 <= stall_prob < 1.0:
            raise ValueError(f"stall_prob must be within [0, 1), not {stall_prob!r}")
        self._dut = dut
        self._port = port
        self._stall_prob = stall_prob
        self._rng = rng if rng is not None else make_rng("ready")
        _handle(dut, port).value = 1

    def release(self) -> None:
        """Stop stalling (ready stays high), e.g. to drain the pipeline."""
        self._stall_prob = 0.0

    def drive(self) -> dict[str, int]:
        """Write this cycle's ready (call right after the rising edge); return it."""
        value = 0 if self._stall_prob and self._rng.random() < self._stall_prob else 1
        _handle(self._dut, self._port).value = value
        return {self._port: value}


class Monitor:
    """Sample a fixed set of DUT ports once per cycle (call :meth:`sample` in ``ReadOnly``)."""

    def __init__(self, dut: SimHandleBase, ports: Sequence[str]) -> None:
        self._dut = dut
        self.ports = tuple(ports)
        for name in self.ports:
            _handle(dut, name)

    def sample(self) -> dict[str, int | str]:
        """Return ``{port: value}`` for this cycle."""
        return {name: read_port(self._dut, name) for name in self.ports}


# ----------------------------------------------------------------------------------------
# Scoreboard


class Scoreboard:
    """Compare DUT outputs with a cycle-level model on every cycle.

    Parameters
    ----------
    model : Model
        ``model(inputs, latency)`` where ``inputs[k]`` is the dict of input port values
        driven in cycle ``k``; returns one dict per cycle of expected output values
        (None means don't care; ports it leaves out are not compared).
    latency : int
        Passed to the model, and used to find the input behind an output.
    widths : mapping
        Port widths, for formatting.
    qualifiers : mapping, optional
        ``{data port: valid port}``: the data port is compared only in cycles where the
        model expects its valid port to be 1.
    sources : callable, optional
        ``sources(cycle, inputs, expected)`` -> input cycles that produced the outputs of
        ``cycle``; defaults to ``cycle - latency``.
    name : str
        Prefix of the mismatch message (e.g. the block name).
    """

    def __init__(self, model: Model, *, latency: int, widths: Mapping[str, int],
                 qualifiers: Mapping[str, str] | None = None,
                 sources: Callable[[int, Sequence[InputCycle], Sequence[Mapping[str, int | None]]], Sequence[int]] | None = None,
                 name: str = "DUT") -> None:
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise ValueError(f"latency must be a non-negative int, not {latency!r}")
        self._model = model
        self._latency = latency
        self._widths = dict(widths)
        self._qualifiers = dict(qualifiers or {})
        self._sources = sources
        self._name = name

    def expected(self, inputs: Sequence[InputCycle]) -> list[Mapping[str, int | None]]:
        """Run the model on the input trace and check its shape."""
        rows = list(self._model([dict(c.ports) for c in inputs], self._latency))
        if len(rows) != len(inputs):
            raise AssertionError(f"model returned {len(rows)} cycles for an input trace of {len(inputs)}")
        unknown = {port for row in rows for port in row} - set(self._widths)
        if unknown:
            raise AssertionError(f"model returned ports {sorted(unknown)} that are not monitored "
                                 f"(monitored: {sorted(self._widths)})")
        return rows

    def _compared(self, row: Mapping[str, int | None]) -> list[str]:
        """Ports of one expected row that are compared (not None and not disqualified)."""
        ports = []
        for port, value in row.items():
            valid = self._qualifiers.get(port)
            if value is None or (valid is not None and row.get(valid) == 0):
                continue
            ports.append(port)
        return ports

    def _source_cycles(self, cycle: int, inputs: Sequence[InputCycle],
                       rows: Sequence[Mapping[str, int | None]]) -> list[int]:
        """Input cycles behind the outputs of ``cycle`` (clipped to the trace)."""
        found = self._sources(cycle, inputs, rows) if self._sources else [cycle - self._latency]
        return [c for c in found if 0 <= c < len(inputs)]

    def _describe_input(self, record: InputCycle) -> str:
        """One line describing what was driven in an input cycle."""
        what = f"transaction #{record.accepted}" if record.accepted is not None else "no transfer"
        return f"input cycle {record.cycle} (t={record.time_ns:g} ns), {what}: {_format_ports(record.ports)}"

    def check(self, inputs: Sequence[InputCycle], outputs: Sequence[Mapping[str, int | str]]) -> int:
        """Compare every cycle; raise AssertionError at the first mismatch.

        Returns the number of (cycle, port) comparisons made.
        """
        rows = self.expected(inputs)
        first: tuple[int, str] | None = None
        mismatched_cycles = 0
        compared = 0
        for cycle, (row, got) in enumerate(zip(rows, outputs)):
            bad = [port for port in self._compared(row) if got[port] != row[port]]
            compared += len(self._compared(row))
            if bad:
                mismatched_cycles += 1
                if first is None:
                    first = (cycle, bad[0])
        if first is not None:
            raise AssertionError(self._message(first[0], first[1], inputs, outputs, rows, mismatched_cycles))
        return compared

    def _message(self, cycle: int, port: str, inputs: Sequence[InputCycle],
                 outputs: Sequence[Mapping[str, int | str]], rows: Sequence[Mapping[str, int | None]],
                 mismatched_cycles: int) -> str:
        """Build the mismatch report."""
        width = self._widths[port]
        expected, got = rows[cycle][port], outputs[cycle][port]
        lines = [
            f"{self._name} mismatch at cycle {cycle} (t={inputs[cycle].time_ns:g} ns) on port {port}:",
            f"  expected {format_bits(expected, width)}",
            f"  got      {format_bits(got, width)}",
        ]
        if isinstance(expected, int) and isinstance(got, int):
            diff = [str(bit) for bit in range(width) if (expected ^ got) >> bit & 1]
            lines.append(f"  differing bits: {', '.join(diff[:16])}{' ...' if len(diff) > 16 else ''}")
        sources = self._source_cycles(cycle, inputs, rows)
        if sources:
            lines += [f"  produced by {self._describe_input(inputs[c])}" for c in sources]
        else:
            lines.append(f"  produced by no input (cycle {cycle} - latency {self._latency} is before the first)")
        lines.append(f"  DUT outputs this cycle: {_format_ports(outputs[cycle])}")
        lines.append(f"  model expected:         {_format_ports(rows[cycle])}")
        lines.append(f"  {mismatched_cycles} of {len(rows)} cycles mismatched; latency {self._latency}; "
                     f"seed {get_seed()}")
        waves = get_waves_path()
        lines.append(f"  waveform: {waves}" if waves else "  waveform: off (rerun with waves=True or MXSF_WAVES=1)")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# One-in / one-out stream test


@dataclass(frozen=True)
class StreamTrace:
    """Everything :func:`run_stream_test` saw: per-cycle inputs, outputs and expectations."""

    inputs: tuple[InputCycle, ...]
    outputs: tuple[Mapping[str, int | str], ...]
    expected: tuple[Mapping[str, int | None], ...]
    comparisons: int


def _in_order_sources(out_valid: str, out_ready: str | None) -> Callable[..., list[int]]:
    """Sources for a 1:1 in-order stream: the n-th output transfer comes from transaction n."""
    def sources(cycle: int, inputs: Sequence[InputCycle], rows: Sequence[Mapping[str, int | None]]) -> list[int]:
        transfers = sum(1 for c in range(cycle) if rows[c].get(out_valid) == 1
                        and (out_ready is None or inputs[c].ports.get(out_ready, 1) == 1))
        return [c.cycle for c in inputs if c.accepted == transfers][:1]
    return sources


def _stream_port(dut: SimHandleBase, name: str, direction: Literal["in", "out"]) -> str | None:
    """Return ``name`` if the DUT has it with that direction (design info, else the handle)."""
    design = get_design()
    if design is not None:
        return name if any(p.name == name and p.direction == direction for p in design.ports) else None
    return name if hasattr(dut, name) else None


async def run_stream_test(dut: SimHandleBase, transactions: Sequence[Transaction], model: Model, *,
                          latency: int | None = None, i: str = "i", o: str = "o",
                          in_payload: str | Sequence[str] | None = None,
                          out_payload: str | Sequence[str] | None = None,
                          idle_prob: float = 0.0, max_idle: int = 3, stall_prob: float = 0.0,
                          idle_fill: Literal["random", "zero", "hold"] = "random",
                          seed_salt: str = "", drain_cycles: int = 4, max_cycles: int | None = None,
                          clk: str = "clk", name: str | None = None,
                          one_to_one: bool = True) -> StreamTrace:
    """Drive ``transactions`` into stream ``i``, watch stream ``o``, and check every cycle.

    Ports follow Amaranth's names: ``<i>__valid``, ``<i>__payload``, ``<i>__ready`` (used
    when the DUT has it), ``<o>__valid``, ``<o>__payload``, ``<o>__ready`` (driven with
    random stalls of probability ``stall_prob`` when the DUT has it). Call after
    :func:`clock_and_reset`. Runs until all transactions are accepted, then releases the
    stalls and runs ``latency + drain_cycles`` more cycles, so a late or extra output is
    caught too. The model sees every driven input port (including ``<o>__ready``).

    Parameters
    ----------
    latency : int, optional
        Defaults to the design's ``latency`` attribute.
    in_payload, out_payload : str or sequence of str, optional
        Payload port(s); default ``<i>__payload`` / ``<o>__payload``.
    seed_salt : str
        Mixed into the seed of the idle/stall generators (use the test name).
    max_cycles : int, optional
        Give up (AssertionError) if the transactions are not all accepted by then.
    one_to_one : bool
        Each input transaction gives one output, in order (used to name the input behind
        a mismatching output). False for blocks that reduce several inputs to one output
        (e.g. a PE's dot product): the input named is the one ``latency`` cycles earlier.

    Returns
    -------
    StreamTrace

    Raises
    ------
    AssertionError
        On the first mismatch (see :class:`Scoreboard`), or when the DUT stops accepting.
    """
    design = get_design()
    if latency is None:
        if design is None or design.latency is None:
            raise ValueError("latency must be given: the design has no latency attribute")
        latency = design.latency
    in_payload = in_payload if in_payload is not None else f"{i}__payload"
    out_payload = out_payload if out_payload is not None else f"{o}__payload"
    out_payloads = (out_payload,) if isinstance(out_payload, str) else tuple(out_payload)
    in_ready = _stream_port(dut, f"{i}__ready", "out")
    out_ready = _stream_port(dut, f"{o}__ready", "in")
    out_valid = f"{o}__valid"

    driver = Driver(dut, transactions, valid=f"{i}__valid", payload=in_payload, ready=in_ready,
                    idle_prob=idle_prob, max_idle=max_idle, idle_fill=idle_fill,
                    rng=make_rng("driver", seed_salt))
    sink = ReadyDriver(dut, out_ready, stall_prob=stall_prob, rng=make_rng("sink", seed_salt)) if out_ready else None
    monitored = [out_valid, *out_payloads, *([in_ready] if in_ready else [])]
    monitor = Monitor(dut, monitored)
    scoreboard = Scoreboard(
        model, latency=latency, widths={p: port_width(dut, p) for p in monitored},
        qualifiers={p: out_valid for p in out_payloads},
        sources=_in_order_sources(out_valid, out_ready) if one_to_one else None,
        name=name or (design.top if design else "DUT"))

    limit = max_cycles if max_cycles is not None else 20 * (len(transactions) + latency) + 100
    clock = _handle(dut, clk)
    inputs: list[InputCycle] = []
    outputs: list[dict[str, int | str]] = []
    drain: int | None = None
    while drain is None or drain > 0:
        if len(inputs) >= limit:
            raise AssertionError(f"{scoreboard._name}: only {driver.accepted} of {len(transactions)} "
                                 f"transactions accepted after {limit} cycles ({in_ready} stuck low?)")
        await RisingEdge(clock)
        driven = driver.drive()
        if sink is not None:
            driven |= sink.drive()
        await ReadOnly()
        accepted = driver.settle()
        inputs.append(InputCycle(len(inputs), get_sim_time("ns"), driven, accepted))
        outputs.append(monitor.sample())
        if drain is not None:
            drain -= 1
        elif driver.done:
            drain = latency + drain_cycles
            if sink is not None:
                sink.release()
    comparisons = scoreboard.check(inputs, outputs)
    return StreamTrace(tuple(inputs), tuple(outputs), tuple(scoreboard.expected(inputs)), comparisons)
