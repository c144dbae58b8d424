"""cocotb regression of the MX processing element (:class:`mxsf.hw.pe.MXProcessingElement`).

Every test drives beats (with seeded random idle cycles) and compares the output
valid and data on every cycle with :func:`mxsf.golden.models.pe_cycle_model`.
Knobs come from the test config: ``count`` (dot products per random test),
``idle_prob``, ``exhaustive`` (run the all-pairs sweep), ``pair_sample`` (number of
random pairs when not exhaustive), ``scale_sets`` (names from ``pair_scale_sets``).
"""

import functools

import cocotb
import numpy as np

from mxsf.golden.formats import get_format
from mxsf.golden.models import Beat, pe_cycle_model
from mxsf.hw.pe import mx_beat_layout
from mxsf.sim import pe_stimulus as stim
from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_seed, get_test_config, run_stream_test
from mxsf.sim.packing import LayoutCodec

__all__ = ["random_dots", "back_to_back", "cancellation", "framing", "code_pairs", "beat_fields", "long_dots"]


def _params():
    p = dict(get_design().params)
    p.setdefault("block_size", get_format(p["fmt"]).default_block_size)     # mx9/mx6/mx4: 16
    p.setdefault("lanes", p["block_size"])
    return p["fmt"], p["block_size"], p["lanes"]


def _acc():
    """The design's accumulator (SPEC.md 10); absent means fp32."""
    return get_design().params.get("acc", "fp32")


def _model(codec, fmt, block_size, lanes):
    def model(inputs, latency):
        trace = []
        for cyc in inputs:
            if cyc.get("i__valid"):
                v = codec.unpack(cyc["i__payload"])
                trace.append(Beat(a=v["a"], b=v["b"], scale_a=v["scale_a"], scale_b=v["scale_b"],
                                  first=bool(v["first"]), last=bool(v["last"]),
                                  micro_a=v.get("micro_a"), micro_b=v.get("micro_b")))
            else:
                trace.append(None)
        out = pe_cycle_model(trace, fmt=fmt, block_size=block_size, lanes=lanes, latency=latency, acc=_acc())
        return [{"o__valid": int(r is not None), "o__payload": r} for r in out[:len(inputs)]]
    return model


async def _run(dut, name, beats, *, idle_prob=None):
    fmt, block_size, lanes = _params()
    cfg = get_test_config()
    codec = LayoutCodec(mx_beat_layout(fmt, lanes))
    txns = [codec.pack(beat_fields(b)) for b in beats]
    await clock_and_reset(dut)
    trace = await run_stream_test(
        dut, txns, _model(codec, fmt, block_size, lanes),
        idle_prob=cfg.get("idle_prob", 0.25) if idle_prob is None else idle_prob,
        seed_salt=name, one_to_one=False)
    results = sum(1 for row in trace.expected if row.get("o__valid"))
    dut._log.info(f"{name}: {len(beats)} beats, {results} results compared, {trace.comparisons} comparisons")
    assert results > 0, "the test produced no result to compare"


def beat_fields(b: Beat) -> dict:
    """The payload fields of a beat (with the microexponents of the BDR formats)."""
    v = {"a": b.a, "b": b.b, "scale_a": b.scale_a, "scale_b": b.scale_b,
         "first": int(b.first), "last": int(b.last)}
    if b.micro_a is not None:
        v.update(micro_a=b.micro_a, micro_b=b.micro_b)
    return v


def _rng(name):
    return np.random.default_rng([get_seed(), sum(map(ord, name))])


@cocotb.test()
async def random_dots(dut):
    """Random multi-block dot products: uniform codes (every special code) and realistic
    data, random scales with NaN scales and extremes, random idle cycles."""
    fmt, block_size, lanes = _params()
    beats = stim.random_mx_dots(_rng("random_dots"), fmt, block_size=block_size, lanes=lanes,
                                count=get_test_config().get("count", 60))
    await _run(dut, "random_dots", beats)


