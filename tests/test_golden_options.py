"""The numerics options of the golden model (SPEC.md 8, 9, 10) against independent references.

* Scale rules: ``fractions.Fraction`` arithmetic on the SPEC.md 8 definitions, at and around
  every power of two, at ``largest x 2^k`` and at the ``even`` rounding threshold, with
  their float32 neighbours, for every format.
* Elements: the hand-derived value tables of ``test_golden_quantize`` (nearest value, ties
  to the even code, saturation), and for stochastic rounding the SPEC.md 9 rule evaluated
  with Fractions and random bits from a plain-integer implementation of
  ``docs/stochastic_rounding.md``.
* bfloat16 accumulation: exact Fraction sums rounded to bfloat16 by integer arithmetic.
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest

from mxsf.golden import (Accumulator, MXArray, Rounding, ScaleRounding, bf16_add, bf16_bits_to_float32,
                         dequantize, get_format, matmul, quantize, quantize_tiles, requantize_tile)
from mxsf.golden.matmul import batched_dot
from mxsf.golden.models import pe_cycle_model
from mxsf.golden.options import sr_random_bits
from test_golden_quantize import NAMES, SPEC, ref_encode, ref_table

TWO = Fraction(2)
M32 = 0xFFFF_FFFF


# ------------------------------------------------------------------------------------
# Independent references
# ------------------------------------------------------------------------------------

def floor_log2(x: Fraction) -> int:
    """k with 2^k <= x < 2^(k+1), exactly."""
    k = x.numerator.bit_length() - x.denominator.bit_length()
    if TWO ** k > x:
        k -= 1
    if TWO ** (k + 1) <= x:
        k += 1
    return k


EVEN_M = {"fp8_e4m3": 3, "fp8_e5m2": 2, "fp6_e3m2": 2, "fp6_e2m3": 3, "fp4_e2m1": 1,
          "fp8_e2m5": 5, "mxsf": 5, "int8": 6}           # SPEC.md 8, copied from the text


def ref_scale(amax: Fraction, name: str, mode: str) -> int:
    """E of SPEC.md 3/8 for a finite block maximum ``amax``, clamped to [-127, 127]."""
    emax = SPEC[name][5]
    big = Fraction(float(ref_table(name)[0][-1]))
    if amax == 0:
        return -127
    if mode == "floor":
        e = floor_log2(amax) - emax
    elif mode == "ceil":
        e = floor_log2(amax / big)           # then the smallest E with amax <= big 2^E
        while amax > big * TWO ** e:
            e += 1
        while amax <= big * TWO ** (e - 1):
            e -= 1
    else:  # even: round half up to m fraction bits (subnormal float32: in the binade 2^-126)
        m = EVEN_M[name]
        ulp = TWO ** (max(floor_log2(amax), -126) - m)
        rounded = math.floor(amax / ulp + Fraction(1, 2)) * ulp   # a tiny subnormal may give 0
        e = floor_log2(rounded) - emax if rounded else -127
    return max(-127, min(127, e))


def f32_neighbours(v: float) -> list:
    x = np.float32(v)
    return [np.nextafter(x, np.float32(0)), x, np.nextafter(x, np.float32(np.inf))]


def probe_values(name: str) -> np.ndarray:
    """Powers of two, largest x 2^k, the `even` threshold x 2^k, float32 neighbours of each."""
    big = float(ref_table(name)[0][-1])
    m = EVEN_M[name]
    out = []
    for k in range(-149, 128):
        for base in (1.0, big / 2 ** SPEC[name][5], 2 - 2.0 ** -(m + 1)):
            v = math.ldexp(base, k)
            if 0 < v < 3.4e38 and np.float32(v) == v:
                out += f32_neighbours(v)
    out += [np.float32(0), np.float32(np.finfo(np.float32).max), np.float32(2.0 ** -149)]
    vals = np.array(out, dtype=np.float32)
    return np.concatenate([vals, -vals])


def py_mix(x: int) -> int:
    """docs/stochastic_rounding.md, in plain Python integers."""
    for a, b in ((17, 5), (13, 9), (15, 11), (16, 7)):
        x ^= x >> a
        x = (x + (x << b)) & M32
    return x


def py_random(seed: int, block: int, element: int, R: int) -> int:
    key = py_mix((py_mix(seed) + block * 0x9E3779B9) & M32)
    return py_mix((key + element * 0x9E3779B9) & M32) >> (32 - R)


@lru_cache(maxsize=None)
def grid(name: str) -> tuple:
    """The non-negative element values as Fractions, ascending."""
    return tuple(Fraction(float(v)) for v in ref_table(name)[0])


def ref_stochastic(a: Fraction, name: str, r: int, R: int) -> Fraction:
    """SPEC.md 9 on the magnitude ``a``: u from the neighbouring grid values."""
    g = grid(name)
    if a >= g[-1]:
        return g[-1]
    k = bisect.bisect_right(g, a)               # g[k - 1] <= a < g[k]
    lo, hi = g[k - 1], g[k]
    u = hi - lo
    if a == lo:
        return lo
    t = math.floor(a * 2 ** R / u)
    return min(g[-1], u * ((t + r) // 2 ** R))


def value_of(codes: np.ndarray, name: str) -> np.ndarray:
    return get_format(name).values[codes.astype(np.int64)]


# ------------------------------------------------------------------------------------
# Scale rounding (SPEC.md 8)
# ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["floor", "ceil", "even"])
@pytest.mark.parametrize("name", NAMES)
def test_scale_rules_at_powers_of_two_and_largest(name, mode):
    x = probe_values(name)
    q = quantize(x.reshape(-1, 1), name, block_size=1, scale_rounding=mode)
    got = q.scale_e8m0.reshape(-1).astype(int) - 127
    want = [ref_scale(abs(Fraction(float(v))), name, mode) for v in x]
    bad = [(float(v), g, w) for v, g, w in zip(x, got, want) if g != w]
    assert not bad, f"{name} {mode}: (value, got E, want E) {bad[:5]} ({len(bad)} of {len(x)})"
    # The element: RNE of v / 2^E on the hand-made grid, saturating.
    y = np.ldexp(x.astype(np.float64), -np.array(want))
    assert np.array_equal(q.codes.reshape(-1).astype(np.int64), ref_encode(y, name))
    if mode == "ceil":        # no element saturates unless the clamp of E forces it
        unclamped = np.array(want) < 127
        big = float(ref_table(name)[0][-1])
        vals = np.abs(np.ldexp(value_of(q.codes.reshape(-1), name), np.array(want)))
        assert np.all(np.abs(x.astype(np.float64))[unclamped] <= big * np.ldexp(1.0, np.array(want))[unclamped])
        assert np.all((vals <= np.abs(x.astype(np.float64)) * 2)[unclamped])


@pytest.mark.parametrize("mode", ["ceil", "even"])
def test_scale_rules_on_tiles_use_the_tile_maximum(mode):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((64, 96)) * np.exp2(rng.integers(-20, 20, (64, 96)))).astype(np.float32)
    q = quantize_tiles(x, "mxsf", (16, 32), scale_rounding=mode)
    for (i, j), s in np.ndenumerate(q.scale_e8m0):
        amax = np.max(np.abs(x[16 * i:16 * i + 16, 32 * j:32 * j + 32]))
        assert s - 127 == ref_scale(Fraction(float(amax)), "mxsf", mode)
    r = requantize_tile(x[:16, :32], "mxsf", scale_rounding=mode)
    assert r.scale_e8m0[0, 0] == q.scale_e8m0[0, 0]


def test_scale_modes_differ_where_they_should():
    # 7.9 * 2^k: floor gives E = k, the element saturates to 7.875; ceil gives k + 1.
    x = np.array([[7.9, 1.0]], dtype=np.float32)
    assert quantize(x, "mxsf", scale_rounding="floor").scale_e8m0[0, 0] == 127
    assert quantize(x, "mxsf", scale_rounding="ceil").scale_e8m0[0, 0] == 128
    assert quantize(x, "mxsf", scale_rounding="even").scale_e8m0[0, 0] == 127   # 7.9 -> 7.875
    x = np.array([[7.95, 1.0]], dtype=np.float32)                                  # 7.95 -> 8.0
    assert quantize(x, "mxsf", scale_rounding="even").scale_e8m0[0, 0] == 128


def test_nan_blocks_unchanged_by_the_options():
    x = np.array([[1.0, np.nan, 3.0, 4.0], [np.inf, 1, 1, 1]], dtype=np.float32)
    for mode in ScaleRounding:
        for rnd in Rounding:
            q = quantize(x, "fp8_e4m3", block_size=4, scale_rounding=mode, rounding=rnd)
            assert (q.scale_e8m0 == 0xFF).all() and (q.codes == 0).all()


# ------------------------------------------------------------------------------------
# Stochastic rounding (SPEC.md 9)
# ------------------------------------------------------------------------------------

def test_generator_matches_the_document():
    rng = np.random.default_rng(1)
    for R in (1, 8, 16):
        for _ in range(50):
            seed, b, e = (int(v) for v in rng.integers(0, 2 ** 32, 3, dtype=np.uint64))
            assert int(sr_random_bits(seed, b, e, R)) == py_random(seed, b, e, R)
    assert int(sr_random_bits(0, 0, 0, 16)) == py_random(0, 0, 0, 16)


@pytest.mark.parametrize("name", NAMES)
def test_stochastic_equals_spec_rule_with_documented_bits(name):
    rng = np.random.default_rng(hash(name) % 2 ** 32)
    x = (rng.standard_normal((6, 40)) * np.exp2(rng.integers(-6, 6, (6, 40)))).astype(np.float32)
    x[0, :4] = [0.0, -0.0, 1e-30, -1e-30]
    for R, seed, tile in ((8, 7, (3, 8)), (3, 123456, (2, 20)), (16, 2 ** 32 - 1, (6, 40))):
        q = quantize_tiles(x, name, tile, rounding="stochastic", sr_bits=R, seed=seed)
        ntc = -(-x.shape[1] // tile[1])
        for (i, j), v in np.ndenumerate(x):
            E = int(q.scale_e8m0[i // tile[0], j // tile[1]]) - 127
            blk = (i // tile[0]) * ntc + j // tile[1]
            elem = (i % tile[0]) * tile[1] + j % tile[1]
            r = py_random(seed, blk, elem, R)
            a = abs(Fraction(float(v))) / TWO ** E
            mag = ref_stochastic(a, name, r, R)
            got = value_of(q.codes[i, j:j + 1], name)[0]
            want = -mag if v < 0 or (v == 0 and np.signbit(v)) else mag
            assert Fraction(float(got)) == want, (name, R, seed, i, j, float(v))
            if SPEC[name][0] == "int" and mag == 0:
                assert q.codes[i, j] == 0                      # INT8 has no -0
            elif np.signbit(v):
                assert q.codes[i, j] >> (SPEC[name][1] - 1) == 1   # sign kept, -0 included


@pytest.mark.parametrize("name", NAMES)
def test_stochastic_stays_between_neighbours_and_saturates(name):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(4096) * np.exp2(rng.integers(-12, 4, 4096))).astype(np.float32)
    x[::64] = 7.99e3                                       # block maxima far above the rest
    for mode in ("floor", "ceil", "even"):
        q = quantize(x, name, block_size=64, scale_rounding=mode, rounding="stochastic", seed=9)
        rne = quantize(x, name, block_size=64, scale_rounding=mode)
        assert np.array_equal(q.scale_e8m0, rne.scale_e8m0)
        E = q.scale_per_element().astype(np.int64) - 127
        a = np.abs(np.ldexp(x.astype(np.float64), -E))
        mags, _ = ref_table(name)
        lo = mags[np.clip(np.searchsorted(mags, a, side="right") - 1, 0, len(mags) - 1)]
        hi = mags[np.minimum(np.searchsorted(mags, a, side="left"), len(mags) - 1)]
        got = np.abs(value_of(q.codes, name))
        assert np.all((got == lo) | (got == hi)), name
        assert np.all(got[a >= mags[-1]] == mags[-1])                  # saturation
    # floor scale with a maximum above `largest x 2^E`: it saturates whatever r is
    big = float(ref_table(name)[0][-1])
    v = np.full((1, 4096), np.nextafter(np.float32(2 ** SPEC[name][5] * 2), np.float32(0)), np.float32)
    q = quantize(v, name, block_size=4096, rounding="stochastic")
    assert np.all(value_of(q.codes, name) == big)
    assert np.all(value_of(quantize(-v, name, block_size=4096, rounding="stochastic").codes, name) == -big)


def test_stochastic_deterministic_and_seeded():
    x = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    a = quantize(x, "fp8_e4m3", rounding="stochastic", seed=1)
    b = quantize(x, "fp8_e4m3", rounding="stochastic", seed=1)
    c = quantize(x, "fp8_e4m3", rounding="stochastic", seed=2)
    assert np.array_equal(a.codes, b.codes)
    assert (a.codes != c.codes).mean() > 0.2
    assert np.array_equal(a.scale_e8m0, c.scale_e8m0)
    # the tile index shifts the block numbering: requantize_tile(tile n) = quantize_tiles' tile n
    q = quantize_tiles(x, "mxsf", (16, 64), rounding="stochastic", seed=5)
    for n in range(4):
        t = requantize_tile(x[16 * n:16 * n + 16], "mxsf", rounding="stochastic", seed=5, tile_index=n)
        assert np.array_equal(t.codes, q.codes[16 * n:16 * n + 16])


@pytest.mark.parametrize("name", NAMES)
def test_stochastic_is_unbiased_and_rne_is_not(name):
    """10^6 copies of one value: SR's mean error is within 4 standard errors of 0."""
    g = grid(name)
    lo, hi = g[-3], g[-2]                       # neighbours in the top binade
    a = lo + (hi - lo) * Fraction(77, 256)      # off the midpoint, a multiple of u / 2^8
    v = np.float32(float(a))
    assert Fraction(float(v)) == a
    x = np.full(10 ** 6, v, dtype=np.float32)
    x[::32] = np.float32(float(g[-1]))          # every block of 32 has the same scale 2^0
    err_sr = dequantize(quantize(x, name, rounding="stochastic", seed=11)).astype(np.float64)[x == v] - float(a)
    err_rne = dequantize(quantize(x, name)).astype(np.float64)[x == v] - float(a)
    se = err_sr.std() / math.sqrt(err_sr.size)
    assert se > 0
    assert abs(err_sr.mean()) < 4 * se, (name, err_sr.mean(), se)
    assert abs(err_rne.mean()) > 4 * se
    # sr_bits = 1: t = floor(2a/u) keeps only the half-ulp bit, so a value 0.30 u above a
    # grid point always rounds down (the truncation bias of few random bits, SPEC.md 9)
    err1 = dequantize(quantize(x, name, rounding="stochastic", sr_bits=1)).astype(np.float64)[x == v] - float(a)
    assert np.all(err1 == float(lo - a))


