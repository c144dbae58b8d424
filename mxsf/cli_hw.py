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

import hashlib
import json
import shutil
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib import data

from mxsf.cli import CLIError, positive_int

__all__ = ["register", "PARAM_OPTIONS", "add_design_options", "design_params", "layout_fields",
           "write_design"]

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
}


def _param_names() -> list:
    """Every constructor parameter of the registry's designs (known options first)."""
    from mxsf.hw.registry import DESIGNS

    names = dict.fromkeys(PARAM_OPTIONS)
    for spec in DESIGNS.values():
        names.update(dict.fromkeys(spec.params))
    return list(names)


def _option(param: str) -> tuple:
    return PARAM_OPTIONS.get(param, ("--" + param.replace("_", "-"), int, param.upper(),
                                     f"constructor parameter {param}"))


def add_design_options(parser) -> None:
    """The design name and an option for every constructor parameter of the registry."""
    from mxsf.hw.registry import design_names

    parser.add_argument("design", metavar="DESIGN", help=f"one of: {', '.join(design_names())}")
    for param in _param_names():
        flag, typ, metavar, text = _option(param)
        parser.add_argument(flag, dest=f"param_{param}", type=typ, metavar=metavar, help=text)
    parser.add_argument("--tile", type=positive_int, nargs=2, metavar=("R", "C"),
                        help="tile rows and columns (same as --rows R --cols C)")


def design_params(args):
    """(DesignSpec, constructor keywords) from parsed options; CLIError for options the
    design does not take or a required one missing. Values are checked by the
    component's constructor (ValueError naming the parameter)."""
    from mxsf.hw.registry import get_design_spec

    spec = get_design_spec(args.design)
    values = {p: getattr(args, f"param_{p}", None) for p in _param_names()}
    if getattr(args, "tile", None) is not None:
        if values.get("rows") is not None or values.get("cols") is not None:
            raise CLIError("give either --tile R C or --rows/--cols, not both")
        values["rows"], values["cols"] = args.tile
    extra = [p for p, v in values.items() if v is not None and p not in spec.params]
    if extra:
        takes = ", ".join(_option(p)[0] for p in spec.params) or "no parameters"
        flag = "--tile" if getattr(args, "tile", None) is not None and extra[0] in ("rows", "cols") \
            else _option(extra[0])[0]
        raise CLIError(f"design {spec.name} does not take {flag} (it takes {takes})")
    params = spec.select_params(values)
    missing = [p for p in spec.required_params if p not in params]
    if missing:
        raise CLIError(f"design {spec.name} needs {_option(missing[0])[0]}")
    if "fmt" in params:
        from mxsf.golden import get_format

        params["fmt"] = get_format(params["fmt"]).name       # OCP aliases -> canonical names
    spec.instantiate(**params)                               # ValueError names the bad parameter
    return spec, params


def layout_fields(shape, prefix=""):
    """Leaf fields of a payload shape: ``[{"name", "offset", "width"}]`` (LSB first)."""
    if isinstance(shape, type) and issubclass(shape, data.Struct):
        shape = data.Layout.cast(shape)
    if isinstance(shape, data.Layout):
        out = []
        for name, field in shape:
            label = f"{prefix}[{name}]" if isinstance(name, int) else (f"{prefix}.{name}" if prefix else name)
            for leaf in layout_fields(field.shape, label):
                out.append({**leaf, "offset": leaf["offset"] + field.offset})
        return out
    return [{"name": prefix or "value", "offset": 0, "width": Shape.cast(shape).width}]


def _payload_layouts(component) -> dict:
    out = {}
    for name, member in component.signature.members.items():
        if member.is_signature:
            sub = member.signature.members
            if "payload" in sub:
                out[f"{name}__payload"] = layout_fields(sub["payload"].shape)
    return out


