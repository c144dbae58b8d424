"""Cycle-level reference models of the systolic array and the tile buffer.

:func:`systolic_cycle_model` says, for every cycle, which row of which result tile
leaves :class:`mxsf.hw.systolic.SystolicArray` and its bits; the results themselves
come from the golden :func:`~mxsf.golden.matmul.matmul` (MX formats) or
:func:`~mxsf.golden.matmul.bf16_matmul` (bf16). The models know the hardware only
through the numbers they are given (``latency``, ``rows``).

Array input framing is the PE framing of :mod:`mxsf.golden.models`, applied to a whole
tile: one beat carries ``lanes`` K-elements of every row of A (with one scale per row)
and of every column of B (one scale per column); a tile's dot products start at
``first`` (or after ``last``) and end at ``last``, and blocks are
``block_size // lanes`` beats (a block also ends at ``last``, its missing elements
are zeros).

Output timing: the tile whose ``last`` beat is accepted in cycle ``t`` leaves as
``rows`` beats, row ``i`` in cycle ``t + latency + i``. The array refuses (``ready``
low) a ``last`` beat that comes less than ``rows`` cycles after the previous
accepted ``last`` (:func:`last_spacing_ready`), so result rows never collide.

Pure NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .formats import get_format
from .matmul import bf16_matmul, matmul
from .models import split_frames
from .options import Accumulator, acc_mode
from .quantize import MXArray

__all__ = [
    "ArrayBeat",
    "TileResult",
    "last_spacing_ready",
    "array_dot_products",
    "array_tile_results",
    "systolic_cycle_model",
    "tile_read_beats",
    "tile_read_beat",
    "tilebuf_cycle_model",
    "bf16_bits_to_f32",
]


@dataclass
class ArrayBeat:
    """One input beat of the array.

    ``a[i]`` are the ``lanes`` codes of row i of A, ``b[j]`` those of column j of B
    (bfloat16 bit patterns for bf16); ``scale_a[i]``/``scale_b[j]`` their E8M0 scales
    (taken on a block's first beat; ignored for bf16); ``micro_a[i]``/``micro_b[j]`` the
    ``lanes // 2`` pair microexponents of the BDR formats (None otherwise).
    """

    a: list
    b: list
    scale_a: list = None
    scale_b: list = None
    first: bool = False
    last: bool = False
    tag: dict = field(default_factory=dict)
    micro_a: list = None
    micro_b: list = None


@dataclass
class TileResult:
    """One finished tile: the cycle of its ``last`` beat and its float32 bits (rows x cols)."""

    cycle: int
    bits: np.ndarray


def last_spacing_ready(last_bits, rows: int) -> list:
    """The array's ``ready`` on each cycle, and whether the beat was accepted.

    ``last_bits`` is a list of ``(valid, last)`` driven per cycle (``last`` as driven,
    also during idle cycles). A beat with ``last`` set is refused while fewer than
    ``rows`` cycles have passed since the previous accepted ``last``; every other
    beat is accepted. Returns a list of ``(ready, accepted)``.
    """
    out = []
    cool = 0
    for valid, last in last_bits:
        ready = not (last and cool)
        acc = bool(valid and ready)
        out.append((int(ready), acc))
        if acc and last:
            cool = rows - 1
        elif cool:
            cool -= 1
    return out


def array_dot_products(trace, *, block_size: int, lanes: int, bf16: bool = False) -> list:
    """Split an array trace (accepted beats per cycle, None when none) into tiles.

    Returns a list of ``(cycle of the last beat, blocks)`` where ``blocks`` is a list
    of ``(a, b, scale_a, scale_b)``: ``a`` (rows x n) and ``b`` (cols x n) codes with
    ``n <= block_size`` (one entry per beat group; for bf16 one entry per beat), and
    ``(..., micro_a, micro_b)`` (rows x n/2, cols x n/2) when the beats carry microexponents.
    """
    def cat(beats, key):
        return np.concatenate([np.asarray(getattr(bt, key), dtype=np.int64) for bt in beats], axis=1)

    tiles = []
    for cyc, blocks in split_frames(trace, 1 if bf16 else block_size // lanes):
        tiles.append((cyc, [(cat(beats, "a"), cat(beats, "b"), sa, sb)
                            + ((cat(beats, "micro_a"), cat(beats, "micro_b")) if beats[0].micro_a is not None else ())
                            for beats, sa, sb in blocks]))
    return tiles


def bf16_bits_to_f32(bits) -> np.ndarray:
    """float32 values of bfloat16 bit patterns."""
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def array_tile_results(trace, *, fmt, rows: int, cols: int, block_size: int, lanes: int,
                       acc="fp32") -> list:
    """The result of every tile of an array trace, by the golden matmul.

    Returns a list of :class:`TileResult` (float32 bits, canonical NaN; bfloat16 bits for an
    MX format with ``acc="bf16"``, SPEC.md 10).
    """
    mode = acc_mode(acc)
    bf16 = not get_format(fmt).is_element
    out = []
    for cyc, blocks in array_dot_products(trace, block_size=block_size, lanes=lanes, bf16=bf16):
        if bf16:
            a = np.concatenate([blk[0] for blk in blocks], axis=1)
            b = np.concatenate([blk[1] for blk in blocks], axis=1)
            c = bf16_matmul(bf16_bits_to_f32(a), bf16_bits_to_f32(b).T)
        else:
            f = get_format(fmt, element_only=True)
            n = len(blocks)
            a = np.zeros((rows, n * block_size), dtype=np.uint8)
            b = np.zeros((n * block_size, cols), dtype=np.uint8)
            sa = np.zeros((rows, n), dtype=np.uint8)
            sb = np.zeros((n, cols), dtype=np.uint8)
            bdr = bool(f.microexp_group)
            half = block_size // 2
            ta = np.ones((rows, n * half), dtype=np.uint8)       # missing pairs: zero codes
            tb = np.ones((n * half, cols), dtype=np.uint8)
            for j, blk in enumerate(blocks):
                ac, bc, xa, xb = blk[:4]
                k = ac.shape[1]
                a[:, j * block_size: j * block_size + k] = ac
                b[j * block_size: j * block_size + k, :] = bc.T
                sa[:, j] = xa
                sb[j, :] = xb
                if bdr:
                    ma, mb = blk[4:]
                    ta[:, j * half: j * half + ma.shape[1]] = ma
                    tb[j * half: j * half + mb.shape[1], :] = mb.T
            c = matmul(MXArray(f, a, sa, (1, block_size), ta if bdr else None),
                       MXArray(f, b, sb, (block_size, 1), tb if bdr else None), acc=mode)
            if mode is Accumulator.BF16:
                out.append(TileResult(cyc, c.astype(np.uint32)))
                continue
        out.append(TileResult(cyc, np.asarray(c, dtype=np.float32).view(np.uint32)))
    return out


def systolic_cycle_model(trace, *, fmt, rows: int, cols: int, block_size: int, lanes: int,
                         latency: int, acc="fp32") -> list:
    """Expected output of the array on every cycle.

    Parameters
    ----------
    trace : list of ArrayBeat or None
        Accepted beat per cycle (None: no beat accepted that cycle).
    latency : int
        Cycles from the ``last`` beat of a tile to its first result row.
    acc : {"fp32", "bf16"}
        Accumulator of the MX PEs (SPEC.md 10); ``c`` holds bfloat16 bits for ``bf16``.

    Returns
    -------
    list of dict or None
        For each of ``len(trace) + latency + rows`` cycles: None, or
        ``{"row": i, "first": i == 0, "last": i == rows - 1, "c": [cols float32 bits]}``.
    """
    out = [None] * (len(trace) + latency + rows)
    for tile in array_tile_results(trace, fmt=fmt, rows=rows, cols=cols, block_size=block_size,
                                   lanes=lanes, acc=acc):
        for i in range(rows):
            cyc = tile.cycle + latency + i
            if out[cyc] is not None:
                raise ValueError(f"result rows collide in cycle {cyc}: last beats closer than {rows} cycles")
            out[cyc] = {"row": i, "first": int(i == 0), "last": int(i == rows - 1),
                        "c": [int(x) for x in tile.bits[i]]}
    return out


def tile_read_beats(codes, scales, *, block_size: int, lanes: int, vecs: int, group: int,
                    transpose: bool) -> list:
    """Beats the tile buffer streams for one read command (what the array sees).

    ``codes`` is the stored matrix (R x C), ``scales`` its (R/bs x C/bs) tile scales.
    Stored (``transpose`` False): vectors are rows ``group*vecs ...`` of the matrix,
    K runs along its columns. Transposed: vectors are columns ``group*vecs ...``, K runs
    along its rows. Returns a list of ``(codes[vecs][lanes], scale[vecs], first, last)``.
    """
    n = (np.shape(codes)[0] if transpose else np.shape(codes)[1]) // lanes
    return [tile_read_beat(codes, scales, block_size=block_size, lanes=lanes, vecs=vecs, group=group,
                           transpose=transpose, beat=t) for t in range(n)]


def tile_read_beat(codes, scales, *, block_size: int, lanes: int, vecs: int, group: int,
                   transpose: bool, beat: int) -> tuple:
    """Beat ``beat`` of a read command (see :func:`tile_read_beats`)."""
    m = np.asarray(codes).T if transpose else np.asarray(codes)
    s = np.asarray(scales).T if transpose else np.asarray(scales)
    n = m.shape[1] // lanes
    t = beat
    vec = m[group * vecs:(group + 1) * vecs, t * lanes:(t + 1) * lanes]
    sc = s[(group * vecs + np.arange(vecs)) // block_size, (t * lanes) // block_size]
    return (vec.astype(np.int64).tolist(), [int(x) for x in sc], t == 0, t == n - 1)


def tilebuf_cycle_model(cycles, *, rows: int, cols: int, block_size: int, lanes: int, vecs: int) -> list:
    """Expected ``cmd.ready``, ``o.valid`` and ``o`` beat of the tile buffer on every cycle.

    ``cycles`` lists per cycle a dict with the driven inputs: ``w_codes`` (None or
    ``(row, seg, codes)``), ``w_scale`` (None or ``(tile_row, tile_col, scale)``),
    ``cmd`` (None or ``(transpose, group)``) and ``o_ready`` (0/1). Timing: a command
    is taken when the buffer is idle or issues its last beat this cycle; the buffer
    issues one beat a cycle while its output register is empty or being emptied, and a
    beat read in cycle k (from the memory as it was before cycle k's writes) is valid
    from cycle k + 1 until taken. Returns a list of ``{"cmd_ready", "o_valid", "beat"}``
    (``beat`` as :func:`tile_read_beat`, None when not valid).
    """
    codes = np.zeros((rows, cols), dtype=np.int64)
    scales = np.zeros((rows // block_size, cols // block_size), dtype=np.int64)
    m = max(lanes, vecs)
    active, transpose, group, beat = False, False, 0, 0
    out_beat = None                                   # beat in the output register
    result = []
    for cyc in cycles:
        n_last = (rows if transpose else cols) // lanes - 1
        advance = out_beat is None or bool(cyc["o_ready"])
        cmd_ready = (not active) or (advance and beat == n_last)
        result.append({"cmd_ready": int(cmd_ready), "o_valid": int(out_beat is not None), "beat": out_beat})
        # register updates at the end of the cycle
        if advance:
            out_beat = tile_read_beat(codes, scales, block_size=block_size, lanes=lanes, vecs=vecs,
                                      group=group, transpose=transpose, beat=beat) if active else None
            if active:
                if beat == n_last:
                    active = False
                beat += 1
        if cyc["cmd"] is not None and cmd_ready:
            active, (transpose, group), beat = True, cyc["cmd"], 0
            transpose = bool(transpose)
        if cyc["w_codes"] is not None:
            r, seg, c = cyc["w_codes"]
            codes[r, seg * m:(seg + 1) * m] = c
        if cyc["w_scale"] is not None:
            tr, tc, sc = cyc["w_scale"]
            scales[tr, tc] = sc
    return result
