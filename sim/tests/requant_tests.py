"""cocotb regression of the tile re-quantizer (:class:`mxsf.hw.requant.TileRequantizer`).

Every test streams float32 tiles (row-major, ``lanes`` values a beat) with seeded random
input gaps and output stalls, and compares ``i.ready``, ``o.valid`` and the output beat
(codes, scale, first, last) on **every cycle** with
:func:`mxsf.golden.requant_model.requant_cycle_model`, whose values come from
:func:`mxsf.golden.quantize.requantize_tile` and whose timing models the back-pressure
exactly. It then checks, independently of that timing, that the sequence of output
transfers is exactly the golden tiles' beats in order (no loss, no duplicate).

Knobs from the test config: ``count`` (tiles per random test), ``idle_prob``,
``stall_prob``, ``scales`` (scale exponents of the midpoint sweep), and for ``throughput``
``tiles`` and ``report`` (a JSON file to write the measured figures to).

The stimulus generators are plain NumPy (also used by ``tests/test_requant.py``).
"""

import json
import time

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from mxsf.golden.formats import get_format
from mxsf.golden.requant_model import StreamCycle, requant_cycle_model, requant_tile_beats
from mxsf.hw.requant import requant_out_layout
from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_seed, get_test_config, run_stream_test
from mxsf.sim.packing import LayoutCodec

from .maxexp_tests import pack_beats, unpack_beat

__all__ = [
    "random_tiles", "special_tiles", "midpoints", "scale_edges", "backpressure", "back_to_back",
    "throughput", "random_tile_bits", "special_tile_bits", "midpoint_values", "midpoint_tile_bits",
    "scale_edge_tile_bits",
]

#: Design parameters that are numerics options of the golden model (SPEC.md 8, 9).
OPTION_PARAMS = ("scale_rounding", "rounding", "sr_bits", "seed")

_SIGN = np.uint32(0x80000000)


# ----------------------------------------------------------------------------------------
# Stimulus (NumPy only)


def _bits(x) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32)).view(np.uint32)


def _fields(rng, size, exp_fields, mant=None) -> np.ndarray:
    sign = rng.integers(0, 2, size, dtype=np.uint32) << np.uint32(31)
    if mant is None:
        mant = rng.integers(0, 1 << 23, size, dtype=np.uint32)
    return sign | (np.asarray(exp_fields, dtype=np.uint32) << np.uint32(23)) | np.asarray(mant, dtype=np.uint32)


