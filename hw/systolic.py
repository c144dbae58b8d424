"""Output-stationary systolic array of MX (or BF16) processing elements."""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from mxsf.golden.formats import ElementFormat, get_format
from mxsf.golden.options import Accumulator, acc_mode
from mxsf.golden.params import MAX_ARRAY_DIM, MAX_BLOCK_SIZE, check_divisor, check_int

from .base import MXComponent
from .bf16_pe import MAX_BF16_LANES, BF16ProcessingElement
from .layouts import E8M0, BFloat16, Float32, element_layout
from .pe import MXProcessingElement, check_bdr_shape

__all__ = ["SystolicArray", "array_beat_layout", "array_row_layout", "check_array_params"]


def _elem_shape(f: ElementFormat):
    return BFloat16 if not f.is_element else element_layout(f)


def array_beat_layout(fmt, rows: int, cols: int, lanes: int) -> data.StructLayout:
    """One input beat of the array: ``lanes`` K-elements of every row of A and column of B.

    ``a[i][l]`` is element ``l`` of row ``i`` of A, ``b[j][l]`` element ``l`` of column
    ``j`` of B; ``scale_a[i]``/``scale_b[j]`` their E8M0 block scales (MX formats only,
    taken on a block's first beat); ``micro_a[i]``/``micro_b[j]`` (BDR formats only, SPEC.md
    11) one microexponent bit per pair of lanes; ``first``/``last`` frame the tile's dot
    products exactly as for one PE.
    """
    f = get_format(fmt)
    e = _elem_shape(f)
    fields = {"a": data.ArrayLayout(data.ArrayLayout(e, lanes), rows),
              "b": data.ArrayLayout(data.ArrayLayout(e, lanes), cols)}
    if f.is_element:
        fields["scale_a"] = data.ArrayLayout(E8M0, rows)
        fields["scale_b"] = data.ArrayLayout(E8M0, cols)
    if f.microexp_group:
        micro = data.ArrayLayout(f.microexp_bits, lanes // f.microexp_group)
        fields["micro_a"] = data.ArrayLayout(micro, rows)
        fields["micro_b"] = data.ArrayLayout(micro, cols)
    fields["first"] = 1
    fields["last"] = 1
    return data.StructLayout(fields)


def array_row_layout(rows: int, cols: int, result=Float32) -> data.StructLayout:
    """One output beat: row ``row`` of a result tile (``cols`` float32, or ``result=BFloat16``
    for an MX array with a bfloat16 accumulator), with tile framing."""
    return data.StructLayout({
        "c": data.ArrayLayout(result, cols),
        "row": range(max(rows, 2)),
        "first": 1,   # row == 0
        "last": 1,    # row == rows - 1
    })


def check_array_params(fmt, rows, cols, block_size, lanes):
    """Shared constructor checks of the array and the GEMM; returns ``(format, lanes)``."""
    f = get_format(fmt, param="fmt")
    check_int("rows", rows, 1, MAX_ARRAY_DIM)
    check_int("cols", cols, 1, MAX_ARRAY_DIM)
    check_int("block_size", block_size, 1, MAX_BLOCK_SIZE)
    if lanes is None:
        lanes = block_size
    if f.microexp_group:
        check_bdr_shape(f, block_size, lanes)
        if lanes > block_size:
            raise ValueError(f"lanes must be one of {[d for d in (2, 4, 8, 16) if d <= block_size]} for a "
                             f"{f.name} array (a PE of the array reads a block in whole beats), not {lanes!r}")
    elif f.is_element:
        check_divisor("lanes", lanes, block_size, "block_size")
    else:
        check_int("lanes", lanes, 1, MAX_BF16_LANES)
    return f, lanes


def _delay(m, value, shape, cycles: int, name: str):
    """``value`` through a chain of ``cycles`` registers of ``shape`` (``name_0``, ...);
    returns the last register."""
    for d in range(cycles):
        stage = Signal(shape, name=f"{name}_{d}")
        m.d.sync += stage.eq(value)
        value = stage
    return value


class SystolicArray(MXComponent):
    """Output-stationary ``rows x cols`` grid of processing elements.

    PE ``(i, j)`` computes ``C[i][j]`` of a tile ``C = A @ B`` (A: ``rows x K``,
    B: ``K x cols``) over the K-blocks in order, exactly as SPEC.md section 5 (MX
    formats: :class:`~mxsf.hw.pe.MXProcessingElement`; ``fmt="bf16"``: the BF16
    baseline :class:`~mxsf.hw.bf16_pe.BF16ProcessingElement`, ``block_size`` then only
    sets the default ``lanes``).

    Dataflow: every input beat is registered once; row ``i`` of A (codes, scale,
    valid and framing) is then delayed ``i`` more cycles and enters PE ``(i, 0)``,
    column ``j`` of B (codes and scale) is delayed ``j`` more cycles and enters PE
    ``(0, j)``. Each PE forwards its A side right and its B side down through one
    register, so PE ``(i, j)`` sees the beat ``1 + i + j`` cycles after it was
    accepted, with matching A and B. Results stay in the PEs' accumulators
    (output stationary) until the tile's ``last`` beat.

    Drain: PE ``(i, j)``'s result is valid for one cycle, ``1 + i + j + pe_latency``
    cycles after the ``last`` beat. In each column the PEs' results are merged into
    one register (only one row's result is valid in a cycle), then column ``j`` is
    delayed ``cols - 1 - j`` cycles so that a whole row leaves in one beat: row ``i``
    of the tile leaves ``latency + i`` cycles after the ``last`` beat, rows in order on
    consecutive cycles. The drain uses no PE cycle, so the next tile's K loop runs
    meanwhile; only the output bandwidth (one row a cycle) limits: the ``last`` beats
    of two tiles must be at least ``rows`` cycles apart (``last_spacing``), which the
    array enforces by holding ``i.ready`` low for a ``last`` beat that comes earlier.

    Parameters
    ----------
    fmt : str
        MX element format (or OCP alias), or ``"bf16"``.
    rows, cols : int
        Array size, each in [1, ``MAX_ARRAY_DIM`` = 64].
    block_size : int or None
        Elements per K-block sharing one scale, in [1, ``MAX_BLOCK_SIZE`` = 1024] (MX formats;
        default the format's: 32, or 16 for ``mx9``/``mx6``/``mx4``, which accept only 16).
    lanes : int
        K-elements per beat per row/column (default ``block_size``); a divisor of
        ``block_size`` for MX formats (BDR: 2, 4, 8 or 16, whole microexponent pairs; a
        BDR beat also carries ``micro_a``/``micro_b``), in [1, ``MAX_BF16_LANES`` = 64] for bf16.
    acc : {"fp32", "bf16"} or Accumulator
        Accumulator of the MX PEs (SPEC.md 10, default ``fp32``); with ``bf16`` the results
        are :class:`~mxsf.hw.layouts.BFloat16` (``result_layout``). The BF16 baseline array
        takes ``fp32`` only.

    Members
    -------
    i : In(stream.Signature(array_beat_layout(fmt, rows, cols, lanes)))
        Input beats (see :func:`array_beat_layout`). ``ready`` is high except for a
        beat with ``last`` set while fewer than ``last_spacing`` cycles have passed
        since the previous accepted ``last`` (it depends on ``payload.last``, never on
        ``valid``). ``valid`` may drop between any beats.
    o : Out(stream.Signature(array_row_layout(rows, cols, result_layout), always_ready=True))
        Result rows: ``c[j]`` the :class:`~mxsf.hw.layouts.Float32` (or ``BFloat16``) ``C[row][j]``; ``first``/``last`` mark
        rows 0 and ``rows - 1``. A tile gives ``rows`` beats on consecutive cycles.
        No back-pressure: the consumer must take every beat.

    Raises
    ------
    TypeError
        A parameter of the wrong type.
    ValueError
        Unknown format, ``rows``/``cols``/``block_size``/``lanes`` out of range,
        ``lanes`` not dividing ``block_size``.

    Latency
    -------
    ``latency == 1 + pe_latency + cols`` cycles from the accepted ``last`` beat of a
    tile to its row 0 (input register, skew ``i + j`` and PE pipeline cancel against
    the deskew to ``1 + pe_latency + i + cols`` for row ``i``); row ``i`` leaves at
    ``latency + i``, the whole tile is out ``latency + rows - 1`` cycles after its
    ``last`` beat (``drain_cycles == rows`` output beats). ``pe_latency`` is the
    ``latency`` of the PE (3 for :class:`~mxsf.hw.pe.MXProcessingElement`, 2 for
    :class:`~mxsf.hw.bf16_pe.BF16ProcessingElement`). Throughput: one beat a cycle, i.e. ``rows * cols * lanes`` MACs a cycle,
    as long as a tile has at least ``rows`` beats (K >= ``rows * lanes``).
    """

    def __init__(self, *, fmt, rows, cols, block_size=None, lanes=None, acc="fp32"):
        if block_size is None:
            fb = get_format(fmt, param="fmt")
            block_size = fb.default_block_size if fb.is_element else 32
        f, lanes = check_array_params(fmt, rows, cols, block_size, lanes)
        self._acc = acc_mode(acc)
        if not f.is_element and self._acc is not Accumulator.FP32:
            raise ValueError(f"acc must be fp32 for the bf16 baseline array; not {acc!r}")
        self._fmt, self._rows, self._cols = f, rows, cols
        self._block_size, self._lanes = block_size, lanes
        self._bf16 = not f.is_element
        # One PE, built only to be inspected (latency); elaborate() makes the grid's own.
        self._pe_probe = self._make_pe(probe=True)
        super().__init__({
            "i": In(stream.Signature(array_beat_layout(f, rows, cols, lanes))),
            "o": Out(stream.Signature(array_row_layout(rows, cols, self.result_layout), always_ready=True)),
        }, params={"fmt": f.name, "rows": rows, "cols": cols, "block_size": block_size,
                   "lanes": lanes, **({} if self._acc is Accumulator.FP32 else {"acc": self._acc.value})})

    @property
    def acc(self) -> Accumulator:
        """Accumulator of the MX PEs (SPEC.md 10)."""
        return self._acc

    @property
    def result_layout(self):
        """Layout of a result: :class:`Float32`, or :class:`BFloat16` with ``acc="bf16"``."""
        return Float32 if self._acc is Accumulator.FP32 else BFloat16

    @property
    def fmt(self) -> ElementFormat:
        """Element format of A and B (bf16 for the baseline)."""
        return self._fmt

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def pe_latency(self) -> int:
        """``latency`` of one PE."""
        return self._pe_probe.latency

    @property
    def latency(self) -> int:
        """Cycles from a tile's ``last`` beat to its first result row."""
        return 1 + self.pe_latency + self._cols

    @property
    def drain_cycles(self) -> int:
        """Output beats (cycles) per result tile."""
        return self._rows

    @property
    def last_spacing(self) -> int:
        """Least number of cycles between two accepted ``last`` beats."""
        return self._rows

    @property
    def macs_per_cycle(self) -> int:
        return self._rows * self._cols * self._lanes

    @property
    def module_name(self) -> str:
        if self._bf16:
            return f"systolic_bf16_{self._rows}x{self._cols}_l{self._lanes}"
        suffix = "" if self._acc is Accumulator.FP32 else f"_acc{self._acc.value}"
        return f"systolic_{self._fmt.name}_{self._rows}x{self._cols}_b{self._block_size}_l{self._lanes}{suffix}"

    def _make_pe(self, probe=False):
        if self._bf16:
            cls, params = BF16ProcessingElement, {"lanes": self._lanes}
        else:
            cls, params = MXProcessingElement, {"fmt": self._fmt, "block_size": self._block_size,
                                                "lanes": self._lanes}
            if self._acc is not Accumulator.FP32:
                params["acc"] = self._acc
        return cls.probe(**params) if probe else cls(**params)

    def elaborate(self, platform):
        m = Module()
        rows, cols, lanes = self._rows, self._cols, self._lanes
        mx = not self._bf16
        elem = _elem_shape(self._fmt)
        beat = self.i.payload

        # ---- A side (goes right) and B side (goes down) of one PE ----------------------
        a_fields = {"valid": 1, "first": 1, "last": 1, "a": data.ArrayLayout(elem, lanes)}
        b_fields = {"b": data.ArrayLayout(elem, lanes)}
        if mx:
            a_fields["scale_a"] = E8M0
            b_fields["scale_b"] = E8M0
        bdr = bool(mx and self._fmt.microexp_group)
        if bdr:                             # the pair microexponents travel with the codes
            micro = data.ArrayLayout(self._fmt.microexp_bits, lanes // self._fmt.microexp_group)
            a_fields["micro_a"] = micro
            b_fields["micro_b"] = micro
        a_side = data.StructLayout(a_fields)
        b_side = data.StructLayout(b_fields)

        # ---- input acceptance: space the last beats by rows cycles -----------------------
        accept = Signal()
        if rows > 1:
            cool = Signal(range(rows))       # cycles left before a last beat may be taken
            m.d.comb += self.i.ready.eq(~(beat.last & (cool != 0)))
            with m.If(accept & beat.last):
                m.d.sync += cool.eq(rows - 1)
            with m.Elif(cool != 0):
                m.d.sync += cool.eq(cool - 1)
        else:
            m.d.comb += self.i.ready.eq(1)
        m.d.comb += accept.eq(self.i.valid & self.i.ready)

        # ---- input register and skew: row i delayed 1 + i, column j 1 + j ------------------
        a_edge = []
        for i in range(rows):
            stage = Signal(a_side, name=f"a_in{i}")
            m.d.comb += [stage.valid.eq(accept), stage.first.eq(beat.first), stage.last.eq(beat.last),
                         stage.a.eq(beat.a[i])]
            if mx:
                m.d.comb += stage.scale_a.eq(beat.scale_a[i])
            if bdr:
                m.d.comb += stage.micro_a.eq(beat.micro_a[i])
            a_edge.append(_delay(m, stage, a_side, i + 1, f"a_skew{i}"))
        b_edge = []
        for j in range(cols):
            stage = Signal(b_side, name=f"b_in{j}")
            m.d.comb += stage.b.eq(beat.b[j])
            if mx:
                m.d.comb += stage.scale_b.eq(beat.scale_b[j])
            if bdr:
                m.d.comb += stage.micro_b.eq(beat.micro_b[j])
            b_edge.append(_delay(m, stage, b_side, j + 1, f"b_skew{j}"))

        # ---- the grid ---------------------------------------------------------------------
        pes = [[None] * cols for _ in range(rows)]
        a_at = [[None] * cols for _ in range(rows)]     # A side entering PE (i, j)
        b_at = [[None] * cols for _ in range(rows)]     # B side entering PE (i, j)
        for i in range(rows):
            for j in range(cols):
                if j == 0:
                    a_at[i][j] = a_edge[i]
                else:
                    a_at[i][j] = Signal(a_side, name=f"a_fwd{i}_{j}")
                    m.d.sync += a_at[i][j].eq(a_at[i][j - 1])
                if i == 0:
                    b_at[i][j] = b_edge[j]
                else:
                    b_at[i][j] = Signal(b_side, name=f"b_fwd{i}_{j}")
                    m.d.sync += b_at[i][j].eq(b_at[i - 1][j])
                pe = self._make_pe()
                m.submodules[f"pe{i}_{j}"] = pe
                pes[i][j] = pe
                av, bv = a_at[i][j], b_at[i][j]
                m.d.comb += [
                    pe.i.valid.eq(av.valid),
                    pe.i.payload.first.eq(av.first),
                    pe.i.payload.last.eq(av.last),
                    pe.i.payload.a.eq(av.a),
                    pe.i.payload.b.eq(bv.b),
                ]
                if mx:
                    m.d.comb += [pe.i.payload.scale_a.eq(av.scale_a), pe.i.payload.scale_b.eq(bv.scale_b)]
                if bdr:
                    m.d.comb += [pe.i.payload.micro_a.eq(av.micro_a), pe.i.payload.micro_b.eq(bv.micro_b)]

        # ---- drain: merge each column's results, deskew columns into rows ------------------
        out_c = []
        for j in range(cols):
            merged = 0
            for i in range(rows):
                merged = merged | Mux(pes[i][j].o.valid, pes[i][j].o.payload.as_value(), 0)
            out_c.append(_delay(m, merged, self.result_layout, cols - j, f"col{j}_d"))
        last_col = [pes[i][cols - 1].o.valid for i in range(rows)]
        row_idx = 0
        for i in range(1, rows):
            row_idx = row_idx | Mux(last_col[i], i, 0)
        any_valid = 0
        for v in last_col:
            any_valid = any_valid | v
        m.d.sync += [
            self.o.valid.eq(any_valid),
            self.o.payload.row.eq(row_idx),
            self.o.payload.first.eq(last_col[0]),
            self.o.payload.last.eq(last_col[rows - 1]),
        ]
        for j in range(cols):
            m.d.comb += self.o.payload.c[j].eq(out_c[j])
        return m
