"""cocotb regression of the systolic array (:class:`mxsf.hw.systolic.SystolicArray`).

Every test drives array beats (seeded random idle cycles unless back to back) and
compares ``i.ready``, ``o.valid`` and the result rows on every cycle with
:func:`mxsf.golden.systolic_model.systolic_cycle_model` (golden ``matmul`` /
``bf16_matmul``). Knobs from the test config: ``count`` (tiles per random test),
``k_blocks`` (list of K lengths in blocks, default [1, 2, 5]), ``idle_prob``.

The stimulus helpers are plain NumPy and also used by the Amaranth-simulator tests.
"""

import cocotb
import numpy as np

from mxsf.golden.formats import get_format
from mxsf.golden.matmul import bf16_matmul, matmul, to_bf16
from mxsf.golden.quantize import quantize, quantize_tiles
from mxsf.golden.systolic_model import ArrayBeat, bf16_bits_to_f32, last_spacing_ready, systolic_cycle_model
from mxsf.hw.layouts import BFloat16, Float32
from mxsf.hw.systolic import array_beat_layout, array_row_layout
from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_seed, get_test_config, run_stream_test
from mxsf.sim.packing import LayoutCodec

__all__ = [
    "random_tiles", "back_to_back", "framing", "matrices",
    "tile_beats", "random_tile", "random_tile_beats", "framing_beats", "matrix_beats", "beat_payload",
]


# ------------------------------------------------------------------------------------
# Stimulus (pure NumPy)


