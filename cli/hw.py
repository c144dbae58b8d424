"""``mxsf generate`` and ``mxsf test``: Verilog of a registry design, and its cocotb regression.

``mxsf generate DESIGN [--fmt F] [--block-size N] [--lanes L] [--rows R] [--cols C]
[--tile R C] [--n N] [--stages S] [--dim D] -o DIR`` writes ``DIR/<top>.v`` and a JSON sidecar
``DIR/<top>.json`` (parameters, ports with widths and payload field offsets, latency).

``mxsf test DESIGN [params] [--sim verilator|icarus|both] [--exhaustive] [--seed S]
[--count N] [--waves]`` runs the design's cocotb regression against the golden model
with a progress line per test and a summary; exit status 1 on a failure. With
``--vectors N`` (and for the PE with ``--exhaustive``) it runs the vector-file regression
instead (:mod:`mxsf.sim.vector_regression`).
"""

from pathlib import Path

from .common import CLIError, positive_int

__all__ = ["register", "PARAM_OPTIONS", "add_design_options", "design_from_args"]

#: Command-line option of each design constructor parameter: (flag, type, metavar, help).
PARAM_OPTIONS = {
    "fmt": ("--fmt", str, "F", "element format (e.g. mxsf, fp8_e4m3, mxfp8_e4m3; bf16 for arrays)"),
    "block_size": ("--block-size", positive_int, "N", "elements per block sharing a scale"),
    "lanes": ("--lanes", positive_int, "L", "element pairs (or values) per beat"),
    "rows": ("--rows", positive_int, "R", "array / tile rows"),
    "cols": ("--cols", positive_int, "C", "array / tile columns"),
    "n": ("--n", positive_int, "N", "inputs of the max-exponent finder"),
    "stages": ("--stages", int, "S", "pipeline stages (max-exponent finder, re-quantizer)"),
    "dim": ("--dim", positive_int, "D", "side of the stored square operands and of C (gemm)"),
    # numerics options (SPEC.md 8, 9, 10); the component checks the values
    "scale_rounding": ("--scale-rounding", str, "MODE", "scale rule: floor (default), ceil, even"),
    "rounding": ("--rounding", str, "MODE", "element rounding: rne (default), stochastic"),
    "sr_bits": ("--sr-bits", int, "R", "random bits per element of stochastic rounding (1..16, default 8)"),
    "seed": ("--sr-seed", int, "S", "32-bit seed of the stochastic-rounding generator (default 0; "
             "--seed too, except in `mxsf test` where --seed seeds the stimulus)"),
    "acc": ("--acc", str, "A", "accumulator: fp32 (default), bf16"),
}


def _param_names() -> list:
    """Every constructor parameter of the registry's designs (known options first)."""
    from mxsf.gen.registry import DESIGNS

    names = dict.fromkeys(PARAM_OPTIONS)
    for spec in DESIGNS.values():
        names.update(dict.fromkeys(spec.params))
    return list(names)


def _option(param: str) -> tuple:
    return PARAM_OPTIONS.get(param, ("--" + param.replace("_", "-"), int, param.upper(),
                                     f"constructor parameter {param}"))


def add_design_options(parser, *, seed_alias: bool = True) -> None:
    """The design name and an option for every constructor parameter of the registry
    (``seed_alias``: ``--seed`` also sets the stochastic-rounding seed ``--sr-seed``)."""
    from mxsf.gen.registry import design_names

    parser.add_argument("design", metavar="DESIGN", help=f"one of: {', '.join(design_names())}")
    for param in _param_names():
        flag, typ, metavar, text = _option(param)
        flags = [flag, "--seed"] if param == "seed" and seed_alias else [flag]
        parser.add_argument(*flags, dest=f"param_{param}", type=typ, metavar=metavar, help=text)
    parser.add_argument("--tile", type=positive_int, nargs=2, metavar=("R", "C"),
                        help="tile rows and columns (same as --rows R --cols C)")


