"""Float32Adder and IntToFloat32 against NumPy float32 and an exact integer reference.

Both units are combinational, so one testbench per simulation applies a batch of vectors, each
followed by ``ctx.delay``. Set ``MXSF_VCD=1`` to dump ``test_fp32_<name>.vcd`` per simulation.
"""

import contextlib
import gc
import math
import os
import warnings
from fractions import Fraction

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable, signed
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from mxsf.hw import fp32
from mxsf.hw.fp32 import CANONICAL_NAN, Float32Adder, IntToFloat32


MAX_NORMAL = 0x7F7F_FFFF
MIN_NORMAL = 0x0080_0000
MAX_SUBNORMAL = 0x007F_FFFF
POS_INF = 0x7F80_0000
SIGN = 0x8000_0000


# --- simulation helper -----------------------------------------------------------------------

def simulate_comb(dut, ports, vectors, output, name):
    """Apply each tuple of ``vectors`` to ``ports`` of a combinational ``dut``; return outputs."""
    assert dut.latency == 0, "this bench only drives combinational units"
    results = []

    async def testbench(ctx):
        for vector in vectors:
            for port, value in zip(ports, vector):
                ctx.set(port, value)
            await ctx.delay(1e-9)
            results.append(ctx.get(output))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    if os.environ.get("MXSF_VCD"):
        with sim.write_vcd(f"test_fp32_{name}.vcd"):
            sim.run()
    else:
        sim.run()
    return results


