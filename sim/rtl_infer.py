"""Matrix products of MX operands through the generated systolic array (vector path).

:func:`array_matmul` streams ``A @ B`` (two :class:`~mxsf.golden.quantize.MXArray`, blocks
of ``block_size`` along K: 1D blocks or square tiles of that side) through an MX
:class:`~mxsf.hw.systolic.SystolicArray` on Verilator or Icarus with the vector-file
testbench: every output row is checked against the array's cycle model on every cycle
(:func:`mxsf.sim.vector_benches.array_case`), and the float32 result matrix is assembled
from the recorded rows. ``mxsf infer`` (``cli/infer.py``) uses it for the digits MLP.

Interface: ``array_matmul(qa, qb, *, sim, build_root, rows, cols, lanes)`` ->
:class:`ArrayMatmul` (``c`` float32 ``(M, N)``, beats, simulator seconds). Latency and
throughput are the array's (one beat a cycle, ``K / lanes`` beats per output tile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mxsf.gen.verilog import build_verilog
from mxsf.golden.formats import get_format
from mxsf.golden.matmul import batched_dot
from mxsf.golden.quantize import MXArray

from .run import Simulator
from .vector_benches import array_case, array_results, array_tiles_beats, run_case

__all__ = ["ArrayMatmul", "array_matmul"]


@dataclass(frozen=True)
class ArrayMatmul:
    """Result of :func:`array_matmul`."""

    c: np.ndarray            # float32 (M, N)
    beats: int               # input beats streamed
    sim_seconds: float       # simulator wall time


def _pad(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=a.dtype)
    out[:a.shape[0], :a.shape[1]] = a
    return out


def array_matmul(qa: MXArray, qb: MXArray, *, sim: Simulator = "verilator", build_root: str = "build",
                 rows: int = 4, cols: int = 4, lanes: int = 8, name: str = "matmul", seed: int = 1) -> ArrayMatmul:
    """``qa @ qb`` through a ``rows x cols`` MX array (block size = the operands' K block).

    Raises
    ------
    ValueError
        Operands of different formats, or whose blocks along K differ or are not square
        tiles / 1D blocks along K.
    AssertionError
        An array output differs from the cycle model (the mismatch report).
    """
    from mxsf.gen.design import resolve_design

    fa, fb = get_format(qa.fmt), get_format(qb.fmt)
    if fa.name != fb.name:
        raise ValueError(f"qa and qb must share a format for the array, not {fa.name!r} and {fb.name!r}")
    bs = qa.block_shape[1]
    if qb.block_shape[0] != bs or qa.block_shape not in ((1, bs), (bs, bs)) or qb.block_shape not in ((bs, 1), (bs, bs)):
        raise ValueError(f"qa and qb must be blocked along K with the same extent, not block shapes "
                         f"{qa.block_shape} and {qb.block_shape}")
    resolved = resolve_design("array", {"fmt": fa, "rows": rows, "cols": cols, "block_size": bs, "lanes": lanes})
    component = resolved.probe()
    design = build_verilog(resolved.component_class, resolved.params, name=resolved.top, root=build_root)
    M, K = qa.codes.shape
    N = qb.codes.shape[1]
    Mp, Np = -(-M // rows) * rows, -(-N // cols) * cols
    a = _pad(qa.codes, Mp, K)
    b = _pad(qb.codes, K, Np)
    sa = _pad(qa.scale_per_element()[:, ::bs], Mp, K // bs)
    sb = _pad(qb.scale_per_element()[::bs, :], K // bs, Np)
    values, n, grid = array_tiles_beats(a, b, sa, sb, rows=rows, cols=cols, block_size=bs, lanes=lanes)
    # every tile's results at once (SPEC section 5 per output element, as the cycle model's matmul)
    mt, nt = grid
    nk = K // bs
    dot_a = np.repeat(a, Np, axis=0)                       # (Mp * Np, K): row i for every column
    dot_b = np.tile(b.T, (Mp, 1))
    dot_sa = np.repeat(sa, Np, axis=0)
    dot_sb = np.tile(sb.T, (Mp, 1))
    c_all = batched_dot(dot_a, dot_b, dot_sa.reshape(-1, nk), dot_sb.reshape(-1, nk), fa, bs).view(np.uint32)
    tiles = c_all.reshape(mt, rows, nt, cols).transpose(0, 2, 1, 3).reshape(mt * nt, rows, cols)
    case = array_case(design, component, values, n, seed=seed, idle_prob=0.0, name=name, tile_results=tiles)
    result = run_case(case, sim).check()
    c = array_results(case, result.got, grid)[:M, :N].view(np.float32)
    return ArrayMatmul(c, n, result.sim_seconds)
