"""The base of every mxsf hardware block: parameters, module name, latency.

:class:`MXComponent` is a :class:`amaranth.lib.wiring.Component` that also records the
keyword arguments it was built with (:attr:`~MXComponent.params`), names itself for
Verilog (:attr:`~MXComponent.module_name`) and states its :attr:`~MXComponent.latency`
as a read-only property. :meth:`MXComponent.probe` builds an instance only to inspect it.
"""

from __future__ import annotations

from amaranth.lib import wiring

__all__ = ["MXComponent"]


class MXComponent(wiring.Component):
    """A :class:`~amaranth.lib.wiring.Component` with ``params``, ``module_name`` and ``latency``.

    Subclasses check their (keyword-only) constructor parameters first, then call
    ``super().__init__(signature, params=...)`` with the canonical parameters, and define
    the ``module_name`` and ``latency`` properties.

    Parameters
    ----------
    signature : wiring.Signature or dict or None
        As for :class:`~amaranth.lib.wiring.Component` (``None``: from the class annotations).
    params : dict
        The canonical constructor keywords: every parameter resolved (no ``None`` default
        left), a format as its canonical name (``str``), so the dict JSON-encodes and
        ``type(c)(**c.params)`` builds the same design.
    """

    def __init__(self, signature=None, *, params: dict, src_loc_at: int = 0):
        self._params = dict(params)
        super().__init__(signature, src_loc_at=src_loc_at + 1)

    @classmethod
    def probe(cls, **params):
        """Build an instance only to inspect it (parameters, signature, latency, names).

        Amaranth warns about an elaboratable that is created but never elaborated; the
        warning is silenced for this instance before ``__init__`` runs, so it stays quiet
        also when the constructor rejects a parameter (the exception propagates). Elaborating
        the instance later is allowed.
        """
        component = cls.__new__(cls, **params)
        component._MustUse__silence = True      # Amaranth's private flag (also set by mxsf.gen.verilog)
        component.__init__(**params)
        return component

    @property
    def params(self) -> dict:
        """Canonical constructor keywords (a copy; see the class docstring)."""
        return dict(self._params)

    @property
    def module_name(self) -> str:
        """Verilog module name, with the parameters in it (synthesis reports tell designs apart)."""
        raise NotImplementedError(f"{type(self).__name__} must define module_name")

    @property
    def latency(self) -> int:
        """Cycles from an input to its result, as documented under Latency (0: combinational)."""
        raise NotImplementedError(f"{type(self).__name__} must define latency")
