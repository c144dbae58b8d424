"""Parameter checks shared by every layer, with the named limits they enforce.

Each check raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a
value out of range, naming the parameter, the rule and the value (``!r``), and returns
the value (as a plain ``int``) so callers can write ``x = check_int("x", x, 1, 8)``.
Argument order is always ``(name, value, ...)``. Pure Python: no NumPy or Amaranth.
"""

from __future__ import annotations

import numbers

__all__ = [
    "MAX_BLOCK_SIZE",
    "MAX_LANES",
    "MAX_ARRAY_DIM",
    "MAX_TILE_DIM",
    "MAX_MATRIX_DIM",
    "MAX_QUANT_BLOCK",
    "check_int",
    "check_power_of_two",
    "check_divisor",
    "check_choice",
]

MAX_BLOCK_SIZE = 1024
"""Largest hardware block (elements sharing one scale along K)."""
MAX_LANES = 1024
"""Most elements a hardware beat carries."""
MAX_ARRAY_DIM = 64
"""Largest systolic-array side (rows or columns of PEs)."""
MAX_TILE_DIM = 1024
"""Largest re-quantizer tile side."""
MAX_MATRIX_DIM = 1 << 14
"""Largest matrix dimension a tile buffer stores (elements)."""
MAX_QUANT_BLOCK = 1 << 20
"""Largest block or tile side the golden quantizer accepts."""


def check_int(name: str, value, lo: int, hi: int) -> int:
    """``value`` must be an integer (not a bool) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], not {value!r}")
    return int(value)


def check_power_of_two(name: str, value, lo: int, hi: int) -> int:
    """``value`` must be a power of two in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi or value & (value - 1):
        raise ValueError(f"{name} must be a power of two in [{lo}, {hi}], not {value!r}")
    return int(value)


def check_divisor(name: str, value, total: int, total_name: str, hi: int | None = None) -> int:
    """``value`` must be an integer in ``[1, min(total, hi)]`` that divides ``total``."""
    top = total if hi is None else min(total, hi)
    check_int(name, value, 1, top)
    if total % value:
        divisors = [d for d in range(1, top + 1) if total % d == 0]
        shown = divisors if len(divisors) <= 16 else divisors[:8] + ["..."] + divisors[-4:]
        raise ValueError(f"{name} must divide {total_name}={total} (one of {shown}), not {value!r}")
    return int(value)


def check_choice(name: str, value, choices):
    """``value`` must be one of ``choices`` (compared with ``==``)."""
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; not {value!r}")
    return value
