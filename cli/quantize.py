"""``mxsf formats`` and ``mxsf quantize``: the element format table, and MX codes of a tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import load_npy, positive_int, table


def add_numerics_options(parser) -> None:
    """``--scale-rounding``, ``--rounding``, ``--sr-bits``, ``--seed`` (SPEC.md 8 and 9); the
    golden model checks the values (ValueError naming the parameter: one line, exit 2)."""
    parser.add_argument("--scale-rounding", default="floor", metavar="MODE",
                        help="scale rule: floor (default, OCP), ceil (no clipping), even")
    parser.add_argument("--rounding", default="rne", metavar="MODE",
                        help="element rounding: rne (default) or stochastic")
    parser.add_argument("--sr-bits", type=int, default=8, metavar="R",
                        help="random bits per element of stochastic rounding (1..16, default 8)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="32-bit seed of stochastic rounding (default 0)")

__all__ = ["register", "format_table"]


def format_table() -> str:
    """The element format table (one row per format of :data:`mxsf.golden.FORMATS`)."""
    from mxsf.golden import FORMATS

    head = ("format", "alias", "bits", "E", "M", "bias", "emax_elem", "largest", "smallest>0", "specials",
            "block", "bits/elem")
    rows = []
    for f in FORMATS.values():
        e, m, bias = f.field_text
        # the block (BDR: 16, a microexponent per pair) and bits per element with the scale
        # overhead: an 8-bit scale per block (+ the microexponent bits)
        block = "-" if not f.is_element else (
            f"{f.default_block_size} ({f.microexp_group}/uexp)" if f.microexp_group else f"{f.default_block_size}")
        bpe = f"{f.bits_per_element():g}" if f.is_element else f"{f.bits}"
        # smallest > 0 of a BDR element is m = 1 with microexponent 1: 2^(lsb_exp - 1)
        rows.append((f.name, f.ocp_name or "-", str(f.bits), e, m, bias, str(f.emax_elem),
                     f"{f.max_value:.6g}", f"2^{f.lsb_exp - f.microexp_bits}", f.specials.value, block, bpe))
    return table(head, rows)


def _cmd_formats(args) -> int:
    print(format_table())
    return 0


def _cmd_quantize(args) -> int:
    from mxsf.golden import dequantize, error_stats, get_format, quantize, quantize_tiles

    x = load_npy(args.input)
    fmt = get_format(args.fmt, element_only=True)
    options = dict(scale_rounding=args.scale_rounding, rounding=args.rounding, sr_bits=args.sr_bits,
                   seed=args.seed)
    if args.tile is not None:
        q = quantize_tiles(x, fmt, tile=tuple(args.tile), **options)
        geometry = f"tiles {args.tile[0]}x{args.tile[1]}"
    else:
        q = quantize(x, fmt, block_size=args.block_size, axis=args.axis, **options)
        geometry = f"1D blocks of {max(q.block_shape)} along axis {args.axis}"
    geometry += f", scale {args.scale_rounding}, {args.rounding}" + (
        f" ({args.sr_bits} bits, seed {args.seed})" if args.rounding == "stochastic" else "")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if q.microexp is None else {"microexp": q.microexp}    # mx9/mx6/mx4: pair bits
    np.savez(out, codes=q.codes, scale_e8m0=q.scale_e8m0, block_shape=np.array(q.block_shape),
             fmt=np.array(q.fmt.name), **extra)
    st = error_stats(x, dequantize(q))
    print(f"{q.fmt.name}, {geometry}: {q.codes.size} codes, {q.scale_e8m0.size} scales -> {out}")
    print(f"max abs error {st['max_abs']:.6g}  RMSE {st['rmse']:.6g}  SQNR {st['sqnr_db']:.2f} dB")
    return 0


def register(sub) -> None:
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
    add_numerics_options(s)
    s.add_argument("-o", "--output", required=True, help="output .npz (codes, scale_e8m0, block_shape, fmt)")
    s.set_defaults(func=_cmd_quantize)
