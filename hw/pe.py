"""The MX processing element: exact block dot products, one rounding, float32 accumulation."""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from mxsf.golden.constants import (E8M0_BIAS, E8M0_BITS, F32_CANONICAL_NAN, F32_INF_BITS,
                                   F32_SIGN_MASK)
from mxsf.golden.constants import BF16_BITS, BF16_MAN_BITS, F32_BITS, F32_MAN_BITS
from mxsf.golden.formats import ElementFormat, get_format
from mxsf.golden.options import Accumulator, acc_mode
from mxsf.golden.params import MAX_BLOCK_SIZE, check_divisor, check_int

from .base import MXComponent
from .formats import ElementDecoder, product_width, unit_exp
from .fp32 import Float32Adder, IntToFloat32
from .layouts import E8M0, BFloat16, Float32, element_layout

__all__ = ["MXProcessingElement", "mx_beat_layout", "adder_tree", "blocks_per_beat", "check_bdr_shape"]


def blocks_per_beat(fmt, lanes: int) -> int:
    """Whole blocks a beat carries: ``lanes // 16`` for a BDR PE wider than its fixed
    16-element block (SPEC.md 11), else 1."""
    fixed = get_format(fmt, element_only=True).fixed_block_size
    return lanes // fixed if fixed is not None and lanes > fixed else 1