def write_design(spec, params, out_dir: Path, *, build_root="build") -> tuple:
    """Generate Verilog + JSON sidecar of a design into ``out_dir``; return their paths."""
    from mxsf.sim.build import build_verilog

    component = spec.instantiate(**params)
    top = getattr(component, "module_name", None) or spec.name.replace("-", "_")
    built = build_verilog(spec.component_class, params, name=top, root=build_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    verilog = out_dir / f"{top}.v"
    shutil.copyfile(built.verilog_path, verilog)
    sidecar = {
        "design": spec.name,
        "description": spec.description,
        "component": spec.target,
        "top": top,
        "params": params,
        "latency": built.latency,
        "macs_per_cycle": spec.macs(component),
        "ports": [{"name": p.name, "direction": p.direction, "width": p.width} for p in built.ports],
        "constant_ports": dict(built.const_ports),
        "payload_fields": _payload_layouts(component),
        "clock": "clk (rising edge)" if any(p.name == "clk" for p in built.ports) else None,
        "reset": "rst (synchronous, active high)" if any(p.name == "rst" for p in built.ports) else None,
        "verilog": verilog.name,
        "verilog_sha256": hashlib.sha256(verilog.read_bytes()).hexdigest(),
    }
    if "fmt" in params:
        from mxsf.golden import get_format

        sidecar["format"] = {k: v for k, v in get_format(params["fmt"]).describe().items()}
    js = out_dir / f"{top}.json"
    js.write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    return verilog, js, sidecar


def _cmd_generate(args) -> int:
    spec, params = design_params(args)
    verilog, js, sidecar = write_design(spec, params, Path(args.output))
    lat = sidecar["latency"]
    print(f"{spec.name} {json.dumps(params)}: top {sidecar['top']}, "
          f"{len(sidecar['ports'])} ports" + (f", latency {lat}" if lat is not None else ""))
    print(f"  {verilog}\n  {js}")
    return 0


def _cmd_test(args) -> int:
    from mxsf.sim.regression import RegressionTest, run_regression
    from mxsf.sim.run import SIMULATORS

    spec, params = design_params(args)
    if args.vectors is not None or (args.exhaustive and spec.name == "pe"):
        return _cmd_test_vectors(args, spec, params)
    if spec.test_module is None:
        raise CLIError(f"design {spec.name} has no regression")
    sims = list(SIMULATORS) if args.sim == "both" else [args.sim]
    config = {"exhaustive": bool(args.exhaustive)}
    if args.count is not None:
        config["count"] = args.count
    component = spec.instantiate(**params)
    top = getattr(component, "module_name", None) or spec.name.replace("-", "_")
    test = RegressionTest(name=spec.name, component=spec.component_class,
                          test_module=f"mxsf.sim.tests.{spec.test_module}", params=params,
                          config=config, top=top)
    print(f"testing {spec.name} {json.dumps(params)} on {', '.join(sims)}"
          + (" (exhaustive)" if args.exhaustive else ""), flush=True)
    timeout = 6 * 3600 if args.exhaustive else 1800
    return run_regression([test], sims=sims, seed=args.seed, waves=args.waves, timeout_s=timeout)


def _cmd_test_vectors(args, spec, params) -> int:
    """``--vectors N`` (and ``--exhaustive`` for the PE): the vector-file regression."""
    from mxsf.sim.run import SIMULATORS
    from mxsf.sim.vector_regression import VECTOR_DESIGNS, run_vector_regression

    if spec.name not in VECTOR_DESIGNS:
        raise CLIError(f"--vectors: design must be one of {', '.join(VECTOR_DESIGNS)}; not {spec.name}")
    if args.waves or args.count is not None:
        raise CLIError("--vectors does not take --waves or --count (the count is the --vectors value)")
    sims = list(SIMULATORS) if args.sim == "both" else [args.sim]
    count = args.vectors if args.vectors is not None else 1000
    print(f"testing {spec.name} {json.dumps(params)} on {', '.join(sims)} with vector files: "
          f"{count} random" + (" + every code pair" if args.exhaustive else ""), flush=True)
    return run_vector_regression(spec, params, sims=sims, count=count, exhaustive=bool(args.exhaustive),
                                 seed=args.seed)


def register(sub) -> None:
    s = sub.add_parser("generate", help="write the Verilog and JSON sidecar of a design")
    add_design_options(s)
    s.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    s.set_defaults(func=_cmd_generate)

    s = sub.add_parser("test", help="run the cocotb regression of a design against the golden model")
    add_design_options(s)
    s.add_argument("--sim", choices=("verilator", "icarus", "both"), default="verilator")
    s.add_argument("--exhaustive", action="store_true", help="run the exhaustive sweeps (all code pairs)")
    s.add_argument("--seed", type=int, default=None, help="random seed (printed on failure)")
    s.add_argument("--count", type=positive_int, default=None, help="random transactions per test")
    s.add_argument("--waves", action="store_true", help="always record waveforms")
    s.add_argument("--vectors", type=positive_int, default=None, metavar="N",
                   help="vector-file regression at simulator speed: N random dot products / tiles / groups "
                        "(pe, bf16-pe, maxexp, requantizer, array); --exhaustive adds every PE code pair")
    s.set_defaults(func=_cmd_test)
