"""Shared pytest fixtures: simulators (skip or fail when absent) and the build folder."""

from mxsf.sim.pytest_support import build_root, pytest_collection_modifyitems, simulator

__all__ = ["build_root", "pytest_collection_modifyitems", "simulator"]