@contextlib.contextmanager
def unused_components():
    """Silence UnusedElaboratable for components built only to be inspected, or to raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        try:
            yield
        finally:
            gc.collect()


def assert_bits_equal(vectors, got, expected, what):
    bad = [(v, g, e) for v, g, e in zip(vectors, got, expected) if g != e]
    if bad:
        lines = [f"{what}: {len(bad)} of {len(got)} vectors differ, first ones:"]
        for v, g, e in bad[:8]:
            shown = ", ".join(f"{x:#010x}" if what == "add" else f"{x}" for x in v)
            lines.append(f"  ({shown}) -> got {g:#010x}, expected {e:#010x}")
        pytest.fail("\n".join(lines))


# --- adder reference and vectors --------------------------------------------------------------

def add_reference(pairs):
    a = np.array([p[0] for p in pairs], dtype=np.uint32).view(np.float32)
    b = np.array([p[1] for p in pairs], dtype=np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        total = a + b
    bits = total.view(np.uint32).copy()
    bits[np.isnan(total)] = CANONICAL_NAN
    return [int(x) for x in bits]


def check_adder(pairs, name):
    dut = Float32Adder()
    got = simulate_comb(dut, (dut.a, dut.b), pairs, dut.o, name)
    assert_bits_equal(pairs, got, add_reference(pairs), "add")
    return got


SPECIAL_MAGNITUDES = [
    0x0000_0000,                # zero
    0x0000_0001, 0x0000_0002,   # smallest subnormals
    0x0040_0000, MAX_SUBNORMAL,
    MIN_NORMAL, 0x0080_0001, 0x00FF_FFFF, 0x0100_0000,
    0x3300_0000, 0x3380_0000,   # 2^-25, 2^-24: half an ulp and an ulp of values near 1
    0x3F7F_FFFF, 0x3F80_0000, 0x3F80_0001, 0x3FC0_0000,
    0x4B00_0000, 0x4B80_0000,   # 2^23, 2^24
    0x7300_0000, 0x7380_0000,   # half an ulp and an ulp of MAX_NORMAL
    0x7F00_0000, 0x7F7F_FFFE, MAX_NORMAL,
    POS_INF,
    CANONICAL_NAN, 0x7F80_0001, 0x7FFF_FFFF,  # quiet and signalling NaNs with payloads
]
SPECIALS = SPECIAL_MAGNITUDES + [x | SIGN for x in SPECIAL_MAGNITUDES]


def random_floats(rng, n, exponent_fields, sign_bits=None):
    exponent_fields = np.asarray(exponent_fields, dtype=np.uint32)
    mantissas = rng.integers(0, 1 << 23, n, dtype=np.uint32)
    # A third of the mantissas have few bits set, so exact results and ties come up often.
    sparse = rng.random(n) < 1 / 3
    mantissas[sparse] &= ~np.uint32(0) << rng.integers(12, 24, int(sparse.sum())).astype(np.uint32)
    if sign_bits is None:
        sign_bits = rng.integers(0, 2, n, dtype=np.uint32)
    return (np.asarray(sign_bits, dtype=np.uint32) << 31) | (exponent_fields << 23) | mantissas


ADDER_KINDS = ["close", "far", "borrow", "tiny", "huge"]


def random_pairs(rng, n, kind):
    ea = rng.integers(0, 255, n)
    if kind == "close":         # exponents within 2: heavy cancellation when signs differ
        eb = np.clip(ea + rng.integers(-2, 3, n), 0, 254)
    elif kind == "far":         # exponents up to 60 apart, across the alignment limit
        eb = np.clip(ea - rng.integers(0, 61, n), 0, 254)
    elif kind == "borrow":      # 2..30 apart, opposite signs, a just above a power of two:
        ea = rng.integers(32, 255, n)   # the difference drops a binade and is inexact
        eb = ea - rng.integers(2, 31, n)
    elif kind == "tiny":        # subnormal and smallest normal operands: subnormal results
        ea = rng.integers(0, 4, n)
        eb = rng.integers(0, 4, n)
    elif kind == "huge":        # largest exponents: overflow to Inf
        ea = rng.integers(250, 255, n)
        eb = rng.integers(250, 255, n)
    else:
        raise AssertionError(kind)
    a = random_floats(rng, n, ea)
    b = random_floats(rng, n, eb)
    if kind == "close":
        # Mostly opposite signs, and often b is a with only a few low mantissa bits changed.
        b ^= np.where(rng.random(n) < 0.75, (a ^ b) & SIGN ^ SIGN, 0).astype(np.uint32)
        near = rng.random(n) < 0.5
        b[near] = (b[near] & ~np.uint32(0x7FFF_FFFF)) | (
            (a[near] & 0x7FFF_FFFF) ^ rng.integers(0, 1 << 6, int(near.sum()), dtype=np.uint32))
        negated = rng.random(n) < 0.1
        b[negated] = a[negated] ^ SIGN
    if kind == "borrow":
        a &= ~np.uint32(0x7F_FFFF) | rng.integers(0, 16, n, dtype=np.uint32)
        b = (b & 0x7FFF_FFFF) | (~a & SIGN)
    swap = rng.random(n) < 0.5
    a[swap], b[swap] = b[swap], a[swap].copy()
    return [(int(x), int(y)) for x, y in zip(a, b)]


def tie_pairs(rng, n):
    """a +/- exactly half an ulp of a: ties that keep a (even) or move away from it (odd)."""
    pairs = []
    for _ in range(n):
        exponent = int(rng.integers(25, 255))
        mantissa = int(rng.integers(0, 1 << 23))
        sign = int(rng.integers(0, 2)) << 31
        a = sign | exponent << 23 | mantissa
        half_ulp = (exponent - 24) << 23
        b_sign = int(rng.integers(0, 2)) << 31
        if b_sign != sign and mantissa == 0:
            mantissa = 1        # below a power of two half an ulp is no longer a tie
            a |= 1
        pairs.append((a, b_sign | half_ulp))
    return pairs


def f32_fraction(bits):
    """Exact value of a finite binary32 encoding."""
    exponent = (bits >> 23) & 0xFF
    assert exponent != 0xFF
    significand = (bits & 0x7F_FFFF) | (1 << 23 if exponent else 0)
    value = Fraction(significand) * Fraction(2) ** (max(exponent, 1) - 150)
    return -value if bits & SIGN else value


def rounding_classes(exact, result):
    """Names of the situations one rounding of ``exact`` to ``result`` exercises."""
    magnitude = result & 0x7FFF_FFFF
    if magnitude == POS_INF:
        return {"overflow"}
    classes = set()
    if magnitude == 0:
        classes.add("zero result" if exact == 0 else "underflow to zero")
    elif magnitude < MIN_NORMAL:
        classes.add("subnormal result")
    else:
        classes.add("normal result")
    error = abs(exact - f32_fraction(result))
    ulp = Fraction(2) ** (max(magnitude >> 23, 1) - 150)
    if 2 * error == ulp:
        classes.add("tie, away from zero" if abs(f32_fraction(result)) > abs(exact)
                    else "tie, toward zero")
    elif error != 0:
        classes.add("inexact")
    return classes


def add_classes(a, b, result):
    if (a >> 23) & 0xFF == 0xFF or (b >> 23) & 0xFF == 0xFF:
        return {"special input"}
    fa, fb = f32_fraction(a), f32_fraction(b)
    classes = rounding_classes(fa + fb, result)
    if fa + fb == 0 and fa != 0:
        classes.add("cancellation to zero")
    if fa + fb != 0 and abs(fa + fb) < max(abs(fa), abs(fb)) / 2 ** 10:
        classes.add("massive cancellation")
    if "inexact" in classes and (result >> 23) & 0xFF < max((a >> 23) & 0xFF, (b >> 23) & 0xFF):
        classes.add("inexact, exponent below both operands")
    return classes


# --- adder tests ------------------------------------------------------------------------------

def test_adder_interface():
    with unused_components():
        check_adder_interface()


def check_adder_interface():
    dut = Float32Adder()
    assert dut.latency == 0
    assert dut.module_name == "fp32_add"
    assert dut.signature.members["a"] == In(32)
    assert dut.signature.members["b"] == In(32)
    assert dut.signature.members["o"] == Out(32)


def test_adder_specials():
    pairs = [(a, b) for a in SPECIALS for b in SPECIALS]
    got = check_adder(pairs, "adder_specials")
    nan_inputs = [(a, b) for (a, b), o in zip(pairs, got)
                  if ((a >> 23) & 0xFF == 0xFF and a & 0x7F_FFFF) or o == CANONICAL_NAN]
    assert all(o != CANONICAL_NAN or (a, b) in nan_inputs for (a, b), o in zip(pairs, got))
    assert got[pairs.index((SIGN, SIGN))] == SIGN                  # (-0) + (-0) = -0
    assert got[pairs.index((0, SIGN))] == 0                        # (+0) + (-0) = +0
    assert got[pairs.index((POS_INF, POS_INF | SIGN))] == CANONICAL_NAN
    assert got[pairs.index((MAX_NORMAL, MAX_NORMAL))] == POS_INF


def test_adder_directed_rounding():
    # (a, b, expected) written out, so they hold whatever NumPy does.
    cases = [
        (0x3F80_0000, 0x3380_0000, 0x3F80_0000),  # 1 + 2^-24: tie, stays even
        (0x3F80_0001, 0x3380_0000, 0x3F80_0002),  # odd + half ulp: tie, rounds up
        (0x3F80_0001, 0xB380_0000, 0x3F80_0000),  # odd - half ulp: tie, rounds down to even
        (0x3F80_0002, 0xB380_0000, 0x3F80_0002),  # even - half ulp: tie, stays
        (0x3F80_0000, 0xB300_0000, 0x3F80_0000),  # 1 - 2^-25: tie below a power of two
        (0x3F80_0000, 0xB300_0001, 0x3F7F_FFFF),  # 1 - (2^-25 + tiny): just below the tie
        (0x3F80_0000, 0x3380_0001, 0x3F80_0001),  # just above a tie
        (0x3F80_0000, 0xB380_0001, 0x3F7F_FFFF),  # 1 - (2^-24 + tiny): round down
        (MAX_NORMAL, 0x7300_0000, POS_INF),       # max + half ulp: tie, odd -> Inf
        (MAX_NORMAL, 0x72FF_FFFF, MAX_NORMAL),    # max + under half ulp
        (MAX_NORMAL | SIGN, 0xF300_0000, POS_INF | SIGN),
        (0x0080_0001, 0x8080_0000, 0x0000_0001),  # normal - normal = smallest subnormal
        (MAX_SUBNORMAL, 0x0000_0001, MIN_NORMAL), # subnormal + subnormal = min normal
        (MIN_NORMAL, 0x8000_0001, MAX_SUBNORMAL), # min normal - tiny = max subnormal
        (0x4B80_0001, 0xCB80_0000, 0x4000_0000),  # 2^24 + 2 - 2^24 = 2
        (0x3F80_0000, 0xBF80_0000, 0x0000_0000),  # x - x = +0
        (0xBF80_0000, 0x3F80_0000, 0x0000_0000),  # -x + x = +0
        (0x0000_0001, 0x8000_0001, 0x0000_0000),  # tiny cancellation = +0
        (POS_INF, MAX_NORMAL | SIGN, POS_INF),
        (0xFF80_0000, 0xFF80_0000, 0xFF80_0000),
        (0xFF80_0001, 0x3F80_0000, CANONICAL_NAN),
    ]
    dut = Float32Adder()
    pairs = [(a, b) for a, b, _ in cases]
    got = simulate_comb(dut, (dut.a, dut.b), pairs, dut.o, "adder_directed")
    assert_bits_equal(pairs, got, [e for _, _, e in cases], "add")
    assert_bits_equal(pairs, got, add_reference(pairs), "add")


@pytest.mark.parametrize("kind", ADDER_KINDS)
def test_adder_random(kind):
    rng = np.random.default_rng(ADDER_KINDS.index(kind) + 100)
    pairs = random_pairs(rng, 1000, kind)
    check_adder(pairs, f"adder_random_{kind}")


def test_adder_random_bits():
    rng = np.random.default_rng(7)
    pairs = [(int(a), int(b)) for a, b in rng.integers(0, 1 << 32, (1000, 2), dtype=np.uint64)]
    check_adder(pairs, "adder_random_bits")


def test_adder_ties():
    pairs = tie_pairs(np.random.default_rng(11), 300)
    got = check_adder(pairs, "adder_ties")
    classes = set().union(*(add_classes(a, b, o) for (a, b), o in zip(pairs, got)))
    assert {"tie, away from zero", "tie, toward zero"} <= classes


def test_adder_vectors_cover_classes():
    # The generators, not the hardware: every class of interest must actually come up.
    rng = np.random.default_rng(5)
    pairs = [pair for kind in ADDER_KINDS for pair in random_pairs(rng, 300, kind)]
    pairs += tie_pairs(rng, 50)
    got = add_reference(pairs)
    classes = set().union(*(add_classes(a, b, o) for (a, b), o in zip(pairs, got)))
    assert {"overflow", "cancellation to zero", "subnormal result", "tie, away from zero",
            "tie, toward zero", "inexact", "massive cancellation",
            "inexact, exponent below both operands"} <= classes


# --- int-to-float reference and vectors -------------------------------------------------------

def int_to_f32_reference(s, k):
    """Exact RNE of s * 2^k to binary32 bits, with Python integers only."""
    if s == 0:
        return 0
    sign = SIGN if s < 0 else 0
    magnitude = abs(s)
    lead = magnitude.bit_length() - 1 + k           # exponent of the leading one
    quantum = max(lead, -126) - 23                  # exponent of the result's ulp
    shift = k - quantum
    if shift >= 0:
        n = magnitude << shift
    else:
        n = magnitude >> -shift
        rest = magnitude - (n << -shift)
        half = 1 << (-shift - 1)
        if rest > half or (rest == half and n & 1):
            n += 1
    if n == 1 << 24:                                # rounding carried into a new binade
        n >>= 1
        quantum += 1
    if n < 1 << 23:                                 # subnormal (or zero), quantum == -149
        return sign | n
    biased = quantum + 23 + 127
    if biased >= 0xFF:
        return sign | POS_INF
    return sign | biased << 23 | (n - (1 << 23))


def random_bits(rng, width):
    """A uniform random integer in [0, 2^width)."""
    return int.from_bytes(rng.bytes((width + 7) // 8), "little") & ((1 << width) - 1)


def int_vectors(rng, n, int_width, k_lo, k_hi):
    """(s, k) pairs: many bits beyond the 24 kept, ties, and k around every boundary."""
    s_max = (1 << (int_width - 1)) - 1
    s_min = -(1 << (int_width - 1))
    vectors = []
    for _ in range(n):
        shape = rng.integers(0, 6)
        length = int(rng.integers(1, int_width))    # bit length of |s|
        if shape == 0:                              # uniform over the whole width
            s = random_bits(rng, int_width) + s_min
        elif shape == 1:                            # uniform below a random leading one
            s = 1 << (length - 1) | random_bits(rng, length - 1)
        elif shape in (2, 3):                       # random kept bits, then a tie-like tail
            below = max(0, length - 24)
            kept = 1 << (length - below - 1) | random_bits(rng, length - below - 1)
            half = 1 << below >> 1
            tail = [0, half, half + 1, half - 1, (1 << below) - 1][int(rng.integers(0, 5))]
            s = kept << below | (tail if below else 0)
        elif shape == 4:                            # a power of two, plus or minus one
            s = (1 << (length - 1)) + int(rng.integers(-1, 2))
        else:                                       # the extremes
            s = [s_max, s_min, 1, -1, 0, s_max - 1, s_min + 1][int(rng.integers(0, 7))]
        if rng.random() < 0.5:
            s = -s
        s = min(max(s, s_min), s_max)
        length = max(abs(s).bit_length(), 1)
        # k near a boundary of the result: overflow (leading one at 2^127/2^128), subnormal
        # (2^-126), underflow to zero (2^-150), or anywhere.
        target = [127, 128, -126, -127, -140, -149, -150, -151, None][int(rng.integers(0, 9))]
        if target is None:
            k = int(rng.integers(k_lo, k_hi + 1))
        else:
            k = target - (length - 1) + int(rng.integers(-2, 3))
            k = min(max(k, k_lo), k_hi)
        vectors.append((s, k))
    return vectors


INT_CONFIGS = [
    # int_width, exp_min, exp_max
    (70, -2 * 127 - 40, 2 * 127 + 20),     # fp8_e5m2 block sums
    (70, -300, 300),
    (48, -200, 100),
    (25, -180, 140),                       # guard bit only below 24 kept bits
    (24, -149, 104),
    (8, -160, 130),
    (2, -160, 140),
    (40, 0, 10),                           # non-negative exponents only
]


# --- int-to-float tests -----------------------------------------------------------------------

def test_int_reference_matches_numpy():
    # The reference against one exact float64 rounding step: |s| < 2^53 and s * 2^k is a
    # normal float64, so np.float32(float64) is the only rounding.
    rng = np.random.default_rng(3)
    checked = 0
    for s, k in int_vectors(rng, 6000, 53, -400, 400):
        with np.errstate(over="ignore"):
            expected = np.float32(math.ldexp(float(s), k)).view(np.uint32)
        assert int_to_f32_reference(s, k) == int(expected), (s, k)
        checked += 1
    assert checked == 6000


@pytest.mark.parametrize("int_width,exp_min,exp_max", INT_CONFIGS)
def test_int_to_float(int_width, exp_min, exp_max):
    dut = IntToFloat32(int_width=int_width, exp_min=exp_min, exp_max=exp_max)
    assert dut.latency == 0
    rng = np.random.default_rng(int_width * 1000 + exp_max)
    vectors = int_vectors(rng, 500, int_width, exp_min, exp_max)
    # Also the whole range of k's shape, beyond the declared one.
    k_shape_lo = -(1 << (dut.k_width - 1))
    k_shape_hi = (1 << (dut.k_width - 1)) - 1
    vectors += int_vectors(rng, 40, int_width, k_shape_lo, k_shape_hi)
    vectors += [(0, exp_min), (0, exp_max), (1, exp_min), (-1, exp_max),
                ((1 << (int_width - 1)) - 1, exp_max), (-(1 << (int_width - 1)), exp_max),
                (-(1 << (int_width - 1)), exp_min)]
    got = simulate_comb(dut, (dut.s, dut.k), vectors, dut.o, f"int{int_width}_to_float")
    assert_bits_equal(vectors, got, [int_to_f32_reference(s, k) for s, k in vectors],
                      "int_to_float")
    if int_width >= 25 and exp_max >= 104 and exp_min <= -180:
        # The vectors reach every class (checked on the reference, which matched the unit).
        classes = set().union(*(rounding_classes(Fraction(s) * Fraction(2) ** k, o)
                                for (s, k), o in zip(vectors, got)))
        assert {"overflow", "underflow to zero", "subnormal result", "normal result",
                "zero result", "tie, away from zero", "tie, toward zero", "inexact"} <= classes


def test_int_to_float_subnormal_ties():
    dut = IntToFloat32(int_width=32, exp_min=-200, exp_max=0)
    vectors = [(2 * n + 1, -150) for n in range(40)]                 # (n + 1/2) * 2^-149
    vectors += [((2 * n + 1) << 20, -170) for n in range(40)]        # the same ties, shifted
    vectors += [((2 * n + 1) << 20 | 1, -170) for n in range(40)]    # just above the ties
    vectors += [(1, -150), (-1, -150), (3, -151), (1, -151), (0x3F_FFFF, -171)]
    got = simulate_comb(dut, (dut.s, dut.k), vectors, dut.o, "int_subnormal_ties")
    expected = [int_to_f32_reference(s, k) for s, k in vectors]
    assert_bits_equal(vectors, got, expected, "int_to_float")
    assert got[:3] == [0, 2, 2]                       # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 ulps
    assert got[80:83] == [1, 2, 3]                    # 0.5+, 1.5+, 2.5+ round up
    assert got[-5:-3] == [0, SIGN]                    # half the smallest subnormal -> +/-0


def double_rounded(s, k):
    """What rounding to 24 significant bits first, then to binary32, would give."""
    magnitude = abs(s)
    drop = max(0, magnitude.bit_length() - 24)
    n = magnitude >> drop
    rest = magnitude - (n << drop)
    if drop and (2 * rest > 1 << drop or (2 * rest == 1 << drop and n & 1)):
        n += 1
    return int_to_f32_reference(n if s > 0 else -n, k + drop)


def test_int_to_float_no_double_rounding():
    # Subnormal results whose lsb is odd, guard bit 0 and every bit below it 1: rounding to 24
    # significant bits first would carry into the guard bit and then round the tie up.
    dut = IntToFloat32(int_width=70, exp_min=-300, exp_max=300)
    vectors = []
    for shift in range(1, 24):                        # leading one at 2^(-126 - shift)
        s = 1 << 59 | 1 << (shift + 36) | (1 << (shift + 35)) - 1
        k = -126 - shift - 59
        vectors += [(s, k), (-s, k)]
    got = simulate_comb(dut, (dut.s, dut.k), vectors, dut.o, "int_double_rounding")
    expected = [int_to_f32_reference(s, k) for s, k in vectors]
    assert_bits_equal(vectors, got, expected, "int_to_float")
    assert all(double_rounded(s, k) != e for (s, k), e in zip(vectors, expected))


# --- parameters, Verilog ------------------------------------------------------------------------

def test_module_all():
    for name in fp32.__all__:
        assert hasattr(fp32, name), name
    assert set(fp32.__all__) == {"Float32", "Float32Adder", "IntToFloat32", "CANONICAL_NAN"}


def test_int_to_float_interface():
    with unused_components():
        check_int_to_float_interface()


def check_int_to_float_interface():
    dut = IntToFloat32(int_width=70, exp_min=-294, exp_max=274)
    assert (dut.int_width, dut.exp_min, dut.exp_max) == (70, -294, 274)
    assert dut.k_width == 10
    assert dut.signature.members["s"] == In(signed(70))
    assert dut.signature.members["k"] == In(signed(10))
    assert dut.signature.members["o"] == Out(32)
    assert dut.latency == 0
    assert dut.module_name == "int70_to_fp32_km294_274"
    assert IntToFloat32(int_width=8, exp_min=0, exp_max=1).k_width == 2
    assert IntToFloat32(int_width=8, exp_min=-256, exp_max=255).k_width == 9
    with pytest.raises(AttributeError):
        dut.int_width = 8


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(int_width=1), ValueError, r"^int_width must be an integer in \[2, 256\], not 1$"),
    (dict(int_width=257), ValueError, r"^int_width must be an integer in \[2, 256\], not 257$"),
    (dict(int_width="8"), TypeError, r"^int_width must be an integer, not '8'$"),
    (dict(int_width=8.0), TypeError, r"^int_width must be an integer, not 8\.0$"),
    (dict(int_width=True), TypeError, r"^int_width must be an integer, not True$"),
    (dict(exp_min=-4097), ValueError,
     r"^exp_min must be an integer in \[-4096, 4096\], not -4097$"),
    (dict(exp_min=None), TypeError, r"^exp_min must be an integer, not None$"),
    (dict(exp_max=-11), ValueError, r"^exp_max must be an integer in \[-10, 4096\], not -11$"),
    (dict(exp_max=4097), ValueError, r"^exp_max must be an integer in \[-10, 4096\], not 4097$"),
])
def test_int_to_float_parameter_errors(kwargs, error, message):
    params = dict(int_width=16, exp_min=-10, exp_max=10) | kwargs
    with unused_components(), pytest.raises(error, match=message):
        IntToFloat32(**params)


def test_int_to_float_keyword_only():
    with unused_components(), \
            pytest.raises(TypeError, match=r"takes 1 positional argument but 4 were given$"):
        IntToFloat32(16, -10, 10)


def test_verilog_conversion():
    adder = Float32Adder()
    text = verilog.convert(adder, name=adder.module_name)
    assert f"module {adder.module_name}" in text
    rounder = IntToFloat32(int_width=70, exp_min=-300, exp_max=300)
    text = verilog.convert(rounder, name=rounder.module_name)
    assert f"module {rounder.module_name}" in text
    assert "input [69:0] s" in text.replace("signed ", "")
