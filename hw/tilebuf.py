"""On-chip buffer of a tile-quantized MX operand, read as stored or transposed."""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from mxsf.golden.formats import ElementFormat, get_format
from mxsf.golden.params import MAX_BLOCK_SIZE, MAX_MATRIX_DIM, check_int, check_power_of_two

from .base import MXComponent
from .layouts import E8M0, element_layout

__all__ = ["TileBuffer", "tile_read_layout"]


def tile_read_layout(fmt, vecs: int, lanes: int) -> data.StructLayout:
    """One read beat: ``lanes`` K-elements of ``vecs`` vectors, their scales, framing."""
    f = get_format(fmt, element_only=True)
    return data.StructLayout({
        "codes": data.ArrayLayout(data.ArrayLayout(element_layout(f), lanes), vecs),
        "scale": data.ArrayLayout(E8M0, vecs),
        "first": 1,
        "last": 1,
    })


def _log2(n: int) -> int:
    return n.bit_length() - 1


class TileBuffer(MXComponent):
    """Memory holding one ``rows x cols`` MX matrix ``S`` quantized in ``block_size`` tiles,
    streamed to an array as ``S`` or as ``S.T`` from the same codes and scales.

    A read command names an orientation and a group of ``vecs`` vectors; the buffer
    streams the rows of ``op(S)`` (``op(S) = S.T`` when ``transpose``, else ``S``)
    ``group * vecs ... group * vecs + vecs - 1``, ``lanes`` K-elements per beat along
    the columns of ``op(S)``, each with the scale of its tile. This is the A-side view
    of an operand (a vector is a row); the B side of ``X @ B`` wants the columns of
    ``B``, i.e. the rows of ``B.T``, so a buffer holding ``W`` feeds ``X @ W`` with
    ``transpose=1`` and ``dY @ W.T`` with ``transpose=0``, with no re-quantization.

    Storage: codes in ``m x m`` squares (``m = max(lanes, vecs)``), one square per
    memory word, row-major over the matrix; a read beat is a ``vecs x lanes`` (or,
    transposed, ``lanes x vecs``) part of one word, so both orientations read one word
    a beat. Scales: one byte per tile in a second memory. Both are
    :class:`amaranth.lib.memory.Memory` with one write and one read port.

    Parameters
    ----------
    fmt : str
        MX element format (not bf16).
    rows, cols : int
        Stored matrix size, multiples of ``block_size``, at most ``MAX_MATRIX_DIM`` = 16384.
    block_size : int
        Tile size (``block_size x block_size`` elements share one scale); a power of
        two in [1, ``MAX_BLOCK_SIZE`` = 1024].
    lanes : int
        K-elements per vector per beat; a power of two dividing ``block_size``
        (default ``block_size``).
    vecs : int
        Vectors per beat (the array's rows on the A side, columns on the B side); a
        power of two dividing ``block_size`` (default ``lanes``).

    Members
    -------
    w_codes : In(stream.Signature({row, seg, codes[m]}, always_ready=True))
        Writes ``S[row, seg*m : seg*m + m] = codes``. One write a cycle.
    w_scale : In(stream.Signature({tile_row, tile_col, scale}, always_ready=True))
        Writes the E8M0 scale of tile ``(tile_row, tile_col)``. One write a cycle.
    cmd : In(stream.Signature({transpose, group}))
        Read command. ``group`` must be below ``groups(transpose)``. Taken when the
        previous command has issued its last beat (commands chain with no gap).
    o : Out(stream.Signature(tile_read_layout(fmt, vecs, lanes)))
        ``K / lanes`` beats per command (``K`` = columns of ``op(S)``), ``first`` on
        the first, ``last`` on the last; ``codes[v][l]`` is ``op(S)[group*vecs + v,
        t*lanes + l]`` on beat ``t``, ``scale[v]`` its tile's scale. Back-pressure: a
        beat waits for ``ready`` (``valid`` never depends on ``ready``).

    Writes and reads of the same word in one cycle read the old contents; load an
    operand before reading it.

    Raises
    ------
    TypeError
        A parameter of the wrong type.
    ValueError
        Unknown or bf16 format, a size out of range, not a power of two, or not a
        multiple of ``block_size``.

    Latency
    -------
    ``latency == 2``: the first beat of a command is valid two cycles after the cycle
    the command is taken (address | memory read). Throughput one beat a cycle, also
    across commands: a command waiting while the previous one issues its last beat is
    taken in that cycle.
    """

    def __init__(self, *, fmt, rows, cols, block_size=32, lanes=None, vecs=None):
        self._fmt = get_format(fmt, element_only=True, param="fmt")
        check_power_of_two("block_size", block_size, 1, MAX_BLOCK_SIZE)
        lanes = block_size if lanes is None else lanes
        check_power_of_two("lanes", lanes, 1, block_size)
        vecs = lanes if vecs is None else vecs
        check_power_of_two("vecs", vecs, 1, block_size)
        for name, v in (("rows", rows), ("cols", cols)):
            check_int(name, v, 1, MAX_MATRIX_DIM)
            if v % block_size:
                raise ValueError(f"{name} must be a multiple of block_size={block_size}, not {v!r}")
        self._rows, self._cols, self._block_size = rows, cols, block_size
        self._lanes, self._vecs = lanes, vecs
        self._m = max(lanes, vecs)
        m = self._m
        super().__init__({
            "w_codes": In(stream.Signature(data.StructLayout({
                "row": range(rows), "seg": range(max(cols // m, 2)),
                "codes": data.ArrayLayout(element_layout(self._fmt), m)}), always_ready=True)),
            "w_scale": In(stream.Signature(data.StructLayout({
                "tile_row": range(max(rows // block_size, 2)),
                "tile_col": range(max(cols // block_size, 2)),
                "scale": E8M0}), always_ready=True)),
            "cmd": In(stream.Signature(data.StructLayout({
                "transpose": 1, "group": range(max(rows // vecs, cols // vecs, 2))}))),
            "o": Out(stream.Signature(tile_read_layout(self._fmt, vecs, lanes))),
        }, params={"fmt": self._fmt.name, "rows": rows, "cols": cols, "block_size": block_size,
                   "lanes": lanes, "vecs": vecs})

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
    def vecs(self) -> int:
        return self._vecs

    @property
    def word_size(self) -> int:
        """Side of the square of codes in one memory word."""
        return self._m

    @property
    def latency(self) -> int:
        """Cycles from a taken command to its first beat (address | memory read)."""
        return 2

    def groups(self, transpose: bool) -> int:
        """Number of vector groups of ``op(S)``."""
        return (self._cols if transpose else self._rows) // self._vecs

    def beats(self, transpose: bool) -> int:
        """Beats of one read command."""
        return (self._rows if transpose else self._cols) // self._lanes

    @property
    def module_name(self) -> str:
        return (f"tilebuf_{self._fmt.name}_{self._rows}x{self._cols}_b{self._block_size}"
                f"_l{self._lanes}_v{self._vecs}")

    def elaborate(self, platform):
        mod = Module()
        f = self._fmt
        rows, cols, bs = self._rows, self._cols, self._block_size
        lanes, vecs, m = self._lanes, self._vecs, self._m

        # ---- geometry: every division is by a power of two -----------------------------
        words_per_row = cols // m                 # memory words along a row of squares
        tiles_per_row = cols // bs
        nk = m // lanes                           # beats along K inside one word
        nv = m // vecs                            # vector groups inside one word
        sh_k, sh_v = _log2(nk), _log2(nv)
        sh_bk, sh_bv = _log2(bs // lanes), _log2(bs // vecs)   # beats / groups per tile

        word = data.ArrayLayout(data.ArrayLayout(f.bits, m), m)
        mod.submodules.codes = codes = Memory(shape=word, depth=(rows // m) * words_per_row, init=[])
        mod.submodules.scales = scales = Memory(shape=E8M0, depth=(rows // bs) * tiles_per_row, init=[])

        # ---- writes ------------------------------------------------------------------------
        cw = codes.write_port(granularity=1)
        wc = self.w_codes.payload
        mod.d.comb += [
            cw.addr.eq((wc.row >> _log2(m)) * words_per_row + wc.seg),
            cw.en.eq(Mux(self.w_codes.valid, 1 << (wc.row & (m - 1)), 0)),
        ]
        for r in range(m):
            mod.d.comb += cw.data[r].eq(wc.codes)
        sw = scales.write_port()
        ws = self.w_scale.payload
        mod.d.comb += [
            sw.addr.eq(ws.tile_row * tiles_per_row + ws.tile_col),
            sw.en.eq(self.w_scale.valid),
            sw.data.eq(ws.scale),
        ]

        # ---- read sequencer (stage 0) ---------------------------------------------------------
        active = Signal()
        transpose = Signal()
        group = Signal.like(self.cmd.payload.group)
        beat = Signal(range(max(rows, cols) // lanes + 1))
        n_last = Mux(transpose, rows // lanes - 1, cols // lanes - 1)
        at_last = beat == n_last

        valid1 = Signal()
        advance = ~valid1 | self.o.ready
        mod.d.comb += self.cmd.ready.eq(~active | (advance & at_last))

        with mod.If(advance & active):
            mod.d.sync += beat.eq(beat + 1)
            with mod.If(at_last):
                mod.d.sync += active.eq(0)
        with mod.If(self.cmd.valid & self.cmd.ready):
            mod.d.sync += [active.eq(1), beat.eq(0), transpose.eq(self.cmd.payload.transpose),
                           group.eq(self.cmd.payload.group)]

        # word and tile of this beat; sub_v/sub_k: where the beat sits inside the word
        g_word, g_sub = group >> sh_v, group & (nv - 1)
        k_word, k_sub = beat >> sh_k, beat & (nk - 1)
        g_tile, k_tile = group >> sh_bv, beat >> sh_bk
        cr = codes.read_port(transparent_for=())
        sr = scales.read_port(transparent_for=())
        mod.d.comb += [
            cr.en.eq(advance),
            sr.en.eq(advance),
            cr.addr.eq(Mux(transpose, k_word * words_per_row + g_word, g_word * words_per_row + k_word)),
            sr.addr.eq(Mux(transpose, k_tile * tiles_per_row + g_tile, g_tile * tiles_per_row + k_tile)),
        ]

        # ---- stage 1: pick the beat out of the word -------------------------------------------
        transpose1 = Signal()
        sub_v1 = Signal(range(max(nv, 2)))
        sub_k1 = Signal(range(max(nk, 2)))
        with mod.If(advance):
            mod.d.sync += [
                valid1.eq(active),
                transpose1.eq(transpose),
                sub_v1.eq(g_sub),
                sub_k1.eq(k_sub),
                self.o.payload.first.eq(beat == 0),
                self.o.payload.last.eq(at_last),
            ]
        mod.d.comb += self.o.valid.eq(valid1)

        w = cr.data
        out = self.o.payload.codes
        for t in (0, 1):
            for ov in range(nv):
                for ok in range(nk):
                    with mod.If((transpose1 == t) & (sub_v1 == ov) & (sub_k1 == ok)):
                        for v in range(vecs):
                            for lane in range(lanes):
                                r, c = ov * vecs + v, ok * lanes + lane
                                mod.d.comb += out[v][lane].eq(w[c][r] if t else w[r][c])
        for v in range(vecs):
            mod.d.comb += self.o.payload.scale[v].eq(sr.data)
        return mod
