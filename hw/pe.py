"""The MX processing element: exact block dot products, one rounding, float32 accumulation."""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from mxsf.golden.constants import (E8M0_BIAS, E8M0_BITS, F32_CANONICAL_NAN, F32_INF_BITS,
                                   F32_SIGN_MASK)
from mxsf.golden.constants import BF16_BITS, BF16_MAN_BITS, F32_BITS
from mxsf.golden.formats import ElementFormat, get_format
from mxsf.golden.options import Accumulator, acc_mode
from mxsf.golden.params import MAX_BLOCK_SIZE, check_divisor, check_int

from .base import MXComponent
from .formats import ElementDecoder, product_width
from .fp32 import Float32Adder, IntToFloat32
from .layouts import E8M0, BFloat16, Float32, element_layout

__all__ = ["MXProcessingElement", "mx_beat_layout", "adder_tree"]


def mx_beat_layout(fmt, lanes: int) -> data.StructLayout:
    """One input beat of the MX PE: ``lanes`` codes of A and of B, two E8M0 scales, framing.

    Codes are :func:`~mxsf.hw.layouts.element_layout` structs, scales :class:`~mxsf.hw.layouts.E8M0`."""
    f = get_format(fmt, element_only=True)
    return data.StructLayout({
        "a": data.ArrayLayout(element_layout(f), lanes),
        "b": data.ArrayLayout(element_layout(f), lanes),
        "scale_a": E8M0,
        "scale_b": E8M0,
        "first": 1,
        "last": 1,
    })


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

    With ``acc="bf16"`` (SPEC.md 10) the block results ``d`` stay float32 and the
    accumulator is bfloat16: each step is one RNE rounding of the exact ``acc + d`` to
    bfloat16 (the same adder, :class:`~mxsf.hw.fp32.Float32Adder` with ``man_width=7``),
    and the result is a :class:`~mxsf.hw.layouts.BFloat16`.

    Parameters
    ----------
    fmt : str
        Element format or OCP alias (any MX element format; not bf16).
    block_size : int
        Elements per block sharing one pair of scales, in [1, 1024].
    lanes : int
        Element pairs per beat, dividing ``block_size`` (default ``block_size``):
        a block takes ``block_size // lanes`` beats.
    acc : {"fp32", "bf16"} or Accumulator
        Accumulator format (default ``fp32``).

    Members
    -------
    i : In(stream.Signature(mx_beat_layout(fmt, lanes), always_ready=True))
        Beats: ``a``/``b`` element codes (lane 0 first), ``scale_a``/``scale_b``
        (E8M0, taken on a block's first beat), ``first`` (starts a dot product,
        abandoning an unfinished one), ``last`` (ends it; also ends its block,
        whose missing elements count as zeros). A dot product also starts with the
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
        Unknown format, ``block_size`` out of range, ``lanes`` not a divisor of it, bad ``acc``.

    Latency
    -------
    ``latency == 3`` for every parameter: decode, multiply, align and add the beat's
    products | block accumulation (multi-beat blocks) and one rounding to float32 |
    float32 accumulation. Throughput one beat per cycle.
    """

    def __init__(self, *, fmt, block_size=32, lanes=None, acc="fp32"):
        f = get_format(fmt, element_only=True, param="fmt")
        self._acc = acc_mode(acc)
        check_int("block_size", block_size, 1, MAX_BLOCK_SIZE)
        lanes = block_size if lanes is None else lanes
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
        return self._block_size // self._lanes

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
        lanes, bpb = self._lanes, self.beats_per_block

        # ---- widths, all derived from the format and the E8M0 scale ------------------------
        p_width = product_width(f)                              # |a_i b_i| in 2^(2 lsb) units
        term_shape = signed(p_width + 1)                        # a product with its sign
        beat_width = p_width + 1 + (lanes - 1).bit_length() + 1  # signed sum of one beat (+ neg count)
        block_width = p_width + 1 + (self._block_size - 1).bit_length() + 1   # signed block sum
        scale_max = (1 << E8M0_BITS) - 1                         # largest scale byte
        k_shape = signed(E8M0_BITS + 3)                          # sum of two scale bytes, signed
        k_offset = 2 * f.lsb_exp - 2 * E8M0_BIAS                 # s x 2^(Ea+Eb) in 2^(2 lsb) units
        k_min, k_max = k_offset, 2 * scale_max + k_offset

        beat = self.i.payload

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
        scale_a, scale_b = E8M0(beat.scale_a), E8M0(beat.scale_b)
        scale_sum = Signal(k_shape)
        nan_scale = Signal()
        m.d.comb += [
            scale_sum.eq(Mux(frame0.block_start, scale_a.biased + scale_b.biased, blk_k)),
            nan_scale.eq(Mux(frame0.block_start, scale_a.is_nan() | scale_b.is_nan(), blk_nan_scale)),
        ]
        with m.If(self.i.valid):
            m.d.sync += [
                beat_idx.eq(Mux(frame0.block_end, 0, cur_idx + 1)),
                dot_fresh.eq(beat.last),
                blk_k.eq(scale_sum),
                blk_nan_scale.eq(nan_scale),
                blk_dot_first.eq(frame0.dot_first),
            ]

        terms, negs, specials = [], [], []
        for lane in range(lanes):
            da, db = ElementDecoder(fmt=f), ElementDecoder(fmt=f)
            m.submodules[f"dec_a{lane}"] = da
            m.submodules[f"dec_b{lane}"] = db
            m.d.comb += [da.code.eq(beat.a[lane]), db.code.eq(beat.b[lane])]
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

        sp0 = Signal(_Specials)
        if specials:
            m.d.comb += [
                sp0.nan.eq(_any(s.nan for s in specials)),
                sp0.pinf.eq(_any(s.pinf for s in specials)),
                sp0.ninf.eq(_any(s.ninf for s in specials)),
            ]

        # ---- stage 1: adder tree (no register on the products: it would cost a
        # register per lane; the tree follows the multipliers in the same cycle) -------
        v2 = Signal()
        frame2 = Signal(_Framing)
        k2 = Signal(k_shape)
        nan_scale2 = Signal()
        beat_sum2 = Signal(signed(beat_width))
        sp2 = Signal(_Specials)
        m.d.sync += [
            v2.eq(self.i.valid), frame2.eq(frame0), k2.eq(scale_sum), nan_scale2.eq(nan_scale),
            sp2.eq(sp0), beat_sum2.eq(adder_tree(terms) + sum(negs)),
        ]

        # ---- stage 2: block accumulation (multi-beat blocks) and rounding -----------------
        block_sum = Signal(signed(block_width))
        block_sp = Signal(_Specials)
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
        m.submodules.round = rnd
        m.d.comb += [rnd.s.eq(block_sum), rnd.k.eq(k2 + k_offset)]

        d = Signal(Float32)
        with m.If(nan_scale2 | block_sp.nan | (block_sp.pinf & block_sp.ninf)):
            m.d.comb += d.eq(F32_CANONICAL_NAN)
        with m.Elif(block_sp.pinf):
            m.d.comb += d.eq(F32_INF_BITS)
        with m.Elif(block_sp.ninf):
            m.d.comb += d.eq(F32_SIGN_MASK | F32_INF_BITS)
        with m.Else():
            m.d.comb += d.eq(rnd.o)

        v3 = Signal()
        d3 = Signal(Float32)
        dot_first3 = Signal()
        dot_end3 = Signal()
        m.d.sync += [
            v3.eq(v2 & frame2.block_end),
            d3.eq(d),
            dot_first3.eq(frame2.dot_first),
            dot_end3.eq(frame2.dot_end),
        ]

        # ---- stage 3: float32 (or bfloat16) accumulation, in block order --------------------
        acc = Signal(self.result_layout)
        if self._acc is Accumulator.FP32:
            add = Float32Adder()
            acc32 = acc
        else:   # a bfloat16 is the top half of a binary32
            add = Float32Adder(man_width=BF16_MAN_BITS)
            acc32 = Cat(Const(0, F32_BITS - BF16_BITS), acc.as_value())
        m.submodules.acc_add = add
        m.d.comb += [add.a.eq(Mux(dot_first3, 0, acc32)), add.b.eq(d3)]
        with m.If(v3):
            m.d.sync += acc.eq(add.o)
        m.d.sync += [
            self.o.valid.eq(v3 & dot_end3),
            self.o.payload.eq(add.o),
        ]
        return m


def _any(bits):
    out = 0
    for b in bits:
        out = out | b
    return out
