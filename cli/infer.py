"""``mxsf infer``: the digits MLP's test-set inference with its matmuls through the RTL.

``mxsf infer [--formats F ...|all] [--blocking tile|1d|both] [--sim verilator|icarus]
[--epochs E] [--seed S] [--limit N] [--rows R] [--lanes L]`` trains the 64-128-10 MLP of
:mod:`mxsf.studies.train` in float32, then for each MX format computes the test-set
forward pass with weights and activations direct-cast to that format (square 32x32 tiles
or 1D blocks of 32 along K) twice: with the golden model (``matmul``), and with both
matmuls streamed through a generated MX systolic array (``--rows`` x ``--rows``, default
2x2, block 32, ``--lanes`` 8) on the simulator
(:func:`mxsf.sim.rtl_infer.array_matmul`, every output row checked on every cycle). Biases
and ReLU are the same float32 NumPy in both. It prints test accuracy and whether the logits
are equal bit for bit; fp32 and bf16 rows are golden only. Exit status 1 if any logits
differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .common import positive_int, table

__all__ = ["register", "train_fp32", "golden_logits", "rtl_logits", "InferResult"]


def train_fp32(*, epochs: int = 15, seed: int = 0, batch_size: int = 32, lr: float = 0.1,
               momentum: float = 0.9) -> dict:
    """Float32 parameters after :func:`mxsf.studies.train.train_mlp`'s training loop (same
    split, initial weights, batch order and SGD; fp32 arithmetic)."""
    from mxsf.studies import train as st

    ar = st._Arith("fp32", "tile", 32, 32)
    xtr, ytr, _, _ = st.load_digits_split(seed)
    params = st.init_params(seed)
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    lr32, mom32 = np.float32(lr), np.float32(momentum)
    order_rng = np.random.default_rng([seed, 3])
    for _ in range(epochs):
        perm = order_rng.permutation(len(ytr))
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            _, g = st._step(params, xtr[idx], ytr[idx], ar)
            for k in params:
                vel[k] = mom32 * vel[k] - lr32 * g[k]
                params[k] = (params[k] + vel[k]).astype(np.float32)
    return params


def golden_logits(params: dict, x: np.ndarray, fmt: str, blocking: str = "tile") -> np.ndarray:
    """Logits of the golden forward pass (``fp32``, ``bf16`` or an MX format)."""
    from mxsf.studies import train as st

    return st._forward(params, x, st._Arith(fmt, blocking, 32, 32))[4]


@dataclass(frozen=True)
class InferResult:
    fmt: str
    blocking: str
    logits: np.ndarray          # through the array
    golden: np.ndarray          # golden model
    beats: int
    sim_seconds: float
    seconds: float

    @property
    def bit_exact(self) -> bool:
        return self.logits.shape == self.golden.shape and \
            bool((self.logits.view(np.uint32) == self.golden.view(np.uint32)).all())


def rtl_logits(params: dict, x: np.ndarray, fmt: str, blocking: str = "tile", *, sim: str = "verilator",
               build_root: str = "build", rows: int = 4, cols: int = 4, lanes: int = 8) -> InferResult:
    """The forward pass of :func:`mxsf.studies.train` with both matmuls through a
    ``rows x cols`` array of ``lanes`` lanes (block 32)."""
    from mxsf.golden.matmul import matmul
    from mxsf.sim.rtl_infer import array_matmul
    from mxsf.studies import train as st

    t0 = time.monotonic()
    ar = st._Arith(fmt, blocking, 32, 32)
    if ar.blocking is None:
        raise ValueError(f"fmt must be an MX element format for the array, not {fmt!r}")
    X, W1 = ar.operand(x), ar.operand(params["w1"])
    qa, qb = X.lhs(), W1.rhs()
    dims = {"rows": rows, "cols": cols, "lanes": lanes}
    m1 = array_matmul(qa, qb, sim=sim, build_root=build_root, name=f"infer-{blocking}-xw1", **dims)
    if not (m1.c.view(np.uint32) == matmul(qa, qb).view(np.uint32)).all():
        raise AssertionError(f"{ar.fmt}/{blocking}: the array's X @ W1 differs from golden matmul")
    h = np.maximum(m1.c + params["b1"], np.float32(0))
    H, W2 = ar.operand(h), ar.operand(params["w2"])
    m2 = array_matmul(H.lhs(), W2.rhs(), sim=sim, build_root=build_root, name=f"infer-{blocking}-hw2", **dims)
    z = (m2.c + params["b2"]).astype(np.float32)
    return InferResult(ar.fmt, blocking, z, golden_logits(params, x, ar.fmt, blocking), m1.beats + m2.beats,
                       m1.sim_seconds + m2.sim_seconds, time.monotonic() - t0)


def _cmd_infer(args) -> int:
    from mxsf.golden import get_format
    from mxsf.studies import train as st

    names = list(st.DEMO_FORMATS + st.NARROW_FORMATS) if args.formats == ["all"] else args.formats
    fmts = [get_format(n, element_only=True, param="format").name for n in names]
    blockings = ["tile", "1d"] if args.blocking == "both" else [args.blocking]
    _, _, xte, yte = st.load_digits_split(args.seed)
    if args.limit is not None:
        xte, yte = xte[:args.limit], yte[:args.limit]
    params = train_fp32(epochs=args.epochs, seed=args.seed)
    acc = lambda z: f"{100 * np.mean(np.argmax(z, 1) == yte):.2f}"       # noqa: E731
    rows = [[arith, "-", acc(golden_logits(params, xte, arith)), "-", "-", "-", "-"] for arith in ("fp32", "bf16")]
    failed = 0
    for fmt in fmts:
        for blocking in blockings:
            r = rtl_logits(params, xte, fmt, blocking, sim=args.sim, rows=args.rows, cols=args.rows,
                           lanes=args.lanes)
            failed += not r.bit_exact
            rows.append([fmt, blocking, acc(r.golden), acc(r.logits), "yes" if r.bit_exact else "NO",
                         f"{r.beats}", f"{r.sim_seconds:.2f}"])
            print(f"{'PASS' if r.bit_exact else 'FAIL'} infer {fmt}/{blocking} [{args.sim}] ({r.seconds:.1f} s): "
                  f"test accuracy {acc(r.logits)} %, logits "
                  f"{'equal the golden model bit for bit' if r.bit_exact else 'DIFFER from the golden model'}",
                  flush=True)
    print(f"\ndigits MLP 64-128-10 trained in float32 ({args.epochs} epochs, seed {args.seed}), {len(yte)} test "
          f"images, MX matmuls through a {args.rows}x{args.rows} array (block 32, {args.lanes} lanes) on {args.sim}:")
    print(table(["arithmetic", "blocks", "golden acc %", "RTL acc %", "logits bit-exact", "array beats",
                 "sim s"], rows))
    return 1 if failed else 0


def register(sub) -> None:
    s = sub.add_parser("infer", help="digits MLP inference with its matmuls through the generated array")
    s.add_argument("--formats", nargs="+", default=["mxsf", "fp8_e4m3"], metavar="F",
                   help="MX element formats, or 'all' (default: mxsf fp8_e4m3)")
    s.add_argument("--blocking", choices=("tile", "1d", "both"), default="both")
    s.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    s.add_argument("--epochs", type=positive_int, default=15)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--limit", type=positive_int, default=None, help="first N test images only")
    s.add_argument("--rows", type=positive_int, default=2, help="array rows and columns (default 2)")
    s.add_argument("--lanes", type=positive_int, default=8, help="lanes per PE (default 8)")
    s.set_defaults(func=_cmd_infer)
