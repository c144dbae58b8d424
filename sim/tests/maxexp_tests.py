"""cocotb regression of the block max-exponent finder (:class:`mxsf.hw.maxexp.BlockMaxExponent`).

Every test drives groups of ``n`` float32 values, ``lanes`` a beat, and compares
``i.ready``, ``o.valid`` and the result on every cycle with
:func:`mxsf.golden.requant_model.maxexp_cycle_model` (which models the back-pressure
exactly). Knobs from the test config: ``count`` (groups per random test), ``idle_prob``,
``stall_prob``.

The stimulus generators are plain NumPy (also used by ``tests/test_maxexp.py``).
"""

import cocotb
import numpy as np

from mxsf.golden.requant_model import StreamCycle, maxexp_cycle_model, maxexp_results
from mxsf.hw.maxexp import MaxExponentResult
from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_seed, get_test_config, run_stream_test
from mxsf.sim.packing import LayoutCodec

__all__ = ["random_groups", "special_groups", "backpressure", "back_to_back",
           "random_group_bits", "special_group_bits", "pack_beats", "unpack_beat"]

_MASK32 = 0xFFFFFFFF


# ----------------------------------------------------------------------------------------
# Stimulus (NumPy only)


def _field_values(rng, size, exp_fields) -> np.ndarray:
    """float32 bit patterns with the given exponent fields, random signs and mantissas."""
    sign = rng.integers(0, 2, size, dtype=np.uint32) << np.uint32(31)
    mant = rng.integers(0, 1 << 23, size, dtype=np.uint32)
    return sign | (np.asarray(exp_fields, dtype=np.uint32) << np.uint32(23)) | mant


def random_group_bits(rng, n: int, count: int) -> list:
    """Random groups: uniform bits, binade clusters anywhere in the range, a few specials."""
    groups = []
    for _ in range(count):
        kind = rng.integers(0, 4)
        if kind == 0:            # uniform over all bit patterns (NaN/Inf included)
            g = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        else:                    # a cluster of exponent fields around a random centre
            centre = int(rng.integers(0, 255))
            spread = int(rng.integers(0, 12))
            fields = np.clip(centre + rng.integers(-spread, spread + 1, n), 0, 254)
            g = _field_values(rng, n, fields)
            if kind == 2:        # sprinkle zeros and subnormals
                k = rng.integers(0, n + 1)
                idx = rng.permutation(n)[:k]
                sign = rng.integers(0, 2, k, dtype=np.uint32) << np.uint32(31)
                mant = np.where(rng.random(k) < 0.5, 0, rng.integers(0, 1 << 23, k)).astype(np.uint32)
                g[idx] = sign | mant            # +/-0 or a subnormal
        groups.append(g.astype(np.uint32))
    return groups


