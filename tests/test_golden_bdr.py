"""Shared-microexponent formats mx9, mx6, mx4 (SPEC.md section 11) against independent references.

The references here are written from the SPEC text with Python integers and
``fractions.Fraction`` only: the block exponent by comparing with powers of two, the
microexponent by comparing both magnitudes of a pair with 2^E, the magnitude by brute
force over all 2^p candidates (nearest, ties to the even candidate), the dot product as an
exact rational sum rounded once to binary32 by integer arithmetic. Nothing is shared with
:mod:`mxsf.golden.bdr`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from mxsf.golden import (FORMATS, MXArray, bdr_batched_dot, bdr_dot, batched_dot, dequantize, dot_block, format_names, get_format,
                         matmul, quantize, quantize_tiles, requantize_tile)

P = {"mx9": 7, "mx6": 4, "mx4": 2}
BDR = list(P)
TWO = Fraction(2)


# ---------------------------------------------------------------------------------------
# independent references
# ---------------------------------------------------------------------------------------

def floor_log2(x: Fraction) -> int:
    """The integer e with 2^e <= x < 2^(e+1), x > 0."""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while TWO ** e > x:
        e -= 1
    while TWO ** (e + 1) <= x:
        e += 1
    return e


def nearest_even(t: Fraction, p: int) -> int:
    """Brute force: the m in [0, 2^p - 1] nearest to t; on a tie the even one."""
    best, best_d = None, None
    for m in range(1 << p):
        d = abs(t - m)
        if best is None or d < best_d or (d == best_d and m % 2 == 0):
            best, best_d = m, d
    return best


def ref_quantize_block(vals, p: int):
    """SPEC.md 11 for one block of 16 float32 values: (exponent byte, codes, taus)."""
    vals = [float(v) for v in vals]
    if any(not math.isfinite(v) for v in vals):
        return 0xFF, [0] * 16, [0] * 8
    mags = [abs(Fraction(v)) for v in vals]
    mx = max(mags)
    E = -127 if mx == 0 else min(127, max(-127, floor_log2(mx)))
    taus = [int(mags[2 * i] < TWO ** E and mags[2 * i + 1] < TWO ** E) for i in range(8)]
    codes = []
    for k, v in enumerate(vals):
        q = TWO ** (E - taus[k // 2] - p + 1)
        m = nearest_even(mags[k] / q, p)
        s = int(math.copysign(1.0, v) < 0)
        codes.append((s << p) | m)
    return E + 127, codes, taus


def ref_value(code: int, tau: int, byte: int, p: int) -> Fraction:
    s, m = code >> p, code & ((1 << p) - 1)
    return (-1) ** s * m * TWO ** (byte - 127 - tau - (p - 1))


def f32_from_fraction(x: Fraction) -> np.float32:
    """IEEE binary32 RNE of an exact rational (subnormals, overflow to Inf), integer arithmetic."""
    if x == 0:
        return np.float32(0.0)
    neg = x < 0
    a = abs(x)
    e = max(floor_log2(a), -126)          # binade (subnormals share 2^-126's quantum)
    q = TWO ** (e - 23)                   # quantum
    t = a / q
    n = t.numerator // t.denominator
    r = t - n
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and n % 2):
        n += 1
    val = n * q
    if val >= TWO ** 128 - TWO ** 103:     # rounds to 2^128 or beyond
        out = math.inf
    else:
        out = float(val)
    return np.float32(-out if neg else out)


def f32_bits(x) -> int:
    return int(np.asarray(x, dtype=np.float32).view(np.uint32))


def check_blocks(x: np.ndarray, fmt: str):
    """Quantize rows of 16 and compare every byte, code and tau with the reference."""
    p = P[fmt]
    q = quantize(x, fmt)
    assert q.block_shape == (1, 16) and q.microexp.shape == (x.shape[0], 8)
    for r in range(x.shape[0]):
        byte, codes, taus = ref_quantize_block(x[r], p)
        assert int(q.scale_e8m0[r, 0]) == byte, (fmt, r, x[r])
        assert q.codes[r].tolist() == codes, (fmt, r, x[r], q.codes[r].tolist(), codes)
        assert q.microexp[r].tolist() == taus, (fmt, r, x[r])
    return q


def f32(*v) -> np.ndarray:
    return np.array(v, dtype=np.float32)


def block(*vals, fill=0.0) -> np.ndarray:
    v = list(vals) + [fill] * (16 - len(vals))
    return np.array(v, dtype=np.float32)


# ---------------------------------------------------------------------------------------
# the format table
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", BDR)
def test_table_rows(fmt):
    f = get_format(fmt)
    p = P[fmt]
    assert f.kind.value == "bdr" and f.bits == p + 1 and f.man_bits == p and f.emax_elem == 0
    assert f.fixed_block_size == 16 and f.default_block_size == 16 and f.microexp_group == 2
    assert f.bits_per_element() == {"mx9": 9, "mx6": 6, "mx4": 4}[fmt]
    assert not f.allows_tiles and not f.has_nan and not f.has_inf and f.has_neg_zero
    assert fmt in format_names(include_bf16=False)
    for code in range(1 << f.bits):
        assert Fraction(float(f.values[code])) == ref_value(code, 0, 127, p)
    assert get_format("fp8_e4m3").bits_per_element() == 8.25


def test_no_branch_on_format_name():
    """The BDR formats are rows of the table: every property comes from kind and widths."""
    for f in FORMATS.values():
        if f.kind.value == "bdr":
            assert f.describe()["bits_per_element"] == f.bits + 1


# ---------------------------------------------------------------------------------------
# quantization against the reference
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", BDR)
def test_microexponent_cases(fmt):
    """Pairs at, above and below 2^E (one binade under the block maximum), and zero pairs."""
    E = 3
    top = 2.0 ** E
    b = block(1.75 * top, 0.3 * top,             # the maximum (E = 3) and a small partner: tau 0
              1.0 * top, 0.6 * top,              # at 2^E with one below: tau 0
              np.nextafter(np.float32(top), np.float32(0)), 0.75 * top,  # just below 2^E: tau 1
              0.5 * top, -0.9 * top,             # one binade under: tau 1
              1.2 * top, 1.5 * top,              # both in the top binade: tau 0
              -1.9 * top, 0.01,                  # above with tiny: tau 0
              0.0, -0.0,                         # zero pair: tau 1
              0.2 * top, -0.126 * top)           # three binades under: tau 1
    x = np.stack([b, -b, b[::-1].copy(), b * np.float32(2.0 ** -40)])
    q = check_blocks(x, fmt)
    assert q.microexp[0].tolist() == [0, 0, 1, 1, 0, 0, 1, 1]
    assert q.microexp[2].tolist() == [1, 1, 0, 0, 1, 1, 0, 0]


@pytest.mark.parametrize("fmt", BDR)
def test_rne_ties_and_saturation(fmt):
    """Every midpoint between neighbouring magnitudes in both tau cases, just off them, and saturation."""
    p = P[fmt]
    E = 5
    rows = []
    for tau in (0, 1):
        q = 2.0 ** (E - tau - p + 1)
        mids = [(m + 0.5) * q for m in range(1 << p)]
        for off in (0.0, 1e-4 * q, -1e-4 * q):
            vals = [v + off for v in mids]
            for i in range(0, len(vals), 14 if tau == 0 else 7):
                chunk = vals[i:i + (14 if tau == 0 else 7)]
                if tau == 0:
                    # keep the maximum at 2^E..: put 1.0 x 2^E first so E stays 5
                    rows.append(block(2.0 ** E, 2.0 ** E, *chunk))
                else:
                    # pairs below 2^E need a partner below 2^E too; the block maximum sets E
                    pairs = []
                    for v in chunk:
                        if v < 2.0 ** E:
                            pairs += [v, v / 3]
                    rows.append(block(2.0 ** E, 2.0 ** E, *pairs[:14]))
    # saturation: the block maximum rounds past 2^p - 1
    top = 2.0 ** E
    rows.append(block(np.nextafter(np.float32(2 * top), np.float32(0)), -(2 - 2.0 ** -p) * top,
                      (2 - 2.0 ** (1 - p)) * top, (2 - 2.0 ** (-p)) * top))
    x = np.stack(rows).astype(np.float32)
    q = check_blocks(x, fmt)
    last = q.codes[-1]
    assert last[0] == (1 << p) - 1 and last[1] == (1 << (p + 1)) - 1 and last[3] == (1 << p) - 1


@pytest.mark.parametrize("fmt", BDR)
def test_signed_zeros_subnormals_specials(fmt):
    p = P[fmt]
    tiny = np.float32(2.0 ** -149)
    rows = [
        block(-0.0, fill=-0.0),                                  # all -0: E = -127, s = 1
        block(0.0),                                              # all +0
        block(1.0, -1e-30, -0.0, 1e-30),                         # negatives rounding to 0 give s = 1
        block(tiny, -tiny, 3 * tiny, 2.0 ** -127, -(2.0 ** -126) * 0.75),  # float32 subnormals
        block(2.0 ** -126, 2.0 ** -127, 2.0 ** -130, -(2.0 ** -149)),     # E = -126
        block(np.float32(3e-39), np.float32(-1.2e-38)),         # subnormal maximum: E clamps to -127
        block(1.0, np.nan, 2.0),                                 # NaN block
        block(np.inf, 1.0),                                      # Inf block
        block(-np.inf, -np.inf),
        block(np.float32(3.4e38), np.float32(-3.3e38), 1.0, 2.0 ** 120),  # E = 127
        block(1.0, 2.0, fill=0.0),                               # zero pairs in a non-zero block
    ]
    x = np.stack(rows).astype(np.float32)
    q = check_blocks(x, fmt)
    assert q.codes[0].tolist() == [1 << p] * 16 and int(q.scale_e8m0[0, 0]) == 0
    assert q.microexp[0].tolist() == [1] * 8
    assert int(q.scale_e8m0[6, 0]) == 0xFF and q.codes[6].tolist() == [0] * 16 and q.microexp[6].tolist() == [0] * 8
    d = dequantize(q)
    assert np.isnan(d[6]).all() and np.isnan(d[7]).all()
    assert np.signbit(d[0]).all() and (d[0] == 0).all()


@pytest.mark.parametrize("fmt", BDR)
def test_random_wide_range(fmt):
    """Random blocks over 60 binades (exponents per element), both signs, zeros mixed in."""
    rng = np.random.default_rng({"mx9": 1, "mx6": 2, "mx4": 3}[fmt])
    n = 300
    x = rng.standard_normal((n, 16)) * 2.0 ** rng.integers(-6, 6, (n, 16)) * 2.0 ** rng.integers(-30, 30, (n, 1))
    x[rng.random((n, 16)) < 0.05] = 0.0
    check_blocks(x.astype(np.float32), fmt)


@pytest.mark.parametrize("fmt", BDR)
def test_axis_ragged_and_dequantize(fmt):
    """Blocks along axis 0, a ragged last block, and dequantized values against the SPEC formula."""
    p = P[fmt]
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((37, 5)) * 2.0 ** rng.integers(-8, 8, (37, 5))).astype(np.float32)
    q = quantize(x, fmt, axis=0)
    assert q.block_shape == (16, 1) and q.scale_e8m0.shape == (3, 5) and q.microexp.shape == (19, 5)
    xp = np.zeros((48, 5), np.float32)
    xp[:37] = x
    d = dequantize(q)
    for c in range(5):
        for j in range(3):
            byte, codes, taus = ref_quantize_block(xp[16 * j:16 * j + 16, c], p)
            assert int(q.scale_e8m0[j, c]) == byte
            n_real = min(16, 37 - 16 * j)
            assert q.codes[16 * j:16 * j + n_real, c].tolist() == codes[:n_real]
            n_pairs = min(8, 19 - 8 * j)
            assert q.microexp[8 * j:8 * j + n_pairs, c].tolist() == taus[:n_pairs]
            for k in range(n_real):
                assert Fraction(float(d[16 * j + k, c])) == ref_value(codes[k], taus[k // 2], byte, p)
    qt = q.T
    assert qt.block_shape == (1, 16) and np.array_equal(dequantize(qt), d.T)


@pytest.mark.parametrize("fmt", BDR)
def test_parameter_errors(fmt):
    x = np.ones((4, 32), np.float32)
    with pytest.raises(ValueError, match=r"^block_size must be 16 for mx\d \(SPEC\.md 11.*not 32$"):
        quantize(x, fmt, block_size=32)
    with pytest.raises(ValueError, match=r"^block_size must be 16 .*not 8$"):
        quantize(x, fmt, 8)
    assert quantize(x, fmt, 16).block_shape == (1, 16)
    with pytest.raises(ValueError, match=rf"^fmt {fmt} has no 2D tiles"):
        quantize_tiles(x, fmt, tile=(1, 16))
    with pytest.raises(ValueError, match=rf"^fmt {fmt} has no 2D tiles"):
        requantize_tile(x, fmt)
    with pytest.raises(ValueError, match=r"has microexponents"):
        batched_dot(np.zeros((1, 16)), np.zeros((1, 16)), [[127]], [[127]], fmt, 16)
    with pytest.raises(ValueError, match=r"has microexponents"):
        dot_block([0] * 16, [0] * 16, 127, 127, fmt)
    # a BDR operand with a single-scale one
    qa = quantize(x, fmt)
    qb = quantize(x.T.copy(), "fp8_e4m3", 16, axis=0)
    with pytest.raises(ValueError, match=r"BDR\) operand multiplies only another BDR operand"):
        matmul(qa, qb)
    with pytest.raises(ValueError, match=r"BDR\) operand multiplies only another BDR operand"):
        matmul(qb.T, quantize(x.T.copy(), fmt, axis=0))


# ---------------------------------------------------------------------------------------
# dot products against exact rational sums
# ---------------------------------------------------------------------------------------

def ref_dot(blocks, pa: int, pb: int) -> int:
    """float32 bits of SPEC.md 11 + 5: exact block sums, one rounding each, float32 accumulation."""
    acc = np.float32(0.0)
    for ac, bc, ta, tb, xa, xb in blocks:
        if xa == 0xFF or xb == 0xFF:
            d = np.float32(np.nan)
        else:
            s = sum(ref_value(ac[i], ta[i // 2], xa, pa) * ref_value(bc[i], tb[i // 2], xb, pb) for i in range(16))
            d = f32_from_fraction(s)
        with np.errstate(over="ignore", invalid="ignore"):
            acc = np.float32(acc + d)
    return 0x7FC00000 if np.isnan(acc) else f32_bits(acc)


def random_blocks(rng, fa, fb, nblk, byte_lo=100, byte_hi=150, nan_rate=0.0):
    pa, pb = P[fa], P[fb]
    out = []
    for _ in range(nblk):
        xa, xb = (int(v) for v in rng.integers(byte_lo, byte_hi + 1, 2))
        if rng.random() < nan_rate:
            xa = 0xFF
        out.append((rng.integers(0, 1 << (pa + 1), 16).tolist(), rng.integers(0, 1 << (pb + 1), 16).tolist(),
                    rng.integers(0, 2, 8).tolist(), rng.integers(0, 2, 8).tolist(), xa, xb))
    return out


@pytest.mark.parametrize("fa,fb", [("mx9", "mx9"), ("mx6", "mx6"), ("mx4", "mx4"), ("mx9", "mx6"), ("mx4", "mx9")])
def test_dot_products_exact(fa, fb):
    """Random codes and microexponents (every code value, not only quantizer outputs), many blocks,
    scales from ordinary to the float32 subnormal and overflow ranges, NaN blocks."""
    rng = np.random.default_rng(sum(map(ord, fa + fb)))
    cases = []
    for lo, hi in ((120, 134), (0, 12), (240, 254), (0, 254)):
        for nblk in (1, 2, 5):
            for _ in range(6):
                cases.append(random_blocks(rng, fa, fb, nblk, lo, hi, nan_rate=0.05))
    # cancellation: A block then its negation
    blk = random_blocks(rng, fa, fb, 1)[0]
    neg = ([c ^ (1 << P[fa]) for c in blk[0]], *blk[1:])
    cases.append([blk, neg, blk])
    for blocks in cases:
        n = len(blocks)
        a = np.array([c for b in blocks for c in b[0]], np.uint8)[None, :]
        b = np.array([c for bl in blocks for c in bl[1]], np.uint8)[:, None]
        ta = np.array([t for bl in blocks for t in bl[2]], np.uint8)[None, :]
        tb = np.array([t for bl in blocks for t in bl[3]], np.uint8)[:, None]
        sa = np.array([[bl[4] for bl in blocks]], np.uint8)
        sb = np.array([[bl[5] for bl in blocks]], np.uint8).T
        qa = MXArray(get_format(fa), a, sa, (1, 16), microexp=ta)
        qb = MXArray(get_format(fb), b, sb, (16, 1), microexp=tb)
        got = f32_bits(matmul(qa, qb)[0, 0])
        assert got == ref_dot(blocks, P[fa], P[fb]), (fa, fb, n)
        if fa == fb:
            assert f32_bits(bdr_dot(blocks, fa)) == got
            assert f32_bits(bdr_batched_dot(a, b.T, ta, tb.T, sa, sb.T, fa)[0]) == got


@pytest.mark.parametrize("fmt", BDR)
def test_matmul_quantized(fmt):
    """matmul of quantized matrices (ragged K, a .T operand) against the rational reference."""
    p = P[fmt]
    rng = np.random.default_rng(11)
    A = (rng.standard_normal((3, 40)) * 2.0 ** rng.integers(-5, 5, (3, 40))).astype(np.float32)
    B = (rng.standard_normal((40, 4)) * 2.0 ** rng.integers(-5, 5, (40, 4))).astype(np.float32)
    qa = quantize(A, fmt)
    qb = quantize(B.T.copy(), fmt).T              # blocked along K through the transpose
    C = matmul(qa, qb)
    Ap = np.zeros((3, 48), np.float32)
    Ap[:, :40] = A
    Bp = np.zeros((48, 4), np.float32)
    Bp[:40] = B
    for i in range(3):
        for j in range(4):
            blocks = []
            for k in range(3):
                xa, ca, ta = ref_quantize_block(Ap[i, 16 * k:16 * k + 16], p)
                xb, cb, tb = ref_quantize_block(Bp[16 * k:16 * k + 16, j], p)
                blocks.append((ca, cb, ta, tb, xa, xb))
            assert f32_bits(C[i, j]) == ref_dot(blocks, p, p), (i, j)


@pytest.mark.parametrize("fmt", BDR)
def test_element_encoder_at_e_minus_tau(fmt):
    """The format's encoder segment (what the hardware ElementEncoder runs) at exponent
    E - tau gives the quantizer's codes: SPEC.md 11 step 3 is an INT-like grid of 2^(1-p)."""
    from mxsf.golden import encode_exact
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((200, 16)) * 2.0 ** rng.integers(-12, 3, (200, 16))
         * 2.0 ** rng.integers(-140, 120, (200, 1))).astype(np.float32)
    x[:3] = 0.0
    x[3, :5] = -0.0
    q = quantize(x, fmt)
    E = q.scale_e8m0.astype(np.int64) - 127
    tau = np.repeat(q.microexp, 2, axis=1).astype(np.int64)
    assert np.array_equal(encode_exact(x, np.repeat(E, 16, axis=1) - tau, fmt), q.codes)