def test_option_errors():
    x = np.ones((2, 32), np.float32)
    cases = [
        (dict(scale_rounding="round"), r"^scale_rounding must be one of floor, ceil, even; not 'round'$"),
        (dict(scale_rounding=1), r"^scale_rounding must be one of floor, ceil, even; not 1$"),
        (dict(rounding="sr"), r"^rounding must be one of rne, stochastic; not 'sr'$"),
        (dict(rounding=Rounding.RNE, scale_rounding=Rounding.RNE), r"^scale_rounding must be one of"),
        (dict(sr_bits=0), r"^sr_bits must be an integer in \[1, 16\], not 0$"),
        (dict(sr_bits=17), r"^sr_bits must be an integer in \[1, 16\], not 17$"),
        (dict(sr_bits=8.0), r"^sr_bits must be an integer, not 8.0$"),
        (dict(seed=-1), r"^seed must be an integer in \[0, 4294967295\], not -1$"),
        (dict(seed=2 ** 32), r"^seed must be an integer in \[0, 4294967295\], not 4294967296$"),
    ]
    for kw, msg in cases:
        for fn in (lambda: quantize(x, "mxsf", **kw), lambda: quantize_tiles(x, "mxsf", (2, 32), **kw),
                   lambda: requantize_tile(x, "mxsf", **kw)):
            with pytest.raises(ValueError, match=msg):
                fn()
    with pytest.raises(ValueError, match=r"^tile_index must be an integer in \[0, 4294967295\], not -2$"):
        requantize_tile(x, "mxsf", tile_index=-2)
    with pytest.raises(ValueError, match=r"^acc must be one of fp32, bf16; not 'fp16'$"):
        matmul(quantize(x, "mxsf"), quantize(x.T, "mxsf", axis=0), acc="fp16")
    # enum members and any case are accepted
    a = quantize(x, "mxsf", scale_rounding=ScaleRounding.CEIL, rounding=" Stochastic ")
    b = quantize(x, "mxsf", scale_rounding="ceil", rounding=Rounding.STOCHASTIC)
    assert np.array_equal(a.codes, b.codes)


