"""Shared pytest fixtures: simulators (skip or fail when absent) and the build folder."""

from simsupport import build_root, pytest_collection_modifyitems, simulator

__all__ = ["build_root", "pytest_collection_modifyitems", "simulator"]