# ---------------------------------------------------------------------------------------
# numerics options (SPEC.md 8-10) with BDR: acc applies, scale rounding and SR do not


@pytest.mark.parametrize("fmt", BDR)
def test_bdr_refuses_scale_rounding_and_stochastic(fmt):
    x = np.ones((2, 16), np.float32)
    for sr in ("ceil", "even"):
        with pytest.raises(ValueError, match=rf"^scale_rounding='{sr}' is not defined for {fmt}: BDR formats "
                                             r"support only scale_rounding='floor' and rounding='rne' \(SPEC\.md 11\)$"):
            quantize(x, fmt, scale_rounding=sr)
    with pytest.raises(ValueError, match=rf"^rounding='stochastic' is not defined for {fmt}: BDR formats "
                                         r"support only scale_rounding='floor' and rounding='rne' \(SPEC\.md 11\)$"):
        quantize(x, fmt, rounding="stochastic", sr_bits=4, seed=3)
    with pytest.raises(ValueError, match=r"^scale_rounding must be one of floor, ceil, even; not 'up'$"):
        quantize(x, fmt, scale_rounding="up")           # a bad value is still named as such
    ref = quantize(x, fmt)
    same = quantize(x, fmt, scale_rounding="floor", rounding="rne", sr_bits=4, seed=9)
    assert (same.codes == ref.codes).all() and (same.microexp == ref.microexp).all()
    from mxsf.golden.requant_model import requant_tile_beats
    bits = x[0].view(np.uint32)
    with pytest.raises(ValueError, match=r"^rounding='stochastic' is not defined"):
        requant_tile_beats(bits, fmt=fmt, rows=1, cols=16, lanes=4, rounding="stochastic")


