"""mxsf: generator of synthesizable hardware for microscaling (MX) number formats.

Subpackages: :mod:`mxsf.golden` (bit-exact NumPy model), :mod:`mxsf.hw` (Amaranth
components), :mod:`mxsf.sim` (cocotb harness), :mod:`mxsf.synth` (Yosys flow).
"""

__version__ = "0.1.0"
