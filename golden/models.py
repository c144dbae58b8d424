"""Cycle-level reference models of the hardware blocks.

The testbenches drive the hardware with a per-cycle input trace (a beat, or
``None`` for an idle cycle) and compare its outputs on every cycle with what
these models predict. A model knows the block's latency only as a number it is
given; it knows nothing of the hardware.

Framing of a PE input stream (SPEC.md section 5, shared by the MX and BF16 PEs):

* a dot product starts at a beat with ``first`` set, or at the first beat after
  a beat with ``last`` set (or after reset); a ``first`` beat abandons any
  unfinished dot product;
* an MX block is ``block_size / lanes`` consecutive beats; a block also ends at
  ``last`` (its missing elements are zeros); a block's two E8M0 scales are taken
  from its first beat;
* the dot product's float32 result leaves the PE ``latency`` cycles after the
  cycle that carried its ``last`` beat, as one valid output cycle.

Shared-microexponent formats (``mx9``/``mx6``/``mx4``, SPEC.md 11): a beat also carries
``micro_a``/``micro_b``, one bit per pair of its lanes; a block is 16 elements, and a beat
wider than a block (``lanes = n x 16``) carries ``n`` whole blocks, lane 0 first, with
``scale_a``/``scale_b`` lists of ``n`` exponent bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bdr import bdr_batched_dot
from .formats import get_format
from .matmul import batched_dot, bf16_matmul, matmul
from .options import Accumulator, acc_mode
from .quantize import MXArray

__all__ = ["Beat", "split_frames", "pe_dot_products", "pe_cycle_model", "bf16_pe_cycle_model", "mx_dot", "bf16_dot"]


@dataclass
class Beat:
    """One input beat of a PE: ``lanes`` codes of A and B, the block scales, framing marks."""

    a: list
    b: list
    scale_a: int = 127
    scale_b: int = 127
    first: bool = False
    last: bool = False
    tag: dict = field(default_factory=dict)   # free-form: where the beat came from (for messages)
    micro_a: list = None      #: BDR formats: one microexponent bit per pair of lanes of A
    micro_b: list = None


def mx_dot(blocks, fmt, block_size: int) -> np.float32:
    """SPEC.md section 5 result of one dot product given as blocks.

    ``blocks`` is a list of ``(a_codes, b_codes, scale_a, scale_b)`` with up to
    ``block_size`` codes each (fewer codes are zero-padded).
    """
    f = get_format(fmt, element_only=True)
    n = len(blocks)
    a = np.zeros((1, n * block_size), dtype=np.uint8)
    b = np.zeros((n * block_size, 1), dtype=np.uint8)
    sa = np.zeros((1, n), dtype=np.uint8)
    sb = np.zeros((n, 1), dtype=np.uint8)
    for j, (ac, bc, xa, xb) in enumerate(blocks):
        a[0, j * block_size: j * block_size + len(ac)] = ac
        b[j * block_size: j * block_size + len(bc), 0] = bc
        sa[0, j], sb[j, 0] = xa, xb
    qa = MXArray(f, a, sa, (1, block_size))
    qb = MXArray(f, b, sb, (block_size, 1))
    return matmul(qa, qb)[0, 0]


def bf16_dot(a_bits, b_bits) -> np.float32:
    """BF16 baseline dot product of bfloat16 bit patterns (SPEC.md section 5)."""
    a = (np.asarray(a_bits, dtype=np.uint32) << 16).view(np.float32).reshape(1, -1)
    b = (np.asarray(b_bits, dtype=np.uint32) << 16).view(np.float32).reshape(-1, 1)
    if a.size == 0:
        return np.float32(0.0)
    return bf16_matmul(a, b)[0, 0]


def _f32_bits(x) -> int:
    return int(np.asarray(x, dtype=np.float32).view(np.uint32))


def split_frames(trace, beats_per_block: int) -> list:
    """Group the beats of an input trace by the framing rules above.

    ``trace``: one entry per cycle, an accepted beat (with ``first``, ``last``,
    ``scale_a``, ``scale_b``) or None. Returns ``(cycle of the last beat, blocks)`` per
    dot product (or tile), ``blocks`` a list of ``(beats, scale_a, scale_b)`` with up to
    ``beats_per_block`` beats each, the scales those of the block's first beat. Shared
    by the PE and array models.
    """
    frames = []
    blocks: list = []
    cur = None          # block being filled: (beats, scale_a, scale_b)
    beat_idx = 0
    for cyc, beat in enumerate(trace):
        if beat is None:
            continue
        if beat.first:
            blocks, cur, beat_idx = [], None, 0
        if beat_idx == 0:
            cur = ([], beat.scale_a, beat.scale_b)
        cur[0].append(beat)
        end = beat.last or beat_idx == beats_per_block - 1
        beat_idx = 0 if end else beat_idx + 1
        if end:
            blocks.append(cur)
            cur = None
        if beat.last:
            frames.append((cyc, blocks))
            blocks = []
    return frames


def pe_dot_products(trace, *, block_size: int, lanes: int) -> list:
    """Split a PE input trace into dot products by the framing rules above.

    Returns a list of ``(cycle of the last beat, blocks)`` where ``blocks`` is a list
    of ``(a_codes, b_codes, scale_a, scale_b)`` with up to ``block_size`` codes each,
    and ``(..., micro_a, micro_b)`` (one bit per pair) when the beats carry microexponents.
    A beat of ``lanes = n x block_size`` is ``n`` blocks (its scales are lists).
    """
    def cat(beats, key):
        return [c for bt in beats for c in getattr(bt, key)]

    out = []
    if lanes > block_size:
        n, half = lanes // block_size, block_size // 2
        for cyc, groups in split_frames(trace, 1):
            blocks = []
            for (bt,), sa, sb in groups:
                for j in range(n):
                    blk = (bt.a[j * block_size:(j + 1) * block_size], bt.b[j * block_size:(j + 1) * block_size],
                           sa[j], sb[j])
                    if bt.micro_a is not None:
                        blk += (bt.micro_a[j * half:(j + 1) * half], bt.micro_b[j * half:(j + 1) * half])
                    blocks.append(blk)
            out.append((cyc, blocks))
        return out
    for cyc, blocks in split_frames(trace, block_size // lanes):
        out.append((cyc, [(cat(beats, "a"), cat(beats, "b"), sa, sb)
                          + ((cat(beats, "micro_a"), cat(beats, "micro_b")) if beats[0].micro_a is not None else ())
                          for beats, sa, sb in blocks]))
    return out


def pe_cycle_model(trace, *, fmt, block_size: int, lanes: int, latency: int, acc="fp32") -> list:
    """Expected output of an MX PE on every cycle.

    Parameters
    ----------
    trace : list of Beat or None
        Input per cycle (``None``: no valid beat that cycle).
    latency : int
        Cycles from a ``last`` beat to its result.
    acc : {"fp32", "bf16"}
        Accumulator (SPEC.md 10).

    Returns
    -------
    list of int or None
        For each cycle of ``len(trace) + latency`` cycles: the float32 bits (bfloat16 bits
        with ``acc="bf16"``) of the result that is valid that cycle, or ``None``.
    """
    mode = acc_mode(acc)
    out = [None] * (len(trace) + latency)
    dots = pe_dot_products(trace, block_size=block_size, lanes=lanes)
    if get_format(fmt).microexp_group:
        return _bdr_outputs(out, dots, fmt, block_size, latency, mode)
    # Dot products with the same number of blocks are computed together.
    by_len: dict = {}
    for cyc, blocks in dots:
        by_len.setdefault(len(blocks), []).append((cyc, blocks))
    for nblk, group in by_len.items():
        D, K = len(group), nblk * block_size
        a = np.zeros((D, K), dtype=np.uint8)
        b = np.zeros((D, K), dtype=np.uint8)
        sa = np.zeros((D, nblk), dtype=np.uint8)
        sb = np.zeros((D, nblk), dtype=np.uint8)
        for i, (_, blocks) in enumerate(group):
            for j, (ac, bc, xa, xb) in enumerate(blocks):
                a[i, j * block_size: j * block_size + len(ac)] = ac
                b[i, j * block_size: j * block_size + len(bc)] = bc
                sa[i, j], sb[i, j] = xa, xb
        res = batched_dot(a, b, sa, sb, fmt, block_size, acc=mode)
        res = res.view(np.uint32) if mode is Accumulator.FP32 else res
        for (cyc, _), r in zip(group, res):
            out[cyc + latency] = int(r)
    return out


def _bdr_outputs(out, dots, fmt, block_size, latency, mode=Accumulator.FP32) -> list:
    """:func:`pe_cycle_model` for the shared-microexponent formats (blocks carry microexponents)."""
    by_len: dict = {}
    for cyc, blocks in dots:
        by_len.setdefault(len(blocks), []).append((cyc, blocks))
    half = block_size // 2
    for nblk, group in by_len.items():
        D, K = len(group), nblk * block_size
        a = np.zeros((D, K), dtype=np.uint8)
        b = np.zeros((D, K), dtype=np.uint8)
        ta = np.ones((D, K // 2), dtype=np.uint8)     # missing pairs: zero codes, any tau
        tb = np.ones((D, K // 2), dtype=np.uint8)
        sa = np.zeros((D, nblk), dtype=np.uint8)
        sb = np.zeros((D, nblk), dtype=np.uint8)
        for i, (_, blocks) in enumerate(group):
            for j, (ac, bc, xa, xb, ma, mb) in enumerate(blocks):
                a[i, j * block_size: j * block_size + len(ac)] = ac
                b[i, j * block_size: j * block_size + len(bc)] = bc
                ta[i, j * half: j * half + len(ma)] = ma
                tb[i, j * half: j * half + len(mb)] = mb
                sa[i, j], sb[i, j] = xa, xb
        res = bdr_batched_dot(a, b, ta, tb, sa, sb, fmt, acc=mode)
        res = res.view(np.uint32) if mode is Accumulator.FP32 else res
        for (cyc, _), r in zip(group, res):
            out[cyc + latency] = int(r)
    return out


def bf16_pe_cycle_model(trace, *, latency: int) -> list:
    """Expected output of the BF16 PE on every cycle (same framing, no blocks or scales)."""
    out = [None] * (len(trace) + latency)
    a: list = []
    b: list = []
    for cyc, beat in enumerate(trace):
        if beat is None:
            continue
        if beat.first:
            a, b = [], []
        a.extend(beat.a)
        b.extend(beat.b)
        if beat.last:
            out[cyc + latency] = _f32_bits(bf16_dot(a, b))
            a, b = [], []
    return out
