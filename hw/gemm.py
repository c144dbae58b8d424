"""MX GEMM: two tile buffers, the systolic array and the output tile re-quantizer."""

from amaranth import Module, Signal
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from mxsf.golden.formats import ElementFormat, get_format
from mxsf.golden.options import SR_DEFAULT_BITS
from mxsf.golden.params import MAX_BLOCK_SIZE, MAX_MATRIX_DIM, check_int, check_power_of_two

from .base import MXComponent
from .layouts import Float32
from .requant import TileRequantizer
from .systolic import SystolicArray, array_row_layout, check_array_params
from .tilebuf import TileBuffer

__all__ = ["MXGemm", "gemm_start_layout"]


def gemm_start_layout() -> data.StructLayout:
    """Start command: which operands are read transposed."""
    return data.StructLayout({"transpose_a": 1, "transpose_b": 1})


class MXGemm(MXComponent):
    """``C = op(A) @ op(B)`` of two stored ``dim x dim`` MX matrices, C re-quantized to MX tiles.

    The whole MX-SAFE training-step datapath: A and B are held in
    :class:`~mxsf.hw.tilebuf.TileBuffer` memories in ``block_size x block_size`` tiles
    (codes and one E8M0 scale per tile); ``op(X)`` is ``X`` or ``X.T`` (per operand, per
    run, from the same codes and scales, so one stored W serves ``X @ W`` and
    ``dY @ W.T``); a :class:`~mxsf.hw.systolic.SystolicArray` computes each ``rows x cols``
    output tile over the full K = ``dim`` (SPEC.md section 5: exact block sums, one
    rounding per block, float32 accumulation in block order); a
    :class:`~mxsf.hw.requant.TileRequantizer` turns every float32 output tile into one
    E8M0 scale and ``rows x cols`` codes (SPEC.md section 6). C is thus MX-quantized in
    ``rows x cols`` tiles (``rows = cols = block_size`` gives the operands' tiling).

    Bit for bit: ``acc`` equals ``golden.matmul(op(qa), op(qb))`` and each output tile
    equals ``golden.requantize_tile`` of the matching ``rows x cols`` tile of it.

    Parameters
    ----------
    fmt : str
        MX element format (not bf16).
    rows, cols : int
        Array size; powers of two dividing ``block_size``.
    block_size : int
        Operand tile size and K-block; a power of two in [1, ``MAX_BLOCK_SIZE`` = 1024].
    lanes : int
        K-elements per PE per cycle; a power of two dividing ``block_size``
        (default ``block_size``).
    dim : int
        Side of the stored A and B and of C; a multiple of ``block_size`` in
        [block_size, ``MAX_MATRIX_DIM`` = 16384] (default ``2 * block_size``).
    scale_rounding, rounding, sr_bits, seed
        The output re-quantizer's numerics options (SPEC.md 8, 9; see
        :class:`~mxsf.hw.requant.TileRequantizer`): its n-th output tile since reset is
        ``requantize_tile(tile, ..., tile_index=n)``, so a whole run from reset equals
        ``quantize_tiles(C, (rows, cols), ...)``.

    Members
    -------
    a_codes, b_codes : In(stream.Signature({row, seg, codes[m]}, always_ready=True))
        Load ``X[row, seg*m : seg*m + m]`` of A or B (``m = max(lanes, rows)`` for A,
        ``max(lanes, cols)`` for B, see ``a_word``/``b_word``).
    a_scale, b_scale : In(stream.Signature({tile_row, tile_col, scale}, always_ready=True))
        Load the E8M0 scale of one tile of A or B.
    start : In(stream.Signature(gemm_start_layout()))
        Run ``C = op(A) @ op(B)``; taken while ``busy`` is low. Operands must not be
        rewritten until the run's last ``o`` beat.
    busy : Out(1)
        Output tiles of the run are still being issued to the array.
    o : Out(stream.Signature(requant_out_layout(fmt, cols)))
        C as MX: per output tile (row-major over C), ``rows`` beats of ``cols`` codes
        (one row of the tile), ``scale`` the tile's E8M0 byte, ``first``/``last`` the
        tile's first/last beat. Back-pressure stalls the run (never loses data).
    acc : Out(stream.Signature(array_row_layout(rows, cols), always_ready=True))
        The float32 rows of C as they leave the array, before re-quantization (an
        observation port: ignore it, or take every beat).

    Raises
    ------
    TypeError
        A parameter of the wrong type.
    ValueError
        Unknown or bf16 format, a size out of range, not a power of two, not dividing
        ``block_size``, or ``dim`` not a multiple of it.

    Latency
    -------
    Without back-pressure: ``acc_latency == 1 + tilebuf_latency + dim // lanes - 1 +
    array.latency`` cycles from the accepted ``start`` to row 0 of the first tile on
    ``acc``; then one tile every ``tile_period == max(dim // lanes, rows)`` cycles
    (``rows * cols * lanes`` MACs a cycle when ``dim // lanes >= rows``).
    ``latency == acc_latency + rows - 1 + 2 + requant.latency`` cycles to the first
    ``o`` beat (the last row of the tile, a 2-cycle FIFO, the re-quantizer).

    Flow control: a tile is issued only when the FIFO in front of the re-quantizer has
    room (credits) for all its rows, so back-pressure on ``o`` stops the issue of new
    tiles and no result is lost; ``fifo_depth`` rows make credits invisible when ``o``
    is not stalled.
    """

    def __init__(self, *, fmt, rows, cols, block_size=32, lanes=None, dim=None, scale_rounding="floor",
                 rounding="rne", sr_bits=SR_DEFAULT_BITS, seed=0):
        f = get_format(fmt, element_only=True, param="fmt")
        if not f.allows_tiles:
            raise ValueError(f"fmt must be a format with 2D tiles for the GEMM (its operands are stored as "
                             f"tiles); not {f.name!r}, whose blocks are 1D (SPEC.md 11)")
        check_power_of_two("block_size", block_size, 1, MAX_BLOCK_SIZE)
        f, lanes = check_array_params(f, rows, cols, block_size, lanes)
        check_power_of_two("lanes", lanes, 1, block_size)
        check_power_of_two("rows", rows, 1, block_size)
        check_power_of_two("cols", cols, 1, block_size)
        dim = 2 * block_size if dim is None else dim
        check_int("dim", dim, block_size, MAX_MATRIX_DIM)
        if dim % block_size:
            raise ValueError(f"dim must be a multiple of block_size={block_size}, not {dim!r}")
        self._fmt, self._rows, self._cols = f, rows, cols
        self._block_size, self._lanes, self._dim = block_size, lanes, dim
        # Built here for their signatures and latencies (probe: no warning if this GEMM is
        # never elaborated); elaborate() adds them as submodules.
        self._buf_a = TileBuffer.probe(fmt=f, rows=dim, cols=dim, block_size=block_size,
                                       lanes=lanes, vecs=rows)
        self._buf_b = TileBuffer.probe(fmt=f, rows=dim, cols=dim, block_size=block_size,
                                       lanes=lanes, vecs=cols)
        self._array = SystolicArray.probe(fmt=f, rows=rows, cols=cols, block_size=block_size,
                                          lanes=lanes)
        self._requant = TileRequantizer.probe(fmt=f, rows=rows, cols=cols, lanes=cols,
                                              scale_rounding=scale_rounding, rounding=rounding,
                                              sr_bits=sr_bits, seed=seed)
        wa = self._buf_a.signature.members
        wb = self._buf_b.signature.members
        super().__init__({
            "a_codes": In(wa["w_codes"].signature),
            "a_scale": In(wa["w_scale"].signature),
            "b_codes": In(wb["w_codes"].signature),
            "b_scale": In(wb["w_scale"].signature),
            "start": In(stream.Signature(gemm_start_layout())),
            "busy": Out(1),
            "o": Out(self._requant.signature.members["o"].signature),
            "acc": Out(stream.Signature(array_row_layout(rows, cols), always_ready=True)),
        }, params={"fmt": f.name, "rows": rows, "cols": cols, "block_size": block_size,
                   "lanes": lanes, "dim": dim, **self._requant.options})

    @property
    def fmt(self) -> ElementFormat:
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
    def dim(self) -> int:
        return self._dim

    @property
    def a_word(self) -> int:
        """Codes per A load beat."""
        return self._buf_a.word_size

    @property
    def b_word(self) -> int:
        """Codes per B load beat."""
        return self._buf_b.word_size

    @property
    def fifo_depth(self) -> int:
        """float32 rows buffered before the re-quantizer: enough for every row in flight
        between a tile's issue and its rows leaving the FIFO (``acc_latency + rows + 2``
        cycles, one tile per ``tile_period``), plus one tile, so credits never stall an
        unstalled run."""
        round_trip = self.acc_latency + self._rows + 2
        return self._rows * (-(-round_trip // self.tile_period) + 1)

    @property
    def tile_beats(self) -> int:
        """Array beats per output tile (K = dim)."""
        return self._dim // self._lanes

    @property
    def tile_period(self) -> int:
        """Cycles between output tiles without back-pressure."""
        return max(self.tile_beats, self._rows)

    @property
    def tiles(self) -> int:
        return (self._dim // self._rows) * (self._dim // self._cols)

    @property
    def acc_latency(self) -> int:
        return 1 + self._buf_a.latency + self.tile_beats - 1 + self._array.latency

    @property
    def latency(self) -> int:
        """Cycles from the accepted ``start`` to the first ``o`` beat (no back-pressure)."""
        return self.acc_latency + self._rows - 1 + 2 + self._requant.latency

    @property
    def options(self) -> dict:
        """The output re-quantizer's non-default numerics options (golden keyword arguments)."""
        return self._requant.options

    @property
    def module_name(self) -> str:
        return (f"gemm_{self._fmt.name}_{self._rows}x{self._cols}_b{self._block_size}"
                f"_l{self._lanes}_d{self._dim}{self._requant.options_suffix}")

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols
        m.submodules.buf_a = buf_a = self._buf_a
        m.submodules.buf_b = buf_b = self._buf_b
        m.submodules.array = array = self._array
        m.submodules.requant = requant = self._requant
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=cols * Shape.cast(Float32).width,
                                                       depth=self.fifo_depth)

        for port, sub in ((self.a_codes, buf_a.w_codes), (self.a_scale, buf_a.w_scale),
                          (self.b_codes, buf_b.w_codes), (self.b_scale, buf_b.w_scale)):
            m.d.comb += [sub.valid.eq(port.valid), sub.payload.eq(port.payload)]   # always ready

        # ---- tile sequencer: output tiles row-major, one A and one B read each ------------
        n_mi, n_nj = self._dim // rows, self._dim // cols
        issuing = Signal()
        transpose_a = Signal()
        transpose_b = Signal()
        mi = Signal(range(max(n_mi, 2)))
        nj = Signal(range(max(n_nj, 2)))
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        want = Signal()
        issue = Signal()
        m.d.comb += [
            self.busy.eq(issuing),
            self.start.ready.eq(~issuing),
            want.eq(issuing & (credits >= rows)),
            buf_a.cmd.valid.eq(want),
            buf_a.cmd.payload.transpose.eq(transpose_a),
            buf_a.cmd.payload.group.eq(mi),
            buf_b.cmd.valid.eq(want),
            buf_b.cmd.payload.transpose.eq(~transpose_b),    # columns of B = rows of B.T
            buf_b.cmd.payload.group.eq(nj),
            # both buffers run in lockstep (same beats, same ready), so they take commands together
            issue.eq(want & buf_a.cmd.ready & buf_b.cmd.ready),
        ]
        with m.If(self.start.valid & self.start.ready):
            m.d.sync += [issuing.eq(1), mi.eq(0), nj.eq(0),
                         transpose_a.eq(self.start.payload.transpose_a),
                         transpose_b.eq(self.start.payload.transpose_b)]
        with m.If(issue):
            with m.If(nj == n_nj - 1):
                m.d.sync += nj.eq(0)
                with m.If(mi == n_mi - 1):
                    m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += mi.eq(mi + 1)
            with m.Else():
                m.d.sync += nj.eq(nj + 1)

        # ---- join the two read streams into array beats -----------------------------------
        beat = array.i.payload
        m.d.comb += [
            array.i.valid.eq(buf_a.o.valid & buf_b.o.valid),
            buf_a.o.ready.eq(array.i.ready & buf_b.o.valid),
            buf_b.o.ready.eq(array.i.ready & buf_a.o.valid),
            beat.a.eq(buf_a.o.payload.codes),
            beat.scale_a.eq(buf_a.o.payload.scale),
            beat.b.eq(buf_b.o.payload.codes),
            beat.scale_b.eq(buf_b.o.payload.scale),
            beat.first.eq(buf_a.o.payload.first),
            beat.last.eq(buf_a.o.payload.last),
        ]

        # ---- results: observation port, FIFO (credit-guarded), re-quantizer ----------------
        m.d.comb += [
            self.acc.valid.eq(array.o.valid),
            self.acc.payload.eq(array.o.payload),
            fifo.w_en.eq(array.o.valid),
            fifo.w_data.eq(array.o.payload.c),
            requant.i.valid.eq(fifo.r_rdy),
            requant.i.payload.eq(fifo.r_data),
            fifo.r_en.eq(requant.i.ready),
        ]
        freed = fifo.r_rdy & requant.i.ready
        m.d.sync += credits.eq(credits - (issue * rows) + freed)
        wiring.connect(m, requant=requant.o, o=wiring.flipped(self.o))
        return m
