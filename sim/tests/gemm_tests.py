"""cocotb regression of the MX GEMM (:class:`mxsf.hw.gemm.MXGemm`), end to end.

A and B are quantized in ``block_size`` tiles by the golden ``quantize_tiles`` and
loaded once; runs then compute ``C = op(A) @ op(B)`` for the four transpose choices
(``A @ B.T`` is the backward-pass reuse of a stored weight) and a repeat of the first.
Checked against golden ``matmul`` and ``requantize_tile``:

* the float32 rows on ``acc``: every cycle when ``o`` is not stalled (row ``r`` of
  output tile ``n`` at ``acc_latency + n * tile_period + r`` after ``start``), in order
  otherwise;
* every ``o`` beat (codes, scale, tile marks) in order, with random ``o.ready`` stalls
  in some runs, and the first ``o`` beat at ``latency`` when not stalled;
* the repeat of the first run after the transposed runs is equal bit for bit (the
  stored codes and scales were not changed by reading them transposed).

Knobs from the test config: ``stall_prob`` (default 0.4; the last run stalls 80% of
cycles, so the credits run out and tile issue pauses), ``span`` (dynamic range).
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from mxsf.golden.matmul import matmul
from mxsf.golden.quantize import quantize_tiles, requantize_tile
from mxsf.hw.gemm import MXGemm
from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_seed, get_test_config
from mxsf.sim.packing import LayoutCodec

__all__ = ["transposes", "back_to_back_runs", "gemm_operands", "expected_run"]


def gemm_operands(rng, gemm, span=30):
    """Float32 A and B (dim x dim): per-tile magnitudes over 2^-span .. 2^span, one all-zero
    tile, one tile near the float32 maximum (C overflows to Inf: NaN scale) and, in A, one
    NaN (a NaN tile scale)."""
    d, bs = gemm.dim, gemm.block_size
    nt = d // bs

    def one():
        mag = np.exp2(rng.uniform(-span, span, size=(nt, nt))).repeat(bs, 0).repeat(bs, 1)
        return (rng.standard_normal((d, d)) * mag * np.exp2(rng.uniform(-4, 4, (d, d)))).astype(np.float32)

    xa, xb = one(), one()
    xa[:bs, bs:2 * bs] = 0 if nt > 1 else xa[:bs, bs:2 * bs]
    xb[-bs:, :bs] = (np.sign(xb[-bs:, :bs]) * 2e38).astype(np.float32)
    xa[-bs:, -bs:] = (np.sign(xa[-bs:, -bs:]) * 3e38).astype(np.float32)
    xa[int(rng.integers(d)), int(rng.integers(d))] = np.nan
    return xa, xb


def expected_run(gemm, qa, qb, transpose_a, transpose_b, tile_offset=0):
    """Golden rows of C (output tiles row-major, ``rows`` rows each) and ``o`` beats; the
    re-quantizer's options are the GEMM's, its first tile is number ``tile_offset`` since
    reset (stochastic rounding)."""
    c = matmul(qa.T if transpose_a else qa, qb.T if transpose_b else qb)
    rows, cols = gemm.rows, gemm.cols
    acc, out = [], []
    for mi in range(gemm.dim // rows):
        for nj in range(gemm.dim // cols):
            tile = c[mi * rows:(mi + 1) * rows, nj * cols:(nj + 1) * cols]
            q = requantize_tile(tile, gemm.fmt, tile_index=tile_offset + mi * (gemm.dim // cols) + nj,
                                **gemm.options)
            for r in range(rows):
                acc.append([int(x) for x in tile[r].view(np.uint32)])
                out.append({"codes": [int(x) for x in q.codes[r]], "scale": int(q.scale_e8m0.flat[0]),
                            "first": int(r == 0), "last": int(r == rows - 1)})
    return acc, out


def _gemm():
    return MXGemm(**get_design().params)


async def _load(dut, gemm, qa, qb, codecs):
    """Write both operands (codes row by row, then the tile scales), one write a cycle."""
    clk = dut.clk
    writes = []
    for name, q, w in (("a", qa, gemm.a_word), ("b", qb, gemm.b_word)):
        for r in range(gemm.dim):
            for s in range(gemm.dim // w):
                writes.append((f"{name}_codes", {"row": r, "seg": s,
                                                 "codes": [int(x) for x in q.codes[r, s * w:(s + 1) * w]]}))
        nt = gemm.dim // gemm.block_size
        writes += [(f"{name}_scale", {"tile_row": i, "tile_col": j, "scale": int(q.scale_e8m0[i, j])})
                   for i in range(nt) for j in range(nt)]
    ports = ("a_codes", "a_scale", "b_codes", "b_scale")
    for port, payload in writes:
        await RisingEdge(clk)
        for p in ports:
            getattr(dut, f"{p}__valid").value = int(p == port)
        getattr(dut, f"{port}__payload").value = codecs[port].pack(payload)
    await RisingEdge(clk)
    for p in ports:
        getattr(dut, f"{p}__valid").value = 0


async def _runs(dut, gemm, runs, codecs, rng, *, gap=3):
    """Run ``runs`` (list of (transpose_a, transpose_b, stall_prob)). With ``gap`` > 0 a
    run's ``start`` is presented ``gap`` cycles after the previous run's last ``o`` beat
    (an idle GEMM, so its timing can be checked); with 0 as soon as possible (back to
    back). Returns per run the start cycle and the per-cycle acc/o observations."""
    clk = dut.clk
    per_run = [{"start": None, "acc": [], "o": []} for _ in runs]
    n_o = [gemm.tiles * gemm.rows for _ in runs]
    cur = 0              # run whose start is being presented
    wait = 0
    taken_o = 0
    o_run = 0            # run whose o beats are arriving
    acc_run, acc_count = 0, 0
    cycle = 0
    done_at = None
    while done_at is None or cycle < done_at:
        await RisingEdge(clk)
        stall = runs[min(o_run, len(runs) - 1)][2]
        ready = int(rng.random() >= stall)
        dut.o__ready.value = ready
        presenting = cur < len(runs) and wait == 0 and (gap == 0 or o_run == cur)
        dut.start__valid.value = int(presenting)
        if presenting:
            dut.start__payload.value = codecs["start"].pack({"transpose_a": runs[cur][0], "transpose_b": runs[cur][1]})
        await ReadOnly()
        if presenting and int(dut.start__ready.value):
            per_run[cur]["start"] = cycle
            cur += 1
            wait = gap
        elif not presenting and wait and o_run == cur:
            wait -= 1
        if int(dut.acc__valid.value):
            per_run[acc_run]["acc"].append((cycle, codecs["acc"].unpack(int(dut.acc__payload.value), depth=2)))
            acc_count += 1
            if acc_count == n_o[acc_run]:
                acc_run, acc_count = acc_run + 1, 0
        if int(dut.o__valid.value) and ready:
            per_run[o_run]["o"].append((cycle, codecs["o"].unpack(int(dut.o__payload.value), depth=2)))
            taken_o += 1
            if len(per_run[o_run]["o"]) == n_o[o_run]:
                o_run += 1
                if o_run == len(runs):
                    done_at = cycle + gemm.latency + 8     # anything extra would show up
        cycle += 1
        if cycle > 200000:
            raise AssertionError("GEMM did not finish")
    extra_acc = sum(len(r["acc"]) for r in per_run) - sum(n_o)
    assert extra_acc == 0 and acc_run == len(runs), f"unexpected acc rows ({extra_acc} extra)"
    return per_run


def _check(dut, gemm, run, obs, qa, qb, index):
    """Run number ``index`` since reset (its tiles follow the earlier runs' in the count)."""
    ta, tb, stall = run
    exp_acc, exp_o = expected_run(gemm, qa, qb, ta, tb, tile_offset=index * gemm.tiles)
    got_acc = [p["c"] for _, p in obs["acc"]]
    for k, (e, g) in enumerate(zip(exp_acc, got_acc)):
        if e != g:
            raise AssertionError(f"run {run}: acc row {k} (tile {k // gemm.rows}, row {k % gemm.rows}) "
                                 f"expected {[hex(x) for x in e]} got {[hex(x) for x in g]}")
    assert len(got_acc) == len(exp_acc)
    got_o = [p for _, p in obs["o"]]
    for k, (e, g) in enumerate(zip(exp_o, got_o)):
        if e != g:
            raise AssertionError(f"run {run}: o beat {k} (tile {k // gemm.rows}) expected {e} got {g}")
    assert len(got_o) == len(exp_o)
    if stall == 0 and obs["start"] is not None:
        s = obs["start"]
        want = [s + gemm.acc_latency + (k // gemm.rows) * gemm.tile_period + k % gemm.rows
                for k in range(len(exp_acc))]
        got = [c for c, _ in obs["acc"]]
        assert got == want, f"run {run}: acc rows in cycles {got[:8]}..., expected {want[:8]}..."
        assert obs["o"][0][0] == s + gemm.latency, \
            f"run {run}: first o beat in cycle {obs['o'][0][0] - s} after start, expected latency {gemm.latency}"
    dut._log.info(f"run transpose_a={ta} transpose_b={tb} stall={stall}: {len(got_acc)} acc rows, "
                  f"{len(got_o)} o beats checked")


def _codecs(gemm):
    members = gemm.signature.members
    return {name: LayoutCodec(members[name].signature.members["payload"].shape)
            for name in ("a_codes", "a_scale", "b_codes", "b_scale", "start", "acc", "o")}


def _setup(name):
    gemm = _gemm()
    rng = np.random.default_rng([get_seed(), sum(map(ord, name))])
    xa, xb = gemm_operands(rng, gemm, span=get_test_config().get("span", 30))
    bs = gemm.block_size
    return gemm, rng, quantize_tiles(xa, gemm.fmt, (bs, bs)), quantize_tiles(xb, gemm.fmt, (bs, bs))


@cocotb.test()
async def transposes(dut):
    """A @ B, A @ B.T, A.T @ B, A.T @ B.T from the same stored tiles, then A @ B again."""
    gemm, rng, qa, qb = _setup("transposes")
    stall = get_test_config().get("stall_prob", 0.4)
    runs = [(0, 0, 0.0), (0, 1, 0.0), (1, 0, stall), (1, 1, 0.0), (0, 0, 0.8)]
    codecs = _codecs(gemm)
    await clock_and_reset(dut)
    dut.o__ready.value = 1
    await _load(dut, gemm, qa, qb, codecs)
    obs = await _runs(dut, gemm, runs, codecs, rng)
    for index, (run, o) in enumerate(zip(runs, obs)):
        _check(dut, gemm, run, o, qa, qb, index)
    starts = [c for c, p in obs[-1]["acc"] if p["first"]]
    assert max(np.diff(starts)) > gemm.tile_period, "the stalled run never paused tile issue (credits untested)"
    port = "acc" if gemm.options.get("rounding") == "stochastic" else "o"   # SR codes depend on the tile count
    first = [p for _, p in obs[0][port]]
    again = [p for _, p in obs[-1][port]]
    assert first == again, "A @ B after the transposed runs differs: stored operands changed"


@cocotb.test()
async def back_to_back_runs(dut):
    """Runs started as soon as the previous one has issued its tiles: outputs continue."""
    gemm, rng, qa, qb = _setup("back_to_back_runs")
    runs = [(0, 1, 0.0), (1, 0, 0.0), (0, 0, 0.0)]
    codecs = _codecs(gemm)
    await clock_and_reset(dut)
    dut.o__ready.value = 1
    await _load(dut, gemm, qa, qb, codecs)
    obs = await _runs(dut, gemm, runs, codecs, rng, gap=0)
    for index, (run, o) in enumerate(zip(runs, obs)):
        _check(dut, gemm, (run[0], run[1], 1.0), o, qa, qb, index)    # timing checked on the first only
    _check(dut, gemm, runs[0], obs[0], qa, qb, 0)
    cycles = [c for o in obs for c, _ in o["acc"]]
    gaps = np.diff(cycles)
    assert gaps.max() <= max(1, gemm.tile_period - gemm.rows + 1), \
        f"acc stream has a gap of {gaps.max()} cycles between runs"
