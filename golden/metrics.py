"""Quantization error figures (max abs error, RMSE, SQNR) and sample tensors."""

from __future__ import annotations

import numpy as np

from .quantize import as_float32

__all__ = ["error_stats", "sample_tensor"]


def error_stats(x, xq) -> dict:
    """Error of ``xq`` against reference ``x`` over the finite entries of ``x``.

    Returns ``max_abs``, ``rmse`` and ``sqnr_db`` (10 log10 of signal over error
    energy; ``inf`` for an exact match), plus ``n`` (entries compared).
    """
    x = as_float32(x).astype(np.float64).ravel()
    xq = as_float32(xq, "xq").astype(np.float64).ravel()
    if x.shape != xq.shape:
        raise ValueError(f"xq must have the shape of x, {x.shape}, not {xq.shape}")
    keep = np.isfinite(x)
    x, xq = x[keep], xq[keep]
    err = xq - x
    sig = float(np.sum(x * x))
    noise = float(np.sum(err * err)) if err.size else 0.0
    if noise == 0.0:
        sqnr = float("inf")
    elif sig == 0.0:
        sqnr = float("-inf")
    else:
        sqnr = 10.0 * np.log10(sig / noise)
    return {
        "n": int(x.size),
        "max_abs": float(np.max(np.abs(err))) if err.size else 0.0,
        "rmse": float(np.sqrt(noise / err.size)) if err.size else 0.0,
        "sqnr_db": sqnr,
    }


def sample_tensor(rows: int = 256, cols: int = 256, seed: int = 0) -> np.ndarray:
    """A float32 matrix like a layer's activations: Gaussian rows whose scales spread
    over several binades, plus a few rare large outliers (fixed seed)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    x *= np.exp2(rng.uniform(-4, 4, size=(rows, 1)))
    outliers = rng.random((rows, cols)) < 1e-3
    x[outliers] *= 50.0
    return x.astype(np.float32)