def mx_beat_layout(fmt, lanes: int) -> data.StructLayout:
    """One input beat of the MX PE: ``lanes`` codes of A and of B, two E8M0 scales, framing.

    Codes are :func:`~mxsf.hw.layouts.element_layout` structs, scales :class:`~mxsf.hw.layouts.E8M0`.
    BDR formats (SPEC.md 11) add ``micro_a``/``micro_b``, one plain microexponent bit per pair
    of lanes; a beat of ``n > 1`` whole blocks has arrays of ``n`` scales (block 0 first)."""
    f = get_format(fmt, element_only=True)
    nbb = blocks_per_beat(f, lanes)
    scale = E8M0 if nbb == 1 else data.ArrayLayout(E8M0, nbb)
    fields = {
        "a": data.ArrayLayout(element_layout(f), lanes),
        "b": data.ArrayLayout(element_layout(f), lanes),
        "scale_a": scale,
        "scale_b": scale,
        "first": 1,
        "last": 1,
    }
    if f.microexp_group:
        fields["micro_a"] = data.ArrayLayout(f.microexp_bits, lanes // f.microexp_group)
        fields["micro_b"] = data.ArrayLayout(f.microexp_bits, lanes // f.microexp_group)
    return data.StructLayout(fields)


def check_bdr_shape(f: ElementFormat, block_size, lanes) -> None:
    """BDR PE shape: block 16 (SPEC.md 11); lanes whole pairs, dividing the block or whole blocks."""
    fixed, group = f.fixed_block_size, f.microexp_group
    if block_size != fixed:
        raise ValueError(f"block_size must be {fixed} for {f.name} (SPEC.md 11: a block of {fixed} elements "
                         f"shares one exponent), not {block_size!r}")
    check_int("lanes", lanes, 1, MAX_BLOCK_SIZE)
    divisors = [d for d in range(group, fixed + 1, group) if fixed % d == 0]
    if lanes not in divisors and lanes % fixed:
        raise ValueError(f"lanes must be one of {divisors} or a multiple of {fixed} up to {MAX_BLOCK_SIZE} "
                         f"for {f.name} (whole microexponent pairs a beat, whole blocks when wider than one), "
                         f"not {lanes!r}")


def adder_tree(terms):
    """Balanced sum of ``terms``; every level is one bit wider than the level below,
    so each adder is as wide as the values it can carry."""
    terms = list(terms)
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


class _Framing(data.Struct):
    """Where a beat sits in its block and dot product (carried down the pipeline)."""

    block_start: 1   # first beat of a block
    block_end: 1     # last beat of a block
    dot_first: 1     # the beat's block is the first block of its dot product
    dot_end: 1       # last beat of the dot product


class _Specials(data.Struct):
    """Non-finite products seen so far in a block (SPEC.md section 5)."""

    nan: 1
    pinf: 1
    ninf: 1


class MXProcessingElement(MXComponent):
    """MX dot-product processing element (SPEC.md section 5), one beat per cycle.

    For each dot product, over its K-blocks in order: the exact integer sum ``s``
    of the block's element products (a fixed-point adder tree as wide as the
    format needs, e.g. 70 bits for ``fp8_e5m2``), one RNE rounding of
    ``s x 2^(Ea+Eb)`` to float32, and float32 accumulation (IEEE addition, RNE,
    subnormals kept, canonical qNaN 0x7FC00000; a NaN scale 0xFF, a NaN element,
    Inf x 0 or +Inf and -Inf products in a block make the block NaN).

    Shared-microexponent formats (``mx9``/``mx6``/``mx4``, SPEC.md 11): the decoders take
    each element's pair microexponent (``sig = m``, ``shift = 1 - tau``), so products carry
    the pair shifts and the block sum stays exact; ``s x 2^(Ea + Eb - 2p)`` is rounded once.
    Their block is 16; a PE with ``lanes = n x 16`` takes ``n`` whole blocks a beat, with an
    adder tree and a rounder per block and ``n`` additions chained in block order in the
    accumulation stage (``acc + d_0 + ... + d_(n-1)``, each rounded: SPEC.md 5 and 10).

    With ``acc="bf16"`` (SPEC.md 10) the block results ``d`` stay float32 and the
    accumulator is bfloat16: each step is one RNE rounding of the exact ``acc + d`` to
    bfloat16 (the same adder, :class:`~mxsf.hw.fp32.Float32Adder` with ``man_width=7``),
    and the result is a :class:`~mxsf.hw.layouts.BFloat16`.

    Parameters
    ----------
    fmt : str
        Element format or OCP alias (any MX element format; not bf16).
    block_size : int or None
        Elements per block sharing one pair of scales, in [1, 1024]; 16 for BDR formats
        (default: the format's, 32 or 16).
    lanes : int
        Element pairs per beat, dividing ``block_size`` (default ``block_size``):
        a block takes ``block_size // lanes`` beats. BDR formats: an even divisor of 16,
        or a multiple of 16 up to 1024 (several blocks a beat).
    acc : {"fp32", "bf16"} or Accumulator
        Accumulator format (default ``fp32``).

    Members
    -------
    i : In(stream.Signature(mx_beat_layout(fmt, lanes), always_ready=True))
        Beats: ``a``/``b`` element codes (lane 0 first), ``scale_a``/``scale_b``
        (E8M0, taken on a block's first beat; arrays of one per block when a beat holds
        several), ``micro_a``/``micro_b`` (BDR: one bit per pair of lanes), ``first``
        (starts a dot product, abandoning an unfinished one), ``last`` (ends it; also ends
        its block, whose missing elements count as zeros). A dot product also starts with the
        first beat after a ``last``. Always ready: no back-pressure, a beat may
        come every cycle, ``valid`` may drop between any beats.
    o : Out(stream.Signature(Float32 or BFloat16, always_ready=True))
        The float32 result of a dot product (bfloat16 with ``acc="bf16"``; ``result_layout``):
        ``valid`` for one cycle, ``latency``
        cycles after the cycle of its ``last`` beat. The consumer must take it
        (no back-pressure).

    Raises
    ------
    TypeError
        A parameter of the wrong type.
    ValueError
        Unknown format, ``block_size`` out of range (or not 16 for a BDR format),
        ``lanes`` not a divisor of it (BDR: not an even divisor or a multiple of 16), bad ``acc``.

    Latency
    -------
    ``latency == 3`` for every parameter: decode, multiply, align and add the beat's
    products | block accumulation (multi-beat blocks) and one rounding to float32 |
    float32 accumulation. Throughput one beat per cycle.
    """

    def __init__(self, *, fmt, block_size=None, lanes=None, acc="fp32"):
        f = get_format(fmt, element_only=True, param="fmt")
        self._acc = acc_mode(acc)
        block_size = f.default_block_size if block_size is None else block_size
        check_int("block_size", block_size, 1, MAX_BLOCK_SIZE)
        lanes = block_size if lanes is None else lanes
        if f.fixed_block_size is not None:
            check_bdr_shape(f, block_size, lanes)
        else:
            check_divisor("lanes", lanes, block_size, "block_size")
        self._fmt, self._block_size, self._lanes = f, block_size, lanes
        super().__init__({
            "i": In(stream.Signature(mx_beat_layout(f, lanes), always_ready=True)),
            "o": Out(stream.Signature(self.result_layout, always_ready=True)),
        }, params={"fmt": f.name, "block_size": block_size, "lanes": lanes,
                   **({} if self._acc is Accumulator.FP32 else {"acc": self._acc.value})})

    @property
    def acc(self) -> Accumulator:
        """Accumulator format (SPEC.md 10)."""
        return self._acc

    @property
    def result_layout(self):
        """Layout of a result: :class:`Float32`, or :class:`BFloat16` with ``acc="bf16"``."""
        return Float32 if self._acc is Accumulator.FP32 else BFloat16

    @property
    def fmt(self) -> ElementFormat:
        """Element format of A and B."""
        return self._fmt

    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def beats_per_block(self) -> int:
        return max(1, self._block_size // self._lanes)

    @property
    def blocks_per_beat(self) -> int:
        return blocks_per_beat(self._fmt, self._lanes)

    @property
    def latency(self) -> int:
        """Cycles from the cycle of a dot product's ``last`` beat to its result."""
        return 3

    @property
    def module_name(self) -> str:
        suffix = "" if self._acc is Accumulator.FP32 else f"_acc{self._acc.value}"
        return f"mx_pe_{self._fmt.name}_b{self._block_size}_l{self._lanes}{suffix}"

    def elaborate(self, platform):
        m = Module()
        f: ElementFormat = self._fmt
        lanes, bpb, nbb = self._lanes, self.beats_per_block, self.blocks_per_beat
        slot = lanes // nbb                     # lanes of one block slot of a beat

        # ---- widths, all derived from the format and the E8M0 scale ------------------------
        p_width = product_width(f)                              # |a_i b_i| in 2^(2 unit) units
        term_shape = signed(p_width + 1)                        # a product with its sign
        beat_width = p_width + 1 + (slot - 1).bit_length() + 1  # signed sum of one slot (+ neg count)
        block_width = p_width + 1 + (self._block_size - 1).bit_length() + 1   # signed block sum
        scale_max = (1 << E8M0_BITS) - 1                         # largest scale byte
        k_shape = signed(E8M0_BITS + 3)                          # sum of two scale bytes, signed
        k_offset = 2 * unit_exp(f) - 2 * E8M0_BIAS               # s x 2^(Ea+Eb) in 2^(2 unit) units
        k_min, k_max = k_offset, 2 * scale_max + k_offset

        beat = self.i.payload
        scales_a = [E8M0(beat.scale_a)] if nbb == 1 else [E8M0(beat.scale_a[j]) for j in range(nbb)]
        scales_b = [E8M0(beat.scale_b)] if nbb == 1 else [E8M0(beat.scale_b[j]) for j in range(nbb)]

        # ---- stage 1: framing, decode, products ---------------------------------------
        beat_idx = Signal(range(max(bpb, 2)))
        dot_fresh = Signal(init=1)          # the next beat starts a dot product
        blk_k = Signal(k_shape)             # scale_a + scale_b of the block being read
        blk_nan_scale = Signal()
        blk_dot_first = Signal()

        cur_idx = Mux(beat.first, 0, beat_idx)
        frame0 = Signal(_Framing)
        m.d.comb += [
            frame0.block_start.eq(cur_idx == 0),
            frame0.block_end.eq(beat.last | (cur_idx == bpb - 1)),
            frame0.dot_end.eq(beat.last),
            frame0.dot_first.eq(Mux(frame0.block_start, beat.first | dot_fresh, blk_dot_first)),
        ]
        # per block slot: scale_a + scale_b and the NaN-scale flag (held over a multi-beat
        # block; a beat of several blocks has one-beat blocks)
        scale_sums = [Signal(k_shape, name=f"scale_sum{j}") for j in range(nbb)]
        nan_scales = [Signal(name=f"nan_scale{j}") for j in range(nbb)]
        for j in range(nbb):
            sa, sb = scales_a[j], scales_b[j]
            m.d.comb += [
                scale_sums[j].eq(Mux(frame0.block_start, sa.biased + sb.biased, blk_k)),
                nan_scales[j].eq(Mux(frame0.block_start, sa.is_nan() | sb.is_nan(), blk_nan_scale)),
            ]
        with m.If(self.i.valid):
            m.d.sync += [
                beat_idx.eq(Mux(frame0.block_end, 0, cur_idx + 1)),
                dot_fresh.eq(beat.last),
                blk_k.eq(scale_sums[0]),
                blk_nan_scale.eq(nan_scales[0]),
                blk_dot_first.eq(frame0.dot_first),
            ]

        terms, negs, specials = [], [], []
        for lane in range(lanes):
            da, db = ElementDecoder(fmt=f), ElementDecoder(fmt=f)
            m.submodules[f"dec_a{lane}"] = da
            m.submodules[f"dec_b{lane}"] = db
            m.d.comb += [da.code.eq(beat.a[lane]), db.code.eq(beat.b[lane])]
            if f.microexp_group:            # the pair's microexponent sets the element's shift
                pair = lane // f.microexp_group
                m.d.comb += [da.micro.eq(beat.micro_a[pair]), db.micro.eq(beat.micro_b[pair])]
            x, y = da.o, db.o
            mag = Signal(unsigned(p_width), name=f"prod{lane}")
            m.d.comb += mag.eq((x.sig * y.sig) << (x.shift + y.shift))
            neg = Signal(name=f"neg{lane}")
            m.d.comb += neg.eq(x.sign ^ y.sign)
            # ones' complement here; the +1 of every negative term is added at the tree root
            mag_ext = Cat(mag, Const(0, 1)).as_signed()
            term = Signal(term_shape, name=f"term{lane}")
            m.d.comb += term.eq(Mux(neg, ~mag_ext, mag_ext))
            terms.append(term)
            negs.append(neg)
            if f.has_nan or f.has_inf:
                sp = Signal(_Specials, name=f"special{lane}")
                nan = x.nan | y.nan | (x.inf & y.zero) | (x.zero & y.inf)
                inf = (x.inf | y.inf) & ~nan
                m.d.comb += [sp.nan.eq(nan), sp.pinf.eq(inf & ~neg), sp.ninf.eq(inf & neg)]
                specials.append(sp)

        # ---- stage 1: one adder tree per block slot (no register on the products: it
        # would cost a register per lane; the tree follows the multipliers in the same cycle)
        v2 = Signal()
        frame2 = Signal(_Framing)
        m.d.sync += [v2.eq(self.i.valid), frame2.eq(frame0)]
        d3s = []
        for j in range(nbb):
            lo, hi = j * slot, (j + 1) * slot
            sp0 = Signal(_Specials, name=f"special_beat{j}")
            if specials:
                m.d.comb += [
                    sp0.nan.eq(_any(s.nan for s in specials[lo:hi])),
                    sp0.pinf.eq(_any(s.pinf for s in specials[lo:hi])),
                    sp0.ninf.eq(_any(s.ninf for s in specials[lo:hi])),
                ]
            k2 = Signal(k_shape, name=f"k2_{j}")
            nan_scale2 = Signal(name=f"nan_scale2_{j}")
            beat_sum2 = Signal(signed(beat_width), name=f"beat_sum2_{j}")
            sp2 = Signal(_Specials, name=f"special2_{j}")
            m.d.sync += [
                k2.eq(scale_sums[j]), nan_scale2.eq(nan_scales[j]), sp2.eq(sp0),
                beat_sum2.eq(adder_tree(terms[lo:hi]) + sum(negs[lo:hi])),
            ]

            # ---- stage 2: block accumulation (multi-beat blocks) and rounding -------------
            block_sum = Signal(signed(block_width), name=f"block_sum{j}")
            block_sp = Signal(_Specials, name=f"block_special{j}")
            if bpb == 1:
                m.d.comb += [block_sum.eq(beat_sum2), block_sp.eq(sp2)]
            else:
                blk_acc = Signal(signed(block_width))
                blk_sp = Signal(_Specials)
                m.d.comb += [
                    block_sum.eq(Mux(frame2.block_start, 0, blk_acc) + beat_sum2),
                    block_sp.eq(Mux(frame2.block_start, 0, blk_sp.as_value()) | sp2.as_value()),
                ]
                with m.If(v2):
                    m.d.sync += [blk_acc.eq(block_sum), blk_sp.eq(block_sp)]

            rnd = IntToFloat32(int_width=block_width, exp_min=k_min, exp_max=k_max)
            m.submodules[f"round{j}" if nbb > 1 else "round"] = rnd
            m.d.comb += [rnd.s.eq(block_sum), rnd.k.eq(k2 + k_offset)]

            d = Signal(Float32, name=f"d{j}")
            with m.If(nan_scale2 | block_sp.nan | (block_sp.pinf & block_sp.ninf)):
                m.d.comb += d.eq(F32_CANONICAL_NAN)
            with m.Elif(block_sp.pinf):
                m.d.comb += d.eq(F32_INF_BITS)
            with m.Elif(block_sp.ninf):
                m.d.comb += d.eq(F32_SIGN_MASK | F32_INF_BITS)
            with m.Else():
                m.d.comb += d.eq(rnd.o)
            d3 = Signal(Float32, name=f"d3_{j}")
            m.d.sync += d3.eq(d)
            d3s.append(d3)

        v3 = Signal()
        dot_first3 = Signal()
        dot_end3 = Signal()
        m.d.sync += [
            v3.eq(v2 & frame2.block_end),
            dot_first3.eq(frame2.dot_first),
            dot_end3.eq(frame2.dot_end),
        ]

        # ---- stage 3: float32 (or bfloat16) accumulation, in block order (a chain when a
        # beat holds several blocks: acc + d_0, then + d_1, ..., each one IEEE rounding) -------
        acc = Signal(self.result_layout)

        def as_f32(v):          # a bfloat16 is the top half of a binary32
            return v if self._acc is Accumulator.FP32 else Cat(Const(0, F32_BITS - BF16_BITS), v)

        man_width = F32_MAN_BITS if self._acc is Accumulator.FP32 else BF16_MAN_BITS
        total = Mux(dot_first3, 0, as_f32(acc.as_value()))
        for j, d3 in enumerate(d3s):
            add = Float32Adder(man_width=man_width)
            m.submodules[f"acc_add{j}" if nbb > 1 else "acc_add"] = add
            m.d.comb += [add.a.eq(total), add.b.eq(d3)]
            total = as_f32(add.o) if j < nbb - 1 else add.o
        with m.If(v3):
            m.d.sync += acc.eq(total)
        m.d.sync += [
            self.o.valid.eq(v3 & dot_end3),
            self.o.payload.eq(total),
        ]
        return m


def _any(bits):
    out = 0
    for b in bits:
        out = out | b
    return out