@pytest.mark.parametrize("fmt", BDR)
def test_bdr_matmul_bf16_accumulation(fmt):
    """acc="bf16" accumulates BDR block results as SPEC.md 10: bf16_rne(acc + d) per block,
    from the same float32 d as acc="fp32"; bdr_dot and bdr_batched_dot agree."""
    from mxsf.golden.bdr import bdr_batched_dot, bdr_block_results, bdr_dot
    from mxsf.golden.matmul import bf16_add
    rng = np.random.default_rng(21)
    a = (rng.standard_normal((3, 80)) * np.exp2(rng.integers(-6, 7, (3, 80)))).astype(np.float32)
    b = (rng.standard_normal((80, 4)) * np.exp2(rng.integers(-6, 7, (80, 4)))).astype(np.float32)
    qa, qb = quantize(a, fmt), quantize(b, fmt, axis=0)
    c16 = matmul(qa, qb, acc="bf16")
    assert c16.dtype == np.uint16 and c16.shape == (3, 4)
    d = bdr_block_results(qa, qb)
    ref = np.zeros((3, 4), np.uint16)
    for j in range(d.shape[0]):
        ref = bf16_add(ref, d[j])
    assert (c16 == ref).all()
    c32 = matmul(qa, qb)
    if fmt == "mx9":                    # 7-bit magnitudes: the bf16 steps round somewhere
        assert not (c16.astype(np.uint32) << 16 == c32.view(np.uint32)).all()
    ca = qa.codes[0]
    for col in range(4):
        blocks = [(ca[k:k + 16], qb.codes[k:k + 16, col], qa.microexp[0, k // 2:k // 2 + 8],
                   qb.microexp[k // 2:k // 2 + 8, col], qa.scale_e8m0[0, k // 16], qb.scale_e8m0[k // 16, col])
                  for k in range(0, 80, 16)]
        assert bdr_dot(blocks, fmt, acc="bf16") == c16[0, col]
    cb = qb.codes.T[:, :80]
    got = bdr_batched_dot(np.repeat(ca[None, :], 4, 0), cb, np.repeat(qa.microexp[0][None, :], 4, 0),
                          qb.microexp.T, np.repeat(qa.scale_e8m0[0][None, :], 4, 0), qb.scale_e8m0.T,
                          fmt, acc="bf16")
    assert (got == c16[0]).all()
    with pytest.raises(ValueError, match=r"^acc must be one of fp32, bf16; not 'fp16'$"):
        matmul(qa, qb, acc="fp16")
