"""Stimulus for the processing elements: lists of :class:`~mxsf.golden.models.Beat`.

Shared by the cocotb regressions (``sim/tests/pe_tests.py``, ``bf16_pe_tests.py``)
and the fast Amaranth-simulator tests. Pure NumPy; the drivers add idle cycles.

For the shared-microexponent formats (``mx9``/``mx6``/``mx4``) every generator also draws
the pair microexponents (``micro_a``/``micro_b``, K/2 bits of a dot product) and, when the
PE is wider than a block (``lanes = n x 16``), packs ``n`` blocks into a beat.
"""

from __future__ import annotations

import numpy as np

from mxsf.golden.formats import get_format
from mxsf.golden.models import Beat
from mxsf.golden.quantize import quantize

__all__ = [
    "dot_beats",
    "random_mx_dots",
    "cancelling_mx_dots",
    "framing_mx_beats",
    "exhaustive_pair_beats",
    "pair_scale_sets",
    "random_bf16_dots",
]


def dot_beats(a_codes, b_codes, scales_a, scales_b, *, block_size: int, lanes: int,
              first: bool = True, micro_a=None, micro_b=None) -> list:
    """Beats of one dot product: K codes of A and B (K a multiple of ``lanes``), one
    pair of scales per block; ``first`` marks the first beat, ``last`` the last.
    ``micro_a``/``micro_b``: K/2 pair microexponents (BDR formats). A beat wider than a
    block carries ``lanes // block_size`` blocks and lists of scales."""
    a_codes, b_codes = list(map(int, a_codes)), list(map(int, b_codes))
    n = len(a_codes) // lanes
    beats = []
    for t in range(n):
        if lanes > block_size:
            nbb = lanes // block_size
            xa = [int(v) for v in scales_a[t * nbb:(t + 1) * nbb]]
            xb = [int(v) for v in scales_b[t * nbb:(t + 1) * nbb]]
        else:
            blk = t // (block_size // lanes)
            xa, xb = int(scales_a[blk]), int(scales_b[blk])
        beat = Beat(a=a_codes[t * lanes:(t + 1) * lanes], b=b_codes[t * lanes:(t + 1) * lanes],
                    scale_a=xa, scale_b=xb, first=first and t == 0, last=t == n - 1)
        if micro_a is not None:
            h = lanes // 2
            beat.micro_a = [int(v) for v in micro_a[t * h:(t + 1) * h]]
            beat.micro_b = [int(v) for v in micro_b[t * h:(t + 1) * h]]
        beats.append(beat)
    return beats


