"""A small MLP trained on the digits data set with every matmul done in an MX format.

The network is 64-128-10 (ReLU, softmax cross-entropy), trained with SGD with
momentum on scikit-learn's bundled 8x8 digits (1797 images, pixels scaled to
[0, 1], a fixed train/test split by seed). Master weights, biases, the softmax and
the update are float32. What changes between runs is the arithmetic of the five
matrix products of a training step::

    forward   H  = relu(X @ W1 + b1)        Z  = H @ W2 + b2
    backward  dH = (dZ @ W2.T) * (H > 0)    dW2 = H.T @ dZ      dW1 = X.T @ dH

(the input gradient ``dX`` is not needed). The arithmetics are

* ``fp32``: NumPy float32 matmul;
* ``bf16``: :func:`mxsf.golden.bf16_matmul` (operands rounded to bfloat16, float32 sums);
* an MX element format: :func:`mxsf.golden.matmul` (SPEC.md section 5) on MX operands,
  with one of two blockings:

  - ``"tile"``: each of X, W1, H, W2, dZ, dH is quantized **once** in square
    ``tile x tile`` tiles; the backward pass reads the stored X, H and W2 (and dZ
    as a right operand) through :attr:`MXArray.T` -- the same codes and scales the
    forward pass used. Square tiles block every product correctly along its K axis.
  - ``"1d"``: OCP blocks of ``block_size`` along K. A matrix used along both of its
    axes (X, H, W2, dZ) must be quantized again along the other axis for the
    transposed product: 10 quantizations per step instead of 6.

Bias gradients are float32 column sums (reductions, not matmuls). The test set is
evaluated with the same arithmetic as training. Every run is deterministic for a
seed: the initial weights and batch order depend on the seed only, not on the format.

Pure NumPy; scikit-learn is imported (lazily) only for its bundled data set.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from mxsf.golden.formats import get_format
from mxsf.golden.matmul import bf16_matmul, matmul
from mxsf.golden.options import Rounding, check_sr_bits, rounding_mode
from mxsf.golden.quantize import MXArray, check_block_size, quantize, quantize_tiles

__all__ = [
    "FLOAT_ARITHMETICS",
    "BLOCKINGS",
    "DEMO_FORMATS",
    "NARROW_FORMATS",
    "TrainResult",
    "load_digits_split",
    "init_params",
    "train_mlp",
    "train_demo",
    "operand_trace",
    "demo_runs",
]

FLOAT_ARITHMETICS = ("fp32", "bf16")
"""Arithmetics that are not MX (no blocking)."""
BLOCKINGS = ("tile", "1d")
DEMO_FORMATS = ("fp8_e4m3", "fp8_e5m2", "int8", "fp8_e2m5", "mxsf")
"""The 8-bit MX formats of the default demo."""
NARROW_FORMATS = ("fp6_e3m2", "fp6_e2m3", "fp4_e2m1")
"""Added by ``narrow=True``."""

_HIDDEN = 128
_IN, _OUT = 64, 10


# ------------------------------------------------------------------------------------
# Data and parameters
# ------------------------------------------------------------------------------------

def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    return int(seed)


def load_digits_split(seed: int = 0, test_fraction: float = 0.2):
    """scikit-learn's bundled digits as float32 in [0, 1], split by a seeded permutation.

    Returns ``(x_train, y_train, x_test, y_test)``; ``x`` is (n, 64) float32, ``y`` int64.
    """
    from sklearn.datasets import load_digits   # bundled with scikit-learn: no download

    seed = _check_seed(seed)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), not {test_fraction!r}")
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng([seed, 1]).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


def init_params(seed: int = 0, hidden: int = _HIDDEN) -> dict:
    """He-normal float32 weights and zero biases of the 64-hidden-10 MLP."""
    rng = np.random.default_rng([_check_seed(seed), 2])
    return {
        "w1": (rng.standard_normal((_IN, hidden)) * np.sqrt(2.0 / _IN)).astype(np.float32),
        "b1": np.zeros(hidden, dtype=np.float32),
        "w2": (rng.standard_normal((hidden, _OUT)) * np.sqrt(2.0 / hidden)).astype(np.float32),
        "b2": np.zeros(_OUT, dtype=np.float32),
    }


# ------------------------------------------------------------------------------------
# Arithmetics: operands and products
# ------------------------------------------------------------------------------------

class _FloatOperand:
    """A float32 matrix used as a matmul operand (fp32 / bf16 arithmetics)."""

    def __init__(self, x):
        self.x = x

    def lhs(self):
        return self.x

    def rhs(self):
        return self.x

    def lhs_t(self):
        return self.x.T

    def rhs_t(self):
        return self.x.T


class _MXOperand:
    """A matrix quantized for use in products, as itself or transposed.

    ``lhs()``: as A of ``A @ B`` (blocked along its columns); ``rhs()``: as B (blocked
    along its rows); ``lhs_t()`` / ``rhs_t()``: its transpose in those roles. Tiles:
    one quantization serves all four (``.T`` views). 1D: one quantization per axis used,
    made on first use and counted in ``counter``.
    """

    def __init__(self, x, arith: "_Arith", options=None):
        self.x = x
        self.a = arith
        self.options = dict(options or {})      # quantizer options (stochastic rounding of gradients)
        self._q = {}
        if arith.blocking == "tile":
            self._q["tile"] = self._make("tile")

    def _make(self, key) -> MXArray:
        self.a.quantizations += 1
        if key == "tile":
            return quantize_tiles(self.x, self.a.fmt, tile=(self.a.tile, self.a.tile), **self.options)
        return quantize(self.x, self.a.fmt, block_size=self.a.block_size, axis=key, **self.options)

    def _get(self, axis: int) -> MXArray:
        key = "tile" if self.a.blocking == "tile" else axis
        if key not in self._q:
            self._q[key] = self._make(key)
        return self._q[key]

    def lhs(self):
        return self._get(1)

    def rhs(self):
        return self._get(0)

    def lhs_t(self):
        return self._get(0).T

    def rhs_t(self):
        return self._get(1).T


class _Arith:
    def __init__(self, fmt: str, blocking: str, tile: int, block_size: int, grad_rounding="rne",
                 sr_bits: int = 8, seed: int = 0):
        self.quantizations = 0
        self.grad_rounding = rounding_mode(grad_rounding, "grad_rounding")
        self.sr_bits = check_sr_bits(sr_bits)
        self._sr_seed = seed
        self._grads = 0
        if fmt in FLOAT_ARITHMETICS:
            self.fmt, self.blocking = fmt, None
        else:
            self.fmt = get_format(fmt, element_only=True, param="format").name
            if blocking not in BLOCKINGS:
                raise ValueError(f"blocking must be one of {', '.join(BLOCKINGS)}; not {blocking!r}")
            self.blocking = blocking
        self.tile = check_block_size(tile, "tile")
        self.block_size = check_block_size(block_size)

    @property
    def label(self) -> str:
        return self.fmt if self.blocking is None else f"{self.fmt}/{self.blocking}"

    def operand(self, x, *, gradient: bool = False):
        """``x`` as a matmul operand. A ``gradient`` operand is quantized with
        ``grad_rounding`` (stochastic: a fresh generator seed for every gradient, derived
        from the run's seed and a counter, so runs are reproducible)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.blocking is None:
            return _FloatOperand(x)
        options = None
        if gradient and self.grad_rounding is Rounding.STOCHASTIC:
            self._grads += 1
            options = dict(rounding="stochastic", sr_bits=self.sr_bits,
                           seed=(self._sr_seed * 1_000_003 + self._grads) & 0xFFFF_FFFF)
        return _MXOperand(x, self, options)

    def mm(self, a, b) -> np.ndarray:
        if self.fmt == "fp32":
            return np.matmul(a, b, dtype=np.float32)
        if self.fmt == "bf16":
            return bf16_matmul(a, b)
        return matmul(a, b)


# ------------------------------------------------------------------------------------
# One step
# ------------------------------------------------------------------------------------

def _softmax_xent(z: np.ndarray, y: np.ndarray):
    """Mean cross-entropy loss and its gradient w.r.t. the logits (float32)."""
    z = z - np.max(z, axis=1, keepdims=True)
    e = np.exp(z)
    p = e / np.sum(e, axis=1, keepdims=True)
    n = z.shape[0]
    logp = z[np.arange(n), y] - np.log(np.sum(e, axis=1))
    loss = float(-np.mean(logp.astype(np.float64)))
    dz = p.copy()
    dz[np.arange(n), y] -= np.float32(1)
    return loss, (dz / np.float32(n)).astype(np.float32), p


def _forward(params, x, ar: _Arith, trace=None):
    X = ar.operand(x)
    W1 = ar.operand(params["w1"])
    a, b = X.lhs(), W1.rhs()
    h = np.maximum(ar.mm(a, b) + params["b1"], np.float32(0))
    if trace is not None:
        trace["x@w1"] = (a, b)
    H = ar.operand(h)
    W2 = ar.operand(params["w2"])
    a, b = H.lhs(), W2.rhs()
    z = ar.mm(a, b) + params["b2"]
    if trace is not None:
        trace["h@w2"] = (a, b)
    return X, H, W2, h, z.astype(np.float32)


def _step(params, x, y, ar: _Arith, trace=None):
    """Loss and float32 gradients of one batch, every product in ``ar``'s arithmetic."""
    X, H, W2, h, z = _forward(params, x, ar, trace)
    loss, dz, _ = _softmax_xent(z, y)
    DZ = ar.operand(dz, gradient=True)
    a, b = DZ.lhs(), W2.rhs_t()
    dh = ar.mm(a, b) * (h > 0)
    if trace is not None:
        trace["dz@w2.T"] = (a, b)
    a, b = H.lhs_t(), DZ.rhs()
    dw2 = ar.mm(a, b)
    if trace is not None:
        trace["h.T@dz"] = (a, b)
    DH = ar.operand(dh, gradient=True)
    a, b = X.lhs_t(), DH.rhs()
    dw1 = ar.mm(a, b)
    if trace is not None:
        trace["x.T@dh"] = (a, b)
    grads = {"w1": dw1, "b1": np.sum(dh, axis=0, dtype=np.float32),
             "w2": dw2, "b2": np.sum(dz, axis=0, dtype=np.float32)}
    return loss, grads


def _evaluate(params, x, y, ar: _Arith):
    _, _, _, _, z = _forward(params, x, ar)
    loss, _, p = _softmax_xent(z, y)
    acc = float(np.mean(np.argmax(p, axis=1) == y)) if np.all(np.isfinite(p)) else float("nan")
    return loss, acc


def operand_trace(fmt: str, *, blocking: str = "tile", tile: int = 32, block_size: int = 32,
                  seed: int = 0, batch_size: int = 32) -> dict:
    """The MX operands of the five products of the first training step.

    Returns ``{product: (A, B)}`` for the products ``"x@w1"``, ``"h@w2"`` (forward),
    ``"dz@w2.T"``, ``"h.T@dz"``, ``"x.T@dh"`` (backward), each operand the
    :class:`MXArray` (or float array for fp32/bf16) given to the matmul, plus
    ``"quantizations"``: the number of quantize calls the step made. With tiles the
    backward ``W2.T``, ``H.T``, ``X.T`` are the ``.T`` of the forward ``W2``, ``H``, ``X``.
    """
    xtr, ytr, _, _ = load_digits_split(seed)
    params = init_params(seed)
    ar = _Arith(fmt, blocking, tile, block_size)
    idx = np.random.default_rng([_check_seed(seed), 3]).permutation(len(ytr))[:batch_size]
    trace: dict = {}
    _step(params, xtr[idx], ytr[idx], ar, trace)
    trace["quantizations"] = ar.quantizations
    return trace


# ------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------

@dataclass
class TrainResult:
    """One training run. Curves hold one value per epoch (after that epoch)."""

    arithmetic: str          #: fp32, bf16 or an MX element format
    blocking: str            #: "-" (fp32/bf16), "tile" or "1d"
    epochs: int
    train_loss: list = field(default_factory=list)   #: mean training loss over the epoch's batches
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    quantizations_per_step: int = 0
    seconds: float = 0.0
    grad_rounding: str = "rne"   #: rounding of the gradient operands (dZ, dH)

    @property
    def label(self) -> str:
        base = self.arithmetic if self.blocking == "-" else f"{self.arithmetic}/{self.blocking}"
        return base + ("+sr" if self.grad_rounding == "stochastic" and self.blocking != "-" else "")

    @property
    def final_test_acc(self) -> float:
        return self.test_acc[-1] if self.test_acc else float("nan")

    @property
    def final_test_loss(self) -> float:
        return self.test_loss[-1] if self.test_loss else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(label=self.label, final_test_acc=self.final_test_acc, final_test_loss=self.final_test_loss)
        return d


def train_mlp(fmt: str = "fp32", *, blocking: str = "tile", epochs: int = 8, seed: int = 0,
              tile: int = 32, block_size: int = 32, batch_size: int = 32, lr: float = 0.1,
              momentum: float = 0.9, data=None, grad_rounding="rne", sr_bits: int = 8) -> TrainResult:
    """Train the 64-128-10 MLP on digits with every product in ``fmt``'s arithmetic.

    Parameters
    ----------
    fmt : str
        ``"fp32"``, ``"bf16"`` or an MX element format (OCP aliases allowed).
    blocking : {"tile", "1d"}
        MX operand blocking (ignored for fp32/bf16): square ``tile x tile`` tiles, or
        1D blocks of ``block_size`` along K.
    epochs, batch_size, lr, momentum :
        SGD with momentum (``v = momentum v - lr g; w += v``), float32.
    seed : int
        Fixes split, initial weights and batch order (the same for every format).
    data : tuple, optional
        ``load_digits_split(seed)`` output, to share one load between runs.
    grad_rounding : {"rne", "stochastic"}
        Element rounding of the gradient operands ``dZ`` and ``dH`` of the backward products
        (SPEC.md 9; ``sr_bits`` random bits, a fresh seed per gradient from ``seed``).

    Raises
    ------
    ValueError
        Unknown format or blocking, bad sizes.
    """
    seed = _check_seed(seed)
    epochs = check_block_size(epochs, "epochs", hi=10_000)
    batch_size = check_block_size(batch_size, "batch_size", hi=4096)
    ar = _Arith(fmt, blocking, tile, block_size, grad_rounding=grad_rounding, sr_bits=sr_bits, seed=seed)
    xtr, ytr, xte, yte = load_digits_split(seed) if data is None else data
    params = init_params(seed)
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    lr32, mom32 = np.float32(lr), np.float32(momentum)
    order_rng = np.random.default_rng([seed, 3])
    res = TrainResult(ar.fmt, ar.blocking or "-", epochs, grad_rounding=ar.grad_rounding.value)
    t0 = time.perf_counter()
    steps = 0
    for _ in range(epochs):
        perm = order_rng.permutation(len(ytr))
        losses = []
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            loss, g = _step(params, xtr[idx], ytr[idx], ar)
            steps += 1
            losses.append(loss)
            for k in params:
                vel[k] = mom32 * vel[k] - lr32 * g[k]
                params[k] = (params[k] + vel[k]).astype(np.float32)
        res.train_loss.append(float(np.mean(losses)))
        steps_q = ar.quantizations
        tl, ta = _evaluate(params, xte, yte, ar)
        ar.quantizations = steps_q          # count training steps only
        res.test_loss.append(tl)
        res.test_acc.append(ta)
    res.quantizations_per_step = ar.quantizations // max(steps, 1)
    res.seconds = time.perf_counter() - t0
    return res


def demo_runs(formats=None, *, narrow: bool = False) -> list[tuple[str, str]]:
    """(arithmetic, blocking) pairs of the demo: fp32, bf16, then every MX format in tiles and 1D.

    ``formats`` (names or ``None`` for :data:`DEMO_FORMATS`, plus :data:`NARROW_FORMATS`
    when ``narrow``) may include ``fp32`` and ``bf16``; those always come first.
    """
    if formats is None:
        names = ["fp32", "bf16", *DEMO_FORMATS, *(NARROW_FORMATS if narrow else ())]
    else:
        names = []
        for f in formats:
            n = f.strip().lower() if isinstance(f, str) else f
            n = n if n in FLOAT_ARITHMETICS else get_format(n, element_only=True, param="format").name
            if n not in names:
                names.append(n)
        if narrow:
            names += [n for n in NARROW_FORMATS if n not in names]
    runs = [(n, "-") for n in FLOAT_ARITHMETICS if n in names]
    for n in (n for n in names if n not in FLOAT_ARITHMETICS):
        runs += [(n, "tile"), (n, "1d")]
    return runs


def train_demo(formats=None, *, epochs: int = 8, seed: int = 0, narrow: bool = False,
               progress=None, **kw) -> list[TrainResult]:
    """Run :func:`train_mlp` for every run of :func:`demo_runs` (same seed, same data).

    ``progress``, if given, is called with each finished :class:`TrainResult`.
    """
    data = load_digits_split(seed)
    out = []
    for fmt, blocking in demo_runs(formats, narrow=narrow):
        r = train_mlp(fmt, blocking="tile" if blocking == "-" else blocking, epochs=epochs,
                      seed=seed, data=data, **kw)
        out.append(r)
        if progress is not None:
            progress(r)
    return out