def special_group_bits(rng, n: int) -> list:
    """NaN, +Inf, -Inf at each end and in the middle, zeros, subnormals, extremes."""
    groups = []
    positions = sorted({0, n // 2, n - 1})
    for special in (0x7FC00000, 0xFFFFFFFF, 0x7F800001, 0x7F800000, 0xFF800000):
        for pos in positions:
            g = _field_values(rng, n, rng.integers(0, 255, n))
            g[pos] = special
            groups.append(g)
    zeros = np.zeros(n, dtype=np.uint32)
    groups.append(zeros.copy())                                          # all +0
    groups.append(zeros | np.uint32(0x80000000))                         # all -0
    groups.append(rng.integers(0, 2, n, dtype=np.uint32) << np.uint32(31))  # mixed signed zeros
    for pos in positions:
        g = rng.integers(0, 2, n, dtype=np.uint32) << np.uint32(31)
        g[pos] |= np.uint32(1)                                           # one smallest subnormal
        groups.append(g)
    groups.append(_field_values(rng, n, np.zeros(n, dtype=np.uint32)) | np.uint32(1))  # subnormals
    for pos in positions:
        g = _field_values(rng, n, rng.integers(0, 255, n))
        g[pos] = 0x7F7FFFFF if pos % 2 else 0xFF7FFFFF                   # largest finite
        groups.append(g)
        g = np.zeros(n, dtype=np.uint32)
        g[pos] = 0x00800000                                              # smallest normal
        groups.append(g)
    groups.append(_field_values(rng, n, np.full(n, 254)))                # every value in the top binade
    return [g.astype(np.uint32) for g in groups]


def pack_beats(groups, lanes: int) -> list:
    """Flatten groups into beats of ``lanes`` values, packed as ints (lane 0 low)."""
    beats = []
    for g in groups:
        vals = [int(v) for v in g]
        for k in range(0, len(vals), lanes):
            word = 0
            for j, v in enumerate(vals[k:k + lanes]):
                word |= v << (32 * j)
            beats.append(word)
    return beats


def unpack_beat(word: int, lanes: int) -> tuple:
    return tuple((word >> (32 * j)) & _MASK32 for j in range(lanes))


# ----------------------------------------------------------------------------------------
# cocotb


def _params():
    p = dict(get_design().params)
    lanes = p.get("lanes") or p["n"]
    return p["n"], lanes


def _model(n, lanes, codec):
    def model(inputs, latency):
        trace = [StreamCycle(unpack_beat(c["i__payload"], lanes) if c.get("i__valid") else None,
                             bool(c.get("o__ready", 1))) for c in inputs]
        rows = maxexp_cycle_model(trace, n=n, lanes=lanes, latency=latency)
        return [{"i__ready": int(r.i_ready), "o__valid": int(r.o_valid),
                 "o__payload": None if r.o is None else codec.pack(
                     {"max_exp": r.o.max_exp, "any_nan_inf": int(r.o.any_nan_inf),
                      "all_zero": int(r.o.all_zero)})}
                for r in rows]
    return model


async def _run(dut, name, groups, *, idle_prob=None, stall_prob=None):
    n, lanes = _params()
    cfg = get_test_config()
    codec = LayoutCodec(MaxExponentResult)
    await clock_and_reset(dut)
    trace = await run_stream_test(
        dut, pack_beats(groups, lanes), _model(n, lanes, codec),
        idle_prob=cfg.get("idle_prob", 0.2) if idle_prob is None else idle_prob,
        stall_prob=cfg.get("stall_prob", 0.3) if stall_prob is None else stall_prob,
        seed_salt=name, one_to_one=False)
    # Every group's result, once, in order (independent of the cycle model's timing).
    got = [codec.unpack(o["o__payload"]) for i, o in zip(trace.inputs, trace.outputs)
           if o["o__valid"] == 1 and i.ports.get("o__ready", 1) == 1]
    want = [maxexp_results(g) for g in groups]
    assert len(got) == len(want), f"{len(got)} results for {len(want)} groups"
    for k, (g, w) in enumerate(zip(got, want)):
        assert (g["max_exp"], bool(g["any_nan_inf"]), bool(g["all_zero"])) == \
            (w.max_exp, w.any_nan_inf, w.all_zero), f"group {k}: got {g}, expected {w}"
    dut._log.info(f"{name}: {len(groups)} groups, {trace.comparisons} comparisons")


def _rng(name):
    return np.random.default_rng([get_seed(), sum(map(ord, name))])


@cocotb.test()
async def random_groups(dut):
    """Random groups over the whole float32 range, random input gaps and output stalls."""
    n, _ = _params()
    await _run(dut, "random_groups", random_group_bits(_rng("random_groups"), n,
                                                       get_test_config().get("count", 60)))


@cocotb.test()
async def special_groups(dut):
    """NaN/Inf anywhere, all-zero (+0, -0, mixed), subnormals, largest and smallest normals."""
    n, _ = _params()
    rng = _rng("special_groups")
    await _run(dut, "special_groups", special_group_bits(rng, n))


@cocotb.test()
async def backpressure(dut):
    """Heavy output stalls and input gaps."""
    n, _ = _params()
    rng = _rng("backpressure")
    await _run(dut, "backpressure", random_group_bits(rng, n, max(8, get_test_config().get("count", 60) // 2)),
               idle_prob=0.5, stall_prob=0.7)


@cocotb.test()
async def back_to_back(dut):
    """One beat every cycle, never stalled: the input must never be refused."""
    n, _ = _params()
    rng = _rng("back_to_back")
    groups = random_group_bits(rng, n, max(8, get_test_config().get("count", 60) // 2))
    await _run(dut, "back_to_back", groups, idle_prob=0.0, stall_prob=0.0)