def random_tile_bits(rng, n: int, count: int, *, specials: float = 0.03) -> list:
    """Random finite tiles over the whole float32 range.

    Kinds: uniform finite bits; a cluster of binades around a random centre (field 0..254,
    so subnormal-only and top-binade tiles occur); clusters with zeros, subnormals and
    short mantissas (exact values, ties); a few tiles with a NaN/Inf (``specials``).
    """
    tiles = []
    for _ in range(count):
        kind = int(rng.integers(0, 4))
        if kind == 0:
            t = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
            t = np.where((t & np.uint32(0x7F800000)) == np.uint32(0x7F800000), t & np.uint32(0xBFFFFFFF), t)
        else:
            centre = int(rng.integers(0, 255))
            spread = int(rng.integers(0, 16))
            fields = np.clip(centre + rng.integers(-spread, spread + 1, n), 0, 254)
            mant = None
            if kind == 3:    # few mantissa bits: many exact values and exact ties
                keep = int(rng.integers(0, 9))
                mant = (rng.integers(0, 1 << 23, n, dtype=np.uint32) >> np.uint32(23 - keep)) << np.uint32(23 - keep)
            t = _fields(rng, n, fields, mant)
            if kind >= 2:
                k = int(rng.integers(0, n // 2 + 1))
                idx = rng.permutation(n)[:k]
                sub = np.where(rng.random(k) < 0.5, 0, rng.integers(0, 1 << 23, k)).astype(np.uint32)
                t[idx] = (rng.integers(0, 2, k, dtype=np.uint32) << np.uint32(31)) | sub
        if rng.random() < specials:
            t[int(rng.integers(0, n))] = rng.choice([0x7FC00000, 0x7F800000, 0xFF800000, 0xFFA00001])
        tiles.append(t.astype(np.uint32))
    return tiles


def special_tile_bits(rng, fmt, n: int) -> list:
    """NaN/+Inf/-Inf at each end and inside; all-zero (+0, -0, mixed); subnormal tiles
    (scale clamped at -127); the largest finite float32 (top scale); saturation; small
    negative values that round to (-)0; a tile whose max is exactly at the clamp edge."""
    f = get_format(fmt)
    tiles = []
    positions = sorted({0, n // 2, n - 1})
    for special in (0x7FC00000, 0x7F800000, 0xFF800000, 0xFFC00001):
        for pos in positions:
            t = _fields(rng, n, rng.integers(0, 255, n))
            t[pos] = special
            tiles.append(t)
    t = _fields(rng, n, rng.integers(0, 255, n))
    t[rng.permutation(n)[:max(2, n // 4)]] = 0x7F800000
    t[0], t[-1] = 0xFF800000, 0x7FC00000
    tiles.append(t)                                                          # several specials
    zeros = np.zeros(n, dtype=np.uint32)
    tiles += [zeros.copy(), zeros | _SIGN, rng.integers(0, 2, n, dtype=np.uint32) << np.uint32(31)]
    # Subnormal and tiny tiles: E = -127 after clamping.
    tiles.append(_fields(rng, n, np.zeros(n), rng.integers(0, 1 << 23, n, dtype=np.uint32)))
    tiles.append(_fields(rng, n, np.zeros(n), rng.integers(0, 4, n, dtype=np.uint32)))
    t = np.zeros(n, dtype=np.uint32)
    t[int(rng.integers(0, n))] = 1                                           # one 2^-149
    tiles.append(t | (rng.integers(0, 2, n, dtype=np.uint32) << np.uint32(31)))
    for field in (1, 2, f.emax_elem, f.emax_elem + 1, f.emax_elem + 2):      # around the clamp edge
        fields = np.clip(field - rng.integers(0, 6, n), 0, 254)
        tiles.append(_fields(rng, n, fields))
    # Top of the range: the largest finite float32 and its neighbours.
    t = _fields(rng, n, np.clip(254 - rng.integers(0, 10, n), 0, 254))
    t[int(rng.integers(0, n))] = 0x7F7FFFFF
    tiles.append(t)
    tiles.append(_fields(rng, n, np.full(n, 254), np.full(n, 0x7FFFFF)))   # all +/-max
    # Saturation: mantissas above the format's largest value in the top binade.
    t = _fields(rng, n, np.full(n, 150), rng.integers(0x600000, 0x800000, n, dtype=np.uint32))
    tiles.append(t)
    # Negative values far below the scale: -0 for FP formats, 0 for INT8.
    t = np.zeros(n, dtype=np.uint32)
    t[0] = 0x42000000                                                        # 32.0 sets the scale
    t[1:] = _SIGN | (np.uint32(100) << np.uint32(23)) | rng.integers(0, 1 << 23, n - 1, dtype=np.uint32)
    tiles.append(t)
    return [x.astype(np.uint32) for x in tiles]


def midpoint_values(fmt) -> np.ndarray:
    """float64 values (at scale 1) around every rounding boundary of ``fmt``, both signs.

    Every element value, every midpoint between adjacent values (ties), the midpoint
    above the largest value (saturation) and just below ``2^(emax_elem + 1)``.
    """
    f = get_format(fmt)
    v = f.values[: f.sign_mask]
    v = np.unique(v[np.isfinite(v)])
    top = 2.0 ** (f.emax_elem + 1)
    mids = (v[:-1] + v[1:]) / 2
    step = v[-1] - v[-2]
    extra = [v[-1] + step / 2, v[-1] + step, top * (1 - 2.0 ** -24)]
    pos = np.concatenate([v, mids, [x for x in extra if x < top]])
    return np.concatenate([pos, -pos])


def scale_edge_tile_bits(fmt, n: int, rng) -> list:
    """Tiles whose largest magnitude sits on a scale rule's edge (SPEC.md 8), or a float32
    neighbour of it: ``2^k``, ``largest x 2^k`` (``ceil``), ``(2 - 2^-(m+1)) x 2^k``
    (``even``), for k across the whole range (float32 subnormals and the top binade
    included); the other values are random below it."""
    from mxsf.golden.options import even_fraction_bits
    f = get_format(fmt)
    big = float(f.max_value) / 2.0 ** f.emax_elem
    half = 2 - 2.0 ** -(even_fraction_bits(f) + 1)
    tiles = []
    ks = sorted(set(int(k) for k in rng.integers(-149, 128, 24)) | {-149, -133, -127, -126, -1, 0, 1, 127})
    for k in ks:
        for base in (1.0, big, half):
            v = np.float32(np.ldexp(base, k)) if np.ldexp(base, k) < 3.4e38 else np.float32(0)
            if v == 0 or not np.isfinite(v):
                continue
            for w in (np.nextafter(v, np.float32(0)), v, np.nextafter(v, np.float32(np.inf))):
                if not np.isfinite(w) or w == 0:
                    continue
                t = _bits(np.abs(np.float32(w)) * rng.random(n).astype(np.float32))
                t |= rng.integers(0, 2, n, dtype=np.uint32) << np.uint32(31)
                t[int(rng.integers(0, n))] = int(_bits(w)[0]) | (int(rng.integers(0, 2)) << 31)
                tiles.append(t.astype(np.uint32))
    return tiles


def midpoint_tile_bits(fmt, n: int, scales, rng) -> list:
    """Tiles holding :func:`midpoint_values` x 2^E and their float32 neighbours for each E.

    Each tile holds ``2^(E + emax_elem)`` as its largest magnitude, which fixes the scale at E
    (or at -127 when E is below that: the clamped case).
    """
    f = get_format(fmt)
    if f.microexp_group:
        return _bdr_midpoint_tile_bits(f, n, scales, rng)
    tiles = []
    base = midpoint_values(fmt)
    for E in scales:
        # at the top scale the values beyond float32 (dropped below) overflow to Inf
        with np.errstate(over="ignore"):
            anchor = np.float32(np.ldexp(1.0, E + f.emax_elem))
            x = np.ldexp(base, E).astype(np.float32)
            nb = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))])
            nb = nb[np.abs(nb) < np.float32(np.ldexp(1.0, E + f.emax_elem + 1))]
        bits = _bits(nb)
        bits = bits[rng.permutation(bits.size)]
        per = n - 1
        for k in range(0, bits.size, per):
            chunk = bits[k:k + per]
            t = np.zeros(n, dtype=np.uint32)
            t[:chunk.size] = chunk
            t[-1] = int(_bits(anchor)[0])   # the anchor, moved to a random place
            j = int(rng.integers(0, n))
            t[[j, -1]] = t[[-1, j]]
            tiles.append(t)
    return tiles


def _bdr_midpoint_tile_bits(f, n: int, scales, rng) -> list:
    """BDR (SPEC.md 11): the midpoints of both grids (microexponent 0: m x 2^(E+1-p), and 1:
    half that), each value with its float32 neighbours in two pairs: beside itself (tau = 1
    exactly when it is below 2^E) and beside 2^E (tau = 0); every tile of 16 holds a
    (value, 2^E) pair, so its exponent is E (or -127 when E is below that)."""
    base = midpoint_values(f)
    base = np.concatenate([base, base / 2])
    tiles = []
    for E in scales:
        anchor = np.float32(np.ldexp(1.0, E))
        x = np.ldexp(base, E).astype(np.float32)
        nb = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))])
        nb = np.unique(nb[np.abs(nb) < np.float32(np.ldexp(1.0, E + 1))])
        pairs = [(v, v) for v in nb] + [(v, anchor) for v in nb]
        order = rng.permutation(len(pairs))
        anchored = [pairs[i] for i in order if pairs[i][1] == anchor]
        others = [pairs[i] for i in order if pairs[i][1] != anchor]
        per = n // 2
        while anchored or others:
            chunk = [anchored.pop()] if anchored else [(anchor, anchor)]
            while len(chunk) < per and (others or anchored):
                chunk.append(others.pop() if others else anchored.pop())
            t = np.zeros(n, dtype=np.float32)
            for k, (a, b) in enumerate(chunk):
                t[2 * k], t[2 * k + 1] = (a, b) if rng.random() < 0.5 else (b, a)
            tiles.append(_bits(t).copy())
    return tiles


