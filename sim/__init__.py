"""mxsf.sim: the cocotb harness, the testbenches of every block, and their stimulus.

Host side: :mod:`mxsf.sim.run` (simulator builds cached by Verilog hash, cocotb runs),
:mod:`mxsf.sim.regression` (a design's regression with progress lines, for ``mxsf test``).
Simulator side: :mod:`mxsf.sim.cocotb_lib` (drivers, monitors, per-cycle scoreboard) and
the testbench modules in :mod:`mxsf.sim.tests`. Designs and their Verilog come from
:mod:`mxsf.gen`.
"""

# Host-side API, imported lazily so that cocotb test modules running inside the
# simulator (which import mxsf.sim.cocotb_lib) do not load Amaranth and the runner.
import importlib as _importlib

__all__ = [
    "SIMULATORS", "SimulatorUnavailable", "BuildError", "RunResult", "TestCaseResult",
    "available_simulators", "build_simulator", "run_cocotb",
    "TESTBENCHES", "RegressionTest", "design_regression", "run_regression",
]

_SOURCES = {
    "SIMULATORS": "run", "SimulatorUnavailable": "run", "BuildError": "run", "RunResult": "run",
    "TestCaseResult": "run", "available_simulators": "run", "build_simulator": "run",
    "run_cocotb": "run", "TESTBENCHES": "regression", "RegressionTest": "regression",
    "design_regression": "regression", "run_regression": "regression",
}


def __getattr__(name: str) -> object:
    """Import the public names on first use."""
    if name in _SOURCES:
        return getattr(_importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
