"""Cycle-level reference models of the block max-exponent finder and the tile re-quantizer.

Both blocks have a ``valid``/``ready`` input stream ``i`` and output stream ``o``. A model
gets one :class:`StreamCycle` per clock cycle (what the testbench drives: the input beat
if ``i.valid``, and ``o.ready``) and returns one :class:`StreamOut` per cycle (what the
block must show: ``i.ready``, ``o.valid`` and the output payload when valid). The values
come from :mod:`mxsf.golden.quantize` (``block_max_exponent``, ``requantize_tile``); the
timing from the handshake rules documented with the hardware, parameterised only by the
latency and the beat counts.

Max-exponent finder (``BlockMaxExponent``, latency ``L``): a pipeline of ``L - 1`` tree
registers and an output register, all advancing together when the output register is
empty or taken (``en = ~o.valid | o.ready``, ``i.ready = en``); a group is ``n // lanes``
beats, counted from reset.

Tile re-quantizer (``TileRequantizer``, latency ``L``; ``beats`` a tile):

* input beat ``w`` of a tile goes to bank ``b`` (banks alternate from 0) and is accepted
  iff bank ``b`` holds no unread tile, or the reader is on bank ``b`` with read index
  ``> w``; a bank holds an unread tile from its last write to its last read issue;
* a tile's scale is known ``L - 2`` cycles after its last beat is accepted (the
  max-exponent finder, never stalled); from that cycle on (bypass) its bank is readable;
* the reader, on the banks in turn, issues one read per cycle when the read pipeline
  advances (``en = ~o.valid | o.ready``) and its bank is readable; a read moves to the
  stage ``s1`` and then to the output register, both advancing with ``en``.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .formats import get_format
from .params import check_divisor, check_int
from .quantize import block_max_exponent, quantize, requantize_tile

__all__ = [
    "StreamCycle",
    "StreamOut",
    "MaxExpOut",
    "RequantBeat",
    "maxexp_cycle_model",
    "maxexp_results",
    "requant_cycle_model",
    "requant_tile_beats",
]


@dataclass(frozen=True)
class StreamCycle:
    """Inputs of one cycle: ``beat`` (lane float32 bit patterns) when ``i.valid``, else None;
    ``o_ready`` the driven ``o.ready``."""

    beat: Optional[tuple]
    o_ready: bool = True


@dataclass(frozen=True)
class StreamOut:
    """Expected outputs of one cycle: ``i_ready``, and ``o`` (the payload) when ``o.valid``."""

    i_ready: bool
    o: Optional[object]

    @property
    def o_valid(self) -> bool:
        return self.o is not None


@dataclass(frozen=True)
class MaxExpOut:
    """Payload of the max-exponent finder."""

    max_exp: int
    any_nan_inf: bool
    all_zero: bool


@dataclass(frozen=True)
class RequantBeat:
    """One output beat of the re-quantizer."""

    codes: tuple
    scale: int
    first: bool
    last: bool
    micro: Optional[tuple] = None     #: BDR formats: the beat's pair microexponents


_MAX_LATENCY = 1 << 16   # any sane pipeline; the models only need an upper bound


def _check_latency(latency, lo: int, what: str) -> int:
    return check_int(f"latency of the {what}", latency, lo, _MAX_LATENCY)


def _check_beats(n, lanes, name="n"):
    """Beats per group: ``lanes`` must divide ``n``."""
    n = check_int(name, n, 1, 1 << 30)
    return n // check_divisor("lanes", lanes, n, name)


def _as_f32(bits) -> np.ndarray:
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def maxexp_results(values_bits) -> MaxExpOut:
    """Golden result of one group, from its float32 bit patterns."""
    r = block_max_exponent(_as_f32(values_bits))
    return MaxExpOut(int(r.max_exp), bool(r.any_nan_inf), bool(r.all_zero))


def maxexp_cycle_model(trace: Sequence[StreamCycle], *, n: int, lanes: int, latency: int) -> list:
    """Expected :class:`StreamOut` of a ``BlockMaxExponent`` on every cycle of ``trace``."""
    bpg = _check_beats(n, lanes)
    latency = _check_latency(latency, 1, "max-exponent finder")
    pipe: list = [None] * (latency - 1)        # tree registers: beat summaries (or None)
    group: list = []                          # beats of the group being accumulated
    out = None                                # output register
    rows = []
    for cyc in trace:
        en = out is None or cyc.o_ready
        rows.append(StreamOut(i_ready=en, o=out))
        if not en:
            continue
        pipe.append(tuple(cyc.beat) if cyc.beat is not None else None)
        beat = pipe.pop(0)
        out = None
        if beat is not None:
            group.extend(beat)
            if len(group) == bpg * lanes:
                out = maxexp_results(group)
                group = []
    return rows


def requant_tile_beats(values_bits, *, fmt, rows: int, cols: int, lanes: int, tile_index: int = 0,
                       **options) -> list:
    """Golden output beats of one tile (row-major float32 bit patterns).

    ``options`` are :func:`~mxsf.golden.quantize.requantize_tile`'s ``scale_rounding``,
    ``rounding``, ``sr_bits`` and ``seed``; ``tile_index`` the tile's number since reset.
    """
    x = _as_f32(values_bits).reshape(rows, cols)
    f = get_format(fmt, element_only=True)
    # a BDR tile is its 1 x 16 block (SPEC.md 11): quantize gives E, microexponents and codes
    # (and refuses the options SPEC.md 11 does not define for BDR)
    q = quantize(x, f, **options) if f.microexp_group else requantize_tile(x, f, tile_index=tile_index, **options)
    codes = q.codes.reshape(-1).astype(np.int64)
    scale = int(q.scale_e8m0.reshape(-1)[0])
    beats = rows * cols // lanes
    if f.microexp_group:
        mu = q.microexp.reshape(-1).astype(np.int64)
        h = lanes // f.microexp_group
        return [RequantBeat(tuple(codes[k * lanes:(k + 1) * lanes].tolist()), scale, k == 0, k == beats - 1,
                            tuple(mu[k * h:(k + 1) * h].tolist())) for k in range(beats)]
    return [RequantBeat(tuple(codes[k * lanes:(k + 1) * lanes].tolist()), scale, k == 0, k == beats - 1)
            for k in range(beats)]


def requant_cycle_model(trace: Sequence[StreamCycle], *, fmt, rows: int, cols: int, lanes: int,
                        latency: int, scale_rounding="floor", rounding="rne", sr_bits: int = 8,
                        seed: int = 0) -> list:
    """Expected :class:`StreamOut` of a ``TileRequantizer`` on every cycle of ``trace``.

    The options are the re-quantizer's (SPEC.md 8 and 9); tiles are numbered from 0 in the
    order they are accepted (the block index of stochastic rounding).
    """
    options = dict(scale_rounding=scale_rounding, rounding=rounding, sr_bits=sr_bits, seed=seed)
    n_tiles = 0
    f = get_format(fmt, element_only=True)
    beats = _check_beats(rows * cols, lanes, "rows*cols")
    latency = _check_latency(latency, 3, "tile re-quantizer")
    scale_delay = latency - 2

    # write side
    w_idx, w_bank, cur = 0, 0, []
    pending = [False, False]
    # scales: (cycle the scale is known, tile output beats), in order
    arriving: list = []
    s_bank = 0
    full = [False, False]
    bank_tile: list = [None, None]            # output beats of the tile in each bank
    # read side
    r_idx, r_bank = 0, 0
    s1 = None
    out = None
    rows_out = []
    for cycle, cyc in enumerate(trace):
        can_write = not pending[w_bank] or (r_bank == w_bank and r_idx > w_idx)
        rows_out.append(StreamOut(i_ready=can_write, o=out))

        # the scale of the oldest complete tile becomes known
        done = arriving.pop(0)[1] if arriving and arriving[0][0] == cycle else None
        bypass = done is not None and s_bank == r_bank
        readable = full[r_bank] or bypass
        en = out is None or cyc.o_ready
        issue = en and readable

        # writer
        if cyc.beat is not None and can_write:
            cur.extend(cyc.beat)
            if w_idx == beats - 1:
                arriving.append((cycle + scale_delay,
                                 requant_tile_beats(cur, fmt=f, rows=rows, cols=cols, lanes=lanes,
                                                    tile_index=n_tiles, **options)))
                n_tiles += 1
                pending[w_bank] = True
                cur, w_idx, w_bank = [], 0, w_bank ^ 1
            else:
                w_idx += 1
        # scale registers
        if done is not None:
            full[s_bank] = True
            bank_tile[s_bank] = done
            s_bank ^= 1
        # reader
        if en:
            out = s1
            s1 = bank_tile[r_bank][r_idx] if issue else None
        if issue:
            if r_idx == beats - 1:
                full[r_bank] = pending[r_bank] = False
                r_idx, r_bank = 0, r_bank ^ 1
            else:
                r_idx += 1
    return rows_out