def test_defaults_are_the_base_contract():
    x = np.random.default_rng(2).standard_normal((32, 64)).astype(np.float32)
    for name in NAMES:
        a = quantize(x, name)
        b = quantize(x, name, scale_rounding="floor", rounding="rne", sr_bits=3, seed=99)
        assert np.array_equal(a.codes, b.codes) and np.array_equal(a.scale_e8m0, b.scale_e8m0)


# ------------------------------------------------------------------------------------
# bfloat16 accumulation (SPEC.md 10)
# ------------------------------------------------------------------------------------

def ref_bf16(x: Fraction) -> Fraction | float:
    """bfloat16 RNE of an exact value (subnormals, overflow to +/-Inf)."""
    if x == 0:
        return Fraction(0)
    s = -1 if x < 0 else 1
    a = abs(x)
    q = TWO ** (max(floor_log2(a), -126) - 7)
    n = a / q
    k = math.floor(n)
    rem = n - k
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and k % 2):
        k += 1
    r = k * q
    if r >= TWO ** 128:
        return s * math.inf
    return s * r if r else math.copysign(0.0, s)    # a non-zero sum that rounds to 0 keeps its sign


def bits_of_bf16(v) -> int:
    if isinstance(v, float) and math.isinf(v):
        return 0x7F80 if v > 0 else 0xFF80
    return int(np.float32(float(v)).view(np.uint32)) >> 16


