"""``mxsf accuracy`` and ``mxsf train-demo``: what each element format costs in accuracy.

``accuracy``: quantization SQNR / max relative error of every format on named
tensor distributions (and an optional user tensor), 1D blocks against 2D tiles.
``train-demo``: a 64-128-10 MLP trained on digits with every matmul in each
format, tiles against 1D blocks. Both print a Markdown table and write
``.md``, ``.csv``, ``.json`` and a PNG into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .common import CLIError, load_npy, non_negative_int, positive_int, table

__all__ = ["register", "cmd_accuracy", "cmd_train_demo", "sqnr_table", "train_table"]


def register(subparsers) -> None:
    s = subparsers.add_parser(
        "accuracy", help="quantization SQNR of every format on tensor distributions (1D blocks vs tiles)",
        description="Quantization SQNR and max relative error of each element format (bf16 as the "
                    "reference) on seeded tensor distributions and an optional .npy tensor, with 1D "
                    "blocks and 2D tiles.")
    s.add_argument("--formats", default="all", help="'all' or a comma-separated list (default all; bf16 allowed)")
    s.add_argument("--block-size", type=positive_int, default=32, help="1D block size (default 32)")
    s.add_argument("--tile", type=positive_int, nargs=2, default=[32, 32], metavar=("R", "C"),
                   help="2D tile rows and columns (default 32 32)")
    s.add_argument("--size", type=positive_int, nargs=2, default=[256, 256], metavar=("R", "C"),
                   help="shape of the generated tensors (default 256 256)")
    s.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the generated tensors and of stochastic rounding (default 0)")
    s.add_argument("--scale-rounding", default="floor", metavar="MODES",
                   help="scale rules measured side by side: 'all' or a comma-separated list of "
                        "floor, ceil, even (default floor)")
    s.add_argument("--rounding", default="rne", help="element rounding: rne (default) or stochastic")
    s.add_argument("--sr-bits", type=int, default=8, help="random bits of stochastic rounding (1..16, default 8)")
    s.add_argument("--input", metavar="X.npy", help="also measure this floating-point .npy tensor")
    s.add_argument("--out", default="build/accuracy", help="output folder (default build/accuracy)")
    s.set_defaults(func=cmd_accuracy)

    s = subparsers.add_parser(
        "train-demo", help="train a small MLP on digits with every matmul in each MX format",
        description="Train a 64-128-10 MLP on scikit-learn's bundled digits with every forward and "
                    "backward matmul in fp32, bf16 and each MX format, in 2D tiles (backward reads the "
                    "forward codes through .T) and in 1D blocks (re-quantized for the transpose).")
    s.add_argument("--formats", default=None,
                   help="comma-separated formats (fp32 and bf16 allowed; 'all' = every MX format); "
                        "default fp32,bf16 and the 8-bit MX formats")
    s.add_argument("--epochs", type=positive_int, default=15, help="epochs (default 15)")
    s.add_argument("--seed", type=non_negative_int, default=0, help="seed of split, weights and batch order (default 0)")
    s.add_argument("--narrow", action="store_true", help="add the 6- and 4-bit formats")
    s.add_argument("--grad-rounding", default="rne",
                   help="rounding of the gradient operands dZ, dH: rne (default) or stochastic "
                        "(SPEC.md 9; also --rounding)")
    s.add_argument("--rounding", dest="grad_rounding", help=argparse.SUPPRESS)
    s.add_argument("--sr-bits", type=int, default=8, help="random bits of stochastic rounding (default 8)")
    s.add_argument("--tile", type=positive_int, default=32, metavar="T", help="square tile size (default 32)")
    s.add_argument("--block-size", type=positive_int, default=32, help="1D block size along K (default 32)")
    s.add_argument("--batch-size", type=positive_int, default=32, help="batch size (default 32)")
    s.add_argument("--out", default="build/train", help="output folder (default build/train)")
    s.set_defaults(func=cmd_train_demo)


# ------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------

def _fmt_db(v: float) -> str:
    # NaN: no figure (the tile column of the 1D-only formats mx9/mx6/mx4)
    return "inf" if v == math.inf else ("-inf" if v == -math.inf else ("-" if v != v else f"{v:.2f}"))


def _load_input(path: str) -> np.ndarray:
    src = Path(path)
    x = load_npy(src)
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise CLIError(f"input {src} must hold a floating-point array, not dtype {getattr(x, 'dtype', type(x))}")
    from mxsf.studies.accuracy import as_matrix
    try:
        return as_matrix(x)
    except ValueError as e:
        raise CLIError(f"input {src}: {e}") from None


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)     # Agg canvas: no display, no pyplot state
    return fig


# ------------------------------------------------------------------------------------
# accuracy
# ------------------------------------------------------------------------------------

def _label(r: dict) -> str:
    """Row label: the format, and its scale rule when the table has one (bf16: none)."""
    mode = r.get("scale_rounding", "-")
    return r["format"] if mode == "-" else f"{r['format']} {mode}"


def sqnr_table(rows: list[dict]) -> str:
    """Markdown table: one row per format and scale rule, one column per tensor, cells
    "1D / tile" SQNR (dB), then the mean SQNR and the mean clipped and flushed fractions."""
    labels = list(dict.fromkeys(_label(r) for r in rows))
    dists = list(dict.fromkeys(r["distribution"] for r in rows))
    cell = {(_label(r), r["distribution"]): r for r in rows}
    out = []
    for f in labels:
        rs = [cell[f, d] for d in dists]

        def mean(key):
            return float(np.mean([r.get(key, 0.0) for r in rs]))
        out.append((f, *(f"{_fmt_db(r['sqnr_1d_db'])} / {_fmt_db(r['sqnr_tile_db'])}" for r in rs),
                    f"{_fmt_db(mean('sqnr_1d_db'))} / {_fmt_db(mean('sqnr_tile_db'))}",
                    f"{100 * mean('clipped_1d'):.3f}% / {100 * mean('clipped_tile'):.3f}%",
                    f"{100 * mean('flushed_1d'):.2f}% / {100 * mean('flushed_tile'):.2f}%"))
    return table(("format", *dists, "mean", "clipped", "flushed"), out)


def _detail_table(rows: list[dict]) -> str:
    return table(
        ("format", "tensor", "SQNR 1D", "SQNR tile", "max rel 1D", "max rel tile", "flushed 1D", "flushed tile",
         "clipped 1D", "clipped tile"),
        [(_label(r), r["distribution"], _fmt_db(r["sqnr_1d_db"]), _fmt_db(r["sqnr_tile_db"]),
          f"{r['max_rel_1d']:.3g}", f"{r['max_rel_tile']:.3g}",
          f"{100 * r['flushed_1d']:.2f}%", f"{100 * r['flushed_tile']:.2f}%",
          f"{100 * r.get('clipped_1d', 0):.3f}%", f"{100 * r.get('clipped_tile', 0):.3f}%") for r in rows])


def _heatmap(rows: list[dict], path: Path, block_size: int, tile) -> None:
    fmts = list(dict.fromkeys(_label(r) for r in rows))
    dists = list(dict.fromkeys(r["distribution"] for r in rows))
    cell = {(_label(r), r["distribution"]): r for r in rows}
    cols = [(d, k) for d in dists for k in ("sqnr_1d_db", "sqnr_tile_db")]
    z = np.array([[cell[f, d][k] for d, k in cols] for f in fmts], dtype=float)
    fig = _figure(1.0 + 0.9 * len(cols), 1.2 + 0.45 * len(fmts))
    ax = fig.add_subplot()
    finite = z[np.isfinite(z)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(np.where(np.isfinite(z), z, vmax), cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[i, j]
            ax.text(j, i, _fmt_db(v), ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(v) and v < (vmin + vmax) / 2 else "black")
    ax.set_yticks(range(len(fmts)), fmts)
    ax.set_xticks(range(len(cols)),
                  [f"{d}\n{'1x' + str(block_size) if k == 'sqnr_1d_db' else f'{tile[0]}x{tile[1]}'}"
                   for d, k in cols], fontsize=7, rotation=30, ha="right")
    ax.set_title(f"Quantization SQNR (dB): 1D blocks of {block_size} vs {tile[0]}x{tile[1]} tiles")
    fig.colorbar(im, ax=ax, label="SQNR (dB)")
    fig.tight_layout()
    fig.savefig(path)


def cmd_accuracy(args) -> int:
    from mxsf.studies.accuracy import DISTRIBUTIONS, accuracy_formats, accuracy_table

    try:
        formats = accuracy_formats(args.formats)
    except ValueError as e:
        raise CLIError(str(e)) from None
    tensors = {}
    if args.input:
        tensors[Path(args.input).stem or "input"] = _load_input(args.input)
    tile = tuple(args.tile)
    size = tuple(args.size)
    if size[0] * size[1] > 1 << 24:
        raise CLIError(f"--size must hold at most 2^24 elements, not {size[0]} x {size[1]}")
    t0 = time.perf_counter()
    rows = accuracy_table(formats, block_size=args.block_size, tile=tile, size=size, seed=args.seed,
                          tensors=tensors, scale_rounding=args.scale_rounding, rounding=args.rounding,
                          sr_bits=args.sr_bits, sr_seed=args.seed)
    secs = time.perf_counter() - t0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head = (f"Quantization SQNR (dB), cells '1D / tile': 1D blocks of {args.block_size} along the rows, "
            f"{tile[0]}x{tile[1]} tiles; generated tensors {size[0]}x{size[1]}, seed {args.seed}; "
            "mx9/mx6/mx4 in their own 1D blocks of 16 (no tiles: '-'); "
            "bf16 = element-wise bfloat16 rounding (no blocks); "
            f"element rounding {args.rounding}" + (f" ({args.sr_bits} random bits)" if args.rounding == "stochastic" else "")
            + "; clipped and flushed: mean over the tensors, '1D / tile'.")
    main_table = sqnr_table(rows)
    print(head + "\n")
    print(main_table)
    legend = "\n".join(f"- `{k}`: {v}" for k, v in DISTRIBUTIONS.items())
    if tensors:
        legend += "\n" + "\n".join(f"- `{k}`: user tensor {args.input}, {v.shape[0]}x{v.shape[1]}"
                                   for k, v in tensors.items())
    md = (f"# Quantization accuracy\n\n{head}\n\n{main_table}\n\n## Tensors\n\n{legend}\n\n"
          "## Detail\n\nmax rel = max |xq - x| / |x| over x != 0 (1 when an element is flushed to zero); "
          "flushed = share of non-zero x quantized to 0; clipped = share of x with |x| > largest x 2^E "
          "of its block (saturated).\n\n" + _detail_table(rows) + "\n")
    (out / "accuracy.md").write_text(md)
    _write_csv(out / "accuracy.csv", rows)
    meta = {"block_size": args.block_size, "tile": list(tile), "size": list(size), "seed": args.seed,
            "formats": formats, "distributions": {**DISTRIBUTIONS, **{k: f"user tensor {args.input}" for k in tensors}},
            "scale_rounding": args.scale_rounding, "rounding": args.rounding, "sr_bits": args.sr_bits,
            "metrics": {"sqnr_db": "10 log10(sum x^2 / sum (xq-x)^2)",
                        "max_rel": "max |xq-x|/|x| over x != 0",
                        "flushed": "share of x != 0 with xq == 0",
                        "clipped": "share of x with |x| > largest x 2^E of its block (saturated)"},
            "rows": rows}
    (out / "accuracy.json").write_text(json.dumps(_json_safe(meta), indent=1) + "\n")
    _heatmap(rows, out / "accuracy.png", args.block_size, tile)
    print(f"\n{len(rows)} measurements in {secs:.2f} s -> {out}/accuracy.{{md,csv,json,png}}")
    return 0


# ------------------------------------------------------------------------------------
# train-demo
# ------------------------------------------------------------------------------------

def train_table(results) -> str:
    """Markdown table: one row per arithmetic, tiles vs 1D test accuracy and loss."""
    by = {}
    for r in results:
        by.setdefault(r.arithmetic, {})[r.blocking] = r
    rows = []
    for name, d in by.items():
        t = d.get("tile", d.get("-"))
        o = d.get("1d", d.get("-"))
        cell = lambda r, k: "-" if r is None else (f"{100 * getattr(r, k):.2f}%" if k == "final_test_acc"  # noqa: E731
                                                    else f"{getattr(r, k):.4f}")
        rows.append((name, cell(t, "final_test_acc"), cell(o, "final_test_acc"),
                     cell(t, "final_test_loss"), cell(o, "final_test_loss"),
                     "-" if "-" in d else f"{t.quantizations_per_step if t else '-'} / "
                                          f"{o.quantizations_per_step if o else '-'}"))
    return table(("arithmetic", "test acc tiles", "test acc 1D", "test loss tiles", "test loss 1D",
                  "quantizations/step tiles / 1D"), rows)


def _loss_plot(results, path: Path) -> None:
    fig = _figure(11, 4.2)
    axes = [fig.add_subplot(1, 2, i) for i in (1, 2)]
    names = list(dict.fromkeys(r.arithmetic for r in results))
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}
    for r in results:
        ep = np.arange(1, r.epochs + 1)
        style = "--" if r.blocking == "1d" else "-"
        for ax, key in zip(axes, ("train_loss", "test_loss")):
            ax.plot(ep, getattr(r, key), style, color=colours[r.arithmetic], label=r.label, lw=1.3)
    for ax, t in zip(axes, ("training loss (mean over epoch)", "test loss")):
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(t)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("MLP 64-128-10 on digits: solid = tiles (or float), dashed = 1D blocks")
    fig.tight_layout()
    fig.savefig(path)


def cmd_train_demo(args) -> int:
    from mxsf.studies.accuracy import accuracy_formats
    from mxsf.studies.train import demo_runs, train_demo

    formats = None
    if args.formats is not None:
        spec = args.formats.strip().lower()
        if spec == "all":
            formats = ["fp32", "bf16", *accuracy_formats("all", with_reference=False)]
        else:
            items = [s.strip() for s in spec.split(",") if s.strip()]
            if not items:
                raise CLIError(f"--formats must name at least one format, not {args.formats!r}")
            formats = items
    try:
        runs = demo_runs(formats, narrow=args.narrow)
    except ValueError as e:
        raise CLIError(str(e)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"MLP 64-128-10 on digits, {args.epochs} epochs, batch {args.batch_size}, SGD momentum 0.9, "
          f"seed {args.seed}; tiles {args.tile}x{args.tile}, 1D blocks of {args.block_size}: "
          f"{len(runs)} runs", file=sys.stderr)
    done = [0]

    def progress(r):
        done[0] += 1
        print(f"[{done[0]}/{len(runs)}] {r.label}: test acc {100 * r.final_test_acc:.2f}% "
              f"({r.seconds:.1f} s)", file=sys.stderr)

    t0 = time.perf_counter()
    results = train_demo(formats, epochs=args.epochs, seed=args.seed, narrow=args.narrow, tile=args.tile,
                         block_size=args.block_size, batch_size=args.batch_size, progress=progress,
                         grad_rounding=args.grad_rounding, sr_bits=args.sr_bits)
    secs = time.perf_counter() - t0
    tab = train_table(results)
    head = (f"Final test accuracy and loss after {args.epochs} epochs (seed {args.seed}; "
            f"{len(results)} runs in {secs:.1f} s). Tiles: {args.tile}x{args.tile}, the backward pass reuses "
            f"the forward codes via .T; 1D: blocks of {args.block_size} along K, re-quantized for the "
            "transpose. fp32/bf16 have no blocks (same figure in both columns)."
            + (f" MX gradient operands dZ, dH stochastically rounded ({args.sr_bits} random bits, "
               "a fresh seed per gradient)." if args.grad_rounding == "stochastic" else ""))
    print(head + "\n")
    print(tab)
    (out / "train.md").write_text(f"# Training demo\n\n{head}\n\n{tab}\n")
    _write_csv(out / "train.csv", [
        {"arithmetic": r.arithmetic, "blocking": r.blocking, "epochs": r.epochs,
         "final_test_acc": r.final_test_acc, "final_test_loss": r.final_test_loss,
         "final_train_loss": r.train_loss[-1], "quantizations_per_step": r.quantizations_per_step,
         "seconds": round(r.seconds, 3)} for r in results])
    meta = {"epochs": args.epochs, "seed": args.seed, "tile": args.tile, "block_size": args.block_size,
            "batch_size": args.batch_size, "runs": [r.to_dict() for r in results]}
    (out / "train.json").write_text(json.dumps(_json_safe(meta), indent=1) + "\n")
    _loss_plot(results, out / "train_loss.png")
    print(f"\n-> {out}/train.{{md,csv,json}}, {out}/train_loss.png")
    return 0
