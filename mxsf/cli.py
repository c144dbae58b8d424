"""The ``mxsf`` command line.

Every command reports bad input as one line on stderr and exits 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

__all__ = ["main", "CLIError", "table", "positive_int", "format_table", "load_npy"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise CLIError(message)


# ------------------------------------------------------------------------------------
# formats / quantize
# ------------------------------------------------------------------------------------

def format_table() -> str:
    from mxsf.golden import FORMATS

    head = ("format", "alias", "bits", "E", "M", "bias", "emax_elem", "largest", "smallest>0", "specials",
            "block", "bits/elem")
    rows = []
    for f in FORMATS.values():
        specials = "NaN,Inf" if f.has_inf else ("NaN" if f.has_nan else "-")
        e, m = (f"{f.exp_bits}", f"{f.man_bits}") if f.kind == "fp" else (
            ("2|3", "5|2") if f.kind == "mxsf" else ("-", f"{f.man_bits}" if f.kind == "bdr" else "-"))
        # bits per element with the scale overhead: 8-bit scale per block (+ microexponents)
        block = "-" if not f.is_element else (
            f"{f.default_block_size} ({f.microexp_group}/uexp)" if f.microexp_group else f"{f.default_block_size}")
        bpe = f"{f.bits_per_element():g}" if f.is_element else f"{f.bits}"
        # smallest > 0 of a BDR element is m = 1 with microexponent 1: 2^(lsb_exp - 1)
        rows.append((f.name, f.ocp_name or "-", str(f.bits), e, m,
                     str(f.bias) if f.kind == "fp" else "-", str(f.emax_elem),
                     f"{f.max_value:.6g}", f"2^{f.lsb_exp - f.microexp_bits}", specials, block, bpe))
    return table(head, rows)


def table(head, rows) -> str:
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *map(line, rows)])


def _cmd_formats(args) -> int:
    print(format_table())
    return 0


def load_npy(path) -> np.ndarray:
    """An array from a ``.npy`` file; CLIError (one line) if missing or unreadable."""
    src = Path(path)
    if not src.is_file():
        raise CLIError(f"input file not found: {src}")
    try:
        return np.load(src, allow_pickle=False)
    except Exception as e:  # a corrupt or non-.npy file
        raise CLIError(f"cannot read {src} as a .npy array: {str(e).splitlines()[0] if str(e) else e!r}") from None


def _cmd_quantize(args) -> int:
    from mxsf.golden import dequantize, error_stats, quantize, quantize_tiles

    x = load_npy(args.input)
    if args.tile is not None:
        q = quantize_tiles(x, args.fmt, tile=tuple(args.tile))
        geometry = f"tiles {args.tile[0]}x{args.tile[1]}"
    else:
        q = quantize(x, args.fmt, block_size=args.block_size, axis=args.axis)
        geometry = f"1D blocks of {max(q.block_shape)} along axis {args.axis}"
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if q.microexp is None else {"microexp": q.microexp}    # mx9/mx6/mx4: pair bits
    np.savez(out, codes=q.codes, scale_e8m0=q.scale_e8m0, block_shape=np.array(q.block_shape),
             fmt=np.array(q.fmt.name), **extra)
    st = error_stats(x, dequantize(q))
    print(f"{q.fmt.name}, {geometry}: {q.codes.size} codes, {q.scale_e8m0.size} scales -> {out}")
    print(f"max abs error {st['max_abs']:.6g}  RMSE {st['rmse']:.6g}  SQNR {st['sqnr_db']:.2f} dB")
    return 0


# ------------------------------------------------------------------------------------
# argument parsing
# ------------------------------------------------------------------------------------

def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mxsf", description="Generate, test and measure MX (microscaling) datapaths.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("formats", help="print the element format table")
    s.set_defaults(func=_cmd_formats)

    s = sub.add_parser("quantize", help="quantize a .npy array to MX codes and scales")
    s.add_argument("input", help="input .npy file (floating point)")
    s.add_argument("--fmt", required=True, help="element format (e.g. mxsf, fp8_e4m3, mxfp8_e4m3)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--block-size", type=positive_int, default=None,
                   help="1D block size (default 32; mx9/mx6/mx4: 16, their only size)")
    g.add_argument("--tile", type=positive_int, nargs=2, metavar=("R", "C"), help="2D tiles of R x C")
    s.add_argument("--axis", type=int, default=-1, help="axis of the 1D blocks (default -1)")
    s.add_argument("-o", "--output", required=True, help="output .npz (codes, scale_e8m0, block_shape, fmt)")
    s.set_defaults(func=_cmd_quantize)

    for name in _COMMAND_MODULES:
        importlib.import_module(f"mxsf.{name}").register(sub)
    return p


_COMMAND_MODULES = ("cli_hw", "cli_synth", "cli_accuracy", "cli_demo")
"""Modules of further commands; each has ``register(subparsers)``. A module that does
not exist (yet) is skipped."""
_COMMAND_MODULES = tuple(n for n in _COMMAND_MODULES if importlib.util.find_spec(f"mxsf.{n}") is not None)


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except (CLIError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"mxsf: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `mxsf formats | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("mxsf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
