"""``mxsf infer``: the digits MLP's test-set inference with its matmuls through the RTL.

``mxsf infer [--formats F ...|all] [--blocking tile|1d|both] [--sim verilator|icarus]
[--epochs E] [--seed S] [--limit N]`` trains the MLP in float32, then for each MX format
runs the forward pass with both matmuls through the generated 4x4 systolic array
(vector-file testbench) and through the golden model, and prints test accuracy and
whether the logits are equal bit for bit. fp32 and bf16 rows are golden only. Exit
status 1 if any logits differ.
"""

from mxsf.cli import CLIError, positive_int, table

__all__ = ["register"]


def _cmd_infer(args) -> int:
    import numpy as np

    from mxsf.golden import get_format
    from mxsf.golden import train as gtrain
    from mxsf.sim.rtl_infer import golden_logits, rtl_forward, train_fp32

    names = list(gtrain.DEMO_FORMATS + gtrain.NARROW_FORMATS) if args.formats == ["all"] else args.formats
    try:
        fmts = [get_format(n, element_only=True, param="format").name for n in names]
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    blockings = ["tile", "1d"] if args.blocking == "both" else [args.blocking]
    _, _, xte, yte = gtrain.load_digits_split(args.seed)
    if args.limit is not None:
        xte, yte = xte[:args.limit], yte[:args.limit]
    params = train_fp32(epochs=args.epochs, seed=args.seed)
    rows = []
    for arith in ("fp32", "bf16"):
        z = golden_logits(params, xte, arith)
        rows.append([arith, "-", f"{100 * np.mean(np.argmax(z, 1) == yte):.2f}", "-", "-", "-", "-"])
    failed = 0
    for fmt in fmts:
        for blocking in blockings:
            r = rtl_forward(params, xte, fmt, blocking, sim=args.sim, y=yte)
            gold_acc = 100 * np.mean(np.argmax(r.golden, 1) == yte)
            failed += not r.bit_exact
            rows.append([fmt, blocking, f"{gold_acc:.2f}", f"{100 * r.accuracy:.2f}",
                         "yes" if r.bit_exact else "NO", f"{r.beats}", f"{r.sim_seconds:.2f}"])
            print(f"{'PASS' if r.bit_exact else 'FAIL'} infer {fmt}/{blocking} [{args.sim}] "
                  f"({r.seconds:.1f} s): accuracy {100 * r.accuracy:.2f} %, logits "
                  f"{'equal the golden model bit for bit' if r.bit_exact else 'DIFFER from the golden model'}",
                  flush=True)
    print(f"\ndigits MLP 64-128-10, float32-trained ({args.epochs} epochs, seed {args.seed}), "
          f"{len(yte)} test images, matmuls through a 4x4 array on {args.sim}:")
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
    s.set_defaults(func=_cmd_infer)
