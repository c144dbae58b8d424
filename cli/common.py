"""Shared pieces of the command modules: the one-line error, tables, option types."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["CLIError", "Parser", "table", "positive_int", "non_negative_int", "load_npy", "first_line"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with errors raised as :class:`CLIError` (one line, exit 2), not printed."""

    def error(self, message):
        raise CLIError(message)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type name when empty)."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def table(head, rows) -> str:
    """A Markdown table of ``rows`` under ``head``, columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *map(line, rows)])


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return v


def non_negative_int(text: str) -> int:
    """argparse type: an integer in [0, 2^63) (seeds)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, not {text!r}") from None
    if v < 0 or v >= 1 << 63:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, not {text!r}")
    return v


def load_npy(path) -> np.ndarray:
    """An array from a ``.npy`` file; CLIError (one line) if missing or unreadable."""
    src = Path(path)
    if not src.is_file():
        raise CLIError(f"input file not found: {src}")
    try:
        return np.load(src, allow_pickle=False)
    except Exception as e:  # a corrupt or non-.npy file
        raise CLIError(f"cannot read {src} as a .npy array: {first_line(e)}") from None
