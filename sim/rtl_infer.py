"""Inference of the digits MLP with its matmuls run through the generated systolic array.

The 64-128-10 MLP of :mod:`mxsf.golden.train` is trained in float32, then its test-set
forward pass is computed in an MX format (weights and activations direct-cast, 1D blocks
of 32 along K or 32x32 tiles) twice: by the golden model (``matmul``), and with both
matmuls streamed through an MX :class:`~mxsf.hw.systolic.SystolicArray` on Verilator or
Icarus by the vector-file testbench (:func:`mxsf.sim.vector_benches.array_case`, whose
every output row is also checked against the array's cycle model). Biases and ReLU are
float32 NumPy in both. The logits must be equal bit for bit.

Interface
---------
:func:`train_fp32` ``(epochs, seed)`` -> float32 parameters.
:func:`rtl_forward` ``(params, x, fmt, blocking, sim=...)`` -> :class:`InferResult`
(logits of RTL and golden, accuracy, beats and simulator seconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mxsf.golden import train as gtrain
from mxsf.golden.matmul import matmul
from mxsf.golden.quantize import MXArray

from .build import build_verilog
from .run import Simulator
from .vector_benches import array_case, array_results, array_tiles_beats, run_case

__all__ = ["ARRAY_PARAMS", "InferResult", "train_fp32", "golden_logits", "rtl_forward"]

#: Array used for inference: 4x4 PEs, K blocks of 32 (the MX block / tile side), 8 lanes.
ARRAY_PARAMS = {"rows": 4, "cols": 4, "block_size": 32, "lanes": 8}


def train_fp32(*, epochs: int = 15, seed: int = 0, batch_size: int = 32, lr: float = 0.1,
               momentum: float = 0.9) -> dict:
    """The float32 parameters after :func:`mxsf.golden.train.train_mlp`'s training loop
    (same data split, initial weights, batch order and SGD; fp32 arithmetic)."""
    ar = gtrain._Arith("fp32", "tile", 32, 32)
    xtr, ytr, _, _ = gtrain.load_digits_split(seed)
    params = gtrain.init_params(seed)
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    lr32, mom32 = np.float32(lr), np.float32(momentum)
    order_rng = np.random.default_rng([seed, 3])
    for _ in range(epochs):
        perm = order_rng.permutation(len(ytr))
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            _, g = gtrain._step(params, xtr[idx], ytr[idx], ar)
            for k in params:
                vel[k] = mom32 * vel[k] - lr32 * g[k]
                params[k] = (params[k] + vel[k]).astype(np.float32)
    return params


def golden_logits(params: dict, x: np.ndarray, fmt: str, blocking: str = "tile") -> np.ndarray:
    """Test-set logits of the golden forward pass (``fp32``, ``bf16`` or an MX format)."""
    return gtrain._forward(params, x, gtrain._Arith(fmt, blocking, 32, 32))[4]


@dataclass(frozen=True)
class InferResult:
    """Outcome of :func:`rtl_forward`."""

    fmt: str
    blocking: str
    sim: str
    logits: np.ndarray           # through the array
    golden: np.ndarray           # golden model
    accuracy: float
    beats: int
    sim_seconds: float
    seconds: float

    @property
    def bit_exact(self) -> bool:
        return self.logits.shape == self.golden.shape and \
            bool((self.logits.view(np.uint32) == self.golden.view(np.uint32)).all())


def _pad(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=a.dtype)
    out[:a.shape[0], :a.shape[1]] = a
    return out


def _array_matmul(qa: MXArray, qb: MXArray, design, component, sim: Simulator, name: str, seed: int):
    """``qa @ qb`` (float32) through the array; also checks every output cycle."""
    p = ARRAY_PARAMS
    bs, rows, cols = p["block_size"], p["rows"], p["cols"]
    M, K = qa.codes.shape
    N = qb.codes.shape[1]
    Mp, Np = -(-M // rows) * rows, -(-N // cols) * cols
    a = _pad(qa.codes, Mp, K)
    b = _pad(qb.codes, K, Np)
    sa = _pad(qa.scale_per_element()[:, ::bs], Mp, K // bs)
    sb = _pad(qb.scale_per_element()[::bs, :], K // bs, Np)
    values, n, grid = array_tiles_beats(a, b, sa, sb, rows=rows, cols=cols, block_size=bs, lanes=p["lanes"])
    case = array_case(design, component, values, n, seed=seed, idle_prob=0.0, name=name)
    result = run_case(case, sim).check()
    c = array_results(case, result.got, grid)[:M, :N].view(np.float32)
    return c, n, result.sim_seconds


def rtl_forward(params: dict, x: np.ndarray, fmt: str, blocking: str = "tile", *, sim: Simulator = "verilator",
                build_root: str = "build", y: np.ndarray | None = None) -> InferResult:
    """The MLP's forward pass with both matmuls through an MX array (see the module doc).

    Raises
    ------
    ValueError
        ``fmt`` not an MX element format, or ``blocking`` not ``tile``/``1d``.
    AssertionError
        An array output differs from its cycle model (with the mismatch report).
    """
    from mxsf.hw.systolic import SystolicArray

    t0 = time.monotonic()
    ar = gtrain._Arith(fmt, blocking, 32, 32)
    if ar.blocking is None:
        raise ValueError(f"fmt must be an MX element format for the array, not {fmt!r}")
    aparams = {"fmt": ar.fmt, **ARRAY_PARAMS}
    p = ARRAY_PARAMS
    design = build_verilog(SystolicArray, aparams,
                           name=f"systolic_{ar.fmt}_{p['rows']}x{p['cols']}_b{p['block_size']}_l{p['lanes']}",
                           root=build_root)
    component = SystolicArray(**aparams)
    X = ar.operand(x)
    W1 = ar.operand(params["w1"])
    qa, qb = X.lhs(), W1.rhs()
    mm1, beats1, s1 = _array_matmul(qa, qb, design, component, sim, f"infer-{blocking}-x@w1", 1)
    if not (mm1.view(np.uint32) == matmul(qa, qb).view(np.uint32)).all():
        raise AssertionError(f"{ar.fmt}/{blocking}: array X @ W1 differs from golden matmul")
    h = np.maximum(mm1 + params["b1"], np.float32(0))
    H = ar.operand(h)
    W2 = ar.operand(params["w2"])
    qa, qb = H.lhs(), W2.rhs()
    mm2, beats2, s2 = _array_matmul(qa, qb, design, component, sim, f"infer-{blocking}-h@w2", 2)
    z = (mm2 + params["b2"]).astype(np.float32)
    gold = golden_logits(params, x, ar.fmt, blocking)
    acc = float(np.mean(np.argmax(z, axis=1) == y)) if y is not None else float("nan")
    return InferResult(ar.fmt, blocking, sim, z, gold, acc, beats1 + beats2, s1 + s2, time.monotonic() - t0)
