"""mxsf: generator of synthesizable hardware for microscaling (MX) number formats.

Layers, each a top-level folder of the repository (docs/ARCHITECTURE.md): :mod:`mxsf.golden`
(the SPEC model, NumPy only), :mod:`mxsf.hw` (Amaranth components), :mod:`mxsf.gen`
(design registry, parameters, Verilog), :mod:`mxsf.sim` (cocotb harness and testbenches),
:mod:`mxsf.synth` (synthesis flow and reports), :mod:`mxsf.studies` (accuracy study,
training demo), :mod:`mxsf.cli` (the ``mxsf`` command).
"""

import time as _time

__version__ = "0.1.0"

#: When this process imported the package (``time.time_ns()``): the Verilog conversion
#: cache of :mod:`mxsf.gen.verilog` is used only while no source file is newer.
IMPORTED_AT_NS = _time.time_ns()
