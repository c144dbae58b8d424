"""mxsf.sim"""

# Host-side API, imported lazily so that cocotb test modules running inside the
# simulator (which import mxsf.sim.cocotb_lib) do not load Amaranth and the runner.
import importlib as _importlib

__all__ = [
    "BuiltDesign", "Port", "build_verilog",
    "SIMULATORS", "SimulatorUnavailable", "BuildError", "RunResult", "TestCaseResult",
    "available_simulators", "build_simulator", "run_cocotb",
    "RegressionTest", "run_regression",
]

_SOURCES = {
    "BuiltDesign": "design", "Port": "design", "build_verilog": "build",
    "SIMULATORS": "run", "SimulatorUnavailable": "run", "BuildError": "run", "RunResult": "run",
    "TestCaseResult": "run", "available_simulators": "run", "build_simulator": "run",
    "run_cocotb": "run", "RegressionTest": "regression", "run_regression": "regression",
}


def __getattr__(name: str) -> object:
    """Import the public names on first use."""
    if name in _SOURCES:
        return getattr(_importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
