"""The designs mxsf generates, by the name every command uses for them.

Each entry names its Amaranth component (``module:Class`` below :mod:`mxsf.hw`), the
constructor parameters it takes, and how many multiply-accumulates it performs per
cycle (for area and energy per MAC). The registry knows nothing of its consumers: the
simulation layer maps designs to testbenches, the CLI maps parameters to options.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Callable

__all__ = ["DesignSpec", "DESIGNS", "get_design_spec", "design_names"]


@dataclass(frozen=True)
class DesignSpec:
    """One generatable design.

    Attributes
    ----------
    name : str
        Design name (``pe``, ``bf16-pe``, ...).
    target : str
        ``"module:Class"`` of the component, below ``mxsf.hw``.
    params : tuple of str
        Constructor keyword parameters, in the order options are listed.
    description : str
    macs : callable
        ``macs(component) -> int``: multiply-accumulates per cycle (0 if none).
    """

    name: str
    target: str
    params: tuple
    description: str
    macs: Callable = lambda c: 0

    @property
    def component_class(self) -> type:
        """The component class (an import error propagates: a broken block must fail loudly)."""
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(f"mxsf.hw.{module}"), cls)

    @property
    def required_params(self) -> list:
        """Constructor parameters without a default value."""
        sig = inspect.signature(self.component_class.__init__)
        return [name for name, p in sig.parameters.items()
                if name != "self" and p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def instantiate(self, **params):
        """Build the component only to inspect it (parameters, latency, ports).

        Bad parameters raise ValueError/TypeError from the constructor. Amaranth's
        "created but never elaborated" warning is off for such an object."""
        return self.component_class.probe(**params)


DESIGNS = {d.name: d for d in [
    DesignSpec("pe", "pe:MXProcessingElement", ("fmt", "block_size", "lanes", "acc"),
               "MX processing element: exact block dot products, float32 accumulation",
               macs=lambda c: c.lanes),
    DesignSpec("bf16-pe", "bf16_pe:BF16ProcessingElement", ("lanes",),
               "BF16 baseline PE: float32 product and accumulation per element",
               macs=lambda c: c.lanes),
    DesignSpec("maxexp", "maxexp:BlockMaxExponent", ("n", "lanes", "stages"),
               "block max-exponent finder (float32 inputs)"),
    DesignSpec("requantizer", "requant:TileRequantizer",
               ("fmt", "rows", "cols", "lanes", "stages", "scale_rounding", "rounding", "sr_bits", "seed"),
               "tile re-quantizer: float32 tile to one E8M0 scale and element codes"),
    DesignSpec("array", "systolic:SystolicArray", ("fmt", "rows", "cols", "block_size", "lanes", "acc"),
               "output-stationary systolic array of PEs",
               macs=lambda c: c.rows * c.cols * c.lanes),
    DesignSpec("gemm", "gemm:MXGemm", ("fmt", "rows", "cols", "block_size", "lanes", "dim",
                                       "scale_rounding", "rounding", "sr_bits", "seed"),
               "MX GEMM: tile buffers, systolic array and output re-quantizer",
               macs=lambda c: c.rows * c.cols * c.lanes),
]}
"""Every design, by name."""


def design_names() -> list:
    """The design names, in registry order."""
    return list(DESIGNS)


def get_design_spec(name: str) -> DesignSpec:
    """The :class:`DesignSpec` called ``name``; ValueError naming the designs otherwise."""
    d = DESIGNS.get(name)
    if d is None:
        raise ValueError(f"design must be one of {', '.join(design_names())}; not {name!r}")
    return d
