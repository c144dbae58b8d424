"""MX matrix products of the golden model against an exact rational reference (SPEC.md section 5).

The reference decodes every element code from the SPEC.md text into a ``Fraction``,
sums each block's products exactly, multiplies by ``2^(Ea+Eb)`` and rounds once to
binary32 with a round-to-nearest-even written here (subnormals, overflow to Inf);
blocks are then accumulated with IEEE binary32 additions in increasing order.
Results are compared bit for bit.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import ml_dtypes
import numpy as np
import pytest

from mxsf.golden import (
    CANONICAL_NAN_BITS,
    MXArray,
    bf16_matmul,
    dot_block,
    get_format,
    matmul,
    quantize,
    quantize_tiles,
    to_bf16,
)

TWO = Fraction(2)
NAN = float("nan")
INF = float("inf")

SPEC = {  # kind, bits, exp bits, man bits, bias
    "fp8_e4m3": ("fp", 8, 4, 3, 7),
    "fp8_e5m2": ("fp", 8, 5, 2, 15),
    "fp6_e3m2": ("fp", 6, 3, 2, 3),
    "fp6_e2m3": ("fp", 6, 2, 3, 1),
    "fp4_e2m1": ("fp", 4, 2, 1, 1),
    "int8": ("int", 8, 0, 0, 0),
    "fp8_e2m5": ("fp", 8, 2, 5, 1),
    "mxsf": ("mxsf", 8, 2, 5, 0),
}
NAMES = list(SPEC)


# ------------------------------------------------------------------------------------
# Exact reference
# ------------------------------------------------------------------------------------

def spec_value(name: str, code: int):
    """Fraction value of a code per SPEC.md, or float NaN / +-Inf for special codes."""
    kind, bits, eb, mb, bias = SPEC[name]
    s = (code >> (bits - 1)) & 1
    sign = -1 if s else 1
    if kind == "int":
        return Fraction(code - 256 if code >= 128 else code, 64)
    if kind == "mxsf":
        e, m = (code >> 5) & 3, code & 31
        if e:
            return sign * TWO ** (e - 1) * (1 + Fraction(m, 32))
        E, M = m >> 2, m & 3
        return sign * (TWO ** (E - 8) * (1 + Fraction(M, 4)) if E else TWO**-7 * Fraction(M, 4))
    e, m = (code >> mb) & ((1 << eb) - 1), code & ((1 << mb) - 1)
    if name == "fp8_e4m3" and e == 15 and m == 7:
        return NAN
    if name == "fp8_e5m2" and e == 31:
        return sign * INF if m == 0 else NAN
    if e == 0:
        return sign * Fraction(m, 1 << mb) * TWO ** (1 - bias)
    return sign * (1 + Fraction(m, 1 << mb)) * TWO ** (e - bias)


@lru_cache(maxsize=None)
def value_table(name):
    return tuple(spec_value(name, c) for c in range(1 << SPEC[name][1]))


@lru_cache(maxsize=None)
def finite_codes(name):
    return np.array([c for c, v in enumerate(value_table(name)) if isinstance(v, Fraction)], dtype=np.uint8)


def code_of(name, value) -> int:
    """The code of an exact element value (+0 for zero)."""
    v = Fraction(value)
    for c, x in enumerate(value_table(name)):
        if isinstance(x, Fraction) and x == v:
            return c
    raise AssertionError(f"{value} is not a {name} value")


def f32_bits(q: Fraction) -> int:
    """binary32 bits of the exact rational q rounded to nearest, ties to even (one rounding)."""
    if q == 0:
        return 0
    sign = 0x80000000 if q < 0 else 0
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < TWO**e:
        e -= 1                                   # now 2^e <= a < 2^(e+1)
    e = max(e, -126)                             # subnormals share the quantum 2^-149
    scaled = a * TWO ** (23 - e)
    n = scaled.numerator // scaled.denominator
    r = scaled - n
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and n % 2 == 1):
        n += 1
    if n == 1 << 24:
        n, e = 1 << 23, e + 1
    if e > 127:
        return sign | 0x7F800000
    if n < (1 << 23):
        return sign | n                          # subnormal (or zero) at e == -126
    return sign | ((e + 127) << 23) | (n - (1 << 23))


def f32(bits: int) -> np.float32:
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


def ref_block(va, vb, Ea, Eb) -> np.float32:
    """d of SPEC.md section 5 for one block of values (Fractions or NaN/Inf floats)."""
    nan = pinf = ninf = False
    s = Fraction(0)
    for x, y in zip(va, vb):
        if isinstance(x, float) and x != x or isinstance(y, float) and y != y:
            nan = True
        elif isinstance(x, float) or isinstance(y, float):      # an Inf operand
            if x == 0 or y == 0:
                nan = True
            elif (x > 0) == (y > 0):
                pinf = True
            else:
                ninf = True
        else:
            s += x * y
    if nan or (pinf and ninf):
        return np.float32(np.nan)
    if pinf:
        return np.float32(np.inf)
    if ninf:
        return np.float32(-np.inf)
    return f32(f32_bits(s * TWO ** (Ea + Eb)))


def ref_matmul(qa: MXArray, qb: MXArray) -> np.ndarray:
    """uint32 bits of C = A @ B per SPEC.md section 5, element by element."""
    ta, tb = value_table(qa.fmt.name), value_table(qb.fmt.name)
    M, K = qa.shape
    N = qb.shape[1]
    kb = qa.block_shape[1]
    assert qb.block_shape[0] == kb
    out = np.zeros((M, N), dtype=np.uint32)
    for i in range(M):
        for n in range(N):
            acc = np.float32(0.0)
            for j in range(-(-K // kb)):
                ks = range(j * kb, min(K, (j + 1) * kb))
                sa = int(qa.scale_e8m0[i // qa.block_shape[0], j])
                sb = int(qb.scale_e8m0[j, n // qb.block_shape[1]])
                if sa == 0xFF or sb == 0xFF:
                    d = np.float32(np.nan)
                else:
                    d = ref_block([ta[int(qa.codes[i, k])] for k in ks], [tb[int(qb.codes[k, n])] for k in ks],
                                  sa - 127, sb - 127)
                with np.errstate(over="ignore", invalid="ignore"):
                    acc = np.float32(acc + d)            # IEEE binary32 addition
            out[i, n] = CANONICAL_NAN_BITS if np.isnan(acc) else int(np.array(acc).view(np.uint32))
    return out


def bits_of(c) -> np.ndarray:
    c = np.asarray(c)
    assert c.dtype == np.float32
    return np.ascontiguousarray(c).view(np.uint32)


def assert_matmul(qa, qb):
    got = bits_of(matmul(qa, qb))
    ref = ref_matmul(qa, qb)
    bad = np.argwhere(got != ref)
    assert bad.size == 0, [(tuple(ix), hex(got[tuple(ix)]), hex(ref[tuple(ix)])) for ix in bad[:5]]
    return got


def mx(name, codes, scales, block_shape) -> MXArray:
    return MXArray(get_format(name), np.asarray(codes, dtype=np.uint8),
                   np.asarray(scales, dtype=np.uint8), tuple(block_shape))


def random_operands(rng, name, M, K, N, kb, tiles=None, scale_range=(112, 143), name_b=None, codes=None):
    """Random finite codes and scales; A blocked (tr, kb), B blocked (kb, tc)."""
    name_b = name_b or name
    tr, tc = tiles or (1, 1)
    nK = -(-K // kb)
    ca = rng.choice(codes if codes is not None else finite_codes(name), (M, K))
    cb = rng.choice(codes if codes is not None else finite_codes(name_b), (K, N))
    sa = rng.integers(*scale_range, (-(-M // tr), nK), endpoint=True)
    sb = rng.integers(*scale_range, (nK, -(-N // tc)), endpoint=True)
    return mx(name, ca, sa, (tr, kb)), mx(name_b, cb, sb, (kb, tc))


def test_f32_reference_rounding_self_check():
    """The hand-written binary32 rounding agrees with numpy where float64 is exact."""
    rng = np.random.default_rng(0)
    for _ in range(3000):
        v = float(rng.standard_normal() * 2.0 ** rng.integers(-160, 140))
        with np.errstate(over="ignore"):
            assert f32_bits(Fraction(v)) == int(np.array([v]).astype(np.float32).view(np.uint32)[0])
    assert f32_bits(TWO**-150) == 0 and f32_bits(-TWO**-150) == 0x80000000
    assert f32_bits(3 * TWO**-151) == 1 and f32_bits(3 * TWO**-150) == 2
    assert f32_bits(TWO**128) == 0x7F800000 and f32_bits(-TWO**200) == 0xFF800000
    assert f32_bits((2 - TWO**-24) * TWO**127) == 0x7F800000          # ties to even -> overflow
    assert f32_bits((2 - TWO**-24 - TWO**-60) * TWO**127) == 0x7F7FFFFF
    assert f32_bits((1 - TWO**-25) * TWO**-126) == 0x00800000           # subnormal rounds up to normal


# ------------------------------------------------------------------------------------
# Random cases, every format
# ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_matmul_random_1d_blocks(name):
    rng = np.random.default_rng(100 + NAMES.index(name))
    for M, K, N, kb in [(4, 70, 5, 32), (3, 64, 4, 16), (2, 9, 3, 4), (3, 7, 2, 1)]:
        qa, qb = random_operands(rng, name, M, K, N, kb)
        assert_matmul(qa, qb)


@pytest.mark.parametrize("name", NAMES)
def test_matmul_random_tiles(name):
    rng = np.random.default_rng(200 + NAMES.index(name))
    qa, qb = random_operands(rng, name, 5, 37, 7, 16, tiles=(2, 3))
    assert_matmul(qa, qb)
    # B given as the transpose of a tiled K x N... matrix: same codes and scales, other axes
    qbt = mx(name, qb.codes.T.copy(), qb.scale_e8m0.T.copy(), qb.block_shape[::-1])
    assert np.array_equal(bits_of(matmul(qa, qbt.T)), bits_of(matmul(qa, qb)))


@pytest.mark.parametrize("name", NAMES)
def test_matmul_quantized_data(name):
    rng = np.random.default_rng(300 + NAMES.index(name))
    A = (rng.standard_normal((6, 45)) * 2.0 ** rng.integers(-6, 7, (6, 45))).astype(np.float32)
    B = (rng.standard_normal((45, 5)) * 2.0 ** rng.integers(-6, 7, (45, 5))).astype(np.float32)
    A[2, 40:] = 0
    assert_matmul(quantize(A, name, block_size=32), quantize(B, name, block_size=32, axis=0))
    assert_matmul(quantize(A, name, block_size=32), quantize(np.ascontiguousarray(B.T), name, block_size=32).T)
    # tiles: the training pattern, one tiled B serves B and B^T
    qa = quantize_tiles(A, name, tile=(4, 16))
    qb = quantize_tiles(B, name, tile=(16, 4))
    assert_matmul(qa, qb)
    assert_matmul(qb.T, qa.T)


@pytest.mark.parametrize("name", NAMES)
def test_matmul_small_scales_subnormal_results(name):
    rng = np.random.default_rng(400 + NAMES.index(name))
    # Ea + Eb + 2 emax_elem around -135 puts many block results among the float32 subnormals
    c = 127 + (-135 - 2 * get_format(name).emax_elem) // 2
    qa, qb = random_operands(rng, name, 4, 40, 4, 8, scale_range=(c - 6, c + 6))
    got = assert_matmul(qa, qb)
    v = got.view(np.float32)
    assert np.any((v != 0) & (np.abs(v) < 2.0**-126))


@pytest.mark.parametrize("name", NAMES)
def test_matmul_large_scales_overflow(name):
    rng = np.random.default_rng(500 + NAMES.index(name))
    c = min(254, 127 + (128 - 2 * get_format(name).emax_elem) // 2)
    qa, qb = random_operands(rng, name, 4, 40, 4, 8, scale_range=(c - 8, min(254, c + 8)))
    got = assert_matmul(qa, qb)
    assert np.any(np.isinf(got.view(np.float32))) or np.any(got == CANONICAL_NAN_BITS)
    f = get_format(name)
    big = finite_codes(name)[np.abs(f.values[finite_codes(name)]) >= f.max_value / 4]
    qa, qb = random_operands(rng, name, 6, 8, 6, 8, scale_range=(c - 2, min(254, c + 6)), codes=big)  # one block
    got = assert_matmul(qa, qb)
    assert np.any(np.isinf(got.view(np.float32)))


def test_matmul_mixed_formats():
    rng = np.random.default_rng(600)
    for fa, fb in [("mxsf", "fp8_e5m2"), ("int8", "fp4_e2m1"), ("fp8_e4m3", "fp8_e2m5")]:
        M, K, N, kb = 3, 40, 4, 16
        nK = -(-K // kb)
        qa = mx(fa, rng.choice(finite_codes(fa), (M, K)), rng.integers(110, 145, (M, nK)), (1, kb))
        qb = mx(fb, rng.choice(finite_codes(fb), (K, N)), rng.integers(110, 145, (nK, N)), (kb, 1))
        assert_matmul(qa, qb)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_matmul_random_sweep(name):
    rng = np.random.default_rng(700 + NAMES.index(name))
    for _ in range(300):
        M, N = rng.integers(1, 6, 2)
        kb = int(rng.choice([1, 2, 8, 32]))
        K = int(rng.integers(1, 100))
        lo = int(rng.integers(1, 230))
        qa, qb = random_operands(rng, name, M, K, N, kb, scale_range=(lo, lo + 24),
                                 tiles=tuple(rng.integers(1, 4, 2)))
        assert_matmul(qa, qb)


# ------------------------------------------------------------------------------------
# Constructed cases
# ------------------------------------------------------------------------------------

def block(name, a_vals, b_vals, sa=127, sb=127):
    """1 x K times K x 1 operands holding the given element values in one block."""
    ca = [code_of(name, v) for v in a_vals]
    cb = [code_of(name, v) for v in b_vals]
    K = len(ca)
    return mx(name, [ca], [[sa]], (1, K)), mx(name, [[c] for c in cb], [[sb]], (K, 1))


def one(name, a_vals, b_vals, sa=127, sb=127) -> int:
    qa, qb = block(name, a_vals, b_vals, sa, sb)
    got = assert_matmul(qa, qb)
    d = dot_block([code_of(name, v) for v in a_vals], [code_of(name, v) for v in b_vals], sa, sb, name)
    assert int(np.array(d, dtype=np.float32).view(np.uint32)) == int(got[0, 0])
    return int(got[0, 0])


def bits(x: float) -> int:
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def test_e5m2_wide_sums_round_once():
    """Block sums of fp8_e5m2 need ~70 bits: a float64 sum would round twice."""
    e = "fp8_e5m2"
    big, tiny = 57344, Fraction(1, 2**16)
    # 57344^2 + 2^-32: exact value just above 57344^2, far beyond 53 bits apart
    assert one(e, [big, tiny], [big, tiny]) == bits(57344.0**2)
    # 2^31 + 2^7 is a binary32 tie (rounds down to even 2^31); + 2^-32 must round up
    T = [2**15, 2**15, 2**7, tiny]
    U = [2**15, 2**15, 1, tiny]
    assert one(e, T, U) == (158 << 23) | 1
    assert one(e, T, [2**15, 2**15, 1, -tiny]) == 158 << 23
    # 2^31 + 3 * 2^7 is a tie rounding up to even; - 2^-32 must round down
    T3 = [2**15, 2**15, 2**7, 2**8, tiny]
    U3 = [2**15, 2**15, 1, 1, -tiny]
    assert one(e, T3, U3) == (158 << 23) | 1
    assert one(e, T3, [2**15, 2**15, 1, 1, tiny]) == (158 << 23) | 2
    # the same with negative signs and many other terms in a 32-element block
    rng = np.random.default_rng(1)
    for _ in range(30):
        a = [big, -big, tiny] + [Fraction(float(v)) for v in
                                 get_format(e).values[rng.choice(finite_codes(e), 29)]]
        b = [big, tiny, tiny] + [Fraction(float(v)) for v in
                                 get_format(e).values[rng.choice(finite_codes(e), 29)]]
        one(e, a, b, sa=int(rng.integers(100, 150)), sb=int(rng.integers(100, 150)))


def test_e5m2_random_wide_blocks():
    """Random 32-element fp8_e5m2 blocks mixing huge and tiny products (exact sums > 53 bits)."""
    e = "fp8_e5m2"
    rng = np.random.default_rng(2)
    fc = finite_codes(e)
    mags = np.abs(get_format(e).values[fc])
    huge = fc[mags >= 2**12]
    small = fc[(mags <= 2**-10)]
    M, K, N = 6, 64, 6
    ca = np.where(rng.random((M, K)) < 0.5, rng.choice(huge, (M, K)), rng.choice(small, (M, K)))
    cb = np.where(rng.random((K, N)) < 0.5, rng.choice(huge, (K, N)), rng.choice(small, (K, N)))
    qa = mx(e, ca, rng.integers(100, 150, (M, 2)), (1, 32))
    qb = mx(e, cb, rng.integers(100, 150, (2, N)), (32, 1))
    assert_matmul(qa, qb)


def test_ties_at_float32_rounding():
    e4 = "fp8_e4m3"
    # 2^16 + 2^-8 is half an ulp above 2^16: tie to even -> 2^16
    assert one(e4, [256, Fraction(1, 16)], [256, Fraction(1, 16)]) == bits(2.0**16)
    # 2^16 + 3 * 2^-8: tie between odd 2^16 + 2^-7 and even 2^16 + 2^-6 -> up
    assert one(e4, [256, Fraction(1, 16), Fraction(1, 8)], [256, Fraction(1, 16), Fraction(1, 16)]) == \
        bits(2.0**16 + 2.0**-6)
    assert one(e4, [-256, Fraction(1, 16)], [256, Fraction(-1, 16)]) == bits(-(2.0**16))
    # ties among the subnormals: 2^-150 -> 0 (even), 3 x 2^-150 -> 2 x 2^-149, 0.75 x 2^-149 -> 2^-149
    m = "mxsf"
    assert one(m, [1], [1], sa=127 - 75, sb=127 - 75) == 0                 # 2^-150
    assert one(m, [1], [-1], sa=127 - 75, sb=127 - 75) == 0                # d = -0, acc = +0 + -0 = +0
    assert one(m, [1.5], [1], sa=127 - 75, sb=127 - 75) == 1               # 1.5 x 2^-150 -> 2^-149
    assert one(m, [1.5], [1], sa=127 - 74, sb=127 - 75) == 2               # 3 x 2^-150 -> tie -> 2
    assert one(m, [1.25], [1], sa=127 - 74, sb=127 - 75) == 1              # 2.5 x 2^-150 -> tie -> 1
    assert one(m, [Fraction(3, 4)], [1], sa=127 - 74, sb=127 - 75) == 1    # 0.75 x 2^-149 -> 1
    # overflow: the largest binary32 tie rounds to Inf
    assert one(e4, [448], [448], sa=254, sb=127 + 127 - 17) != 0           # well inside
    assert one(e4, [448, 448], [448, 448], sa=254, sb=254) == 0x7F800000
    assert one(e4, [-448], [448], sa=254, sb=254) == 0xFF800000


def test_accumulation_order_and_overflow():
    m = "mxsf"
    # two blocks that each fit but whose float32 sum overflows to +Inf
    qa = mx(m, [[code_of(m, 7.875), code_of(m, 7.875)]], [[254, 254]], (1, 1))
    qb = mx(m, [[code_of(m, 7.875)], [code_of(m, 7.875)]], [[122], [122]], (1, 1))   # 62 x 2^122 each
    assert bits_of(matmul(qa, qb))[0, 0] == 0x7F800000
    assert_matmul(qa, qb)
    # accumulation is float32 per block in order: 1 + 2^-24 + 2^-24 = 1 (each add rounds)
    qa = mx(m, [[code_of(m, 1), code_of(m, 1), code_of(m, 1)]], [[127, 127 - 12, 127 - 12]], (1, 1))
    qb = mx(m, [[code_of(m, 1)]] * 3, [[127], [127 - 12], [127 - 12]], (1, 1))
    assert bits_of(matmul(qa, qb))[0, 0] == bits(1.0)
    assert_matmul(qa, qb)
    # ... while in the other order the small terms first add up: 2^-23 + 1
    qa = mx(m, [[code_of(m, 1)] * 3], [[127 - 12, 127 - 12, 127]], (1, 1))
    qb = mx(m, [[code_of(m, 1)]] * 3, [[127 - 12], [127 - 12], [127]], (1, 1))
    assert bits_of(matmul(qa, qb))[0, 0] == bits(1.0 + 2.0**-23)


def test_cancellation_gives_plus_zero():
    for name in NAMES:
        one_ = code_of(name, 1)
        assert one(name, [1, 1], [1, -1]) == 0
        assert one(name, [-1, 1], [1, -1]) != 0
        # -0 codes and negative products summing to zero
        neg0 = 0 if SPEC[name][0] == "int" else 1 << (SPEC[name][1] - 1)
        qa = mx(name, [[neg0, one_]], [[127]], (1, 2))
        qb = mx(name, [[one_], [neg0]], [[127]], (2, 1))
        assert bits_of(matmul(qa, qb))[0, 0] == 0
        assert_matmul(qa, qb)
        # across blocks: d1 = 3, d2 = -3 -> +0
        qa = mx(name, [[code_of(name, 1), code_of(name, -1)]], [[127, 127]], (1, 1))
        qb = mx(name, [[code_of(name, 1)], [code_of(name, 1)]], [[127], [127]], (1, 1))
        assert bits_of(matmul(qa, qb))[0, 0] == 0


@pytest.mark.parametrize("name", ["mxsf", "fp8_e5m2", "int8"])
def test_nan_scales_give_canonical_nan(name):
    rng = np.random.default_rng(800)
    qa, qb = random_operands(rng, name, 4, 40, 5, 8)
    sa = qa.scale_e8m0.copy()
    sb = qb.scale_e8m0.copy()
    sa[1, 2] = 0xFF
    sb[4, 3] = 0xFF
    qa = mx(name, qa.codes, sa, qa.block_shape)
    qb = mx(name, qb.codes, sb, qb.block_shape)
    got = assert_matmul(qa, qb)
    assert np.all(got[1] == CANONICAL_NAN_BITS) and np.all(got[:, 3] == CANONICAL_NAN_BITS)
    assert not np.any(got[[0, 2, 3]][:, [0, 1, 2, 4]] == CANONICAL_NAN_BITS)
    # the NaN scale of quantize (a NaN input) flows through matmul
    A = rng.standard_normal((3, 40)).astype(np.float32)
    A[0, 5] = np.nan
    A[2, 39] = -np.inf
    B = rng.standard_normal((40, 2)).astype(np.float32)
    got = assert_matmul(quantize(A, name, 32), quantize(B, name, 32, axis=0))
    assert np.all(got[0] == CANONICAL_NAN_BITS) and np.all(got[2] == CANONICAL_NAN_BITS)
    assert not np.any(got[1] == CANONICAL_NAN_BITS)


def test_non_finite_element_codes():
    e4, e5 = "fp8_e4m3", "fp8_e5m2"
    # E4M3 NaN code (either sign) makes the block NaN, even against a zero
    for nan_code in (0x7F, 0xFF):
        qa = mx(e4, [[0x38, nan_code]], [[127]], (1, 2))
        qb = mx(e4, [[0x38], [0x00]], [[127]], (2, 1))
        assert bits_of(matmul(qa, qb))[0, 0] == CANONICAL_NAN_BITS
        assert_matmul(qa, qb)
    one5, two5 = code_of(e5, 1), code_of(e5, 2)
    pinf, ninf, zero, nzero = 0x7C, 0xFC, 0x00, 0x80

    def r(ca, cb, scale=127):
        qa = mx(e5, [ca], [[scale]], (1, len(ca)))
        qb = mx(e5, [[c] for c in cb], [[scale]], (len(cb), 1))
        assert_matmul(qa, qb)
        return int(bits_of(matmul(qa, qb))[0, 0])

    assert r([pinf, one5], [two5, one5]) == 0x7F800000                 # Inf x nonzero
    assert r([pinf, one5], [code_of(e5, -2), one5]) == 0xFF800000      # sign of the product
    assert r([ninf], [code_of(e5, -1)]) == 0x7F800000
    assert r([pinf, one5], [zero, one5]) == CANONICAL_NAN_BITS          # Inf x 0
    assert r([pinf], [nzero]) == CANONICAL_NAN_BITS                     # Inf x -0
    assert r([pinf, ninf], [one5, one5]) == CANONICAL_NAN_BITS          # +Inf and -Inf
    assert r([pinf, pinf], [one5, two5]) == 0x7F800000                  # two +Inf products
    assert r([pinf, one5], [one5, code_of(e5, -57344)], scale=250) == 0x7F800000  # Inf beats -overflow
    assert r([0x7D], [zero]) == CANONICAL_NAN_BITS                      # NaN codes
    assert r([0xFE, pinf], [one5, one5]) == CANONICAL_NAN_BITS
    assert r([one5, one5], [0x7F, one5]) == CANONICAL_NAN_BITS
    # +Inf from one block and -Inf from the next: acc becomes NaN
    qa = mx(e5, [[pinf, ninf]], [[127, 127]], (1, 1))
    qb = mx(e5, [[one5], [one5]], [[127], [127]], (1, 1))
    assert bits_of(matmul(qa, qb))[0, 0] == CANONICAL_NAN_BITS
    # Inf in a block with a NaN scale elsewhere in the row only affects its own pairs
    qa = mx(e5, [[pinf, one5], [one5, one5]], [[127], [127]], (1, 2))
    qb = mx(e5, [[one5, zero], [one5, one5]], [[127, 127]], (2, 1))
    got = assert_matmul(qa, qb)
    assert list(got.ravel()) == [0x7F800000, CANONICAL_NAN_BITS, bits(2.0), bits(1.0)]


@pytest.mark.parametrize("name", ["fp8_e4m3", "fp8_e5m2"])
def test_random_with_special_codes(name):
    rng = np.random.default_rng(900)
    all_codes = np.arange(256, dtype=np.uint8)
    fin = finite_codes(name)
    special = np.setdiff1d(all_codes, fin)
    pool = np.concatenate([fin, np.repeat(special, 2), np.zeros(20, np.uint8), np.full(10, 0x80, np.uint8)])
    qa, qb = random_operands(rng, name, 6, 24, 6, 4, codes=pool)
    assert_matmul(qa, qb)


# ------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------

def test_mismatched_k_blocking_raises():
    rng = np.random.default_rng(1000)
    A = rng.standard_normal((4, 64)).astype(np.float32)
    B = rng.standard_normal((64, 4)).astype(np.float32)
    cases = [
        (quantize(A, "mxsf", 32), quantize(B, "mxsf", 16, axis=0)),
        (quantize(A, "mxsf", 32), quantize(B, "mxsf", 32, axis=-1)),          # B blocked along N
        (quantize_tiles(A, "mxsf", (32, 32)), quantize_tiles(B, "mxsf", (16, 32))),
        (quantize_tiles(A, "mxsf", (32, 32)).T.T, quantize(B, "mxsf", 8, axis=0)),
    ]
    for qa, qb in cases:
        with pytest.raises(ValueError) as ei:
            matmul(qa, qb)
        assert "block" in str(ei.value) and str(qa.block_shape) in str(ei.value)
    with pytest.raises(ValueError) as ei:
        matmul(quantize(A, "mxsf", 32), quantize(B[:32], "mxsf", 32, axis=0))
    assert "(4, 64)" in str(ei.value) and "(32, 4)" in str(ei.value)
    with pytest.raises(ValueError):
        matmul(A, quantize(B, "mxsf", 32, axis=0))
    with pytest.raises(ValueError):
        matmul(quantize(A.ravel(), "mxsf", 32), quantize(B, "mxsf", 32, axis=0))
    with pytest.raises(ValueError) as ei:
        bf16_matmul(A, A)
    assert "(4, 64)" in str(ei.value)
    with pytest.raises(ValueError):
        bf16_matmul(np.ones((2, 2), np.int32), np.ones((2, 2), np.float32))


# ------------------------------------------------------------------------------------
# BF16 baseline
# ------------------------------------------------------------------------------------

def ref_bf16_matmul(a, b) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        a16 = np.asarray(a, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
        b16 = np.asarray(b, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    M, K = a16.shape
    N = b16.shape[1]
    out = np.zeros((M, N), dtype=np.uint32)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for i in range(M):
            for n in range(N):
                acc = np.float32(0.0)
                for k in range(K):
                    p = np.float32(a16[i, k] * b16[k, n])
                    acc = np.float32(acc + p)
                out[i, n] = CANONICAL_NAN_BITS if np.isnan(acc) else int(np.array(acc).view(np.uint32))
    return out


def test_bf16_matmul_reference():
    rng = np.random.default_rng(1100)
    M, K, N = 7, 45, 6
    a = (rng.standard_normal((M, K)) * 2.0 ** rng.integers(-20, 20, (M, K))).astype(np.float32)
    b = (rng.standard_normal((K, N)) * 2.0 ** rng.integers(-20, 20, (K, N))).astype(np.float32)
    a[0, 3] = np.nan
    a[1, 4] = np.inf
    b[4, 2] = 0.0           # Inf x 0 in (1, 2)
    a[2, :] = 3e38          # products overflow
    a[3, :] = 1e-25         # products become subnormal / underflow
    b[:, 5] = 1e-20
    a[4, 0] = 1.0 + 2.0**-8 + 2.0**-9   # rounding to bf16 (RNE, not truncation)
    a[5, 0] = 1.0 + 2.0**-8             # tie to even
    got = bits_of(bf16_matmul(a, b))
    assert np.array_equal(got, ref_bf16_matmul(a, b))
    assert got[0, 0] == CANONICAL_NAN_BITS and got[1, 2] == CANONICAL_NAN_BITS
    # float64 inputs are taken to float32 first
    assert np.array_equal(bits_of(bf16_matmul(a.astype(np.float64), b)), got)


def test_to_bf16_matches_ml_dtypes():
    rng = np.random.default_rng(1200)
    u = rng.integers(0, 1 << 32, 500_000, dtype=np.uint64).astype(np.uint32)
    u[:1000] = np.arange(1000, dtype=np.uint32) + np.uint32(0x7F7FFC00)   # near the top, Inf rounding
    x = u.view(np.float32)
    got = to_bf16(x)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(got), nan)
    assert np.all(bits_of(got)[nan] == CANONICAL_NAN_BITS)
    assert np.array_equal(bits_of(got)[~nan], bits_of(ref)[~nan])