@cocotb.test()
async def back_to_back(dut):
    """Random dot products, one beat every cycle (no idle cycles)."""
    fmt, block_size, lanes = _params()
    beats = stim.random_mx_dots(_rng("back_to_back"), fmt, block_size=block_size, lanes=lanes,
                                count=max(10, get_test_config().get("count", 60) // 3))
    await _run(dut, "back_to_back", beats, idle_prob=0.0)


@cocotb.test()
async def cancellation(dut):
    """Exact cancellation to +0, mixed signs and long accumulations."""
    fmt, block_size, lanes = _params()
    beats = stim.cancelling_mx_dots(_rng("cancellation"), fmt, block_size=block_size, lanes=lanes,
                                    count=max(6, get_test_config().get("count", 60) // 4))
    await _run(dut, "cancellation", beats)


@cocotb.test()
async def framing(dut):
    """first mid-way, last mid-block, dot products without first, single-beat dots."""
    fmt, block_size, lanes = _params()
    beats = stim.framing_mx_beats(_rng("framing"), fmt, block_size=block_size, lanes=lanes)
    await _run(dut, "framing", beats)


@cocotb.test()
async def code_pairs(dut):
    """Each (a, b) code pair as the only non-zero product of its block, at neutral scales
    and at scales that push it into float32 subnormals and overflow: every pair when the
    config says ``exhaustive``, else a random sample of ``pair_sample`` pairs."""
    fmt, block_size, lanes = _params()
    cfg = get_test_config()
    rng = _rng("code_pairs")
    f = get_format(fmt)
    if cfg.get("exhaustive"):
        pairs = None
    else:
        k = cfg.get("pair_sample", 300)
        pairs = list(zip(rng.integers(0, f.n_codes, k).tolist(), rng.integers(0, f.n_codes, k).tolist()))
    sets = stim.pair_scale_sets(fmt)
    beats = []
    for name in cfg.get("scale_sets", list(sets)):
        beats += stim.exhaustive_pair_beats(fmt, block_size=block_size, lanes=lanes, scales=sets[name],
                                            pairs=pairs)
    await _run(dut, "code_pairs", beats, idle_prob=cfg.get("idle_prob", 0.02))


@cocotb.test()
async def long_dots(dut):
    """Dot products of up to ``max_blocks`` blocks (default 40) with scales within a few
    binades of each other, so every accumulation step rounds (bf16 accumulator: ties,
    cancellation, growth to overflow with large scales)."""
    fmt, block_size, lanes = _params()
    cfg = get_test_config()
    rng = _rng("long_dots")
    f = get_format(fmt)
    beats = []
    for k in range(cfg.get("count", 20)):
        nblk = int(rng.integers(2, cfg.get("max_blocks", 40) + 1))
        if lanes > block_size:                      # BDR beats of several whole blocks
            nblk = -(-nblk * block_size // lanes) * lanes // block_size
        a = rng.integers(0, f.n_codes, nblk * block_size)
        b = rng.integers(0, f.n_codes, nblk * block_size)
        if k % 2:                                   # finite codes only: long finite sums
            fin = np.isfinite(f.values)
            a = np.where(fin[a], a, 0)
            b = np.where(fin[b], b, 0)
        centre = 127 if k % 5 else int(rng.choice([20, 230]))   # tiny and huge results too
        sa = rng.integers(centre - 3, centre + 4, nblk)
        sb = rng.integers(124, 131, nblk)
        mu = {}
        if f.microexp_group:                        # BDR: random pair microexponents too
            mu = {k: rng.integers(0, 2, nblk * block_size // f.microexp_group).tolist()
                  for k in ("micro_a", "micro_b")}
        beats += stim.dot_beats(a.tolist(), b.tolist(), sa.tolist(), sb.tolist(),
                                block_size=block_size, lanes=lanes, **mu)
    await _run(dut, "long_dots", beats)