def test_bf16_add_against_exact_sums():
    rng = np.random.default_rng(4)
    n = 6000
    acc = (rng.integers(0, 1 << 16, n)).astype(np.uint16)
    acc = np.where((acc & 0x7F80) == 0x7F80, acc & 0x807F, acc).astype(np.uint16)   # finite
    # d: near acc (cancellation, ties), far from it, subnormal, random
    base = bf16_bits_to_float32(acc).astype(np.float64)
    k = n // 4
    with np.errstate(over="ignore"):
        d = np.concatenate([
            (-base[:k] * (1 + rng.integers(-3, 4, k) * 2.0 ** -9)),
            base[k:2 * k] * 2.0 ** rng.integers(-40, 2, k) * (1 + rng.integers(0, 512, k) * 2.0 ** -10),
            rng.integers(-2 ** 20, 2 ** 20, k) * 2.0 ** -149,
            rng.standard_normal(k) * np.exp2(rng.integers(-140, 127, k)),
        ]).astype(np.float32)
    d = np.where(np.isfinite(d), d, np.float32(1.0))
    got = bf16_add(acc, d)
    for k in range(n):
        a = Fraction(float(bf16_bits_to_float32(acc[k])))
        want = bits_of_bf16(ref_bf16(a + Fraction(float(d[k]))))
        if want == 0 and (a + Fraction(float(d[k]))) == 0:
            want = 0x0000 if not (np.signbit(bf16_bits_to_float32(acc[k])) and np.signbit(d[k])) else 0x8000
        assert int(got[k]) == want, (hex(int(acc[k])), float(d[k]), hex(int(got[k])), hex(want))


