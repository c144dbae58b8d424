"""Block max-exponent finder (SPEC.md section 6).

For every group of ``n`` float32 values, the largest biased exponent field of ``|x|``
(0 for zeros and subnormals, 255 for NaN and +/-Inf), whether some value is NaN/Inf
and whether every value is +/-0 (a subnormal is not zero). A comparator tree reduces
the ``lanes`` values of a beat, with ``stages`` pipeline registers spread over its
levels; an accumulator then reduces the ``n // lanes`` beats of a group.
"""


from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from mxsf.golden.constants import F32_BITS, F32_EXP_BITS, F32_EXP_SPECIAL, F32_MAN_BITS
from mxsf.golden.formats import get_format
from mxsf.golden.options import ScaleRounding, even_fraction_bits, largest_fraction, scale_rounding_mode
from mxsf.golden.params import MAX_LANES, check_divisor, check_int

from .base import MXComponent
from .layouts import Float32

__all__ = [
    "BlockMaxExponent",
    "MaxExponentResult",
    "MaxExponentRoundResult",
    "scale_round_flag",
    "float32_beat_layout",
    "tree_depth",
    "default_stages",
    "register_levels",
    "check_stages",
    "MAX_GROUP",
]

MAX_GROUP = 1 << 16
"""Largest group ``n`` of :class:`BlockMaxExponent` (and tile of the re-quantizer): 256 x 256."""


class MaxExponentResult(data.Struct):
    """Result for one group of ``n`` float32 values (fields listed LSB first)."""

    max_exp: F32_EXP_BITS  # largest biased exponent field of |x| (0: zeros/subnormals, 255: NaN/Inf)
    any_nan_inf: 1   # some value is NaN or +/-Inf (same as max_exp == 255)
    all_zero: 1      # every value is +0 or -0


class MaxExponentRoundResult(data.Struct):
    """:class:`MaxExponentResult` plus the scale rule's round-up flag (``ceil``/``even``)."""

    max_exp: F32_EXP_BITS
    any_nan_inf: 1
    all_zero: 1
    round_up: 1      # the flag of a value with the largest exponent field (SPEC.md 8)


def scale_round_flag(x, fmt, scale_rounding):
    """Per float32 value ``x`` (a :class:`Float32` view): the flag whose OR over the values with
    the largest exponent field moves the ``floor`` exponent up by one (SPEC.md 8).

    * ``ceil``: the fraction of ``|x|`` in its binade exceeds the largest element's (a
      float32 subnormal >= 2^-127 counts in the binade of exponent field 0 with fraction
      ``mantissa << 1``; smaller ones never round up);
    * ``even``: adding half an ulp at ``m`` fraction bits carries out of the mantissa (its top
      ``m + 1`` bits are all ones).

    It is monotonic in the fraction, so the maximum of ``2 x field + flag`` over a tile is the
    largest field and the flag of the largest magnitude: a 9-bit comparator tree instead of a
    31-bit magnitude tree. Matches :func:`mxsf.golden.quantize.scale_exponent_field`.
    """
    f = get_format(fmt, element_only=True)
    mode = scale_rounding_mode(scale_rounding)
    man = x.mantissa
    if mode is ScaleRounding.EVEN:
        m_bits = even_fraction_bits(f)
        return man[F32_MAN_BITS - 1 - m_bits:].all()
    if mode is ScaleRounding.CEIL:
        limit = largest_fraction(f)
        sub = Cat(Const(0, 1), man[:F32_MAN_BITS - 1])           # (man << 1) & 0x7FFFFF
        return Mux(x.exponent != 0, man > limit, man[F32_MAN_BITS - 1] & (sub > limit))
    raise ValueError(f"scale_rounding {mode.value!r} has no round-up flag")


def float32_beat_layout(lanes: int) -> data.ArrayLayout:
    """A beat of ``lanes`` float32 values (lane 0 in the low bits)."""
    return data.ArrayLayout(Float32, lanes)


def tree_depth(lanes: int) -> int:
    """Levels of the two-input comparator tree over ``lanes`` values: ``ceil(log2(lanes))``."""
    return (lanes - 1).bit_length()


def default_stages(lanes: int) -> int:
    """Default number of tree pipeline registers: half the tree depth, rounded down."""
    return tree_depth(lanes) // 2


