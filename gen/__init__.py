"""mxsf.gen: which designs exist, their parameters resolved once, and their Verilog.

- :mod:`mxsf.gen.registry`: every generatable design by its CLI name (``pe``, ``array``, ...).
- :mod:`mxsf.gen.design`: :func:`resolve_design` checks a design's parameters once, turns a
  format name into an :class:`~mxsf.golden.formats.ElementFormat` and returns a
  :class:`Design` that the simulation and synthesis layers consume.
- :mod:`mxsf.gen.verilog`: :func:`build_verilog` (cached, parameter-keyed build folders) and
  :func:`write_design` (Verilog plus a JSON sidecar with ports, payload fields, latency).
- :mod:`mxsf.gen.built` (no Amaranth: simulator processes read it): :class:`BuiltDesign`.
- :mod:`mxsf.gen.files`: atomic writes.

Public names are imported on first use, so a cocotb process that only needs
:class:`BuiltDesign` does not load Amaranth.
"""

import importlib as _importlib

__all__ = [
    "DESIGNS", "DesignSpec", "get_design_spec", "design_names",
    "Design", "resolve_design",
    "BuiltDesign", "Port", "build_verilog", "write_design",
    "atomic_write", "write_if_changed",
]

_SOURCES = {
    "DESIGNS": "registry", "DesignSpec": "registry", "get_design_spec": "registry",
    "design_names": "registry", "Design": "design", "resolve_design": "design",
    "BuiltDesign": "built", "Port": "built", "build_verilog": "verilog", "write_design": "verilog",
    "atomic_write": "files", "write_if_changed": "files",
}


def __getattr__(name: str) -> object:
    if name in _SOURCES:
        return getattr(_importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
