"""mxsf.golden: the bit-exact NumPy model of SPEC.md (formats, quantization, matmul).

Pure NumPy: nothing here imports Amaranth or cocotb.
"""

from .formats import *  # noqa: F401,F403
from .formats import __all__ as _formats_all
from .quantize import *  # noqa: F401,F403
from .quantize import __all__ as _quantize_all

from .matmul import *  # noqa: F401,F403
from .matmul import __all__ as _matmul_all

from .metrics import *  # noqa: F401,F403
from .metrics import __all__ as _metrics_all

from .bdr import *  # noqa: F401,F403
from .bdr import __all__ as _bdr_all

from .options import Accumulator, Rounding, ScaleRounding  # noqa: F401

__all__ = [*_formats_all, *_quantize_all, *_matmul_all, *_metrics_all, *_bdr_all,
           "Accumulator", "Rounding", "ScaleRounding"]