# ----------------------------------------------------------------------------------------
# cocotb


def _params():
    p = dict(get_design().params)
    fixed = get_format(p["fmt"]).fixed_block_size                      # mx9/mx6/mx4: a 1 x 16 tile
    rows, cols = p.get("rows", 1 if fixed else 32), p.get("cols", fixed or 32)
    lanes = p.get("lanes") or cols
    return get_format(p["fmt"]).name, rows, cols, lanes


def _options() -> dict:
    """The design's numerics options (absent: the defaults), as golden keyword arguments."""
    p = get_design().params
    return {k: p[k] for k in OPTION_PARAMS if k in p}


def _out_codec():
    fmt, _, _, lanes = _params()
    return LayoutCodec(requant_out_layout(fmt, lanes))


def _pack_out(codec, beat) -> int:
    v = {"codes": list(beat.codes), "scale": beat.scale, "first": int(beat.first), "last": int(beat.last)}
    if beat.micro is not None:
        v["micro"] = list(beat.micro)
    return codec.pack(v)


def _model(codec):
    fmt, rows, cols, lanes = _params()

    def model(inputs, latency):
        trace = [StreamCycle(unpack_beat(c["i__payload"], lanes) if c.get("i__valid") else None,
                             bool(c.get("o__ready", 1))) for c in inputs]
        rows_out = requant_cycle_model(trace, fmt=fmt, rows=rows, cols=cols, lanes=lanes, latency=latency,
                                       **_options())
        return [{"i__ready": int(r.i_ready), "o__valid": int(r.o_valid),
                 "o__payload": None if r.o is None else _pack_out(codec, r.o)} for r in rows_out]
    return model