def test_bf16_add_specials():
    f = np.float32
    cases = [(0x0000, f(-0.0), 0x0000), (0x8000, f(-0.0), 0x8000), (0x7F7F, f(3e38), 0x7F80),
             (0xFF7F, f(-3e38), 0xFF80), (0x7F80, f(-np.inf), 0x7FC0), (0x7F80, f(1), 0x7F80),
             (0x3F80, f(np.nan), 0x7FC0), (0x3F80, f(-1.0), 0x0000),
             (0x0001, f(2.0 ** -134), 0x0002),          # 1.5 ulp of the subnormal grid: tie to even
             (0x0000, f(2.0 ** -135), 0x0000), (0x8000, f(-2.0 ** -133), 0x8001),
             # d on a bfloat16 midpoint, acc far below float64's reach: a float64 sum alone
             # would make a false tie (double rounding); the exact sum is off the midpoint
             (0x2180, f(1 + 2.0 ** -8), 0x3F81), (0xA180, f(1 + 2.0 ** -8), 0x3F80),
             (0x2180, f(1 + 3 * 2.0 ** -8), 0x3F82), (0xA180, f(-1 - 2.0 ** -8), 0xBF81)]
    for acc, d, want in cases:
        assert int(bf16_add(np.uint16(acc), d)) == want, (hex(acc), d)


