"""mxsf.hw: Amaranth components of MX datapaths.

Blocks: :class:`~mxsf.hw.pe.MXProcessingElement` (the MX PE),
:class:`~mxsf.hw.bf16_pe.BF16ProcessingElement` (the BF16 baseline), the float32
units of :mod:`mxsf.hw.fp32` and the element decoder of :mod:`mxsf.hw.formats`.
:mod:`mxsf.hw.registry` lists every design by its CLI name.
"""

from .bf16_pe import BF16ProcessingElement
from .formats import ElementDecoder
from .fp32 import Float32Adder, IntToFloat32
from .pe import MXProcessingElement
from .registry import DESIGNS, get_design_spec

__all__ = [
    "MXProcessingElement",
    "BF16ProcessingElement",
    "ElementDecoder",
    "Float32Adder",
    "IntToFloat32",
    "DESIGNS",
    "get_design_spec",
]
