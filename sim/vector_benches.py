"""Stimulus, expected records and checking of the vector-file regressions, per block.

Each ``*_case`` function returns a :class:`VectorCase`: the stimulus lines (one input
beat a line, seeded idle cycles with random payload bits, and for blocks with an output
``ready`` a seeded back-pressure pattern, one value a cycle) and how to get the expected
output records from the golden model. :func:`run_case` builds (cached) and runs it on a
simulator and compares every record in one array operation; :class:`VectorResult`
carries the mismatch report, worded like the cocotb scoreboard's (cycle, port, expected
and got bits, the input beat behind it, the seed).

Expected records come from the golden model: :func:`mxsf.golden.matmul.batched_dot`
directly (MX PE, vectorized: a million dot products take seconds), or the cycle models
of :mod:`mxsf.golden.models`, :mod:`mxsf.golden.requant_model` and
:mod:`mxsf.golden.systolic_model`; for the GEMM, the golden ``expected_run`` of each run,
placed on cycles by :class:`GemmExpectation` (exact where the timing is specified, in order
elsewhere). For blocks with an input ``ready`` the testbench holds
a beat until it is accepted (like the cocotb driver); the trace the design actually saw
is rebuilt from the recorded ``ready`` and given to the cycle model, whose ``ready`` is
compared on every cycle too, exactly as the cocotb scoreboard does.

Record comparison covers, on every cycle: each output ``valid`` (a missing or extra
output beat is a mismatch), each input ``ready``, and the payload of every valid beat.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from mxsf.golden.formats import get_format
from mxsf.golden.matmul import batched_dot
from mxsf.golden.models import Beat, bf16_pe_cycle_model, pe_cycle_model
from mxsf.golden.quantize import quantize

from mxsf.gen.built import BuiltDesign

from .run import Simulator
from .vectors import (CYCLE_BITS, Encoding, FieldLayout, Records, VectorSim, build_design_vector_sim,
                      cycle_layout, field_int, field_values, format_value, input_layout, output_layout,
                      pack_fields)

__all__ = [
    "Expected", "VectorCase", "VectorResult", "leaf_fields", "design_leaf_layout",
    "pe_dots_case", "pe_random_case", "pe_pairs_case", "pe_beats_case", "bf16_pe_case", "fp32_adder_case",
    "array_tiles_beats", "array_case", "array_results", "maxexp_case", "requant_case",
    "GemmRun", "GEMM_TRANSPOSE_RUNS", "GemmTiming", "GemmExpectation", "gemm_runs", "gemm_case",
    "run_case", "check_records",
]

DRAIN = 4          # idle cycles after the last expected output (as the cocotb harness)


# ----------------------------------------------------------------------------------------
# Payload leaf fields


def leaf_fields(shape, prefix: str = "") -> list[tuple[str, int, int]]:
    """Fields ``(name, offset, width)`` of an Amaranth shape or layout, LSB first: every
    node, leaves and the structs/arrays above them (so a bfloat16 element ``a[3]`` can be
    set whole or as ``a[3].exp``); array elements are named ``a[3]``, struct members
    ``scale_a`` (dotted when nested)."""
    if isinstance(shape, type) and issubclass(shape, data.Struct):
        shape = data.Layout.cast(shape)
    if isinstance(shape, data.Layout):
        out = [(prefix, 0, Shape.cast(shape).width)] if prefix else []
        for name, fld in shape:
            label = f"{prefix}[{name}]" if isinstance(name, int) else (f"{prefix}.{name}" if prefix else name)
            out += [(n, o + fld.offset, w) for n, o, w in leaf_fields(fld.shape, label)]
        return out
    return [(prefix or "value", 0, Shape.cast(shape).width)]


def design_leaf_layout(component, line: FieldLayout) -> FieldLayout:
    """``line`` with every ``<stream>__payload`` field replaced by its leaf fields
    (``<stream>.<leaf>``), offsets within the line."""
    out = []
    members = component.signature.members
    for name, offset, width in line.fields:
        stream, _, what = name.partition("__")
        member = members.get(stream) if what == "payload" else None
        if member is not None and member.is_signature and "payload" in member.signature.members:
            out += [(f"{stream}{leaf}" if leaf.startswith("[") else f"{stream}.{leaf}", offset + o, w)
                    for leaf, o, w in leaf_fields(member.signature.members["payload"].shape)]
        else:
            out.append((name, offset, width))
    return FieldLayout(tuple(out))


def _describe_row(layout: FieldLayout, row: np.ndarray) -> str:
    """``name=value`` of the fields of a packed row (array elements whole, as lists)."""
    parts: list[str] = []
    arrays: dict[str, list[str]] = {}
    names = layout.names
    for name, offset, width in layout.fields:
        if any(other.startswith(name + "[") for other in names) or \
                any(name.startswith(other + ".") or (name.startswith(other + "[") and "]." in name[len(other):])
                    for other in names if other != name and "[" in other):
            continue        # an array node (shown as its elements), or the inside of an element
        value = field_int(row, offset, width)
        base, bracket, _ = name.partition("[")
        if bracket and name.endswith("]") and "[" not in name[len(base) + 1:]:
            if base not in arrays:
                arrays[base] = []
                parts.append(base)
            arrays[base].append(f"{value:x}")
        else:
            parts.append(f"{name}={value:#x}")
    return " ".join(f"{p}=[{' '.join(arrays[p])}]" if p in arrays else p for p in parts)


# ----------------------------------------------------------------------------------------
# Cases and checking


@dataclass(frozen=True)
class Expected:
    """Expected records: cycle, output vector and compare mask of every event."""

    cycles: np.ndarray          # int64 (m,)
    matrix: np.ndarray          # uint8 (m, out nbytes)
    mask: np.ndarray            # uint8 (m, out nbytes): 1 bits are compared


@dataclass
class VectorCase:
    """One vector run of a design: stimulus and the golden expectation.

    ``expect(records)`` returns the :class:`Expected` records; it ignores ``records``
    except for blocks with an input ``ready`` (``held``), whose accepted trace it rebuilds
    from them. ``describe(line)`` names the input of a stimulus line for reports.
    ``source(records, cycle)``, when given, names the input behind a mismatch in
    ``cycle`` for the report as ``(input cycle, stimulus line, note)`` (either may be
    None) instead of the ``cycle - latency`` rule (e.g. the GEMM's ``start`` command).
    """

    name: str
    design: BuiltDesign
    component: object
    stimulus: np.ndarray
    expect: Callable[[Records], Expected]
    seed: int
    beats: int
    cycles: int
    held: str | None = None
    cycle_stimulus: np.ndarray | None = None
    results: int = 0
    line_of_cycle: Callable[[Records, int], int | None] | None = None
    gen_seconds: float = 0.0
    source: Callable[[Records, int], tuple[int | None, int | None, str]] | None = None

    @property
    def latency(self) -> int:
        return self.design.latency or 0


@dataclass(frozen=True)
class VectorResult:
    """Outcome of :func:`run_case`."""

    case: str
    sim: Simulator
    passed: bool
    report: str
    beats: int
    records: int
    compared_outputs: int
    cycles: int
    sim_seconds: float
    check_seconds: float
    build_seconds: float
    run_dir: Path
    sim_cpu_seconds: float = 0.0
    got: Records | None = field(default=None, repr=False)

    def check(self) -> VectorResult:
        """Raise AssertionError with the report unless passed."""
        if not self.passed:
            raise AssertionError(self.report)
        return self


def _out_masks(out: FieldLayout, matrix: np.ndarray) -> np.ndarray:
    """Compare mask of records: control ports always, payloads where their valid is 1."""
    mask = np.zeros_like(matrix)
    names = set(out.names)
    for name, offset, width in out.fields:
        if name == "cycle":
            continue
        stream, _, what = name.partition("__")
        if what == "payload" and f"{stream}__valid" in names:
            valid = field_values(matrix, *out.field(f"{stream}__valid")).astype(bool)
        else:
            valid = np.ones(len(matrix), dtype=bool)
        full = (1 << width) - 1
        for k in range(0, width, 64):
            w = min(64, width - k)
            ones = np.where(valid, np.uint64((1 << w) - 1), np.uint64(0))
            tmp = np.zeros_like(mask)
            from .vectors import _or_bits
            _or_bits(tmp, offset + k, w, ones)
            mask |= tmp
        del full
    return mask


def expected_records(out: FieldLayout, n_cycles: int, values: dict, event: np.ndarray) -> Expected:
    """:class:`Expected` from per-cycle port values (``values[port]``: length-``n_cycles``
    arrays, or (n, k) bytes for wide payloads) and the event flag of each cycle."""
    cyc = np.flatnonzero(event).astype(np.int64)
    sub = {name: np.asarray(v)[cyc] for name, v in values.items()}
    sub["cycle"] = cyc.astype(np.uint64)
    matrix = pack_fields(out, len(cyc), sub)
    return Expected(cyc, matrix, _out_masks(out, matrix))


def check_records(case: VectorCase, got: Records, sim: str) -> tuple[bool, str, int]:
    """Compare the records of a run with the case's expectation in one array operation.

    Returns ``(passed, report, compared output beats)``.
    """
    out = output_layout(case.design.ports)
    lines_taken_ok = got.consumed >= len(case.stimulus)
    exp = case.expect(got)
    m = min(len(exp.cycles), len(got.cycles))
    same_cycle = exp.cycles[:m] == got.cycles[:m]
    diff = ((exp.matrix[:m] ^ got.matrix[:m]) & exp.mask[:m]).any(axis=1) | got.unknown[:m]
    bad_rows = np.flatnonzero(~same_cycle | diff)
    if len(bad_rows) == 0 and len(exp.cycles) == len(got.cycles) and lines_taken_ok:
        n_valid = sum(int(field_values(exp.matrix, *out.field(n)).sum())
                      for n in out.names if n.endswith("__valid"))
        return True, "", n_valid
    # first mismatching cycle
    if len(bad_rows):
        i = int(bad_rows[0])
    else:
        i = m
    if i < m and not same_cycle[i]:
        cycle = int(min(exp.cycles[i], got.cycles[i]))
    elif i < m:
        cycle = int(exp.cycles[i])
    elif i < len(exp.cycles):
        cycle = int(exp.cycles[i])
    elif i < len(got.cycles):
        cycle = int(got.cycles[i])
    else:
        cycle = None
    mismatched = int(len(bad_rows) + abs(len(exp.cycles) - len(got.cycles)))
    name = case.design.top
    lines = []
    if cycle is None:
        lines.append(f"{name}: only {got.consumed} of {len(case.stimulus)} stimulus lines were accepted "
                     f"in {case.cycles} cycles ({case.held}__ready stuck low?)")
    else:
        e_row = _row_at(exp.cycles, exp.matrix, cycle)
        g_row = _row_at(got.cycles, got.matrix, cycle)
        e_mask = _row_at(exp.cycles, exp.mask, cycle)
        port, e_val, g_val, width = _first_port(out, e_row, g_row, e_mask)
        lines += [
            f"{name} mismatch at cycle {cycle} on port {port} [{sim}, vector file]:",
            f"  expected {format_value(e_val, width)}",
            f"  got      {format_value(g_val, width)}",
        ]
        if e_val is not None and g_val is not None:
            bits = [str(b) for b in range(width) if (e_val ^ g_val) >> b & 1]
            lines.append(f"  differing bits: {', '.join(bits[:16])}{' ...' if len(bits) > 16 else ''}")
        note = ""
        if case.source is not None:
            src, line_no, note = case.source(got, cycle)
        else:
            src = cycle - case.latency
            line_no = case.line_of_cycle(got, src) if case.line_of_cycle else (src if src >= 0 else None)
        lin = design_leaf_layout(case.component, input_layout(case.design.ports, case.held))
        if line_no is not None and 0 <= line_no < len(case.stimulus):
            lines.append(f"  produced by input cycle {src} (stimulus line {line_no}): "
                         f"{_describe_row(lin, case.stimulus[line_no])}")
            if note:
                lines.append(f"  {note}")
        elif case.source is not None:
            lines.append(f"  produced by no input: {note}")
        else:
            lines.append(f"  produced by no input (cycle {cycle} - latency {case.latency} is before the first)")
        lines.append(f"  DUT outputs this cycle: {_describe_ports(out, g_row)}")
        lines.append(f"  model expected:         {_describe_ports(out, e_row)}")
    lines.append(f"  {mismatched} of {len(exp.cycles)} expected records mismatched; latency {case.latency}; "
                 f"seed {case.seed}")
    lines.append(f"  stimulus and records: {got.run_dir}")
    return False, "\n".join(lines), 0


def _row_at(cycles: np.ndarray, matrix: np.ndarray, cycle: int) -> np.ndarray | None:
    k = int(np.searchsorted(cycles, cycle))
    return matrix[k] if k < len(cycles) and cycles[k] == cycle else None


def _idle_value(name: str) -> int:
    return 1 if name.endswith("__ready") else 0


def _first_port(out: FieldLayout, e_row, g_row, e_mask) -> tuple[str, int | None, int | None, int]:
    """The first differing port of a cycle (valid/ready before payloads)."""
    order = sorted((f for f in out.fields if f[0] != "cycle"), key=lambda f: f[0].endswith("__payload"))
    for name, offset, width in order:
        e = field_int(e_row, offset, width) if e_row is not None else _idle_value(name)
        g = field_int(g_row, offset, width) if g_row is not None else _idle_value(name)
        compared = field_int(e_mask, offset, width) if e_mask is not None else (0 if name.endswith("__payload") else (1 << width) - 1)
        if (e ^ g) & compared:
            return name, (e if e_row is not None or not name.endswith("__payload") else None), g, width
    if e_row is None:
        return "(record)", None, None, 1
    return "(x/z bits)", field_int(e_row, 0, 0), None, 1


def _describe_ports(out: FieldLayout, row) -> str:
    if row is None:
        return "no event (valid low, ready high)"
    return " ".join(f"{n}={field_int(row, o, w):#x}" for n, o, w in out.fields if n != "cycle")


def run_case(case: VectorCase, sim: Simulator = "verilator", *, encoding: Encoding = "hex",
             run_dir: str | Path | None = None, timeout_s: float = 3600.0) -> VectorResult:
    """Build the design's vector testbench (cached), run ``case`` on ``sim`` and check it.

    Returns a :class:`VectorResult` (never raises for a mismatch; call ``.check()``).
    """
    vsim = build_design_vector_sim(case.design, sim, encoding=encoding, held=case.held)
    run_dir = Path(run_dir) if run_dir is not None else \
        case.design.build_dir / "vector-runs" / f"{sim}-{encoding}-{case.name}-{case.seed}"
    got = vsim.run(case.stimulus, run_dir, cycle_stimulus=case.cycle_stimulus,
                   cycles=None if case.held else case.cycles, timeout_s=timeout_s)
    start = time.monotonic()
    passed, report, compared = check_records(case, got, sim)
    return VectorResult(case.name, sim, passed, report, case.beats, len(got.cycles), compared, case.cycles,
                        got.seconds, time.monotonic() - start, vsim.build_seconds, run_dir, got.cpu_seconds, got)


# ----------------------------------------------------------------------------------------
# Idle cycles


def _gaps(rng: np.random.Generator, n: int, idle_prob: float, max_idle: int) -> np.ndarray:
    """Idle cycles before each of ``n`` beats (as the cocotb Driver: with probability
    ``idle_prob`` a gap of 1..``max_idle``)."""
    if not 0.0 <= idle_prob <= 1.0:
        raise ValueError(f"idle_prob must be within [0, 1], not {idle_prob!r}")
    gap = rng.integers(1, max_idle + 1, size=n)
    return np.where(rng.random(n) < idle_prob, gap, 0)


def _spread(rng, line: FieldLayout, beats: dict, n_beats: int, gaps: np.ndarray, tail: int,
            valid_port: str) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus lines: beats with ``gaps`` idle lines before each (random payload bits),
    ``tail`` idle lines at the end. Returns (lines, line index of each beat)."""
    pos = np.arange(n_beats) + np.cumsum(gaps)
    n = int(pos[-1]) + 1 + tail if n_beats else tail
    lines = rng.integers(0, 256, size=(n, line.nbytes), dtype=np.uint8)     # idle: random bits
    beat_rows = pack_fields(line, n_beats, {**beats, valid_port: 1})
    vo, _ = line.field(valid_port)
    lines[:, vo // 8] &= np.uint8(~(1 << (vo % 8)) & 0xFF)                  # idle: valid low
    lines[pos] = beat_rows
    return lines, pos


# ----------------------------------------------------------------------------------------
# MX PE


def _pe_params(design: BuiltDesign) -> tuple[str, int, int]:
    p = dict(design.params)
    bs = p.get("block_size", 32)
    return get_format(p["fmt"]).name, bs, p.get("lanes") or bs


def pe_dots_case(design: BuiltDesign, component, name: str, a_codes: Sequence[np.ndarray],
                 b_codes: Sequence[np.ndarray], scale_a: Sequence[np.ndarray], scale_b: Sequence[np.ndarray],
                 *, seed: int, idle_prob: float = 0.25, max_idle: int = 3) -> VectorCase:
    """MX PE case from groups of dot products, vectorized.

    Group ``g`` holds ``D_g`` dot products of ``n_g`` blocks: ``a_codes[g]``,
    ``b_codes[g]`` ``(D_g, n_g * block_size)`` codes, ``scale_a[g]``, ``scale_b[g]``
    ``(D_g, n_g)`` E8M0 bytes. The dot products are sent in a seeded random order of the
    groups, each as ``n_g * block_size / lanes`` beats (``first`` on the first,
    ``last`` on the last, the block's scales on each of its beats), with seeded idle
    cycles; the result of a dot product is expected ``latency`` cycles after its
    ``last`` beat, from :func:`~mxsf.golden.matmul.batched_dot`.
    """
    t0 = time.monotonic()
    fmt, bs, lanes = _pe_params(design)
    rng = np.random.default_rng([seed, 0x5e])
    bpb = bs // lanes
    beat_a, beat_b, beat_sa, beat_sb, beat_dot, beat_first, beat_last, results = [], [], [], [], [], [], [], []
    dot0 = 0
    for a, b, sa, sb in zip(a_codes, b_codes, scale_a, scale_b):
        a, b = np.asarray(a, np.uint8), np.asarray(b, np.uint8)
        sa, sb = np.asarray(sa, np.uint8), np.asarray(sb, np.uint8)
        D, K = a.shape
        nblk = K // bs
        nbeat = nblk * bpb
        results.append(batched_dot(a, b, sa, sb, fmt, bs).view(np.uint32))
        beat_a.append(a.reshape(D * nbeat, lanes))
        beat_b.append(b.reshape(D * nbeat, lanes))
        beat_sa.append(np.repeat(sa, bpb, axis=1).reshape(-1))
        beat_sb.append(np.repeat(sb, bpb, axis=1).reshape(-1))
        beat_dot.append(np.repeat(np.arange(dot0, dot0 + D), nbeat))
        k = np.tile(np.arange(nbeat), D)
        beat_first.append(k == 0)
        beat_last.append(k == nbeat - 1)
        dot0 += D
    res = np.concatenate(results)
    order = rng.permutation(dot0)                      # dot products in random order
    rank = np.empty(dot0, np.int64)
    rank[order] = np.arange(dot0)
    dot = np.concatenate(beat_dot)
    perm = np.lexsort((np.concatenate([np.arange(len(x)) for x in beat_dot]), rank[dot]))
    A = np.concatenate(beat_a)[perm]
    B = np.concatenate(beat_b)[perm]
    SA, SB = np.concatenate(beat_sa)[perm], np.concatenate(beat_sb)[perm]
    FIRST, LAST = np.concatenate(beat_first)[perm], np.concatenate(beat_last)[perm]
    dot = dot[perm]
    nbeats = len(A)
    fields = {"i__payload": None}
    line = input_layout(design.ports)
    leaf = design_leaf_layout(component, line)
    values = {"i.scale_a": SA, "i.scale_b": SB, "i.first": FIRST, "i.last": LAST}
    for j in range(lanes):
        values[f"i.a[{j}]"] = A[:, j]
        values[f"i.b[{j}]"] = B[:, j]
    del fields
    latency = design.latency
    gaps = _gaps(rng, nbeats, idle_prob, max_idle)
    lines, pos = _spread(rng, leaf, values, nbeats, gaps, latency + DRAIN, "i__valid")
    out = output_layout(design.ports)
    n = len(lines)
    out_cycle = pos[LAST] + latency
    valid = np.zeros(n, np.uint64)
    valid[out_cycle] = 1
    payload = np.zeros(n, np.uint64)
    payload[out_cycle] = res[dot[LAST]]
    event = valid.astype(bool)
    event[0] = True
    exp = expected_records(out, n, {"o__valid": valid, "o__payload": payload}, event)
    return VectorCase(name=name, design=design, component=component, stimulus=lines,
                      expect=lambda _got: exp, seed=seed, beats=nbeats, cycles=n, results=dot0,
                      gen_seconds=time.monotonic() - t0)


def _random_scales(rng, n, special_prob=0.03):
    """Like :mod:`mxsf.sim.pe_stimulus`: mostly near 127, 10 % anywhere, 3 % NaN."""
    s = rng.integers(112, 143, size=n)
    wild = rng.random(n) < 0.1
    s[wild] = rng.integers(0, 255, size=int(wild.sum()))
    s[rng.random(n) < special_prob] = 0xFF
    return s.astype(np.uint8)


def pe_random_case(design: BuiltDesign, component, *, count: int, seed: int, max_blocks: int = 4,
                   idle_prob: float = 0.25, name: str = "random_dots") -> VectorCase:
    """``count`` random dot products of 1..``max_blocks`` blocks, as the cocotb
    ``random_dots`` test: half with uniform codes (every NaN/Inf code), half realistic
    (quantized Gaussians whose elements span 2^-6..1 of the block's largest), scales mostly
    near 1, 10 % anywhere in 0..254 and 3 % NaN; seeded idle cycles."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    fmt, bs, _ = _pe_params(design)
    f = get_format(fmt, element_only=True)
    rng = np.random.default_rng([seed, 0xd07])
    nblk = rng.integers(1, max_blocks + 1, size=count)
    groups = ([], [], [], [])
    for nb in range(1, max_blocks + 1):
        D = int((nblk == nb).sum())
        if D == 0:
            continue
        K = nb * bs
        uniform = rng.random(D) < 0.5
        codes = []
        for _ in range(2):
            c = rng.integers(0, f.n_codes, size=(D, K)).astype(np.uint8)
            nr = int((~uniform).sum())
            if nr:
                x = rng.standard_normal((nr, K)) * np.exp2(rng.uniform(-6, 0, size=(nr, K)))
                c[~uniform] = quantize(x.astype(np.float32), f, block_size=bs).codes
            codes.append(c)
        groups[0].append(codes[0])
        groups[1].append(codes[1])
        groups[2].append(_random_scales(rng, D * nb).reshape(D, nb))
        groups[3].append(_random_scales(rng, D * nb).reshape(D, nb))
    return pe_dots_case(design, component, name, *groups, seed=seed, idle_prob=idle_prob)


def pe_pairs_case(design: BuiltDesign, component, *, seed: int, scales: dict, pairs=None,
                  idle_prob: float = 0.02, name: str = "code_pairs", rotate_scales: bool = False) -> VectorCase:
    """Each (a, b) code pair (all of them when ``pairs`` is None) as the only non-zero
    product of a one-block dot product (position rotating), for every scale pair in
    ``scales`` (e.g. :func:`mxsf.sim.pe_stimulus.pair_scale_sets`); with
    ``rotate_scales`` once, pair ``k`` under scale pair ``k % len(scales)`` (every code
    pair and every scale pair, a third of the dot products for three scale pairs)."""
    fmt, bs, _ = _pe_params(design)
    f = get_format(fmt, element_only=True)
    if pairs is None:
        a, b = np.divmod(np.arange(f.n_codes * f.n_codes), f.n_codes)
    else:
        a, b = np.asarray(pairs, dtype=np.int64).T
    P = len(a)
    A = np.zeros((P, bs), np.uint8)
    B = np.zeros((P, bs), np.uint8)
    posn = np.arange(P) % bs
    A[np.arange(P), posn] = a
    B[np.arange(P), posn] = b
    sets = list(scales.values())
    if rotate_scales:
        pick = np.arange(P) % len(sets)
        sa = np.array([s[0] for s in sets], np.uint8)[pick].reshape(P, 1)
        sb = np.array([s[1] for s in sets], np.uint8)[pick].reshape(P, 1)
        return pe_dots_case(design, component, name, [A], [B], [sa], [sb], seed=seed, idle_prob=idle_prob)
    groups = ([], [], [], [])
    for sa, sb in sets:
        groups[0].append(A)
        groups[1].append(B)
        groups[2].append(np.full((P, 1), sa, np.uint8))
        groups[3].append(np.full((P, 1), sb, np.uint8))
    return pe_dots_case(design, component, name, *groups, seed=seed, idle_prob=idle_prob)


def _trace_case(design, component, name, beats_values: dict, n_beats, valid_port, *, seed, idle_prob,
                model_out: Callable[[list], tuple[dict, np.ndarray]], trace_items: list, tail: int):
    """Case of an always-ready block from a per-beat list and a cycle model."""
    rng = np.random.default_rng([seed, 0x7ace])
    line = input_layout(design.ports)
    leaf = design_leaf_layout(component, line)
    gaps = _gaps(rng, n_beats, idle_prob, 3)
    lines, pos = _spread(rng, leaf, beats_values, n_beats, gaps, tail, valid_port)
    trace = [None] * len(lines)
    for p, item in zip(pos, trace_items):
        trace[p] = item
    values, event = model_out(trace)
    exp = expected_records(output_layout(design.ports), len(lines), values, event)
    return VectorCase(name=name, design=design, component=component, stimulus=lines, expect=lambda _g: exp,
                      seed=seed, beats=n_beats, cycles=len(lines), results=int(values[next(iter(values))].sum()))


def _float_out_events(out: Sequence) -> tuple[dict, np.ndarray]:
    """Output leaf values and event mask of a PE cycle model's per-cycle results (float32
    bits or None): an event wherever ``o`` is valid, and in cycle 0."""
    valid = np.array([r is not None for r in out], np.uint64)
    event = valid.astype(bool)
    event[0] = True
    return {"o__valid": valid, "o__payload": np.array([r or 0 for r in out], np.uint64)}, event


def pe_beats_case(design: BuiltDesign, component, beats: Sequence[Beat], *, seed: int,
                  idle_prob: float = 0.25, name: str = "beats") -> VectorCase:
    """MX PE case from a list of :class:`~mxsf.golden.models.Beat` (directed and framing
    tests), expected from :func:`~mxsf.golden.models.pe_cycle_model`."""
    fmt, bs, lanes = _pe_params(design)
    values = {"i.scale_a": [b.scale_a for b in beats], "i.scale_b": [b.scale_b for b in beats],
              "i.first": [int(b.first) for b in beats], "i.last": [int(b.last) for b in beats]}
    for j in range(lanes):
        values[f"i.a[{j}]"] = [b.a[j] for b in beats]
        values[f"i.b[{j}]"] = [b.b[j] for b in beats]

    def model(trace):
        return _float_out_events(pe_cycle_model(trace, fmt=fmt, block_size=bs, lanes=lanes,
                                                latency=design.latency)[:len(trace)])

    return _trace_case(design, component, name, values, len(beats), "i__valid", seed=seed, idle_prob=idle_prob,
                       model_out=model, trace_items=list(beats), tail=design.latency + DRAIN)


def bf16_pe_case(design: BuiltDesign, component, beats: Sequence[Beat], *, seed: int,
                 idle_prob: float = 0.25, name: str = "random_dots") -> VectorCase:
    """BF16 PE case from :class:`Beat` lists (e.g. :func:`mxsf.sim.pe_stimulus.random_bf16_dots`),
    expected from :func:`~mxsf.golden.models.bf16_pe_cycle_model`."""
    lanes = dict(design.params).get("lanes", 1)
    values = {"i.first": [int(b.first) for b in beats], "i.last": [int(b.last) for b in beats]}
    for j in range(lanes):
        values[f"i.a[{j}]"] = [b.a[j] for b in beats]
        values[f"i.b[{j}]"] = [b.b[j] for b in beats]
    leaf_names = design_leaf_layout(component, input_layout(design.ports)).names
    if lanes == 1 and "i.a" in leaf_names:          # a one-lane PE has no array
        values["i.a"] = values.pop("i.a[0]")
        values["i.b"] = values.pop("i.b[0]")

    def model(trace):
        return _float_out_events(bf16_pe_cycle_model(trace, latency=design.latency)[:len(trace)])

    return _trace_case(design, component, name, values, len(beats), "i__valid", seed=seed, idle_prob=idle_prob,
                       model_out=model, trace_items=list(beats), tail=design.latency + DRAIN)


def fp32_adder_case(design: BuiltDesign, component, a: np.ndarray, b: np.ndarray, sums: np.ndarray, *,
                    seed: int, idle_prob: float = 0.05, name: str = "random_pairs") -> VectorCase:
    """:class:`~mxsf.sim.wrappers.Float32AdderLanes` case: pair ``k`` (``a[k]``, ``b[k]``,
    uint32 bits) goes to lane ``k % lanes`` of beat ``k // lanes``, and ``sums[k]`` (the
    golden sum's bits, ``9 + man_width`` wide) is expected ``latency`` cycles after its
    beat; no output is valid in other cycles.

    Raises
    ------
    ValueError
        If the output payload is wider than 64 bits, or the pair count is not a
        multiple of the lanes.
    """
    lanes, width = component.lanes, 9 + component.man_width
    if lanes * width > 64:
        raise ValueError(f"the adder's payload must fit 64 bits, not {lanes} lanes x {width} bits")
    a, b, sums = (np.asarray(v, np.uint64) for v in (a, b, sums))
    if not (len(a) == len(b) == len(sums)) or len(a) % lanes:
        raise ValueError(f"a, b and sums must have one length, a multiple of lanes={lanes}, not "
                         f"{len(a)}, {len(b)}, {len(sums)}")
    a, b, sums = (v.reshape(-1, lanes) for v in (a, b, sums))
    n_beats = len(a)
    values = {name_: v[:, j] for j in range(lanes) for name_, v in ((f"i[{j}].a", a), (f"i[{j}].b", b))}
    rng = np.random.default_rng([seed, 0x7ace])
    leaf = design_leaf_layout(component, input_layout(design.ports))
    lines, pos = _spread(rng, leaf, values, n_beats, _gaps(rng, n_beats, idle_prob, 3),
                         design.latency + DRAIN, "i__valid")
    valid = np.zeros(len(lines), np.uint64)
    payload = np.zeros(len(lines), np.uint64)
    valid[pos + design.latency] = 1
    payload[pos + design.latency] = np.bitwise_or.reduce(sums << (np.arange(lanes, dtype=np.uint64) * width), axis=1)
    event = valid.astype(bool)
    event[0] = True
    exp = expected_records(output_layout(design.ports), len(lines), {"o__valid": valid, "o__payload": payload}, event)
    return VectorCase(name=name, design=design, component=component, stimulus=lines, expect=lambda _g: exp,
                      seed=seed, beats=n_beats, cycles=len(lines), results=n_beats)


# ----------------------------------------------------------------------------------------
# Systolic array (input ready: held beats)


def _array_params(design: BuiltDesign):
    p = dict(design.params)
    bs = p.get("block_size", 32)
    return get_format(p["fmt"]).name, p["rows"], p["cols"], bs, p.get("lanes") or bs


def _held_trace(got: Records, lines: np.ndarray, line: FieldLayout, n_cycles: int, valid_port: str,
                ready_port: str, out: FieldLayout) -> tuple[np.ndarray, np.ndarray]:
    """The line driven in each cycle and whether it was accepted, rebuilt from the recorded
    ``ready`` (1 in every cycle without a record, as only ready low is an event)."""
    ready = np.ones(n_cycles, dtype=bool)
    ready[got.cycles] = field_values(got.matrix, *out.field(ready_port)).astype(bool)
    valid = field_values(lines, *line.field(valid_port)).astype(bool)
    driven = np.full(n_cycles, -1, np.int64)
    accepted = np.zeros(n_cycles, dtype=bool)
    p, m = 0, len(lines)
    for c in range(n_cycles):
        if p >= m:
            break
        driven[c] = p
        if not valid[p] or ready[c]:
            accepted[c] = valid[p]
            p += 1
    return driven, accepted


def array_tiles_beats(a_codes, b_codes, sa, sb, *, rows: int, cols: int, block_size: int, lanes: int,
                      bf16: bool = False) -> tuple[dict, int, tuple[int, int]]:
    """Beats of ``C = A @ B`` through the array, vectorized: output tiles in row-major
    order, each a K loop of ``K / lanes`` beats (``first``/``last`` framing).

    ``a_codes`` (M, K), ``b_codes`` (K, N) codes (bfloat16 bits for bf16) with M, N
    multiples of ``rows``/``cols`` and K of ``block_size``; ``sa`` (M, K / block_size) and
    ``sb`` (K / block_size, N) E8M0 scales (None for bf16). Returns the leaf values of
    the beats (``i.a[i][l]`` ...), the beat count and the tile grid.
    """
    a, b = np.asarray(a_codes, np.int64), np.asarray(b_codes, np.int64)
    M, K = a.shape
    N = b.shape[1]
    mt, nt, nb = M // rows, N // cols, K // lanes
    T = mt * nt
    # beat (tile, t): a[i][l] = A[mi*rows + i, t*lanes + l]
    A = a.reshape(mt, rows, nb, lanes).transpose(0, 2, 1, 3)                 # (mt, nb, rows, lanes)
    B = b.reshape(nb, lanes, nt, cols).transpose(2, 0, 3, 1)                 # (nt, nb, cols, lanes)
    A = np.broadcast_to(A[:, None], (mt, nt, nb, rows, lanes)).reshape(T * nb, rows, lanes)
    B = np.broadcast_to(B[None], (mt, nt, nb, cols, lanes)).reshape(T * nb, cols, lanes)
    t = np.tile(np.arange(nb), T)
    values = {"i.first": t == 0, "i.last": t == nb - 1}
    for i in range(rows):
        for l in range(lanes):
            values[f"i.a[{i}][{l}]"] = A[:, i, l]
    for j in range(cols):
        for l in range(lanes):
            values[f"i.b[{j}][{l}]"] = B[:, j, l]
    if not bf16:
        kb = (np.arange(nb) * lanes) // block_size
        SA = np.asarray(sa, np.int64).reshape(mt, rows, -1)[:, :, kb].transpose(0, 2, 1)   # (mt, nb, rows)
        SB = np.asarray(sb, np.int64).reshape(-1, nt, cols)[kb].transpose(1, 0, 2)         # (nt, nb, cols)
        SA = np.broadcast_to(SA[:, None], (mt, nt, nb, rows)).reshape(T * nb, rows)
        SB = np.broadcast_to(SB[None], (mt, nt, nb, cols)).reshape(T * nb, cols)
        for i in range(rows):
            values[f"i.scale_a[{i}]"] = SA[:, i]
        for j in range(cols):
            values[f"i.scale_b[{j}]"] = SB[:, j]
    return values, T * nb, (mt, nt)


def array_case(design: BuiltDesign, component, values: dict, n_beats: int, *, seed: int,
               idle_prob: float = 0.25, name: str = "tiles", tile_results: np.ndarray | None = None) -> VectorCase:
    """Systolic-array case from beat leaf values (e.g. :func:`array_tiles_beats`).

    The testbench holds a beat until ``i.ready``; the expected records come from
    :func:`~mxsf.golden.systolic_model.systolic_cycle_model` (and ``last_spacing_ready``
    for ``i.ready``) on the trace rebuilt from the recorded ``i.ready``. With
    ``tile_results`` ((tiles, rows, cols) float32 bits of every tile, in order, e.g. from
    :func:`~mxsf.golden.matmul.batched_dot`), the beats must be whole tiles (``first`` on
    the first beat, ``last`` on the last, as :func:`array_tiles_beats` makes them) and the
    model's timing is applied vectorized: row ``i`` of the tile whose ``last`` beat is
    accepted in cycle ``t`` is expected in cycle ``t + latency + i``.
    """
    from mxsf.golden.systolic_model import ArrayBeat, last_spacing_ready, systolic_cycle_model

    fmt, rows, cols, bs, lanes = _array_params(design)
    bf16 = fmt == "bf16"
    rng = np.random.default_rng([seed, 0xa77])
    line = input_layout(design.ports, "i")
    leaf = design_leaf_layout(component, line)
    gaps = _gaps(rng, n_beats, idle_prob, 3)
    lines, _ = _spread(rng, leaf, values, n_beats, gaps, 0, "i__valid")
    n_last = int(np.count_nonzero(values["i.last"]))
    n_cycles = len(lines) + rows * n_last + design.latency + rows + DRAIN
    out = output_layout(design.ports)
    out_leaf = design_leaf_layout(component, out)

    def expect_tiles(spacing, drv_last) -> Expected:
        ready = np.array([r for r, _ in spacing], np.uint64)
        acc = np.array([a for _, a in spacing], bool)
        last_cycles = np.flatnonzero(acc & drv_last)
        T = len(tile_results)
        if len(last_cycles) != T:
            last_cycles = np.resize(last_cycles, T) if len(last_cycles) else np.zeros(T, np.int64)
        vals = {name: np.zeros(n_cycles, np.uint64) for name in ("o__valid", "o.row", "o.first", "o.last")}
        cs = np.zeros((n_cycles, cols), np.uint64)
        for i in range(rows):
            cyc = last_cycles + design.latency + i
            ok = cyc < n_cycles
            vals["o__valid"][cyc[ok]] = 1
            vals["o.row"][cyc[ok]] = i
            vals["o.first"][cyc[ok]] = int(i == 0)
            vals["o.last"][cyc[ok]] = int(i == rows - 1)
            cs[cyc[ok]] = np.asarray(tile_results, np.uint64)[ok, i, :]
        vals["i__ready"] = ready
        for j in range(cols):
            vals[f"o.c[{j}]"] = cs[:, j]
        event = vals["o__valid"].astype(bool) | ~ready.astype(bool)
        event[0] = True
        cyc = np.flatnonzero(event)
        matrix = pack_fields(out_leaf, len(cyc), {**{k: v[cyc] for k, v in vals.items()},
                                                  "cycle": cyc.astype(np.uint64)})
        return Expected(cyc.astype(np.int64), matrix, _out_masks(out, matrix))

    def expect(got: Records) -> Expected:
        driven, accepted = _held_trace(got, lines, line, n_cycles, "i__valid", "i__ready", out)
        lo, _ = leaf.field("i.last")
        vo, _ = leaf.field("i__valid")
        d = np.where(driven >= 0, driven, 0)
        drv_valid = field_values(lines[d], vo, 1).astype(bool) & (driven >= 0)
        drv_last = field_values(lines[d], lo, 1).astype(bool) & (driven >= 0)
        spacing = last_spacing_ready(list(zip(drv_valid.tolist(), drv_last.tolist())), rows)
        if tile_results is not None:
            return expect_tiles(spacing, drv_last)
        trace = [None] * n_cycles
        offs = {nm: (o, w) for nm, o, w in leaf.fields}
        acc_cycles = np.flatnonzero(np.array([a for _, a in spacing], bool))
        for c in acc_cycles:
            word = int.from_bytes(bytes(lines[driven[c]]), "little")
            get = lambda nm: (word >> offs[nm][0]) & ((1 << offs[nm][1]) - 1)     # noqa: E731
            trace[c] = ArrayBeat(
                a=[[get(f"i.a[{i}][{l}]") for l in range(lanes)] for i in range(rows)],
                b=[[get(f"i.b[{j}][{l}]") for l in range(lanes)] for j in range(cols)],
                scale_a=None if bf16 else [get(f"i.scale_a[{i}]") for i in range(rows)],
                scale_b=None if bf16 else [get(f"i.scale_b[{j}]") for j in range(cols)],
                first=bool(get("i.first")), last=bool(get("i.last")))
        res = systolic_cycle_model(trace, fmt=fmt, rows=rows, cols=cols, block_size=bs, lanes=lanes,
                                   latency=design.latency)[:n_cycles]
        ready = np.array([r for r, _ in spacing], np.uint64)
        valid = np.array([r is not None for r in res], np.uint64)
        vals = {"i__ready": ready, "o__valid": valid,
                "o.row": np.array([r["row"] if r else 0 for r in res], np.uint64),
                "o.first": np.array([r["first"] if r else 0 for r in res], np.uint64),
                "o.last": np.array([r["last"] if r else 0 for r in res], np.uint64)}
        for j in range(cols):
            vals[f"o.c[{j}]"] = np.array([r["c"][j] if r else 0 for r in res], np.uint64)
        event = valid.astype(bool) | ~ready.astype(bool)
        event[0] = True
        cyc = np.flatnonzero(event)
        matrix = pack_fields(out_leaf, len(cyc), {**{k: v[cyc] for k, v in vals.items()},
                                                  "cycle": cyc.astype(np.uint64)})
        return Expected(cyc.astype(np.int64), matrix, _out_masks(out, matrix))

    def line_of_cycle(got: Records, cycle: int):
        if cycle < 0:
            return None
        driven, _ = _held_trace(got, lines, line, n_cycles, "i__valid", "i__ready", out)
        return int(driven[cycle]) if cycle < n_cycles and driven[cycle] >= 0 else None

    return VectorCase(name=name, design=design, component=component, stimulus=lines, expect=expect, seed=seed,
                      beats=n_beats, cycles=n_cycles, held="i",
                      cycle_stimulus=np.zeros((n_cycles, 1), np.uint8), results=n_last * rows,
                      line_of_cycle=line_of_cycle)


def array_results(case: VectorCase, got: Records, grid: tuple[int, int]) -> np.ndarray:
    """The result matrix (float32 bits, ``(mt * rows, nt * cols)``) assembled from the
    recorded output rows of an :func:`array_case` run of :func:`array_tiles_beats`."""
    fmt, rows, cols, bs, lanes = _array_params(case.design)
    out = design_leaf_layout(case.component, output_layout(case.design.ports))
    valid = field_values(got.matrix, *out.field("o__valid")).astype(bool)
    m = got.matrix[valid]
    mt, nt = grid
    if len(m) != mt * nt * rows:
        raise AssertionError(f"{len(m)} result rows recorded, {mt * nt * rows} expected")
    c = np.stack([field_values(m, *out.field(f"o.c[{j}]")) for j in range(cols)], axis=1).astype(np.uint32)
    return c.reshape(mt, nt, rows, cols).transpose(0, 2, 1, 3).reshape(mt * rows, nt * cols)


# ----------------------------------------------------------------------------------------
# Max-exponent finder and tile re-quantizer (input ready, output ready)


def _stream_ready_case(design, component, name, beats: np.ndarray, *, seed, idle_prob, stall_prob,
                       n_cycles_extra: int, model, out_values) -> VectorCase:
    """Case of a block with streams ``i`` (held) and ``o`` (seeded back-pressure on
    ``o__ready``): ``beats`` (n, lanes) float32 bit patterns; ``model(trace)`` a cycle
    model over :class:`~mxsf.golden.requant_model.StreamCycle`; ``out_values(o)`` the
    leaf values of an expected output payload."""
    from mxsf.golden.requant_model import StreamCycle

    if not 0.0 <= stall_prob < 1.0:
        raise ValueError(f"stall_prob must be within [0, 1), not {stall_prob!r}")
    rng = np.random.default_rng([seed, 0x5ea])
    n_beats, lanes = beats.shape
    line = input_layout(design.ports, "i")
    leaf = design_leaf_layout(component, line)
    gaps = _gaps(rng, n_beats, idle_prob, 3)
    lines, _ = _spread(rng, leaf, {f"i[{k}]": beats[:, k] for k in range(lanes)}, n_beats, gaps, 0, "i__valid")
    body = len(lines)
    # a stall stretches the run by 1/(1 - p); the last beats then drain without stalls
    n_cycles = int(body / (1.0 - stall_prob)) + 4 * int(np.sqrt(body) + 1) + n_cycles_extra
    o_ready = (rng.random(n_cycles) >= stall_prob).astype(np.uint64)
    o_ready[int(body / (1.0 - stall_prob)) + 2 * int(np.sqrt(body) + 1):] = 1     # release, then drain
    cyc_layout = FieldLayout.of([("o__ready", 1)])
    cycle_stimulus = pack_fields(cyc_layout, n_cycles, {"o__ready": o_ready})
    out = output_layout(design.ports)
    out_leaf = design_leaf_layout(component, out)
    vo, _ = line.field("i__valid")

    def expect(got: Records) -> Expected:
        driven, _ = _held_trace(got, lines, line, n_cycles, "i__valid", "i__ready", out)
        trace = []
        for c in range(n_cycles):
            d = driven[c]
            if d >= 0 and field_int(lines[d], vo, 1):
                trace.append(StreamCycle(tuple(int(x) for x in beats_of_line[d]), bool(o_ready[c])))
            else:
                trace.append(StreamCycle(None, bool(o_ready[c])))
        res = model(trace)
        i_ready = np.array([r.i_ready for r in res], np.uint64)
        valid = np.array([r.o is not None for r in res], np.uint64)
        vals = {"i__ready": i_ready, "o__valid": valid}
        per = [out_values(r.o) if r.o is not None else None for r in res]
        keys = next((p.keys() for p in per if p is not None), [])
        for k in keys:
            vals[k] = np.array([p[k] if p is not None else 0 for p in per], np.uint64)
        event = valid.astype(bool) | ~i_ready.astype(bool)
        event[0] = True
        cyc = np.flatnonzero(event)
        matrix = pack_fields(out_leaf, len(cyc), {**{k: v[cyc] for k, v in vals.items()},
                                                  "cycle": cyc.astype(np.uint64)})
        return Expected(cyc.astype(np.int64), matrix, _out_masks(out, matrix))

    # the lanes of every stimulus line (idle lines included, never used)
    beats_of_line = np.stack([field_values(lines, *leaf.field(f"i[{k}]")) for k in range(lanes)], axis=1)

    def line_of_cycle(got: Records, cycle: int):
        if cycle < 0:
            return None
        driven, _ = _held_trace(got, lines, line, n_cycles, "i__valid", "i__ready", out)
        return int(driven[cycle]) if cycle < n_cycles and driven[cycle] >= 0 else None

    return VectorCase(name=name, design=design, component=component, stimulus=lines, expect=expect,
                      seed=seed, beats=n_beats, cycles=n_cycles, held="i", cycle_stimulus=cycle_stimulus,
                      line_of_cycle=line_of_cycle)


def maxexp_case(design: BuiltDesign, component, groups: Sequence, *, seed: int, idle_prob: float = 0.25,
                stall_prob: float = 0.3, name: str = "groups") -> VectorCase:
    """Max-exponent finder case: ``groups`` of ``n`` float32 bit patterns (e.g.
    ``maxexp_tests.random_group_bits``), expected from
    :func:`~mxsf.golden.requant_model.maxexp_cycle_model`."""
    from mxsf.golden.requant_model import maxexp_cycle_model

    p = dict(design.params)
    n = p["n"]
    lanes = p.get("lanes") or n
    beats = np.asarray(groups, np.uint64).reshape(-1, lanes)
    return _stream_ready_case(
        design, component, name, beats, seed=seed, idle_prob=idle_prob, stall_prob=stall_prob,
        n_cycles_extra=design.latency + DRAIN,
        model=lambda tr: maxexp_cycle_model(tr, n=n, lanes=lanes, latency=design.latency),
        out_values=lambda o: {"o.max_exp": o.max_exp, "o.any_nan_inf": int(o.any_nan_inf),
                              "o.all_zero": int(o.all_zero)})


def requant_case(design: BuiltDesign, component, tiles: Sequence, *, seed: int, idle_prob: float = 0.2,
                 stall_prob: float = 0.3, name: str = "tiles") -> VectorCase:
    """Tile re-quantizer case: ``tiles`` of ``rows * cols`` float32 bit patterns
    (row-major, e.g. ``requant_tests.random_tile_bits``), expected from
    :func:`~mxsf.golden.requant_model.requant_cycle_model`."""
    from mxsf.golden.requant_model import requant_cycle_model

    p = dict(design.params)
    rows, cols = p.get("rows", 32), p.get("cols", 32)
    lanes = p.get("lanes") or cols
    fmt = get_format(p["fmt"]).name
    beats = np.asarray(tiles, np.uint64).reshape(-1, lanes)

    def out_values(o):
        v = {"o.scale": o.scale, "o.first": int(o.first), "o.last": int(o.last)}
        v.update({f"o.codes[{k}]": c for k, c in enumerate(o.codes)})
        return v

    return _stream_ready_case(
        design, component, name, beats, seed=seed, idle_prob=idle_prob, stall_prob=stall_prob,
        n_cycles_extra=design.latency + 2 * rows * cols // lanes + DRAIN,
        model=lambda tr: requant_cycle_model(tr, fmt=fmt, rows=rows, cols=cols, lanes=lanes,
                                             latency=design.latency),
        out_values=out_values)


# ----------------------------------------------------------------------------------------
# MX GEMM (start held; operand loads and o.ready per cycle)


def _is_bit(value) -> bool:
    return isinstance(value, (bool, int, np.integer, np.bool_)) and not isinstance(value, float) and value in (0, 1)


@dataclass(frozen=True)
class GemmRun:
    """One ``start`` command of a :func:`gemm_case`.

    ``transpose_a``/``transpose_b``: the command's payload (``C = op(A) @ op(B)``).
    ``stall_prob``: ``o.ready`` is low with this probability in each cycle of the run's
    stall window (the cycles its ``o`` beats need at that rate, nominally), high after it.
    ``follow``: the ``start`` line comes right after the previous run's (seeded idle lines
    apart) and waits for ``start.ready`` (runs back to back); otherwise it comes after the
    earlier runs have had ample time to finish, so that an unstalled run starts on an idle
    GEMM and its timing can be checked exactly.
    """

    transpose_a: bool = False
    transpose_b: bool = False
    stall_prob: float = 0.0
    follow: bool = False

    def __post_init__(self):
        for name in ("transpose_a", "transpose_b", "follow"):
            value = getattr(self, name)
            if not _is_bit(value):
                raise ValueError(f"{name} must be a bool (or 0/1), not {value!r}")
            object.__setattr__(self, name, bool(value))
        p = self.stall_prob
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p < 1.0:
            raise ValueError(f"stall_prob must be a number within [0, 1), not {p!r}")


#: The runs of the cocotb ``transposes`` test: ``A @ B``, ``A @ B.T``, ``A.T @ B`` (o.ready
#: stalled 40 % of cycles), ``A.T @ B.T``, then ``A @ B`` again stalled 80 % of cycles (the
#: credits run out and tile issue pauses).
GEMM_TRANSPOSE_RUNS = (GemmRun(False, False), GemmRun(False, True), GemmRun(True, False, 0.4),
                       GemmRun(True, True), GemmRun(False, False, 0.8))


def gemm_runs(rng: np.random.Generator, *, count: int) -> list[GemmRun]:
    """``count`` runs: the first (up to) five of :data:`GEMM_TRANSPOSE_RUNS`, then random
    transpose choices, a third of them with ``o.ready`` stalls (probability 0.3 to 0.8)
    and a third started back to back with the previous run."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    runs = list(GEMM_TRANSPOSE_RUNS[:count])
    for _ in range(count - len(runs)):
        ta, tb = (bool(x) for x in rng.integers(0, 2, size=2))
        stall = float(rng.uniform(0.3, 0.8)) if rng.random() < 1 / 3 else 0.0
        runs.append(GemmRun(ta, tb, round(stall, 2), bool(rng.random() < 1 / 3)))
    return runs


