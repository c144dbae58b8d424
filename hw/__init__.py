"""mxsf.hw: Amaranth components of MX datapaths.

Blocks: :class:`~mxsf.hw.pe.MXProcessingElement` (the MX PE),
:class:`~mxsf.hw.bf16_pe.BF16ProcessingElement` (the BF16 baseline),
:class:`~mxsf.hw.maxexp.BlockMaxExponent`, :class:`~mxsf.hw.requant.TileRequantizer`,
:class:`~mxsf.hw.systolic.SystolicArray`, :class:`~mxsf.hw.tilebuf.TileBuffer` and
:class:`~mxsf.hw.gemm.MXGemm`; shared units in :mod:`mxsf.hw.fp32` and
:mod:`mxsf.hw.formats`. :mod:`mxsf.hw.registry` lists every design by its CLI name.
"""

from .bf16_pe import BF16ProcessingElement
from .formats import ElementDecoder
from .fp32 import Float32Adder, IntToFloat32
from .gemm import MXGemm
from .maxexp import BlockMaxExponent
from .pe import MXProcessingElement
from .registry import DESIGNS, get_design_spec
from .requant import ElementEncoder, TileRequantizer
from .systolic import SystolicArray
from .tilebuf import TileBuffer

__all__ = [
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
    "DESIGNS",
    "get_design_spec",
]
