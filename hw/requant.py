"""Tile re-quantizer: a float32 tile to one E8M0 scale and element codes (SPEC.md 3 and 6).

:class:`ElementEncoder` rounds one float32 value divided by ``2^E`` to an element code of
any MX format, driven by the golden format description (its ``segments``: per binade
range, the smallest normal exponent ``emin`` and the mantissa bits ``man_bits``), with one
RNE step on the float32 bits. :class:`TileRequantizer` buffers a tile in a double-buffered
memory while the :class:`~mxsf.hw.maxexp.BlockMaxExponent` finds its scale, then streams
the codes out.

Shared-microexponent formats (``mx9``/``mx6``/``mx4``, SPEC.md 11) use the same machinery
with a ``1 x 16`` tile, which is their block: the max-exponent finder gives ``E`` (their
``emax_elem`` is 0), each pair's microexponent is ``tau = 1`` when both magnitudes are below
``2^E`` (a comparison of float32 bit patterns), and the element encoder runs at exponent
``E - tau`` (the format's encoder segment is the grid ``m x 2^(1-p)``, so this is SPEC.md 11
step 3). The output beat carries the pair bits beside the codes.
"""


from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mxsf.golden.bdr import check_bdr_options
from mxsf.golden.constants import (E8M0_BIAS, E8M0_BITS, E8M0_MAX_EXP, E8M0_NAN, F32_BIAS,
                                   F32_EXP_BITS, F32_MAN_BITS)
from mxsf.golden.formats import ElementFormat, FormatKind, get_format
from mxsf.golden.options import (SR_DEFAULT_BITS, SR_WEYL, Rounding, ScaleRounding, check_seed,
                                 check_sr_bits, rounding_mode, scale_rounding_mode)
from mxsf.golden.params import MAX_LANES, MAX_TILE_DIM, check_divisor, check_int

from .base import MXComponent
from .fp32 import leading_zeros
from .layouts import E8M0, Float32, element_layout
from .maxexp import MAX_GROUP, BlockMaxExponent, check_stages, default_stages, float32_beat_layout
from .stochastic import sr_mix, sr_mix_constant

__all__ = [
    "ElementEncoder",
    "TileRequantizer",
    "requant_out_layout",
]

# ---- float32 and scale constants ----------------------------------------------------------
_SIG_WIDTH = F32_MAN_BITS + 1           # float32 significand with the hidden bit
_EXP_SHAPE = signed(E8M0_BITS)          # scale exponent E = byte - 127, in [-128, 127]
_EXP_MIN = -(1 << (E8M0_BITS - 1))      # -128: the encoder is exact for every E of that shape
_F32_EXP_MAX = (1 << F32_EXP_BITS) - 1  # largest exponent field (255)


