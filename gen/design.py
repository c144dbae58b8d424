"""A design with its parameters resolved once: what every layer above hands around.

:func:`resolve_design` is the one place design parameters are checked: it rejects
parameters the design does not take, reports the first missing required one, turns
``fmt`` (a name or OCP alias) into an :class:`~mxsf.golden.formats.ElementFormat`, and
lets the component's constructor check every value (its ValueError names the
parameter). The :class:`Design` it returns carries the canonical parameters, the
Verilog module name, the latency and the MACs per cycle, so the simulation and
synthesis layers never re-parse a name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from mxsf.golden.formats import ElementFormat, get_format

from .built import params_json
from .registry import DesignSpec, get_design_spec

__all__ = ["Design", "DesignParamError", "resolve_design"]


class DesignParamError(ValueError):
    """A parameter a design does not take (``kind == "unknown"``) or needs (``"missing"``).

    The CLI re-words it with its option names; ``param`` and ``design`` say which.
    """

    def __init__(self, message: str, *, design: str, param: str, kind: str, takes: tuple = ()):
        super().__init__(message)
        self.design, self.param, self.kind, self.takes = design, param, kind, tuple(takes)


@dataclass(frozen=True)
class Design:
    """A registry design with checked, canonical parameters.

    Attributes
    ----------
    spec : DesignSpec
    params : dict
        Constructor keywords; ``fmt`` (when the design has one) is an ``ElementFormat``.
    top : str
        Verilog module name (the component's ``module_name``).
    latency : int
        The component's ``latency`` (cycles, see its docstring).
    macs : int
        Multiply-accumulates per cycle.
    all_params : dict
        Every constructor parameter with defaults filled in, as plain JSON values (the
        component's ``params``): the identity of the hardware.
    """

    spec: DesignSpec
    params: dict = field(hash=False)
    top: str
    latency: int
    macs: int
    all_params: dict = field(hash=False, default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fmt(self) -> ElementFormat | None:
        """The element format (None for designs without one)."""
        return self.params.get("fmt")

    @property
    def component_class(self) -> type:
        return self.spec.component_class

    def component(self):
        """A fresh component instance (to elaborate or convert)."""
        return self.component_class(**self.params)

    def probe(self):
        """A fresh instance only to inspect (signature, layouts): no unused-elaboratable warning."""
        return self.spec.instantiate(**self.params)

    def json_params(self) -> dict:
        """The parameters as plain JSON values (a format by its canonical name)."""
        return json.loads(params_json(self.params))

    def describe(self) -> str:
        """``name {json params}``, e.g. ``pe {"fmt": "mxsf", "block_size": 32, "lanes": 32}``."""
        return f"{self.name} {json.dumps(self.json_params())}"


def resolve_design(name: str | DesignSpec, params: Mapping[str, Any]) -> Design:
    """Check ``params`` against design ``name`` and resolve them once.

    ``None`` values count as not given. Raises :class:`DesignParamError` (a ValueError)
    for an unknown or missing parameter, ValueError for an unknown design or a value the
    component rejects (TypeErrors from the constructor are re-raised as ValueError:
    parameters that reach here can only be wrong in value).
    """
    spec = name if isinstance(name, DesignSpec) else get_design_spec(name)
    given = {k: v for k, v in params.items() if v is not None}
    unknown = [k for k in given if k not in spec.params]
    if unknown:
        raise DesignParamError(
            f"design {spec.name!r} takes no parameter {unknown[0]!r} "
            f"(its parameters: {', '.join(spec.params) or 'none'})",
            design=spec.name, param=unknown[0], kind="unknown", takes=spec.params)
    missing = [p for p in spec.required_params if p not in given]
    if missing:
        raise DesignParamError(f"design {spec.name!r} needs parameter {missing[0]!r}",
                               design=spec.name, param=missing[0], kind="missing", takes=spec.params)
    resolved = {p: given[p] for p in spec.params if p in given}
    if "fmt" in resolved:
        resolved["fmt"] = get_format(resolved["fmt"], param="fmt")
    try:
        component = spec.instantiate(**resolved)
    except TypeError as error:
        raise ValueError(str(error)) from None
    return Design(spec=spec, params=resolved, top=component.module_name,
                  latency=component.latency, macs=int(spec.macs(component)),
                  all_params=json.loads(params_json(component.params)))
