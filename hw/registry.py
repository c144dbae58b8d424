"""The designs mxsf generates, by the name the CLI, the simulator harness and the
synthesis flow use for them.

Each entry names its Amaranth component (imported lazily, so one missing block
does not hide the others), the constructor parameters it takes from the command
line, and how many multiply-accumulates it performs per cycle (for area per MAC).
"""

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
        CLI name (``pe``, ``bf16-pe``, ...).
    target : str
        ``"module:Class"`` of the component, below ``mxsf.hw``.
    params : tuple of str
        Constructor keyword parameters, in CLI order.
    description : str
    macs : callable
        ``macs(component) -> int``: multiply-accumulates per cycle (0 if none).
    test_module : str or None
        cocotb test module (under ``mxsf.sim.tests``) of its regression.
    """

    name: str
    target: str
    params: tuple
    description: str
    macs: Callable = lambda c: 0
    test_module: str = None

    @property
    def component_class(self):
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(f"mxsf.hw.{module}"), cls)

    @property
    def available(self) -> bool:
        try:
            self.component_class
        except (ImportError, AttributeError):
            return False
        return True

    @property
    def required_params(self) -> list:
        """Constructor parameters without a default value."""
        sig = inspect.signature(self.component_class.__init__)
        return [name for name, p in sig.parameters.items()
                if name != "self" and p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def select_params(self, values: dict) -> dict:
        """The constructor keywords of this design present (not None) in ``values``."""
        return {p: values[p] for p in self.params if values.get(p) is not None}

    def instantiate(self, **params):
        """Build the component; bad parameters raise ValueError/TypeError from it.

        The object is often made only to check parameters or read properties (latency,
        MACs), so Amaranth's "created but never used" warning is silenced for it, before
        ``__init__`` runs: an object whose constructor rejects a parameter is never used
        either."""
        cls = self.component_class
        component = cls.__new__(cls, **params)
        component._MustUse__silence = True
        component.__init__(**params)
        return component


DESIGNS = {d.name: d for d in [
    DesignSpec("pe", "pe:MXProcessingElement", ("fmt", "block_size", "lanes"),
               "MX processing element: exact block dot products, float32 accumulation",
               macs=lambda c: c.lanes, test_module="pe_tests"),
    DesignSpec("bf16-pe", "bf16_pe:BF16ProcessingElement", ("lanes",),
               "BF16 baseline PE: float32 product and accumulation per element",
               macs=lambda c: c.lanes, test_module="bf16_pe_tests"),
    DesignSpec("maxexp", "maxexp:BlockMaxExponent", ("n", "lanes", "stages"),
               "block max-exponent finder (float32 inputs)", test_module="maxexp_tests"),
    DesignSpec("requantizer", "requant:TileRequantizer", ("fmt", "rows", "cols", "lanes", "stages"),
               "tile re-quantizer: float32 tile to one E8M0 scale and element codes",
               test_module="requant_tests"),
    DesignSpec("array", "systolic:SystolicArray", ("fmt", "rows", "cols", "block_size", "lanes"),
               "output-stationary systolic array of PEs",
               macs=lambda c: c.rows * c.cols * c.lanes, test_module="systolic_tests"),
    DesignSpec("gemm", "gemm:MXGemm", ("fmt", "rows", "cols", "block_size", "lanes", "dim"),
               "MX GEMM: tile buffers, systolic array and output re-quantizer",
               macs=lambda c: c.rows * c.cols * c.lanes, test_module="gemm_tests"),
]}
"""Every design, by CLI name (some may not be available yet: see ``available``)."""


def design_names(available_only: bool = True) -> list:
    return [n for n, d in DESIGNS.items() if d.available or not available_only]


def get_design_spec(name: str) -> DesignSpec:
    """The :class:`DesignSpec` called ``name``; ValueError naming the available ones otherwise."""
    d = DESIGNS.get(name)
    if d is None or not d.available:
        raise ValueError(f"design must be one of {', '.join(design_names())}; not {name!r}")
    return d