@pytest.mark.parametrize("name", ["mxsf", "fp8_e4m3", "fp8_e5m2", "int8"])
def test_matmul_bf16_accumulates_the_fp32_block_results(name):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((6, 32 * 7)) * np.exp2(rng.integers(-8, 8, (6, 32 * 7)))).astype(np.float32)
    w = rng.standard_normal((32 * 7, 5)).astype(np.float32)
    qa, qb = quantize(x, name), quantize(w, name, axis=0)
    c16 = matmul(qa, qb, acc="bf16")
    assert c16.dtype == np.uint16 and c16.shape == (6, 5)
    for i in range(6):
        for j in range(5):
            acc = Fraction(0)
            for k in range(7):
                sl = slice(32 * k, 32 * k + 32)
                d = matmul(MXArray(qa.fmt, qa.codes[i:i + 1, sl], qa.scale_e8m0[i:i + 1, k:k + 1], (1, 32)),
                           MXArray(qb.fmt, qb.codes[sl, j:j + 1], qb.scale_e8m0[k:k + 1, j:j + 1], (32, 1)))[0, 0]
                acc = ref_bf16(acc + Fraction(float(d)))
            assert int(c16[i, j]) == bits_of_bf16(acc)
    assert np.array_equal(matmul(qa, qb, acc=Accumulator.FP32), matmul(qa, qb))
    # batched_dot and the PE cycle model give the same 16-bit results
    d = batched_dot(qa.codes, np.tile(qb.codes[:, 0], (6, 1)), qa.scale_e8m0,
                    np.tile(qb.scale_e8m0[:, 0], (6, 1)), name, 32, acc="bf16")
    assert np.array_equal(d, c16[:, 0])


def test_pe_cycle_model_bf16():
    from mxsf.golden.models import Beat
    rng = np.random.default_rng(0)
    trace, dots = [], []
    for _ in range(3):
        a = rng.integers(0, 256, 64)
        b = rng.integers(0, 256, 64)
        sa = rng.integers(100, 150, 2)
        for k in range(4):
            trace.append(Beat(a=a[16 * k:16 * k + 16].tolist(), b=b[16 * k:16 * k + 16].tolist(),
                              scale_a=int(sa[k // 2]), scale_b=127, first=k == 0, last=k == 3))
        trace.append(None)
        f = get_format("mxsf")
        qa = MXArray(f, a.reshape(1, 64).astype(np.uint8), sa.reshape(1, 2).astype(np.uint8), (1, 32))
        qb = MXArray(f, b.reshape(64, 1).astype(np.uint8), np.full((2, 1), 127, np.uint8), (32, 1))
        dots.append(int(matmul(qa, qb, acc="bf16")[0, 0]))
    out = pe_cycle_model(trace, fmt="mxsf", block_size=32, lanes=16, latency=3, acc="bf16")
    assert [(c, v) for c, v in enumerate(out) if v is not None] == [(3 + 5 * n + 3, dots[n]) for n in range(3)]


@pytest.mark.parametrize("name", NAMES)
def test_stochastic_table_path_equals_elementwise_path(name):
    from mxsf.golden.quantize import encode_stochastic, encode_stochastic_exact
    rng = np.random.default_rng(6)
    top = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    u = np.concatenate([top | rng.integers(0, 1 << 16, top.size, dtype=np.uint32) for _ in range(3)])
    y = u.view(np.float32)
    y = np.where(np.isfinite(y), y, np.float32(0))
    for R in (1, 5, 8, 16):
        r = rng.integers(0, 1 << R, y.size, dtype=np.uint32)
        assert np.array_equal(encode_stochastic(y, r, name, R), encode_stochastic_exact(y, r, name, R))
