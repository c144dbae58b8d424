"""mxsf.cli: the ``mxsf`` command (:func:`main`); one module per command group.

``quantize`` (formats, quantize), ``hw`` (generate, test), ``synth`` (synth, compare),
``accuracy`` (accuracy, train-demo), ``demo``; shared pieces in ``common``.
"""

from .main import main

__all__ = ["main"]