def _micro(rng, f, k):
    """K/2 random pair microexponents for a BDR format, None otherwise."""
    return rng.integers(0, 2, size=k // 2) if f.microexp_group else None


def _random_scales(rng, n, special_prob=0.03):
    s = rng.integers(112, 143, size=n)
    wild = rng.random(n) < 0.1
    s[wild] = rng.integers(0, 255, size=int(wild.sum()))      # anywhere, 0 and 254 included
    nan = rng.random(n) < special_prob
    s[nan] = 0xFF
    return s


def _codes(rng, f, n, mode):
    """``(codes, micro)``: ``micro`` (BDR formats only, else None) one bit per pair."""
    if mode == "uniform":   # every code equally likely (NaN/Inf codes included)
        return rng.integers(0, f.n_codes, size=n), _micro(rng, f, n)
    # realistic: a quantized Gaussian row with a spread of magnitudes
    x = rng.standard_normal(n) * np.exp2(rng.uniform(-6, 0, size=n))
    if f.microexp_group:
        q = quantize(x.astype(np.float32), f)
        return q.codes, q.microexp
    return quantize(x.astype(np.float32), f, block_size=n).codes, None


def random_mx_dots(rng, fmt, *, block_size: int, lanes: int, count: int, max_blocks: int = 4) -> list:
    """``count`` random dot products of 1..``max_blocks`` blocks: uniform codes (so every
    special code occurs) or realistic quantized data, random scales with occasional NaN
    scales and extremes."""
    f = get_format(fmt, element_only=True)
    beats = []
    for _ in range(count):
        nblk = int(rng.integers(1, max_blocks + 1))
        k = nblk * block_size
        if lanes > block_size:                       # whole beats of several blocks
            nblk = -(-nblk * block_size // lanes) * lanes // block_size
            k = nblk * block_size
        mode = "uniform" if rng.random() < 0.5 else "realistic"
        (a, ma), (b, mb) = _codes(rng, f, k, mode), _codes(rng, f, k, mode)
        beats += dot_beats(a, b, _random_scales(rng, nblk), _random_scales(rng, nblk),
                           block_size=block_size, lanes=lanes, micro_a=ma, micro_b=mb)
    return beats


def _negate(f, codes):
    codes = np.asarray(codes, dtype=np.int64)
    if f.kind == "int":
        return np.where(codes == 0x80, 0x81, (-codes) & 0xFF)   # -(-128) saturates to 127
    return codes ^ f.sign_mask


def cancelling_mx_dots(rng, fmt, *, block_size: int, lanes: int, count: int) -> list:
    """Dot products that cancel exactly: within a block (x, -x pairs), across two
    blocks with equal scales (block 2 = -block 1), long mixed-sign accumulations, and
    blocks whose accumulation order matters (big, 0, tiny, -big: SPEC.md 5 gives 0 where
    adding the last two blocks in the other order gives the tiny one)."""
    f = get_format(fmt, element_only=True)
    usable = np.isfinite(f.values)
    if f.kind == "int":
        usable &= np.arange(f.n_codes) != 0x80               # -128 has no positive twin
    finite = np.flatnonzero(usable)
    bdr = bool(f.microexp_group)
    nbb = max(1, lanes // block_size)                   # blocks per beat
    beats = []
    for i in range(count):
        kind = i % 4
        ma = mb = None
        if kind == 0:                                   # x, -x inside one block
            half = rng.choice(finite, size=block_size // 2)
            a = np.concatenate([half, _negate(f, half)]) if block_size > 1 else half
            b = np.concatenate([rng.choice(finite, size=1).repeat(block_size)])
            a = a[:block_size]
            sa, sb = [int(rng.integers(100, 150))], [int(rng.integers(100, 150))]
            if bdr:                                     # both halves with the same pair shifts
                mh = rng.integers(0, 2, size=block_size // 4)
                ma, mb = np.concatenate([mh, mh]), np.full(block_size // 2, rng.integers(0, 2))
        elif kind == 1:                                 # block 2 cancels block 1 exactly
            a1 = rng.choice(finite, size=block_size)
            b1 = rng.choice(finite, size=block_size)
            a = np.concatenate([a1, _negate(f, a1)])
            b = np.concatenate([b1, b1])
            s = int(rng.integers(100, 150))
            t = int(rng.integers(100, 150))
            sa, sb = [s, s], [t, t]
            if bdr:
                m1, m2 = rng.integers(0, 2, size=block_size // 2), rng.integers(0, 2, size=block_size // 2)
                ma, mb = np.concatenate([m1, m1]), np.concatenate([m2, m2])
        elif kind == 3:                                 # order: big, 0, tiny, -big
            c = int(rng.choice(finite[f.values[finite] > 0]))
            big = np.full(block_size, c)
            tiny = np.zeros(block_size, np.int64)
            tiny[0] = c
            zero = np.zeros(block_size, np.int64)
            a = np.concatenate([big, zero, tiny, _negate(f, big)])
            b = np.concatenate([big, zero, tiny, big])
            s, t = int(rng.integers(110, 140)), int(rng.integers(110, 140))
            sa, sb = [s, s, s - 20, s], [t, t, t - 20, t]
            if bdr:
                mu = rng.integers(0, 2, size=block_size // 2)
                ma = mb = np.concatenate([mu, mu, mu, mu])
        else:                                           # long mixed-sign accumulation
            nblk = int(rng.integers(8, 24))
            a = rng.choice(finite, size=nblk * block_size)
            b = rng.choice(finite, size=nblk * block_size)
            sa = rng.integers(110, 140, size=nblk)
            sb = rng.integers(110, 140, size=nblk)
            ma, mb = _micro(rng, f, len(a)), _micro(rng, f, len(a))
        if len(sa) % nbb:                               # whole beats: pad with zero blocks
            pad = nbb - len(sa) % nbb
            a = np.concatenate([a, np.zeros(pad * block_size, np.int64)])
            b = np.concatenate([b, np.zeros(pad * block_size, np.int64)])
            sa, sb = list(sa) + [127] * pad, list(sb) + [127] * pad
            if bdr:
                ma = np.concatenate([ma, np.ones(pad * block_size // 2, np.int64)])
                mb = np.concatenate([mb, np.ones(pad * block_size // 2, np.int64)])
        beats += dot_beats(a, b, sa, sb, block_size=block_size, lanes=lanes, micro_a=ma, micro_b=mb)
    return beats


def framing_mx_beats(rng, fmt, *, block_size: int, lanes: int) -> list:
    """Framing corner cases: a dot product abandoned by ``first`` mid-way, ``last``
    in the middle of a block (the rest counts as zeros), dot products that start
    without ``first`` right after a ``last``, and single-beat dot products."""
    f = get_format(fmt, element_only=True)
    bpb = block_size // lanes
    nbb = max(1, lanes // block_size)                   # blocks per beat
    unit = max(block_size, lanes)                       # elements of a whole block and beat

    def codes(n):
        return rng.integers(0, f.n_codes, size=n)

    def dot(k, sa, sb, **kw):                            # scales cycled over the k elements' blocks
        nblk = -(-k // block_size)
        sa, sb = (list(sa) * nblk)[:nblk], (list(sb) * nblk)[:nblk]
        return dot_beats(codes(k), codes(k), sa, sb, block_size=block_size, lanes=lanes,
                         micro_a=_micro(rng, f, k), micro_b=_micro(rng, f, k), **kw)

    beats = []
    # abandoned: 1 block and a half (two beats of blocks), then a new first
    k = block_size + (block_size // 2 // lanes) * lanes if bpb else 2 * lanes
    beats += dot(k, [127, 120], [127, 130])[:-1]
    beats += dot(unit, [127], [127])
    # last mid-block (only when a block spans several beats)
    if bpb > 1:
        part = dot(block_size, [125], [131])[:max(1, bpb // 2)]
        part[-1].last = True
        beats += part
    # back-to-back dot products without first
    for _ in range(3):
        beats += dot(unit, [126], [128], first=False)
    # first and last on one beat
    one = dot(lanes, [127], [127])
    one[0].last = True
    beats += one
    return beats


def pair_scale_sets(fmt) -> dict:
    """Scale pairs (scale_a, scale_b) for the pair sweep: neutral, and pushing single
    products into float32 subnormals and into overflow."""
    f = get_format(fmt, element_only=True)
    center = f.lsb_exp + f.emax_elem + 1        # middle of the product exponents' range

    def split(e):                               # e = Ea + Eb
        t = e + 254
        return (t // 2, t - t // 2)

    if f.microexp_group:                        # products m_a m_b 2^(-tau_a - tau_b) 2^(Ea + Eb - 2(p-1))
        center = -(f.man_bits - 1)
    return {"neutral": (127, 127), "subnormal": split(-138 - center), "overflow": split(128 - center)}


def exhaustive_pair_beats(fmt, *, block_size: int, lanes: int, scales, pairs=None) -> list:
    """For every (a, b) code pair (or those in ``pairs``): one single-block dot product in
    which that pair is the only non-zero product; its position in the block rotates.

    BDR formats: every pair with each of the 4 microexponent combinations (tau_a, tau_b)
    of its pair (the other pairs' bits are random-looking but multiply zero codes); a beat
    of several blocks holds the pair in one of them (rotating) and zeros elsewhere."""
    f = get_format(fmt, element_only=True)
    if pairs is None:
        n = f.n_codes
        pairs = [(a, b) for a in range(n) for b in range(n)]
    micro = [(0, 0), (0, 1), (1, 0), (1, 1)] if f.microexp_group else [None]
    width = max(block_size, lanes)                 # one dot product: a block, or a beat of blocks
    nblk = width // block_size
    beats = []
    sa, sb = scales
    i = 0
    for a, b in pairs:
        for mu in micro:
            pos = i % width
            ac = [0] * width
            bc = [0] * width
            ac[pos], bc[pos] = int(a), int(b)
            ma = mb = None
            if mu is not None:
                ma = [(i >> 3 ^ k) & 1 for k in range(width // 2)]
                mb = [(i >> 4 ^ k) & 1 for k in range(width // 2)]
                ma[pos // 2], mb[pos // 2] = mu
            beats += dot_beats(ac, bc, [sa] * nblk, [sb] * nblk, block_size=block_size, lanes=lanes,
                               micro_a=ma, micro_b=mb)
            i += 1
    return beats


def random_bf16_dots(rng, *, lanes: int, count: int, max_beats: int = 6) -> list:
    """Random BF16 dot products: wide exponent range, subnormals, zeros, Inf and NaN."""
    specials = np.array([0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x0001, 0x807F, 0x7F7F,
                         0xFF7F, 0x0080, 0x8080], dtype=np.int64)
    beats = []
    for _ in range(count):
        n = int(rng.integers(1, max_beats + 1)) * lanes
        mode = rng.random()
        if mode < 0.4:           # anything
            a = rng.integers(0, 1 << 16, size=n)
            b = rng.integers(0, 1 << 16, size=n)
        else:                    # moderate values, so sums are finite and rounding matters
            def vals():
                x = rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, size=n))
                return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.int64)
            a, b = vals(), vals()
        sp = rng.random(n) < 0.05
        a[sp] = rng.choice(specials, size=int(sp.sum()))
        t = n // lanes
        for j in range(t):
            beats.append(Beat(a=list(map(int, a[j * lanes:(j + 1) * lanes])),
                              b=list(map(int, b[j * lanes:(j + 1) * lanes])),
                              first=j == 0, last=j == t - 1))
    return beats