@dataclass(frozen=True)
class GemmTiming:
    """What the GEMM expectation read from a run's records (see :class:`GemmExpectation`)."""

    starts: np.ndarray          # int64 (runs,): cycle each run's start was accepted, -1 if never
    exact: np.ndarray           # bool (runs,): run checked on exact cycles (idle GEMM, o.ready high)
    acc_cycles: np.ndarray      # int64 (runs * tiles * rows,): cycle expected for each golden acc row
    o_stall_cycles: int         # cycles with o.valid high and o.ready low
    start_wait_cycles: int      # cycles a start line waited for start.ready


def _field_mask(layout: FieldLayout, names: Sequence[str]) -> np.ndarray:
    """Bytes (``layout.nbytes``) with the bits of fields ``names`` set."""
    bits = 0
    for name in names:
        offset, width = layout.field(name)
        bits |= ((1 << width) - 1) << offset
    return np.frombuffer(bits.to_bytes(layout.nbytes, "little"), np.uint8)


class GemmExpectation:
    """The expected records of a :func:`gemm_case` run, rebuilt from its records.

    Called with the :class:`Records` of a run (as :attr:`VectorCase.expect`), it returns the
    :class:`Expected` records. Which cycle each ``start`` was accepted in is rebuilt from
    the recorded ``start.ready`` (the testbench holds the line until then). A run is
    checked on **exact cycles** when its ``start`` found the GEMM idle (every earlier acc
    row and ``o`` beat seen before) and ``o.ready`` stayed high from the start until its
    last acc row and first ``o`` beat; otherwise its outputs are checked **in order**.

    Checked on every cycle:

    * ``start.ready == !busy`` (``start`` is taken while ``busy`` is low); ``busy`` low
      before the first start, high in the cycle after each accepted start, falling once
      per run and low again by the cycle of the run's last acc row (all its tiles were
      issued before), and not rising again until the next start is accepted;
    * every acc row and ``o`` beat equals golden ``expected_run`` of its run (its tiles
      numbered after the earlier runs' for stochastic rounding), in order, none missing
      and none extra; ``o`` stays valid and its payload unchanged while ``o.ready`` is low.

    Exact cycles, for runs on an idle GEMM without stalls (the documented timing of
    :class:`~mxsf.hw.gemm.MXGemm`): acc row ``r`` of tile ``n`` in ``s + acc_latency + n *
    tile_period + r`` and no acc row otherwise from ``s`` to the last one; the first ``o``
    beat in ``s + latency`` and none before; and when ``dim / lanes >= rows`` (the tile
    buffers stream without pause, ``tile_period == dim / lanes``), ``busy`` high from
    ``s + 1`` to ``s + 1 + (tiles - 1) * tile_period`` (the cycle the last tile is issued:
    tile ``n`` is issued in ``s + 1 + n * tile_period``, a tile buffer taking a command as
    the previous one issues its last beat), low from the next cycle. With shorter tiles the
    buffers run ahead of the array's ``ready`` and the issue cycles are not specified:
    ``busy`` is checked by the rules above only. The later ``o`` beats of exact runs, and
    all outputs of the other runs, are checked in order (their cycles are not specified).
    A missing acc row or ``o`` beat is expected in the cycle after the last one seen (at the
    earliest ``acc_latency`` or ``latency`` cycles after its run's start).
    """

    def __init__(self, *, component, runs: Sequence[GemmRun], run_lines: np.ndarray, o_ready: np.ndarray,
                 golden: dict, out: FieldLayout, out_leaf: FieldLayout):
        self.component = component
        self.runs = tuple(runs)
        self.run_lines = np.asarray(run_lines, np.int64)
        self.o_ready = np.asarray(o_ready, bool)
        self.golden = golden
        self.out = out
        self.out_leaf = out_leaf
        self._cache: tuple[Records, dict] | None = None

    # -- the analysis of one run's records -------------------------------------------------

    def _analyse(self, got: Records) -> dict:
        if self._cache is not None and self._cache[0] is got:
            return self._cache[1]
        g = self.component
        rows, T, tp = g.rows, g.tiles, g.tile_period
        acc_lat, lat = g.acc_latency, g.latency
        K, B = len(self.runs), g.tiles * g.rows
        R = K * B
        n = len(self.o_ready)
        o_ready = self.o_ready
        out = self.out
        rec_c = np.asarray(got.cycles, np.int64)

        def recorded(name: str, default: int) -> np.ndarray:
            a = np.full(n, default, bool)
            if len(rec_c):
                a[rec_c] = field_values(got.matrix, *out.field(name)).astype(bool)
            return a

        start_ready = recorded("start__ready", 1)
        acc_valid = recorded("acc__valid", 0)
        o_valid = recorded("o__valid", 0)
        busy = np.zeros(n, bool)
        if len(rec_c):                       # busy changes are events: hold the last record
            idx = np.searchsorted(rec_c, np.arange(n), side="right") - 1
            busy = np.where(idx >= 0, field_values(got.matrix, *out.field("busy"))[np.maximum(idx, 0)], 0) \
                .astype(bool)

        # the cycle each start line was accepted (idle lines take a cycle each)
        starts = np.full(K, -1, np.int64)
        ready_cycles = np.flatnonzero(start_ready)
        waited = 0
        c, p = 0, 0
        for k, line in enumerate(self.run_lines):
            c += int(line) - p
            j = int(np.searchsorted(ready_cycles, c))
            if c >= n or j == len(ready_cycles):
                break                        # this and later starts never accepted
            starts[k] = int(ready_cycles[j])
            waited += int(starts[k]) - c
            c, p = int(starts[k]) + 1, int(line) + 1

        acc_before = np.concatenate([[0], np.cumsum(acc_valid)])          # rows seen before cycle c
        o_before = np.concatenate([[0], np.cumsum(o_valid & o_ready)])    # o beats taken before cycle c
        span = max(acc_lat + (T - 1) * tp + rows, lat + 1)
        exact = np.zeros(K, bool)
        for k, s in enumerate(starts):
            if s >= 0 and s + span <= n:
                exact[k] = (acc_before[s] == k * B and o_before[s] == k * B and bool(o_ready[s:s + span].all()))

        # acc rows: exact cycles, else in order over the rows seen outside exact windows
        acc_cycle = np.full(R, -1, np.int64)
        in_exact = np.zeros(n, bool)
        tile_row = (np.arange(T)[:, None] * tp + np.arange(rows)[None, :]).ravel()
        for k in np.flatnonzero(exact):
            s = int(starts[k])
            acc_cycle[k * B:(k + 1) * B] = s + acc_lat + tile_row
            in_exact[s:s + acc_lat + (T - 1) * tp + rows] = True
        free = np.flatnonzero(acc_valid & ~in_exact)
        loose = np.flatnonzero(~np.repeat(exact, B))
        m = min(len(free), len(loose))
        acc_cycle[loose[:m]] = free[:m]
        # a run's earliest possible output: from its start (or, never accepted, from the
        # cycle the first unaccepted start line was presented)
        origin = np.where(starts >= 0, starts, min(c, n))
        missing = loose[m:]
        if len(missing):                     # after the last row seen, and after its run's start
            cursor = int(np.flatnonzero(acc_valid)[-1]) + 1 if acc_valid.any() else 0
            for k in np.unique(missing // B):
                mk = missing[missing // B == k]
                cursor = max(cursor, int(origin[k]) + acc_lat)
                spare = cursor + np.flatnonzero(~in_exact[cursor:])[:len(mk)]
                acc_cycle[mk[:len(spare)]] = spare
                cursor = int(spare[-1]) + 1 if len(spare) else n
        acc_index = np.full(n, -1, np.int64)
        placed = np.flatnonzero(acc_cycle >= 0)
        acc_index[acc_cycle[placed]] = placed

        # o beats: in order (held while o.ready is low), the first of an exact run exact
        e_o_valid = o_valid.copy()
        e_o_valid[1:] |= o_valid[:-1] & ~o_ready[:-1]
        o_index = o_before[:n].copy()
        if o_before[n] < R:                  # a missing beat: after the last one seen and its start
            seen = np.flatnonzero(o_valid)
            c_m = max(int(seen[-1]) + 1 if len(seen) else 0, int(origin[o_before[n] // B]) + lat)
            if c_m < n:
                e_o_valid[c_m] = True
        e_o_valid &= o_index < R
        for k in np.flatnonzero(exact):
            s = int(starts[k])
            e_o_valid[s:s + lat] = False
            e_o_valid[s + lat] = True
            o_index[s + lat] = k * B

        # busy (and start.ready = !busy)
        e_busy = np.zeros(n, bool)
        for k in np.flatnonzero(starts >= 0):
            s = int(starts[k])
            end = int(starts[k + 1]) if k + 1 < K and starts[k + 1] >= 0 else n
            if exact[k] and g.tile_beats >= rows:
                fall = s + 2 + (T - 1) * tp
            else:
                low = np.flatnonzero(~busy[s + 2:end])
                fall = s + 2 + int(low[0]) if len(low) else end
                last_row = int(acc_cycle[(k + 1) * B - 1])
                if last_row > s:
                    fall = min(fall, last_row)
            e_busy[s + 1:min(fall, n)] = True

        a = {"starts": starts, "exact": exact, "acc_cycle": acc_cycle, "acc_index": acc_index,
             "e_o_valid": e_o_valid, "o_index": o_index, "e_busy": e_busy, "acc_valid": acc_valid,
             "o_valid": o_valid, "o_stalls": int((o_valid & ~o_ready).sum()), "waited": waited}
        self._cache = (got, a)
        return a

    # -- VectorCase hooks ------------------------------------------------------------------

    def __call__(self, got: Records) -> Expected:
        a = self._analyse(got)
        g = self.component
        n = len(self.o_ready)
        e_busy, e_o_valid, acc_index = a["e_busy"], a["e_o_valid"], a["acc_index"]
        e_acc_valid = acc_index >= 0
        event = e_acc_valid | e_o_valid | e_busy
        event[1:] |= e_busy[1:] != e_busy[:-1]
        if n:
            event[0] = True
        cyc = np.flatnonzero(event)
        gold = self.golden
        names = set(self.out_leaf.names)
        oi = np.clip(a["o_index"][cyc], 0, len(gold["o_scale"]) - 1)
        ai = np.clip(acc_index[cyc], 0, len(gold["acc"]) - 1)
        ov, av = e_o_valid[cyc], e_acc_valid[cyc]

        def on(valid, x):
            return np.where(valid, x, 0).astype(np.uint64)

        vals = {"cycle": cyc.astype(np.uint64), "start__ready": (~e_busy[cyc]).astype(np.uint64),
                "busy": e_busy[cyc].astype(np.uint64), "o__valid": ov.astype(np.uint64),
                "acc__valid": av.astype(np.uint64),
                "o.scale": on(ov, gold["o_scale"][oi]), "o.first": on(ov, gold["o_first"][oi]),
                "o.last": on(ov, gold["o_last"][oi]),
                "acc.row": on(av, ai % g.rows), "acc.first": on(av, ai % g.rows == 0),
                "acc.last": on(av, ai % g.rows == g.rows - 1)}
        for j in range(g.cols):
            vals[f"o.codes[{j}]"] = on(ov, gold["o_codes"][oi, j])
            vals[f"acc.c[{j}]"] = on(av, gold["acc"][ai, j])
        vals = {k: v for k, v in vals.items() if k in names}
        matrix = pack_fields(self.out_leaf, len(cyc), vals)
        return Expected(cyc.astype(np.int64), matrix, _out_masks(self.out, matrix))

    def timing(self, got: Records) -> GemmTiming:
        """Start cycles, which runs were checked on exact cycles, and how much the
        held ``start`` and the stalled ``o`` were exercised."""
        a = self._analyse(got)
        return GemmTiming(a["starts"], a["exact"], a["acc_cycle"], a["o_stalls"], a["waited"])

    def source(self, got: Records, cycle: int) -> tuple[int | None, int | None, str]:
        """The ``start`` of the run an output in ``cycle`` belongs to, for the report."""
        a = self._analyse(got)
        g = self.component
        B = g.tiles * g.rows
        starts = a["starts"]
        k, what = None, ""
        if 0 <= cycle < len(self.o_ready):
            if a["acc_index"][cycle] >= 0:
                j = int(a["acc_index"][cycle])
                k, what = j // B, f"acc row {j % B} of {B} (tile {j % B // g.rows}, row {j % g.rows})"
            elif a["e_o_valid"][cycle] and a["o_index"][cycle] < len(self.runs) * B:
                j = int(a["o_index"][cycle])
                k, what = j // B, f"o beat {j % B} of {B} (tile {j % B // g.rows}, row {j % g.rows})"
        if k is None:
            before = np.flatnonzero((starts >= 0) & (starts <= cycle))
            if len(before) == 0:
                return None, None, f"cycle {cycle} is before the first start was accepted (operand load)"
            k = int(before[-1])
            what = ("an acc row or o beat where none was expected" if cycle < len(self.o_ready)
                    and (a["acc_valid"][cycle] or a["o_valid"][cycle]) else "busy / start.ready")
        run = self.runs[k]
        text = (f"run {k} of {len(self.runs)} (transpose_a={int(run.transpose_a)}, "
                f"transpose_b={int(run.transpose_b)}, o.ready stall probability {run.stall_prob:g}"
                f"{', back to back' if run.follow else ''}; "
                f"{'exact cycles' if a['exact'][k] else 'checked in order'}): {what}")
        if starts[k] < 0:
            return None, None, f"{text}; its start (stimulus line {int(self.run_lines[k])}) was never accepted"
        return int(starts[k]), int(self.run_lines[k]), text


def _gemm_golden(component, qa, qb, runs: Sequence[GemmRun]) -> dict:
    """Golden acc rows and ``o`` beats of all runs in order (``expected_run`` of each, its
    tiles numbered after the earlier runs'), as arrays."""
    from .tests.gemm_tests import expected_run

    stochastic = component.options.get("rounding") == "stochastic"
    cache: dict = {}
    parts = []
    for k, run in enumerate(runs):
        ta, tb = int(run.transpose_a), int(run.transpose_b)
        key = (ta, tb, k if stochastic else 0)      # the tile count matters only to SR
        if key not in cache:
            acc, o = expected_run(component, qa, qb, ta, tb, tile_offset=k * component.tiles)
            cache[key] = (np.array(acc, np.uint64).reshape(-1, component.cols),
                          np.array([b["codes"] for b in o], np.uint64).reshape(-1, component.cols),
                          np.array([b["scale"] for b in o], np.uint64),
                          np.array([b["first"] for b in o], np.uint64),
                          np.array([b["last"] for b in o], np.uint64))
        parts.append(cache[key])
    keys = ("acc", "o_codes", "o_scale", "o_first", "o_last")
    return {key: np.concatenate([p[i] for p in parts]) for i, key in enumerate(keys)}


def _gemm_loads(rng: np.random.Generator, component, qa, qb) -> dict:
    """Leaf values of the four operand load streams: every code word and tile scale of A
    and B once, each stream in a seeded random order."""
    d, bs = component.dim, component.block_size
    nt = d // bs
    streams = {}
    for side, q, w in (("a", qa, component.a_word), ("b", qb, component.b_word)):
        codes = np.asarray(q.codes).astype(np.int64).reshape(d * (d // w), w)    # word (row, seg)
        order = rng.permutation(len(codes))
        vals = {f"{side}_codes.row": order // (d // w), f"{side}_codes.seg": order % (d // w)}
        for k in range(w):
            vals[f"{side}_codes.codes[{k}]"] = codes[order, k]
        streams[f"{side}_codes"] = vals
        scales = np.asarray(q.scale_e8m0).astype(np.int64).reshape(-1)
        order = rng.permutation(nt * nt)
        streams[f"{side}_scale"] = {f"{side}_scale.tile_row": order // nt, f"{side}_scale.tile_col": order % nt,
                                    f"{side}_scale.scale": scales[order]}
    return streams


def gemm_case(design: BuiltDesign, component, qa, qb, runs: Sequence[GemmRun], *, seed: int,
              idle_prob: float = 0.25, name: str = "runs") -> VectorCase:
    """MX GEMM case: load A and B once, then the ``start`` of each of ``runs`` in order.

    ``component`` is the :class:`~mxsf.hw.gemm.MXGemm` of ``design``; ``qa``, ``qb`` are
    its ``dim x dim`` operands quantized in ``block_size`` tiles
    (:func:`~mxsf.golden.quantize.quantize_tiles`, e.g. of ``gemm_operands``); ``runs``
    :class:`GemmRun` (or ``(transpose_a, transpose_b[, stall_prob[, follow]])`` tuples).

    Stimulus: the testbench holds the ``start`` stream (one line per command, idle lines
    with random payload bits during the load phase and between runs); the per-cycle file
    carries the four load streams (every code word and scale of A and B once, in a seeded
    random order, with seeded idle cycles and random payload bits while not valid; they
    finish before the first ``start``) and the seeded ``o.ready`` pattern (random during
    the load, low with each run's ``stall_prob`` in its stall window, high otherwise).
    Expected records: :class:`GemmExpectation` (what is checked on exact cycles and what
    in order is listed there) from golden ``expected_run``.

    ``beats`` of the case counts the array beats the runs stream (``tiles * dim / lanes``
    a run), ``results`` the acc rows and ``o`` beats checked.

    Raises
    ------
    ValueError
        Operands that are not ``dim x dim``, no runs, a bad run, or ``idle_prob`` outside
        [0, 1].
    """
    t0 = time.monotonic()
    g = component
    d = g.dim
    for label, q in (("qa", qa), ("qb", qb)):
        shape = tuple(np.shape(getattr(q, "codes", None)))
        if shape != (d, d):
            raise ValueError(f"{label} must be an MX matrix of {d} x {d} codes (dim={d}), not shape {shape}")
    if not 0.0 <= idle_prob <= 1.0:
        raise ValueError(f"idle_prob must be within [0, 1], not {idle_prob!r}")
    runs = [r if isinstance(r, GemmRun) else GemmRun(*r) for r in runs]
    if not runs:
        raise ValueError("runs must hold at least one GemmRun, not an empty sequence")
    rng = np.random.default_rng([seed, 0x6e33])
    rows, T, tp, lat = g.rows, g.tiles, g.tile_period, g.latency
    B = T * rows
    K = len(runs)

    # load phase: four streams in parallel on the per-cycle lines
    streams = _gemm_loads(rng, g, qa, qb)
    pos = {}
    for stream_name, vals in streams.items():
        count = len(next(iter(vals.values())))
        pos[stream_name] = np.arange(count) + np.cumsum(_gaps(rng, count, idle_prob, 3))
    load_end = max(int(p[-1]) for p in pos.values()) + 1

    # Nominal schedule (a fluid model; it only places the start lines and the stall windows,
    # the expectation reads the real cycles from the records): run k starts in s_k, its o
    # beats drain from first_o_k to o_end_k at the rate o.ready allows (at most one tile per
    # tile_period), its tiles are issued until credits (fifo_depth rows) run out.
    gaps = np.zeros(K, np.int64)
    starts = np.zeros(K, np.int64)
    windows = []
    o_end = busy_end = done = 0
    for k, r in enumerate(runs):
        rate = 1.0 - r.stall_prob
        if k == 0:
            gaps[0] = starts[0] = load_end + 1
        elif r.follow:                   # right after the previous start, held until busy is low
            gaps[k] = int(_gaps(rng, 1, idle_prob, 3)[0])
            starts[k] = max(starts[k - 1] + 1 + gaps[k], busy_end)
        else:                            # after the earlier runs are done (an idle GEMM)
            gaps[k] = done - starts[k - 1] - 1
            starts[k] = done
        first_o = max(int(starts[k]) + lat, o_end)
        mean = max(T * tp, B / rate)
        busy_end = max(int(starts[k]) + (T - 1) * tp + 2,
                       int(first_o + mean - (g.fifo_depth + rows) / rate - (lat - g.acc_latency)))
        o_end = int(np.ceil(first_o + mean + (4 * np.sqrt(B * r.stall_prob) / rate)))     # + 4 sigma
        windows.append((first_o, o_end))
        done = o_end + lat + rows + 8
    n_cycles = int(done + lat + DRAIN)

    line = input_layout(design.ports, "start")
    leaf = design_leaf_layout(component, line)
    lines, run_lines = _spread(rng, leaf, {"start.transpose_a": [int(r.transpose_a) for r in runs],
                                           "start.transpose_b": [int(r.transpose_b) for r in runs]},
                               K, gaps, 0, "start__valid")

    o_ready = np.ones(n_cycles, bool)
    o_ready[:starts[0]] = rng.random(int(starts[0])) < 0.5
    for r, (s, e) in zip(runs, windows):
        if r.stall_prob:
            o_ready[s:e] &= rng.random(e - s) >= r.stall_prob

    cyc_layout = cycle_layout(design.ports, "start")
    cyc_leaf = design_leaf_layout(component, cyc_layout)
    cyc = rng.integers(0, 256, size=(n_cycles, cyc_layout.nbytes), dtype=np.uint8)    # idle: random bits
    controls = [f"{s}__valid" for s in streams] + ["o__ready"]
    cyc &= ~_field_mask(cyc_layout, controls)
    cyc |= pack_fields(cyc_leaf, n_cycles, {"o__ready": o_ready.astype(np.uint64)})
    for stream_name, vals in streams.items():
        p = pos[stream_name]
        keep = ~_field_mask(cyc_layout, [f"{stream_name}__valid", f"{stream_name}__payload"])
        cyc[p] = (cyc[p] & keep) | pack_fields(cyc_leaf, len(p), {**vals, f"{stream_name}__valid": 1})

    out = output_layout(design.ports)
    expect = GemmExpectation(component=component, runs=runs, run_lines=run_lines, o_ready=o_ready,
                             golden=_gemm_golden(component, qa, qb, runs), out=out,
                             out_leaf=design_leaf_layout(component, out))
    return VectorCase(name=name, design=design, component=component, stimulus=lines, expect=expect, seed=seed,
                      beats=K * T * g.tile_beats, cycles=n_cycles, held="start", cycle_stimulus=cyc,
                      results=2 * K * B, gen_seconds=time.monotonic() - t0, source=expect.source)