def design_from_args(args):
    """The :class:`~mxsf.gen.design.Design` the options name, resolved once by the gen layer.

    CLIError for an option the design does not take or a required one missing (worded
    with the option names); values are checked by the component (ValueError naming the
    parameter)."""
    from mxsf.gen.design import DesignParamError, resolve_design

    values = {p: getattr(args, f"param_{p}", None) for p in _param_names()}
    tile = getattr(args, "tile", None)
    if tile is not None:
        if values.get("rows") is not None or values.get("cols") is not None:
            raise CLIError("give either --tile R C or --rows/--cols, not both")
        values["rows"], values["cols"] = tile
    try:
        return resolve_design(args.design, values)
    except DesignParamError as e:
        if e.kind == "missing":
            raise CLIError(f"design {e.design} needs {_option(e.param)[0]}") from None
        takes = ", ".join(_option(p)[0] for p in e.takes) or "no parameters"
        flag = "--tile" if tile is not None and e.param in ("rows", "cols") else _option(e.param)[0]
        raise CLIError(f"design {e.design} does not take {flag} (it takes {takes})") from None


def _cmd_generate(args) -> int:
    from mxsf.gen.verilog import write_design

    design = design_from_args(args)
    verilog, js, sidecar = write_design(design, Path(args.output))
    lat = sidecar["latency"]
    print(f"{design.describe()}: top {sidecar['top']}, "
          f"{len(sidecar['ports'])} ports" + (f", latency {lat}" if lat is not None else ""))
    print(f"  {verilog}\n  {js}")
    return 0


def _cmd_test(args) -> int:
    from mxsf.sim.regression import design_regression, run_regression
    from mxsf.sim.run import SIMULATORS

    design = design_from_args(args)
    if args.vectors is not None or (args.exhaustive and design.name == "pe"):
        return _cmd_test_vectors(args, design)
    sims = list(SIMULATORS) if args.sim == "both" else [args.sim]
    config = {"exhaustive": bool(args.exhaustive)}
    if args.count is not None:
        config["count"] = args.count
    test = design_regression(design, config=config)
    print(f"testing {design.describe()} on {', '.join(sims)}"
          + (" (exhaustive)" if args.exhaustive else ""), flush=True)
    timeout = 6 * 3600 if args.exhaustive else 1800
    return run_regression([test], sims=sims, seed=args.seed, waves=args.waves, timeout_s=timeout)


def _cmd_test_vectors(args, design) -> int:
    """``--vectors N`` (and ``--exhaustive`` for the PE): the vector-file regression."""
    from mxsf.sim.run import SIMULATORS
    from mxsf.sim.vector_regression import VECTOR_DESIGNS, run_vector_regression

    if design.name not in VECTOR_DESIGNS:
        raise CLIError(f"--vectors: design must be one of {', '.join(VECTOR_DESIGNS)}; not {design.name}")
    if args.waves or args.count is not None:
        raise CLIError("--vectors does not take --waves or --count (the count is the --vectors value)")
    sims = list(SIMULATORS) if args.sim == "both" else [args.sim]
    count = args.vectors if args.vectors is not None else 1000
    print(f"testing {design.describe()} on {', '.join(sims)} with vector files: {count} random"
          + (" + every code pair" if args.exhaustive else ""), flush=True)
    return run_vector_regression(design, sims=sims, count=count, exhaustive=bool(args.exhaustive),
                                 seed=args.seed)


def register(sub) -> None:
    s = sub.add_parser("generate", help="write the Verilog and JSON sidecar of a design")
    add_design_options(s)
    s.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    s.set_defaults(func=_cmd_generate)

    s = sub.add_parser("test", help="run the cocotb regression of a design against the golden model")
    add_design_options(s, seed_alias=False)
    s.add_argument("--sim", choices=("verilator", "icarus", "both"), default="verilator")
    s.add_argument("--exhaustive", action="store_true", help="run the exhaustive sweeps (all code pairs)")
    s.add_argument("--seed", type=int, default=None, help="random seed (printed on failure)")
    s.add_argument("--count", type=positive_int, default=None, help="random transactions per test")
    s.add_argument("--waves", action="store_true", help="always record waveforms")
    s.add_argument("--vectors", type=positive_int, default=None, metavar="N",
                   help="vector-file regression at simulator speed: N random dot products / tiles / groups "
                        "(pe, bf16-pe, maxexp, requantizer, array) or GEMM runs (gemm); "
                        "--exhaustive adds every PE code pair")
    s.set_defaults(func=_cmd_test)