def register_levels(lanes: int, stages: int) -> tuple[int, ...]:
    """Tree levels (1 = first comparator level) followed by a pipeline register.

    The ``stages`` registers split the ``tree_depth(lanes)`` levels as evenly as
    possible: register ``k`` (0-based) follows level ``ceil((k + 1) * depth / (stages + 1))``.
    """
    depth = tree_depth(lanes)
    return tuple(-(-(k + 1) * depth // (stages + 1)) for k in range(stages))


def check_stages(stages, lanes: int, hi: int | None = None) -> int:
    """``stages`` must be an integer in [0, min(tree_depth(lanes), hi)] (shared with the
    re-quantizer, whose tree it is)."""
    top = tree_depth(lanes) if hi is None else min(tree_depth(lanes), hi)
    return check_int("stages", stages, 0, top)


class BlockMaxExponent(MXComponent):
    """Largest float32 exponent field, NaN/Inf flag and all-zero flag of groups of ``n`` values.

    Parameters
    ----------
    n : int
        Values per group (one result each), in [1, ``MAX_GROUP`` = 65536].
    lanes : int
        Values per input beat, in [1, min(n, ``MAX_LANES`` = 1024)], dividing ``n`` (default ``n``): a
        group is ``n // lanes`` consecutive beats, counted from reset (there are no
        framing marks).
    stages : int
        Pipeline registers in the comparator tree, in [0, ``tree_depth(lanes)``] where
        ``tree_depth(lanes) = ceil(log2(lanes))``; default ``tree_depth(lanes) // 2``.
        They follow the levels :func:`register_levels` names. 0 gives a combinational
        tree feeding the accumulator.
    scale_rounding : {"floor", "ceil", "even"}
        ``floor`` (default): the result is :class:`MaxExponentResult`. ``ceil``/``even``
        (SPEC.md 8, needs ``fmt``): the tree compares 9-bit keys ``2 x field + flag`` with the
        per-value :func:`scale_round_flag`, and the result :class:`MaxExponentRoundResult`
        adds ``round_up``, the flag of a value with the largest field.
    fmt : str
        Element format the flag is computed for (only with ``ceil``/``even``).

    Members
    -------
    i : In(stream.Signature(ArrayLayout(Float32, lanes)))
        Input beats: ``lanes`` float32 encodings, lane 0 in the low bits.
    o : Out(stream.Signature(MaxExponentResult or MaxExponentRoundResult))
        One result per group: ``max_exp`` (largest biased exponent field of ``|x|``;
        0 for zeros and subnormals; 255 when some value is NaN or Inf), ``any_nan_inf``
        and ``all_zero`` (every value is +0 or -0; subnormals are not zero).

    Raises
    ------
    TypeError
        A parameter is not an integer.
    ValueError
        A parameter out of range, or ``lanes`` not dividing ``n``.

    Latency
    -------
    ``latency = stages + 1``: a group's result is valid ``stages + 1`` cycles after the
    cycle its last beat is accepted, when the output is not stalled. Throughput one beat
    per cycle. Back-pressure: the whole pipeline holds while ``o.valid & ~o.ready``, so
    ``i.ready = ~o.valid | o.ready`` (it depends on ``o.ready`` combinationally, never on
    ``i.valid``); ``o.valid`` never depends on ``o.ready`` and, once high, stays high
    with a stable payload until the result is taken.
    """

    def __init__(self, *, n, lanes=None, stages=None, scale_rounding="floor", fmt=None):
        check_int("n", n, 1, MAX_GROUP)
        lanes = n if lanes is None else lanes
        check_divisor("lanes", lanes, n, "n", hi=MAX_LANES)
        stages = default_stages(lanes) if stages is None else stages
        check_stages(stages, lanes)
        self._scale_rounding = scale_rounding_mode(scale_rounding)
        self._flagged = self._scale_rounding is not ScaleRounding.FLOOR
        self._fmt = get_format(fmt, element_only=True) if self._flagged else None
        self._n, self._lanes, self._stages = n, lanes, stages
        params = {"n": n, "lanes": lanes, "stages": stages}
        if self._flagged:
            params.update(scale_rounding=self._scale_rounding.value, fmt=self._fmt.name)
        super().__init__({
            "i": In(stream.Signature(float32_beat_layout(lanes))),
            "o": Out(stream.Signature(MaxExponentRoundResult if self._flagged else MaxExponentResult)),
        }, params=params)

    @property
    def scale_rounding(self) -> ScaleRounding:
        """Scale rule of the round-up flag."""
        return self._scale_rounding

    @property
    def n(self) -> int:
        """Values per group."""
        return self._n

    @property
    def lanes(self) -> int:
        """Values per beat."""
        return self._lanes

    @property
    def stages(self) -> int:
        """Pipeline registers in the comparator tree."""
        return self._stages

    @property
    def beats_per_group(self) -> int:
        return self._n // self._lanes

    @property
    def latency(self) -> int:
        """Cycles from a group's last accepted beat to its result (no stall): ``stages + 1``."""
        return self._stages + 1

    @property
    def module_name(self) -> str:
        suffix = f"_{self._scale_rounding.value}_{self._fmt.name}" if self._flagged else ""
        return f"maxexp_n{self._n}_l{self._lanes}_s{self._stages}{suffix}"

    def elaborate(self, platform):
        m = Module()
        lanes, bpg = self._lanes, self.beats_per_group
        reg_after = set(register_levels(lanes, self._stages))

        # The whole pipeline advances when the output register is empty or being taken.
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]

        # Level 0: exponent field (with the round-up flag below it: a 9-bit key) and
        # "non-zero" of every lane.
        kw = F32_EXP_BITS + 1 if self._flagged else F32_EXP_BITS
        level = []
        for k in range(lanes):
            x = self.i.payload[k]
            e = Signal(kw, name=f"l0_exp{k}")
            nz = Signal(name=f"l0_nz{k}")
            key = (Cat(scale_round_flag(x, self._fmt, self._scale_rounding), x.exponent) if self._flagged
                   else x.exponent)
            m.d.comb += [e.eq(key), nz.eq(x.as_value()[:F32_BITS - 1].any())]   # |x| != 0
            level.append((e, nz))
        valid = self.i.valid

        # Comparator tree; a register (advancing with en) after the levels in reg_after.
        for lvl in range(1, tree_depth(lanes) + 1):
            nxt = []
            for j in range(0, len(level), 2):
                if j + 1 == len(level):
                    nxt.append(level[j])
                    continue
                (ea, za), (eb, zb) = level[j], level[j + 1]
                e = Signal(kw, name=f"l{lvl}_exp{j // 2}")
                nz = Signal(name=f"l{lvl}_nz{j // 2}")
                m.d.comb += [e.eq(Mux(ea > eb, ea, eb)), nz.eq(za | zb)]
                nxt.append((e, nz))
            level = nxt
            if lvl in reg_after:
                regs = []
                for j, (e, nz) in enumerate(level):
                    er = Signal(kw, name=f"r{lvl}_exp{j}")
                    zr = Signal(name=f"r{lvl}_nz{j}")
                    with m.If(en):
                        m.d.sync += [er.eq(e), zr.eq(nz)]
                    regs.append((er, zr))
                vr = Signal(name=f"r{lvl}_valid")
                with m.If(en):
                    m.d.sync += vr.eq(valid)
                level, valid = regs, vr
        (beat_exp, beat_nz), = level

        # Accumulation over the beats of a group, then the output register.
        acc_exp = Signal(kw)
        acc_nz = Signal()
        grp_exp = Signal(kw)
        grp_nz = Signal()
        m.d.comb += [
            grp_exp.eq(Mux(beat_exp > acc_exp, beat_exp, acc_exp)),
            grp_nz.eq(beat_nz | acc_nz),
        ]
        beat_idx = Signal(range(max(bpg, 2)))
        group_end = Signal()
        m.d.comb += group_end.eq(beat_idx == bpg - 1)
        with m.If(en):
            m.d.sync += self.o.valid.eq(valid & group_end)
            with m.If(valid):
                with m.If(group_end):
                    field = grp_exp[1:] if self._flagged else grp_exp
                    m.d.sync += [
                        beat_idx.eq(0),
                        acc_exp.eq(0),
                        acc_nz.eq(0),
                        self.o.payload.max_exp.eq(field),
                        self.o.payload.any_nan_inf.eq(field == F32_EXP_SPECIAL),
                        self.o.payload.all_zero.eq(~grp_nz),
                    ]
                    if self._flagged:
                        m.d.sync += self.o.payload.round_up.eq(grp_exp[0])
                with m.Else():
                    m.d.sync += [beat_idx.eq(beat_idx + 1), acc_exp.eq(grp_exp), acc_nz.eq(grp_nz)]
        return m