class ElementEncoder(MXComponent):
    """Round ``value / 2^exp`` to an element code: RNE, saturating, combinational.

    The float32 significand ``sig`` (hidden bit included; float32 subnormals are not
    flushed) has its leading one at unbiased exponent ``ky`` of ``y = value / 2^exp``.
    The format segment holding ``ky`` gives ``emin`` and ``man_bits``; the quantum is
    ``2^(kk - man_bits)`` with ``kk = max(ky, emin)``. ``sig`` is shifted right to the
    quantum with guard and sticky bits, rounded to nearest even, and the magnitude code
    is ``((kk - emin) << man_bits) + n`` (a carry of ``n`` moves to the next binade),
    saturated at the largest finite code. This is :func:`mxsf.golden.quantize.encode_exact`
    bit for bit, for every float32 finite value and every ``exp`` in [-128, 127].

    With ``rounding="stochastic"`` (SPEC.md 9) the shifter keeps ``sr_bits`` more bits below
    the quantum (``t mod 2^R``, the R bits right below it, computed exactly from the float32
    bits and E), adds the random ``rand`` to them, and the carry out replaces the RNE
    round-up: ``u x floor((t + r) / 2^R)``, saturated. This is
    :func:`mxsf.golden.quantize.encode_stochastic` bit for bit.

    Parameters
    ----------
    fmt : str
        Element format or OCP alias (any MX element format; not bf16).
    rounding : {"rne", "stochastic"}
        Element rounding (default ``rne``).
    sr_bits : int
        Random bits per element for stochastic rounding, in [1, 16] (default 8).

    Members
    -------
    value : In(Float32)
        The float32 value (NaN/Inf give an unspecified code: the caller masks them).
    exp : In(signed(8))
        The scale exponent ``E`` (the E8M0 byte minus 127).
    rand : In(sr_bits)
        Only with ``rounding="stochastic"``: the random integer ``r``.
    code : Out(element_layout(fmt))
        The code. Negative values that round to zero give the sign bit with magnitude 0
        (-0) in every FP format and MXSF; INT8 codes are two's complement and never -0.

    Raises
    ------
    ValueError
        Unknown format, or bf16; a bad ``rounding`` or ``sr_bits``.

    Latency
    -------
    ``latency == 0`` (combinational).
    """

    def __init__(self, *, fmt, rounding="rne", sr_bits=SR_DEFAULT_BITS):
        f = get_format(fmt, element_only=True, param="fmt")
        self._fmt = f
        self._rounding = rounding_mode(rounding)
        self._sr_bits = check_sr_bits(sr_bits)
        members = {"value": In(Float32), "exp": In(_EXP_SHAPE)}
        params = {"fmt": f.name}
        if self._rounding is Rounding.STOCHASTIC:
            members["rand"] = In(self._sr_bits)
            params.update(rounding=self._rounding.value, sr_bits=self._sr_bits)
        members["code"] = Out(element_layout(f))
        super().__init__(members, params=params)

    @property
    def rounding(self) -> Rounding:
        """Element rounding (SPEC.md 9)."""
        return self._rounding

    @property
    def sr_bits(self) -> int:
        """Random bits per element (stochastic rounding)."""
        return self._sr_bits

    @property
    def fmt(self) -> ElementFormat:
        """Element format of the codes."""
        return self._fmt

    @property
    def latency(self) -> int:
        return 0

    @property
    def module_name(self) -> str:
        suffix = f"_sr{self._sr_bits}" if self._rounding is Rounding.STOCHASTIC else ""
        return f"enc_{self._fmt.name}{suffix}"

    def elaborate(self, platform):
        m = Module()
        f: ElementFormat = self._fmt
        x = self.value
        segs = f.segments

        # ---- widths ------------------------------------------------------------------
        # ky = ex_eff - 127 - E - lz in [1 - 127 - 127 - 24, 255 - 127 + 128].
        ky_range = range(1 - F32_BIAS - E8M0_MAX_EXP - _SIG_WIDTH, _F32_EXP_MAX - F32_BIAS - _EXP_MIN + 1)
        # Right shift of sig to the quantum: kk - man_bits + 150 - ex_eff + E. It is at least
        # 5 for every format and E >= -128 (kk >= emin); from 25 on nothing is kept or rounded up.
        # It is at most 256 + 150 - 1 + 127 = 532 (signed 12 bits with NaN/Inf garbage).
        shift_cap = _SIG_WIDTH + 1
        stochastic = self._rounding is Rounding.STOCHASTIC
        if stochastic:
            # R more bits below the quantum: from 24 + R on, t mod 2^R is 0 as well.
            shift_cap = _SIG_WIDTH + self._sr_bits
        # Code base (kk - emin) << man_bits <= (256 + 14) << 7 < 2^16; with n < 2^20 (shift
        # >= 5) the rounded magnitude fits signed 21 bits before saturation.

        sig = Signal(_SIG_WIDTH)
        ex_eff = Signal(F32_EXP_BITS)
        lz = Signal(range(_SIG_WIDTH + 1))
        ky = Signal(ky_range)
        m.d.comb += [
            sig.eq(x.significand()),
            ex_eff.eq(x.effective_exponent()),
            lz.eq(leading_zeros(m, sig)),
            ky.eq(ex_eff - F32_BIAS - self.exp - lz),
        ]

        # ---- per segment: quantum exponent and code base; pick the segment of ky --------
        shift = Signal(signed(12))
        base = Signal(signed(20))
        seg_sel = [Const(1)] + [ky >= s.ky_lo for s in segs[1:]]
        for s, sel in zip(segs, seg_sel):
            kk = Mux(ky > s.emin, ky, s.emin)
            # later segments (higher ky_lo) override earlier ones
            with m.If(sel):
                m.d.comb += [
                    shift.eq(kk - s.man_bits + (F32_BIAS + F32_MAN_BITS) - ex_eff + self.exp),
                    base.eq((kk - s.emin) << s.man_bits),
                ]

        sh = Signal(range(shift_cap + 1))
        m.d.comb += sh.eq(Mux(shift > shift_cap, shift_cap, shift[:len(sh)]))

        # ---- shift, guard/sticky, RNE ----------------------------------------------------
        # sig shifted right by sh over a window of shift_cap zeros: the bits that leave the
        # significand land in the low shift_cap bits, the top one being the guard bit.
        kept = Signal(_SIG_WIDTH + shift_cap)
        m.d.comb += kept.eq(Cat(Const(0, shift_cap), sig) >> sh)
        n = kept[shift_cap:]
        if stochastic:
            R = self._sr_bits
            frac = kept[shift_cap - R:shift_cap]          # t mod 2^R: the R bits below the quantum
            round_up = (frac + self.rand)[R]              # the carry of (t mod 2^R) + r
        else:
            guard = kept[shift_cap - 1]
            sticky = kept[:shift_cap - 1].any()
            round_up = guard & (sticky | n[0])

        mag = Signal(signed(21))
        mag_sat = Signal(range(f.max_code + 1))
        m.d.comb += [
            mag.eq(base + n + round_up),
            mag_sat.eq(Mux(mag > f.max_code, f.max_code, mag[:len(mag_sat)])),
        ]

        if f.kind is FormatKind.INT:
            m.d.comb += self.code.as_value().eq(Mux(x.sign, -mag_sat, mag_sat))
        else:
            m.d.comb += self.code.as_value().eq(Cat(mag_sat, Const(0, f.bits - 1 - len(mag_sat)), x.sign))
        return m


