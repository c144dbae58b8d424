"""Convert an Amaranth component to Verilog in a cached, parameter-keyed build folder.

:func:`build_verilog` is deterministic and idempotent: equal parameters give the same
folder ``<root>/<top>-<hash>/`` and the same ``<top>.v``, and the file is rewritten only
when its text changes (so simulator builds cached on it stay valid). Writes go through a
temporary file and an atomic rename, so pytest-xdist workers may build the same design
at the same time.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from amaranth.back import verilog
from amaranth.hdl import Const, Value, ValueCastable
from amaranth.lib import wiring

from .design import BuiltDesign, Port, params_json

__all__ = ["build_verilog", "default_top_name", "write_if_changed", "read_verilog_ports"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def default_top_name(component_cls: type) -> str:
    """Return the snake_case form of a class name (``ExampleMac`` gives ``example_mac``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", component_cls.__name__).lower()


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless it already holds exactly that text.

    Returns
    -------
    bool
        Whether the file was (re)written.
    """
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


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
    text = verilog.convert(component, name=top, ports=ports, emit_src=False)

    key = f"{component_cls.__module__}.{component_cls.__qualname__}\n{params_json(params)}"
    build_dir = (Path(root) / f"{top}-{hashlib.sha256(key.encode()).hexdigest()[:10]}").resolve()
    verilog_path = build_dir / f"{top}.v"
    write_if_changed(verilog_path, text)

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
