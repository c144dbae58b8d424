"""cocotb regression of the float32 adder against NumPy float32 addition
(through :class:`mxsf.sim.wrappers.Float32AdderLanes`): >= 10^6 random pairs drawn
from every class (zeros of both signs, subnormals, normals near and far apart,
cancellation, overflow, Inf, NaN, exact ties) by default (config ``pairs``)."""

import cocotb
import numpy as np

from mxsf.golden.matmul import CANONICAL_NAN_BITS
from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_seed, get_test_config, run_stream_test

__all__ = ["random_pairs", "adder_operands"]

_SPECIALS = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001,
                      0x7F800001, 0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000,
                      0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000], dtype=np.uint32)


def adder_operands(rng, n):
    """n operand pairs (uint32 bits) mixing every class of float32."""
    a = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, size=n, dtype=np.uint64).astype(np.uint32)
    kind = rng.integers(0, 6, size=n)
    # close exponents (cancellation): b = a with a few exponent/mantissa bits changed, opposite sign
    close = kind == 1
    b[close] = (a[close] ^ 0x80000000) ^ rng.integers(0, 1 << 4, size=int(close.sum())).astype(np.uint32)
    # far apart: exponent differences of 20..30 (guard/sticky paths)
    far = kind == 2
    e = rng.integers(40, 200, size=int(far.sum())).astype(np.uint32)
    a[far] = (a[far] & 0x807FFFFF) | (e << 23)
    b[far] = (b[far] & 0x807FFFFF) | ((e - rng.integers(20, 31, size=e.size).astype(np.uint32)) << 23)
    # subnormal range
    sub = kind == 3
    a[sub] &= 0x80FFFFFF
    b[sub] &= 0x80FFFFFF
    # overflow range
    big = kind == 4
    a[big] |= 0x7F000000
    b[big] = (b[big] & 0x80FFFFFF) | 0x7F000000
    # specials on either side
    sp = kind == 5
    a[sp] = rng.choice(_SPECIALS, size=int(sp.sum()))
    # exact ties: b = ulp/2-aligned values so a + b is a tie in a binade
    tie = rng.random(n) < 0.05
    a[tie] = (a[tie] & 0xFFFFFFFE) | 1
    b[tie] = (a[tie] & 0xFF800000) - (24 << 23)
    b[tie] = np.where((a[tie] >> 23 & 0xFF) > 30, b[tie], 0)
    return a, b


def expected_sum(a, b, man_width=23):
    """Golden sums: numpy float32 addition, or (``man_width=7``) ``bf16_add`` of the bfloat16
    ``a >> 16`` and the float32 ``b`` (the accumulator use: a's low half must be zero)."""
    if man_width == 7:
        from mxsf.golden.matmul import bf16_add
        return bf16_add((a >> np.uint32(16)).astype(np.uint16), b.view(np.float32)).astype(np.uint32)
    with np.errstate(all="ignore"):
        s = a.view(np.float32) + b.view(np.float32)
    return np.where(np.isnan(s), CANONICAL_NAN_BITS, s.view(np.uint32)).astype(np.uint32)


@cocotb.test()
async def random_pairs(dut):
    lanes = get_design().params.get("lanes", 16)
    man_width = get_design().params.get("man_width", 23)
    cfg = get_test_config()
    rng = np.random.default_rng([get_seed(), 32])
    n = cfg.get("pairs", 1 << 20)
    beats = -(-n // lanes)
    a, b = adder_operands(rng, beats * lanes)
    if man_width == 7:       # a is the bfloat16 accumulator; half the pairs swapped (b the larger)
        a &= np.uint32(0xFFFF0000)
        a = np.where((a & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000), np.uint32(0x7FC00000), a)
        # b on a bfloat16 midpoint (low half 0x8000) and a far below it (or zero): the
        # alignment sticky alone decides the rounding
        tie = rng.random(a.size) < 0.15
        k = int(tie.sum())
        b[tie] = (b[tie] & np.uint32(0xFFFF0000)) | np.uint32(0x8000)
        b[tie] = np.where((b[tie] >> np.uint32(23) & np.uint32(0xFF)) == 0xFF, b[tie] & np.uint32(0xBFFFFFFF), b[tie])
        bexp = (b[tie] >> np.uint32(23)) & np.uint32(0xFF)
        aexp = np.clip(bexp.astype(np.int64) - rng.integers(9, 60, k), 0, 254).astype(np.uint32)
        a[tie] = ((rng.integers(0, 2, k).astype(np.uint32) << np.uint32(31)) | (aexp << np.uint32(23))
                  | (rng.integers(0, 128, k).astype(np.uint32) << np.uint32(16)))
    a2 = a.reshape(beats, lanes).astype(object)
    b2 = b.reshape(beats, lanes).astype(object)
    shifts = [64 * k for k in range(lanes)]
    txns = [sum((int(x) | (int(y) << 32)) << s for x, y, s in zip(ra, rb, shifts)) for ra, rb in zip(a2, b2)]
    want = expected_sum(a, b, man_width).reshape(beats, lanes)
    ow = 9 + man_width
    table = {}
    for t, row in enumerate(want):
        table[txns[t]] = sum(int(v) << (ow * k) for k, v in enumerate(row))

    def model(inputs, latency):
        out = [{"o__valid": 0, "o__payload": None} for _ in inputs]
        for c, cyc in enumerate(inputs):
            if cyc.get("i__valid") and c + latency < len(out):
                out[c + latency] = {"o__valid": 1, "o__payload": table[cyc["i__payload"]]}
        return out

    await clock_and_reset(dut)
    trace = await run_stream_test(dut, txns, model, idle_prob=cfg.get("idle_prob", 0.05), seed_salt="fp32")
    dut._log.info(f"{beats * lanes} pairs compared, {trace.comparisons} comparisons")
