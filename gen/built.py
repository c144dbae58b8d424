"""Description of a generated design: what its Verilog is and where it lives.

This module imports neither Amaranth nor cocotb (simulator processes read it):
:func:`mxsf.gen.verilog.build_verilog` creates a :class:`BuiltDesign`; the simulation
layer serialises it to JSON for the cocotb process (:mod:`mxsf.sim.run`,
:func:`mxsf.sim.cocotb_lib.get_design`) and the synthesis layer reads its Verilog.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from mxsf.golden.formats import ElementFormat

__all__ = ["Port", "BuiltDesign", "params_json"]


@dataclass(frozen=True)
class Port:
    """One port of the top-level Verilog module.

    Parameters
    ----------
    name : str
        Verilog port name; Amaranth joins a signature path with ``__`` (``i__payload``).
    direction : "in" or "out"
        Direction seen from the design.
    width : int
        Width in bits.
    """

    name: str
    direction: Literal["in", "out"]
    width: int


def _json_default(value: object) -> object:
    """Encode the non-JSON parameter values that generators use (formats, enums, paths, sets)."""
    if isinstance(value, ElementFormat):
        return value.name               # an element format is known by its canonical name
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def params_json(params: Mapping[str, Any]) -> str:
    """Return the canonical JSON text of ``params`` (sorted keys, no whitespace).

    It is the input of the build-directory hash, so equal parameters give equal text.
    """
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), default=_json_default)


@dataclass(frozen=True)
class BuiltDesign:
    """A component converted to Verilog.

    Parameters
    ----------
    top : str
        Name of the top-level Verilog module.
    verilog_path : Path
        Absolute path of ``<top>.v``.
    build_dir : Path
        Folder of this design (``<root>/<top>-<hash>``); simulator builds, runs and
        waveforms go below it.
    params : dict
        Constructor keyword arguments, as given.
    ports : tuple of Port
        Ports of the top-level module, in Verilog declaration order (``clk``/``rst``
        included when the design has a ``sync`` domain).
    latency : int or None
        The component's ``latency`` attribute, if it has one.
    const_ports : dict
        Signature members tied to a constant (e.g. ``i__ready`` of an ``always_ready``
        stream); they are not Verilog ports.
    verilog_sha256 : str
        Hash of the Verilog text; simulator builds are cached on it.
    """

    top: str
    verilog_path: Path
    build_dir: Path
    params: Mapping[str, Any]
    ports: tuple[Port, ...]
    latency: int | None = None
    const_ports: Mapping[str, int] = field(default_factory=dict)
    verilog_sha256: str = ""

    def port(self, name: str) -> Port:
        """Return the port called ``name``; raise KeyError listing the ports otherwise."""
        for port in self.ports:
            if port.name == name:
                return port
        raise KeyError(f"design {self.top!r} has no port {name!r}; ports: {[p.name for p in self.ports]}")

    @property
    def inputs(self) -> tuple[Port, ...]:
        """Input ports."""
        return tuple(p for p in self.ports if p.direction == "in")

    @property
    def outputs(self) -> tuple[Port, ...]:
        """Output ports."""
        return tuple(p for p in self.ports if p.direction == "out")

    def to_json(self) -> str:
        """Serialise to JSON (parameters through :func:`params_json`)."""
        return json.dumps({
            "top": self.top,
            "verilog_path": str(self.verilog_path),
            "build_dir": str(self.build_dir),
            "params": json.loads(params_json(self.params)),
            "ports": [[p.name, p.direction, p.width] for p in self.ports],
            "latency": self.latency,
            "const_ports": dict(self.const_ports),
            "verilog_sha256": self.verilog_sha256,
        }, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> BuiltDesign:
        """Inverse of :meth:`to_json` (enum parameters come back as strings)."""
        obj = json.loads(text)
        return cls(
            top=obj["top"],
            verilog_path=Path(obj["verilog_path"]),
            build_dir=Path(obj["build_dir"]),
            params=obj["params"],
            ports=tuple(Port(name, direction, width) for name, direction, width in obj["ports"]),
            latency=obj["latency"],
            const_ports=obj["const_ports"],
            verilog_sha256=obj["verilog_sha256"],
        )