def tile_beats(a, b, sa=None, sb=None, *, block_size, lanes, first=True, ma=None, mb=None):
    """Beats of one tile: ``a`` (rows x K) and ``b`` (K x cols) codes, ``sa`` (rows x nK)
    and ``sb`` (nK x cols) scales (None for bf16). K is a multiple of ``lanes``.
    ``ma`` (rows x K/2) and ``mb`` (K/2 x cols): pair microexponents of the BDR formats."""
    K = a.shape[1]
    n = K // lanes
    beats = []
    for t in range(n):
        ks = slice(t * lanes, (t + 1) * lanes)
        kb = (t * lanes) // block_size
        beat = ArrayBeat(
            a=a[:, ks].astype(np.int64).tolist(), b=b[ks, :].T.astype(np.int64).tolist(),
            scale_a=None if sa is None else [int(x) for x in sa[:, kb]],
            scale_b=None if sb is None else [int(x) for x in sb[kb, :]],
            first=first and t == 0, last=t == n - 1)
        if ma is not None:
            ps = slice(t * lanes // 2, (t + 1) * lanes // 2)
            beat.micro_a = np.asarray(ma)[:, ps].astype(np.int64).tolist()
            beat.micro_b = np.asarray(mb)[ps, :].T.astype(np.int64).tolist()
        beats.append(beat)
    return beats


def _wide_floats(rng, shape, span=40):
    """Gaussian values whose magnitude varies over 2^-span .. 2^span (per row and per element)."""
    row = rng.uniform(-span, span, size=(shape[0], 1))
    return (rng.standard_normal(shape) * np.exp2(row + rng.uniform(-8, 8, size=shape))).astype(np.float32)


def _special_scales(rng, s):
    s = s.copy()
    pick = rng.random(s.shape)
    s[pick < 0.04] = 0xFF                                   # NaN scale
    s[(pick >= 0.04) & (pick < 0.07)] = 254                 # largest: overflow
    s[(pick >= 0.07) & (pick < 0.10)] = 0                   # smallest: float32 subnormals / zero
    return s


def random_tile(rng, fmt, rows, cols, block_size, k_blocks, kind=None):
    """One random tile ``(a, b, sa, sb, ma, mb)`` of K = ``k_blocks * block_size``
    (``ma``/``mb``: pair microexponents of the BDR formats, else None).

    ``kind``: "wide" (wide dynamic range floats quantized along K), "codes" (every code
    equally likely, special and extreme scales), "zeros" (zero rows/columns and all-zero
    blocks), "overflow" (values near the float32 maximum: products overflow to Inf and
    mixed signs give NaN); random when None. For bf16 the codes are bfloat16 bits and the
    scales None.
    """
    K = k_blocks * block_size
    kinds = ["wide", "codes", "zeros", "overflow"]
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    bf16 = get_format(fmt).name == "bf16"
    if bf16:
        if kind == "codes":
            a = rng.integers(0, 1 << 16, size=(rows, K))
            b = rng.integers(0, 1 << 16, size=(K, cols))
        else:
            xa, xb = _wide_floats(rng, (rows, K)), _wide_floats(rng, (cols, K)).T
            if kind == "overflow":
                xa = (np.sign(xa) * 3e38 * rng.random(xa.shape)).astype(np.float32)
                xb = (np.sign(xb) * 1e10 * rng.random(xb.shape)).astype(np.float32)
            if kind == "zeros":
                xa[rng.random(rows) < 0.5, :] = 0
                xb[:, rng.random(cols) < 0.5] = 0
            a = to_bf16(xa).view(np.uint32) >> 16
            b = to_bf16(xb).view(np.uint32) >> 16
        return a.astype(np.int64), b.astype(np.int64), None, None, None, None
    f = get_format(fmt, element_only=True)
    bdr = bool(f.microexp_group)
    if kind == "codes":
        a = rng.integers(0, f.n_codes, size=(rows, K))
        b = rng.integers(0, f.n_codes, size=(K, cols))
        sa = _special_scales(rng, rng.integers(100, 155, size=(rows, k_blocks)))
        sb = _special_scales(rng, rng.integers(100, 155, size=(k_blocks, cols)))
        ma = rng.integers(0, 2, size=(rows, K // 2)) if bdr else None
        mb = rng.integers(0, 2, size=(K // 2, cols)) if bdr else None
        return a, b, sa, sb, ma, mb
    xa = _wide_floats(rng, (rows, K))
    xb = _wide_floats(rng, (cols, K)).T.copy()
    if kind == "zeros":
        xa[rng.random(rows) < 0.4, :] = 0
        xb[:, rng.random(cols) < 0.4] = 0
        xa[:, :block_size] = 0                              # an all-zero block (scale 2^-127)
    if kind == "overflow":
        xa = (np.sign(xa) * 3e38 * rng.uniform(0.5, 1, xa.shape)).astype(np.float32)
        xb = (np.sign(xb) * 3e38 * rng.uniform(0.5, 1, xb.shape)).astype(np.float32)
    if rng.random() < 0.2:                                  # a NaN/Inf input: NaN scale
        xa[int(rng.integers(rows)), int(rng.integers(K))] = rng.choice([np.nan, np.inf, -np.inf])
    qa = quantize(xa, f, block_size=block_size, axis=1)
    qb = quantize(xb, f, block_size=block_size, axis=0)
    return (qa.codes.astype(np.int64), qb.codes.astype(np.int64),
            qa.scale_e8m0.astype(np.int64), qb.scale_e8m0.astype(np.int64), qa.microexp, qb.microexp)


def random_tile_beats(rng, fmt, rows, cols, *, block_size, lanes, count, k_blocks=(1, 2, 5)):
    """``count`` random tiles, K cycling through ``k_blocks``."""
    beats = []
    for n in range(count):
        a, b, sa, sb, ma, mb = random_tile(rng, fmt, rows, cols, block_size, k_blocks[n % len(k_blocks)])
        beats += tile_beats(a, b, sa, sb, block_size=block_size, lanes=lanes, ma=ma, mb=mb)
    return beats


def framing_beats(rng, fmt, rows, cols, *, block_size, lanes):
    """A tile abandoned by ``first``, ``last`` in mid-block, tiles without ``first`` right
    after a ``last``, single-beat tiles."""
    beats = []

    def tile(k_blocks, first=True):
        a, b, sa, sb, ma, mb = random_tile(rng, fmt, rows, cols, block_size, k_blocks, kind="codes")
        return tile_beats(a, b, sa, sb, block_size=block_size, lanes=lanes, first=first, ma=ma, mb=mb)

    beats += tile(2)[:-1]                    # abandoned
    beats += tile(1)
    part = tile(1)
    if len(part) > 1:                        # last in the middle of a block
        part = part[:max(1, len(part) // 2)]
        part[-1].last = True
        beats += part
    for _ in range(3):
        beats += tile(2, first=False)
    one = tile(1)[:1]
    one[0].last = True
    beats += one + tile(1)[:1] + one
    beats[-1].last = True
    beats[-2].last = True
    return beats


def matrix_beats(rng, fmt, rows, cols, *, block_size, lanes, m_tiles=2, n_tiles=2, k_blocks=2,
                 tiled=True, acc="fp32"):
    """Whole matrices: A (M x K) and B (K x N), M = ``m_tiles * rows``, N = ``n_tiles * cols``,
    quantized in ``block_size`` tiles (or 1D blocks along K), streamed as the array's output
    tiles in row-major order. Returns ``(beats, expected C float32 bits, M, N)`` where the
    expectation is the golden ``matmul`` of the whole quantized matrices (bfloat16 bits with
    ``acc="bf16"``)."""
    M, N, K = m_tiles * rows, n_tiles * cols, k_blocks * block_size
    xa = _wide_floats(rng, (M, K), span=20)
    xb = _wide_floats(rng, (N, K), span=20).T.copy()
    beats = []
    if get_format(fmt).name == "bf16":
        a = (to_bf16(xa).view(np.uint32) >> 16).astype(np.int64)
        b = (to_bf16(xb).view(np.uint32) >> 16).astype(np.int64)
        c = bf16_matmul(bf16_bits_to_f32(a), bf16_bits_to_f32(b))
        for mi in range(m_tiles):
            for nj in range(n_tiles):
                beats += tile_beats(a[mi * rows:(mi + 1) * rows], b[:, nj * cols:(nj + 1) * cols],
                                    block_size=lanes, lanes=lanes)
        return beats, c.view(np.uint32), M, N
    f = get_format(fmt, element_only=True)
    tiled = tiled and f.allows_tiles                        # mx9/mx6/mx4: 1D blocks only
    if tiled:
        qa = quantize_tiles(xa, f, (block_size, block_size))
        qb = quantize_tiles(xb, f, (block_size, block_size))
    else:
        qa = quantize(xa, f, block_size, axis=1)
        qb = quantize(xb, f, block_size, axis=0)
    c = matmul(qa, qb, acc=acc)
    spa, spb = qa.scale_per_element(), qb.scale_per_element()
    for mi in range(m_tiles):
        for nj in range(n_tiles):
            rs, cs = slice(mi * rows, (mi + 1) * rows), slice(nj * cols, (nj + 1) * cols)
            sa = spa[rs, ::block_size]
            sb = spb[::block_size, cs]
            mu = {} if qa.microexp is None else {"ma": qa.microexp[rs], "mb": qb.microexp[:, cs]}
            beats += tile_beats(qa.codes[rs], qb.codes[:, cs], sa, sb, block_size=block_size, lanes=lanes, **mu)
    return beats, (c.view(np.uint32) if c.dtype == np.float32 else c.astype(np.uint32)), M, N


def beat_payload(beat, bf16):
    p = {"a": beat.a, "b": beat.b, "first": int(beat.first), "last": int(beat.last)}
    if not bf16:
        p["scale_a"], p["scale_b"] = beat.scale_a, beat.scale_b
    if beat.micro_a is not None:
        p["micro_a"], p["micro_b"] = beat.micro_a, beat.micro_b
    return p


# ------------------------------------------------------------------------------------
# cocotb side


def _acc():
    """The MX array's accumulator (SPEC.md 10); absent means fp32."""
    return get_design().params.get("acc", "fp32")


def _params():
    p = dict(get_design().params)
    fb = get_format(p["fmt"])
    p.setdefault("block_size", fb.default_block_size if fb.is_element else 32)     # mx9/mx6/mx4: 16
    p.setdefault("lanes", p["block_size"])
    return p["fmt"], p["rows"], p["cols"], p["block_size"], p["lanes"]


def _model(in_codec, out_codec, fmt, rows, cols, block_size, lanes, bf16):
    last_off = in_codec.layout["last"].offset

    def model(inputs, latency):
        spacing = last_spacing_ready([(c.get("i__valid", 0), (c.get("i__payload", 0) >> last_off) & 1)
                                      for c in inputs], rows)
        trace = []
        for cyc, (ready, accepted) in zip(inputs, spacing):
            if accepted:
                v = in_codec.unpack(cyc["i__payload"], depth=3)
                trace.append(ArrayBeat(a=v["a"], b=v["b"], scale_a=v.get("scale_a"), scale_b=v.get("scale_b"),
                                       first=bool(v["first"]), last=bool(v["last"]),
                                       micro_a=v.get("micro_a"), micro_b=v.get("micro_b")))
            else:
                trace.append(None)
        out = systolic_cycle_model(trace, fmt=fmt, rows=rows, cols=cols, block_size=block_size,
                                   lanes=lanes, latency=latency, acc=_acc())
        rows_out = []
        for (ready, _), r in zip(spacing, out):
            rows_out.append({"i__ready": ready, "o__valid": int(r is not None),
                             "o__payload": None if r is None else out_codec.pack(r)})
        return rows_out
    return model


async def _run(dut, name, beats, *, idle_prob=None):
    fmt, rows, cols, block_size, lanes = _params()
    bf16 = get_format(fmt).name == "bf16"
    cfg = get_test_config()
    in_codec = LayoutCodec(array_beat_layout(fmt, rows, cols, lanes))
    out_codec = LayoutCodec(array_row_layout(rows, cols, BFloat16 if _acc() == "bf16" else Float32))
    txns = [in_codec.pack(beat_payload(b, bf16)) for b in beats]
    await clock_and_reset(dut)
    trace = await run_stream_test(
        dut, txns, _model(in_codec, out_codec, fmt, rows, cols, block_size, lanes, bf16),
        idle_prob=cfg.get("idle_prob", 0.25) if idle_prob is None else idle_prob,
        seed_salt=name, one_to_one=False, drain_cycles=rows + 4)
    results = sum(1 for row in trace.expected if row.get("o__valid"))
    dut._log.info(f"{name}: {len(beats)} beats, {results} result rows compared, {trace.comparisons} comparisons")
    assert results > 0, "the test produced no result to compare"
    return trace, out_codec


def _rng(name):
    return np.random.default_rng([get_seed(), sum(map(ord, name))])


@cocotb.test()
async def random_tiles(dut):
    """Random tiles with K of 1, 2 and 5 blocks: wide dynamic range, every code, NaN/Inf
    and extreme scales, zeros, float32 overflow; random idle cycles."""
    fmt, rows, cols, block_size, lanes = _params()
    cfg = get_test_config()
    beats = random_tile_beats(_rng("random_tiles"), fmt, rows, cols, block_size=block_size, lanes=lanes,
                              count=cfg.get("count", 24), k_blocks=tuple(cfg.get("k_blocks", (1, 2, 5))))
    await _run(dut, "random_tiles", beats)


@cocotb.test()
async def back_to_back(dut):
    """Random tiles one beat every cycle (short tiles meet the last-beat spacing)."""
    fmt, rows, cols, block_size, lanes = _params()
    cfg = get_test_config()
    beats = random_tile_beats(_rng("back_to_back"), fmt, rows, cols, block_size=block_size, lanes=lanes,
                              count=max(6, cfg.get("count", 24) // 2),
                              k_blocks=tuple(cfg.get("k_blocks", (1, 2, 5))))
    await _run(dut, "back_to_back", beats, idle_prob=0.0)


@cocotb.test()
async def framing(dut):
    """Abandoned tiles, last mid-block, tiles without first, single-beat tiles."""
    fmt, rows, cols, block_size, lanes = _params()
    beats = framing_beats(_rng("framing"), fmt, rows, cols, block_size=block_size, lanes=lanes)
    await _run(dut, "framing", beats)


@cocotb.test()
async def matrices(dut):
    """Back-to-back whole matrices (2 x 2 output tiles each), tile-quantized and 1D-quantized;
    the result rows collected from the DUT equal golden ``matmul`` of the whole matrices."""
    fmt, rows, cols, block_size, lanes = _params()
    rng = _rng("matrices")
    jobs = [matrix_beats(rng, fmt, rows, cols, block_size=block_size, lanes=lanes, tiled=t, k_blocks=k,
                         acc=_acc())
            for t, k in ((True, 2), (False, 3), (True, 1))]
    beats = [b for job in jobs for b in job[0]]
    trace, out_codec = await _run(dut, "matrices", beats, idle_prob=0.0)
    got = [out_codec.unpack(o["o__payload"], depth=2) for o in trace.outputs if o["o__valid"] == 1]
    pos = 0
    for _, c, M, N in jobs:
        res = np.zeros((M, N), dtype=np.uint32)
        for mi in range(M // rows):
            for nj in range(N // cols):
                for i in range(rows):
                    res[mi * rows + i, nj * cols:(nj + 1) * cols] = got[pos]["c"]
                    pos += 1
        assert np.array_equal(res, c), f"C differs from golden matmul at {np.argwhere(res != c)[:4].tolist()}"
    assert pos == len(got)