def expected_transfers(tiles, fmt, rows, cols, lanes, **options) -> list:
    """Golden output beats of ``tiles``, the first numbered tile 0 after reset."""
    out = []
    for n, t in enumerate(tiles):
        out += requant_tile_beats(t, fmt=fmt, rows=rows, cols=cols, lanes=lanes, tile_index=n, **options)
    return out


async def _run(dut, name, tiles, *, idle_prob=None, stall_prob=None):
    fmt, rows, cols, lanes = _params()
    cfg = get_test_config()
    codec = _out_codec()
    beats = rows * cols // lanes
    await clock_and_reset(dut)
    trace = await run_stream_test(
        dut, pack_beats(tiles, lanes), _model(codec),
        idle_prob=cfg.get("idle_prob", 0.2) if idle_prob is None else idle_prob,
        stall_prob=cfg.get("stall_prob", 0.3) if stall_prob is None else stall_prob,
        seed_salt=name, one_to_one=False, drain_cycles=2 * beats + 8)
    # The output transfers are exactly the golden tiles' beats, in order, each once.
    got = [o["o__payload"] for i, o in zip(trace.inputs, trace.outputs)
           if o["o__valid"] == 1 and i.ports.get("o__ready", 1) == 1]
    want = [_pack_out(codec, b) for b in expected_transfers(tiles, fmt, rows, cols, lanes, **_options())]
    assert len(got) == len(want), f"{len(got)} output beats for {len(want)} expected"
    bad = [k for k, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, (f"{len(bad)} output beats differ, first #{bad[0]}: "
                     f"got {codec.unpack(got[bad[0]], 2)}, expected {codec.unpack(want[bad[0]], 2)}")
    refused = sum(1 for c in trace.inputs if c.ports.get("i__valid") and c.accepted is None)
    dut._log.info(f"{name}: {len(tiles)} tiles, {len(got)} beats, {trace.comparisons} comparisons, "
                  f"{len(trace.inputs)} cycles, input refused {refused} cycles")
    return trace, refused


def _rng(name):
    return np.random.default_rng([get_seed(), sum(map(ord, name))])


@cocotb.test()
async def random_tiles(dut):
    """Random tiles over the whole float32 range, random gaps and output stalls."""
    fmt, rows, cols, _ = _params()
    tiles = random_tile_bits(_rng("random_tiles"), rows * cols, get_test_config().get("count", 40))
    await _run(dut, "random_tiles", tiles)


@cocotb.test()
async def special_tiles(dut):
    """NaN/Inf anywhere, all-zero tiles, subnormals, clamped scales, saturation, -0."""
    fmt, rows, cols, _ = _params()
    rng = _rng("special_tiles")
    await _run(dut, "special_tiles", special_tile_bits(rng, fmt, rows * cols))


@cocotb.test()
async def midpoints(dut):
    """Every midpoint between adjacent element values (and every value), with its float32
    neighbours, at several scales (both clamp ends included)."""
    fmt, rows, cols, _ = _params()
    f = get_format(fmt)
    n = rows * cols
    if n < 2:
        return
    scales = (get_test_config().get("scales")
              or [-140, -127, -126 + f.emax_elem, -40, 0, 63, 127 - f.emax_elem])
    if f.microexp_group:            # the pair bits depend on 2^E exactly: the clamp end too
        scales = sorted(set(scales) | {-126, -125})
    tiles = midpoint_tile_bits(fmt, n, scales, _rng("midpoints"))
    await _run(dut, "midpoints", tiles, idle_prob=0.05, stall_prob=0.05)


@cocotb.test()
async def scale_edges(dut):
    """Tile maxima on the edges of the floor/ceil/even scale rules and their float32
    neighbours, over the whole exponent range (SPEC.md 8)."""
    fmt, rows, cols, _ = _params()
    if rows * cols < 2:
        return
    tiles = scale_edge_tile_bits(fmt, rows * cols, _rng("scale_edges"))
    await _run(dut, "scale_edges", tiles, idle_prob=0.05, stall_prob=0.1)


@cocotb.test()
async def backpressure(dut):
    """Heavy output stalls and input gaps: nothing lost or duplicated, exact timing."""
    fmt, rows, cols, _ = _params()
    rng = _rng("backpressure")
    tiles = random_tile_bits(rng, rows * cols, max(6, get_test_config().get("count", 40) // 2))
    await _run(dut, "backpressure", tiles, idle_prob=0.4, stall_prob=0.7)


@cocotb.test()
async def back_to_back(dut):
    """One beat every cycle, no stalls: the input is never refused (sustained rate 1 beat/cycle)."""
    fmt, rows, cols, lanes = _params()
    rng = _rng("back_to_back")
    tiles = random_tile_bits(rng, rows * cols, max(4, get_test_config().get("count", 40) // 4))
    trace, refused = await _run(dut, "back_to_back", tiles, idle_prob=0.0, stall_prob=0.0)
    assert refused == 0, f"the input was refused on {refused} cycles with no output stall"
    valid = [o["o__valid"] for o in trace.outputs]
    first = valid.index(1)
    total = len(tiles) * rows * cols // lanes
    assert valid[first:first + total] == [1] * total, "the output has bubbles with no stall"


@cocotb.test()
async def throughput(dut):
    """Benchmark: ``tiles`` tiles back to back, output always ready; measures cycles per tile
    and simulation speed (no per-cycle model), checks the output sequence, writes ``report``."""
    fmt, rows, cols, lanes = _params()
    cfg = get_test_config()
    count = cfg.get("tiles", 16)
    tiles = random_tile_bits(_rng("throughput"), rows * cols, count, specials=0.0)
    beats = pack_beats(tiles, lanes)
    await clock_and_reset(dut)
    clk = dut.clk
    dut.o__ready.value = 1
    got, last_cycles = [], []
    k = cycle = 0
    start = time.perf_counter()
    first_in = None
    while len(got) < len(beats):
        await RisingEdge(clk)
        presenting = k < len(beats)
        dut.i__valid.value = int(presenting)
        if presenting:
            dut.i__payload.value = beats[k]
        await ReadOnly()
        if presenting and int(dut.i__ready.value):
            if first_in is None:
                first_in = cycle
            k += 1
        if int(dut.o__valid.value):
            word = int(dut.o__payload.value)
            got.append(word)
            if (word >> (len(dut.o__payload) - 1)) & 1:       # "last" is the top bit
                last_cycles.append(cycle)
        cycle += 1
        if cycle > 10 * len(beats) + 1000:
            raise AssertionError("the requantizer stopped making progress")
    wall = time.perf_counter() - start
    codec = _out_codec()
    want = [_pack_out(codec, b) for b in expected_transfers(tiles, fmt, rows, cols, lanes, **_options())]
    assert got == want, "output beats differ from the golden model"
    per_tile = (last_cycles[-1] - last_cycles[0]) / (len(last_cycles) - 1) if len(last_cycles) > 1 else None
    report = {"fmt": fmt, "rows": rows, "cols": cols, "lanes": lanes, "tiles": count,
              "cycles": cycle, "first_input_cycle": first_in, "cycles_per_tile": per_tile,
              "values_per_cycle": rows * cols / per_tile if per_tile else None,
              "wall_s": wall, "sim_values_per_s": count * rows * cols / wall,
              "sim_cycles_per_s": cycle / wall}
    dut._log.info(f"throughput: {report}")
    if cfg.get("report"):
        with open(cfg["report"], "w") as fh:
            json.dump(report, fh)
