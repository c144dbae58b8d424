"""mxsf.hw: Amaranth components of MX datapaths, every one an :class:`~mxsf.hw.base.MXComponent`
(``params``, ``module_name``, ``latency``; ``probe()`` builds one only to inspect it).

Blocks: :class:`~mxsf.hw.pe.MXProcessingElement` (the MX PE),
:class:`~mxsf.hw.bf16_pe.BF16ProcessingElement` (the BF16 baseline),
:class:`~mxsf.hw.maxexp.BlockMaxExponent`, :class:`~mxsf.hw.requant.TileRequantizer`,
:class:`~mxsf.hw.systolic.SystolicArray`, :class:`~mxsf.hw.tilebuf.TileBuffer` and
:class:`~mxsf.hw.gemm.MXGemm`; shared units in :mod:`mxsf.hw.fp32` and
:mod:`mxsf.hw.formats`; port layouts (``Float32``, ``BFloat16``, ``E8M0``, ``element_layout``)
in :mod:`mxsf.hw.layouts`. The designs by CLI name are in :mod:`mxsf.gen.registry`.
"""

from .base import MXComponent
from .bf16_pe import BF16ProcessingElement
from .formats import ElementDecoder
from .fp32 import Float32Adder, IntToFloat32
from .gemm import MXGemm
from .layouts import E8M0, BFloat16, Float32, element_layout
from .maxexp import BlockMaxExponent
from .pe import MXProcessingElement
from .requant import ElementEncoder, TileRequantizer
from .systolic import SystolicArray
from .tilebuf import TileBuffer

__all__ = [
    "MXComponent",
    "MXProcessingElement",
    "BF16ProcessingElement",
    "BlockMaxExponent",
    "TileRequantizer",
    "SystolicArray",
    "TileBuffer",
    "MXGemm",
    "ElementDecoder",
    "ElementEncoder",
    "Float32Adder",
    "IntToFloat32",
    "Float32",
    "BFloat16",
    "E8M0",
    "element_layout",
]