def requant_out_layout(fmt, lanes: int) -> data.StructLayout:
    """One output beat: ``lanes`` element codes, the tile's E8M0 scale, tile marks (BDR
    formats: also ``micro``, the microexponents of the beat's ``lanes // 2`` pairs)."""
    f = get_format(fmt, element_only=True)
    fields = {
        "codes": data.ArrayLayout(element_layout(f), lanes),
        "scale": E8M0,
        "first": 1,
        "last": 1,
    }
    if f.microexp_group:
        fields["micro"] = data.ArrayLayout(f.microexp_bits, lanes // f.microexp_group)
    return data.StructLayout(fields)


class TileRequantizer(MXComponent):
    """Re-quantize float32 tiles to one E8M0 scale and ``rows x cols`` element codes.

    A tile of ``rows x cols`` float32 values arrives row-major, ``lanes`` values a beat
    (``beats = rows * cols // lanes`` beats a tile, counted from reset). It is written
    to one bank of a two-tile memory while a :class:`~mxsf.hw.maxexp.BlockMaxExponent`
    (``n = rows * cols``) finds the tile's largest exponent field; the scale is then
    ``0xFF`` if some value is NaN/Inf, else ``max(0, maxexp - emax_elem)`` (SPEC.md 6:
    ``E = max(-127, maxexp - 127 - emax_elem)``, an all-zero tile gives 0), and the tile
    is read back in the same order, every value encoded by one
    :class:`ElementEncoder` per lane (SPEC.md 3: one RNE, saturating, -0 kept where the
    format has it; all codes 0 when the scale is NaN). A 1D block of n is the tile (1, n).

    Parameters
    ----------
    fmt : str
        Element format or OCP alias (any MX element format; not bf16).
    rows, cols : int or None
        Tile shape, each in [1, ``MAX_TILE_DIM`` = 1024], with ``rows * cols <= MAX_GROUP`` (65536)
        (default 32 x 32; BDR formats ``mx9``/``mx6``/``mx4``: 1 x 16, their block, the only shape).
    lanes : int
        Values per beat, in both directions, in [1, min(rows * cols, ``MAX_LANES`` = 1024)], dividing
        ``rows * cols`` (default ``cols``; a beat may span rows). BDR: 2, 4, 8 or 16.
    stages : int, optional
        Pipeline registers of the max-exponent comparator tree, in
        [0, min(ceil(log2(lanes)), beats - 1)]; default
        ``min(ceil(log2(lanes)) // 2, beats - 1)``. The bound keeps the sustained rate at
        one beat per cycle.
    scale_rounding : {"floor", "ceil", "even"}
        Scale rule (SPEC.md 8, default ``floor``). ``ceil`` and ``even`` widen the
        max-exponent tree's keys by one flag bit (:func:`~mxsf.hw.maxexp.scale_round_flag`).
    rounding : {"rne", "stochastic"}
        Element rounding (SPEC.md 9, default ``rne``).
    sr_bits : int
        Random bits per element for stochastic rounding, in [1, 16] (default 8).
    seed : int
        32-bit seed of the stochastic-rounding generator (default 0). Tiles are numbered
        from 0 after reset in the order they are read out; element ``i = beat x lanes +
        lane`` of tile ``n`` gets ``r = mix(mix(mix(seed) + n W) + i W) >> (32 - sr_bits)``
        (docs/stochastic_rounding.md): the n-th tile equals
        ``requantize_tile(tile, ..., seed=seed, tile_index=n)``.

    Members
    -------
    i : In(stream.Signature(ArrayLayout(Float32, lanes)))
        Tile values, row-major, lane 0 in the low bits.
    o : Out(stream.Signature(requant_out_layout(fmt, lanes)))
        ``codes`` (``lanes`` element codes, in input order), ``scale`` (the tile's E8M0
        byte, on every beat of the tile), ``first`` (first beat of a tile), ``last``
        (last beat of a tile); BDR: ``micro`` (the pairs' microexponents, 0 in a NaN block).

    Raises
    ------
    TypeError
        A parameter is not an integer.
    ValueError
        Unknown format, a parameter out of range, ``lanes`` not dividing ``rows * cols``.

    Latency
    -------
    ``latency = stages + 3``: the first beat of a tile is valid on ``o`` ``latency`` cycles
    after the cycle its last input beat is accepted, when the output side is idle and not
    stalled (max-exponent tree and accumulator ``stages + 1`` | memory read | encoders and
    output register). Throughput: one beat per cycle in and out, sustained across tiles
    (the next tile streams into the other bank while this one streams out; the writer may
    also follow the reader into the bank it is emptying).

    Back-pressure (``amaranth.lib.stream`` rules): ``o.valid`` never depends on
    ``o.ready`` and holds with a stable payload until taken; ``o.ready`` low stalls the read
    side. ``i.ready`` comes from registers only. Input beat ``w`` of a tile bound for bank
    ``b`` (banks alternate from bank 0) is accepted when bank ``b`` holds no unread tile,
    or when the read side is reading bank ``b`` and has already issued the read of beat
    ``w`` (so with both banks full, or the reader stalled, ``i.ready`` drops). The read of
    a tile starts when its scale is known, in order, at most one beat a cycle.
    """

    def __init__(self, *, fmt, rows=None, cols=None, lanes=None, stages=None, scale_rounding="floor",
                 rounding="rne", sr_bits=SR_DEFAULT_BITS, seed=0):
        f = get_format(fmt, element_only=True, param="fmt")
        self._scale_rounding = scale_rounding_mode(scale_rounding)
        self._rounding = rounding_mode(rounding)
        self._sr_bits = check_sr_bits(sr_bits)
        self._seed = check_seed(seed)
        bdr_block = f.fixed_block_size
        if bdr_block:               # SPEC.md 11 fixes E (floor) and the RNE of m
            check_bdr_options(f, self._scale_rounding, self._rounding)
        rows = (1 if bdr_block else 32) if rows is None else rows
        cols = (bdr_block or 32) if cols is None else cols
        check_int("rows", rows, 1, MAX_TILE_DIM)
        check_int("cols", cols, 1, MAX_TILE_DIM)
        if bdr_block and (rows, cols) != (1, bdr_block):
            raise ValueError(f"rows, cols must be 1, {bdr_block} for {f.name} (a tile is one block of "
                             f"{bdr_block} along a row, SPEC.md 11), not {rows}, {cols}")
        if bdr_block and isinstance(lanes, int) and lanes % f.microexp_group:
            raise ValueError(f"lanes must be one of [2, 4, 8, 16] for {f.name} (whole microexponent "
                             f"pairs a beat), not {lanes!r}")
        if rows * cols > MAX_GROUP:
            raise ValueError(f"rows * cols must be at most {MAX_GROUP}, not {rows} * {cols} = {rows * cols}")
        n = rows * cols
        lanes = cols if lanes is None else lanes
        check_divisor("lanes", lanes, n, "rows*cols", hi=MAX_LANES)
        beats = n // lanes
        if stages is None:
            stages = min(default_stages(lanes), beats - 1)
        check_stages(stages, lanes, beats - 1)
        self._fmt, self._rows, self._cols, self._lanes, self._stages = f, rows, cols, lanes, stages
        super().__init__({
            "i": In(stream.Signature(float32_beat_layout(lanes))),
            "o": Out(stream.Signature(requant_out_layout(f, lanes))),
        }, params={"fmt": f.name, "rows": rows, "cols": cols, "lanes": lanes, "stages": stages,
                   **self.options})

    @property
    def scale_rounding(self) -> ScaleRounding:
        """Scale rule (SPEC.md 8)."""
        return self._scale_rounding

    @property
    def rounding(self) -> Rounding:
        """Element rounding (SPEC.md 9)."""
        return self._rounding

    @property
    def sr_bits(self) -> int:
        return self._sr_bits

    @property
    def seed(self) -> int:
        """Seed of the stochastic-rounding generator."""
        return self._seed

    @property
    def options(self) -> dict:
        """The numerics options that differ from the defaults (as golden keyword arguments)."""
        p = {}
        if self._scale_rounding is not ScaleRounding.FLOOR:
            p["scale_rounding"] = self._scale_rounding.value
        if self._rounding is Rounding.STOCHASTIC:
            p.update(rounding=self._rounding.value, sr_bits=self._sr_bits, seed=self._seed)
        return p

    @property
    def fmt(self) -> ElementFormat:
        """Element format of the codes."""
        return self._fmt

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def stages(self) -> int:
        """Pipeline registers of the max-exponent comparator tree."""
        return self._stages

    @property
    def tile_size(self) -> int:
        return self._rows * self._cols

    @property
    def beats_per_tile(self) -> int:
        return self._rows * self._cols // self._lanes

    @property
    def latency(self) -> int:
        """Cycles from a tile's last accepted input beat to its first output beat: ``stages + 3``."""
        return self._stages + 3

    @property
    def options_suffix(self) -> str:
        """Module-name suffix of the non-default options (``_ceil``, ``_sr8``, ...)."""
        suffix = ""
        if self._scale_rounding is not ScaleRounding.FLOOR:
            suffix += f"_{self._scale_rounding.value}"
        if self._rounding is Rounding.STOCHASTIC:
            suffix += f"_sr{self._sr_bits}"
        return suffix

    @property
    def module_name(self) -> str:
        return f"requant_{self._fmt.name}_{self._rows}x{self._cols}_l{self._lanes}{self.options_suffix}"

    def elaborate(self, platform):
        m = Module()
        f = self._fmt
        lanes, beats = self._lanes, self.beats_per_tile

        mem = Memory(shape=float32_beat_layout(lanes), depth=2 * beats, init=[])
        m.submodules.mem = mem
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=())

        flagged = self._scale_rounding is not ScaleRounding.FLOOR
        if flagged:
            mx = BlockMaxExponent(n=self.tile_size, lanes=lanes, stages=self._stages,
                                  scale_rounding=self._scale_rounding, fmt=f)
        else:
            mx = BlockMaxExponent(n=self.tile_size, lanes=lanes, stages=self._stages)
        m.submodules.maxexp = mx

        # ---- write side ------------------------------------------------------------------
        w_idx = Signal(range(beats), name="w_idx")
        w_bank = Signal(name="w_bank")
        pending = [Signal(name=f"pending{b}") for b in range(2)]   # holds an unread tile
        r_idx = Signal(range(max(beats, 2)), name="r_idx")
        r_bank = Signal(name="r_bank")

        pending_w = Mux(w_bank, pending[1], pending[0])
        can_write = ~pending_w | ((r_bank == w_bank) & (r_idx > w_idx))
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(can_write),
            accept.eq(self.i.valid & can_write),
            wp.addr.eq(Mux(w_bank, beats, 0) + w_idx),
            wp.data.eq(self.i.payload),
            wp.en.eq(accept),
            mx.i.valid.eq(accept),
            mx.i.payload.eq(self.i.payload),
            mx.o.ready.eq(1),
        ]
        with m.If(accept):
            with m.If(w_idx == beats - 1):
                m.d.sync += [w_idx.eq(0), w_bank.eq(~w_bank)]
                for b in range(2):
                    with m.If(w_bank == b):
                        m.d.sync += pending[b].eq(1)
            with m.Else():
                m.d.sync += w_idx.eq(w_idx + 1)

        # ---- scales: one max-exponent result per tile, in bank order -------------------------
        s_bank = Signal(name="s_bank")
        full = [Signal(name=f"full{b}") for b in range(2)]          # scale known, not read out
        scale = [Signal(E8M0, name=f"scale{b}") for b in range(2)]
        res = mx.o.payload
        new_scale = Signal(E8M0)
        if flagged:
            # field + round-up may reach 255 - emax_elem: clamp E to 127 (byte 254) as well
            field = Signal(F32_EXP_BITS + 1)
            top = E8M0_BIAS + E8M0_MAX_EXP
            m.d.comb += [
                field.eq(res.max_exp + res.round_up),
                new_scale.eq(Mux(res.any_nan_inf, E8M0_NAN,
                                 Mux(field > f.emax_elem + top, top,
                                     Mux(field > f.emax_elem, field - f.emax_elem, 0)))),
            ]
        else:
            m.d.comb += new_scale.eq(Mux(res.any_nan_inf, E8M0_NAN,
                                         Mux(res.max_exp > f.emax_elem, res.max_exp - f.emax_elem, 0)))
        with m.If(mx.o.valid):
            m.d.sync += s_bank.eq(~s_bank)
            for b in range(2):
                with m.If(s_bank == b):
                    m.d.sync += [full[b].eq(1), scale[b].eq(new_scale)]

        # ---- read side: issue | memory data (s1) | encoders and output register ------------
        full_r = Mux(r_bank, full[1], full[0])
        bypass = mx.o.valid & (s_bank == r_bank)     # the scale arrives this cycle
        ready_r = Signal()
        scale_r = Signal(E8M0)
        m.d.comb += [
            ready_r.eq(full_r | bypass),
            scale_r.eq(Mux(full_r, Mux(r_bank, scale[1].as_value(), scale[0].as_value()), new_scale.as_value())),
        ]

        en = Signal()          # the read pipeline advances
        issue = Signal()
        m.d.comb += [
            en.eq(~self.o.valid | self.o.ready),
            issue.eq(en & ready_r),
            rp.addr.eq(Mux(r_bank, beats, 0) + r_idx),
            rp.en.eq(en),
        ]

        s1_valid = Signal()
        s1_scale = Signal(E8M0)
        s1_first = Signal()
        s1_last = Signal()
        stochastic = self._rounding is Rounding.STOCHASTIC
        if stochastic:
            # docs/stochastic_rounding.md: T = mix(seed) + n W for tile n (read order),
            # B = beat x lanes x W; s1_base = mix(T) + B, lane l adds l W.
            sr_t = Signal(32, init=sr_mix_constant(self._seed), name="sr_tile")
            sr_b = Signal(32, name="sr_beat")
            s1_base = Signal(32, name="sr_base")
            key = sr_mix(m, sr_t, "sr_key")
        with m.If(en):
            m.d.sync += s1_valid.eq(issue)
        with m.If(issue):
            r_last = r_idx == beats - 1
            m.d.sync += [s1_scale.eq(scale_r), s1_first.eq(r_idx == 0), s1_last.eq(r_last)]
            if stochastic:
                m.d.sync += [s1_base.eq(key + sr_b),
                             sr_b.eq(Mux(r_last, 0, sr_b + ((lanes * SR_WEYL) & 0xFFFFFFFF)))]
                with m.If(r_last):
                    m.d.sync += sr_t.eq(sr_t + SR_WEYL)
            with m.If(r_last):
                m.d.sync += [r_idx.eq(0), r_bank.eq(~r_bank)]
                for b in range(2):    # after the set above: a bypassed tile of one beat ends here
                    with m.If(r_bank == b):
                        m.d.sync += [full[b].eq(0), pending[b].eq(0)]
            with m.Else():
                m.d.sync += r_idx.eq(r_idx + 1)

        s1_nan = s1_scale.is_nan()
        # BDR: a pair's microexponent is 1 when both |v| < 2^E, compared as float32 bit
        # patterns (2^E has exponent field E + 127 = the scale byte; 2^-127 is 0x00400000)
        micro = []
        if f.microexp_group:
            pow_e = Signal(F32_EXP_BITS + F32_MAN_BITS)
            m.d.comb += pow_e.eq(Mux(s1_scale.biased == 0, 1 << (F32_MAN_BITS - 1),
                                     s1_scale.biased << F32_MAN_BITS))
            for k in range(0, lanes, f.microexp_group):
                tau = Signal(name=f"tau{k // f.microexp_group}")
                below = [rp.data[k + j].as_value()[:F32_EXP_BITS + F32_MAN_BITS] < pow_e
                         for j in range(f.microexp_group)]
                m.d.comb += tau.eq(_all(below) & ~s1_nan)
                micro.append(tau)
        codes = []
        for k in range(lanes):
            if stochastic:
                enc = ElementEncoder(fmt=f, rounding=self._rounding, sr_bits=self._sr_bits)
                r = sr_mix(m, s1_base + ((k * SR_WEYL) & 0xFFFFFFFF), f"sr_lane{k}")
                m.d.comb += enc.rand.eq(r[32 - self._sr_bits:])
            else:
                enc = ElementEncoder(fmt=f)
            m.submodules[f"enc{k}"] = enc
            exp = s1_scale.exponent()
            if micro:                       # BDR: the element grid of its pair, at E - tau
                exp = exp - micro[k // f.microexp_group]
            m.d.comb += [enc.value.eq(rp.data[k]), enc.exp.eq(exp)]
            codes.append(Mux(s1_nan, 0, enc.code.as_value()))

        out = self.o.payload
        with m.If(en):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                out.codes.as_value().eq(Cat(*codes)),
                out.scale.eq(s1_scale),
                out.first.eq(s1_first),
                out.last.eq(s1_last),
            ]
            if micro:
                m.d.sync += out.micro.as_value().eq(Cat(*micro))
        return m


def _all(bits):
    out = 1
    for b in bits:
        out = out & b
    return out
