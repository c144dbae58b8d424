"""Quantization accuracy of every element format on named tensor distributions.

Each distribution is made here, in code, from a fixed seed, so the figures are
reproducible everywhere. For a format and a tensor the module reports, for 1D
blocks (``block_size`` consecutive elements along the last axis, SPEC.md 4) and
for 2D tiles (``tile`` rows x cols sharing one scale):

* **SQNR** (dB): ``10 log10( sum x^2 / sum (xq - x)^2 )`` over all elements,
  computed in float64 from the float32 ``x`` and its dequantized ``xq``
  (``inf`` when ``xq == x`` everywhere);
* **max relative error**: ``max |xq - x| / |x|`` over the elements with
  ``x != 0`` (float64; an element flushed to zero has relative error 1, a
  saturated outlier can exceed 1);
* **flushed fraction**: the share of the non-zero elements whose ``xq`` is 0;
* **clipped fraction**: the share of the elements whose magnitude exceeds the largest
  value the format reaches at their block's scale, ``|x| > largest x 2^E`` (saturated;
  always 0 with ``scale_rounding="ceil"`` unless the scale clamps).

The numerics options of SPEC.md 8 and 9 (``scale_rounding``, ``rounding``, ``sr_bits``,
``seed``) pass through to the quantizer; :func:`accuracy_table` measures several scale
rules side by side.

``bf16`` is the reference: every element rounded to bfloat16
(:func:`mxsf.golden.to_bf16`); it has no blocks, so its 1D and tile figures are
the same. A format with a fixed block (the shared-microexponent ``mx9``, ``mx6``,
``mx4``: 16 elements, SPEC.md 11) is measured in its own 1D blocks whatever
``block_size`` says, has no tile figures (NaN: SPEC.md 11 defines no tiles), and takes only
``scale_rounding="floor"`` and ``rounding="rne"``. :func:`default_sqnr` gives the mean SQNR over the default
distributions, which ``mxsf compare`` plots beside area.

Pure NumPy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mxsf.golden.formats import ELEMENT_FORMATS, get_format
from mxsf.golden.matmul import to_bf16
from mxsf.golden.constants import E8M0_BIAS, E8M0_NAN
from mxsf.golden.bdr import check_bdr_options
from mxsf.golden.options import Rounding, ScaleRounding, rounding_mode, scale_rounding_mode
from mxsf.golden.quantize import as_float32, check_block_size, dequantize, quantize, quantize_tiles

__all__ = [
    "DISTRIBUTIONS",
    "DEFAULT_SIZE",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_TILE",
    "REFERENCE_FORMAT",
    "make_distribution",
    "as_matrix",
    "fake_quantize",
    "error_metrics",
    "clipped_fraction",
    "scale_rounding_modes",
    "format_accuracy",
    "accuracy_table",
    "accuracy_formats",
    "default_sqnr",
]

DEFAULT_SIZE = (256, 256)
"""Shape of the generated tensors."""
DEFAULT_BLOCK_SIZE = 32
DEFAULT_TILE = (32, 32)
REFERENCE_FORMAT = "bf16"
"""The non-MX reference (element-wise bfloat16 rounding)."""

DISTRIBUTIONS: dict[str, str] = {
    "gaussian": "N(0, 1)",
    "laplace": "Laplace, unit variance (b = 1/sqrt 2)",
    "student_t2": "Student-t, 2 degrees of freedom (infinite variance)",
    "gaussian_binades": "N(0, 1) x 2^u per row, u ~ U(-4, 4) (rows over 8 binades)",
    "gaussian_outliers": "N(0, 1), 1 element in 1000 multiplied by 100",
}
"""Name -> description of the default distributions, in table order."""


def _rows_cols(shape) -> tuple[int, int]:
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape)
            or not all(1 <= n <= 1 << 14 for n in shape)):
        raise ValueError(f"size must be a pair (rows, cols) of integers in [1, 16384], not {shape!r}")
    return int(shape[0]), int(shape[1])


def make_distribution(name: str, size=DEFAULT_SIZE, seed: int = 0) -> np.ndarray:
    """A float32 matrix drawn from the named distribution (see :data:`DISTRIBUTIONS`).

    Each distribution draws from its own generator ``default_rng([seed, index])``,
    so a tensor does not change when other distributions are added.

    Raises
    ------
    ValueError
        Unknown name, bad size or seed.
    """
    if name not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}; not {name!r}")
    rows, cols = _rows_cols(size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    rng = np.random.default_rng([int(seed), list(DISTRIBUTIONS).index(name)])
    shape = (rows, cols)
    if name == "gaussian":
        x = rng.standard_normal(shape)
    elif name == "laplace":
        x = rng.laplace(0.0, 1.0 / np.sqrt(2.0), shape)
    elif name == "student_t2":
        x = rng.standard_t(2, shape)
    elif name == "gaussian_binades":
        x = rng.standard_normal(shape) * np.exp2(rng.uniform(-4.0, 4.0, (rows, 1)))
    else:  # gaussian_outliers
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 1e-3] *= 100.0
    return x.astype(np.float32)


def as_matrix(x) -> np.ndarray:
    """``x`` as a float32 matrix for 2D tiles: a vector becomes one row, an N-D array
    ``(..., C)`` becomes ``(prod(...), C)``.

    Raises
    ------
    ValueError
        Non-float, empty, scalar or non-finite input.
    """
    a = as_float32(x)
    if a.ndim == 0 or a.size == 0:
        raise ValueError(f"x must be a non-empty array with at least one dimension, not shape {a.shape}")
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise ValueError(f"x has {bad} NaN/Inf values; accuracy is measured on finite values only")
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(-1, a.shape[-1])


def _quantized(x, f, *, block_size, tile, options):
    if tile is not None and not f.allows_tiles:
        raise ValueError(f"tile must be None for {f.name}: its blocks are 1D (SPEC.md 11), not {tile!r}")
    if f.fixed_block_size is not None:
        block_size = f.fixed_block_size
    if tile is not None:
        return quantize_tiles(x, f, tile=tuple(tile), **options)
    return quantize(x, f, block_size=block_size, axis=-1, **options)


def fake_quantize(x, fmt, *, block_size: int | None = DEFAULT_BLOCK_SIZE, tile=None, **options) -> np.ndarray:
    """``dequantize(quantize(x))``: x rounded through ``fmt`` (float32, shape of ``x``).

    With ``tile=(r, c)`` the matrix is quantized in 2D tiles, otherwise in 1D blocks of
    ``block_size`` along the last axis. ``fmt="bf16"`` rounds every element to
    bfloat16 and ignores the blocking. ``options``: ``scale_rounding``, ``rounding``,
    ``sr_bits``, ``seed`` of :func:`mxsf.golden.quantize.quantize`.
    """
    f = get_format(fmt)
    if f.name == REFERENCE_FORMAT:
        return to_bf16(x)
    return dequantize(_quantized(x, f, block_size=block_size, tile=tile, options=options))


def clipped_fraction(x, q) -> float:
    """Share of the elements of ``x`` with ``|x| > largest x 2^E`` of their block in ``q``."""
    s = q.scale_per_element().astype(np.int64)
    limit = np.ldexp(q.fmt.max_value, np.where(s == E8M0_NAN, 0, s - E8M0_BIAS))
    a = np.abs(as_float32(x).astype(np.float64))
    return float(np.mean((a > limit) & (s != E8M0_NAN)))


def scale_rounding_modes(spec="floor") -> list[str]:
    """Scale rules from ``"all"`` or a comma-separated list (``floor,ceil,even``)."""
    if isinstance(spec, str) and spec.strip().lower() == "all":
        return [m.value for m in ScaleRounding]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    modes = list(dict.fromkeys(scale_rounding_mode(i).value for i in items if not isinstance(i, str) or i.strip()))
    if not modes:
        raise ValueError(f"scale_rounding must name at least one of floor, ceil, even; not {spec!r}")
    return modes


def error_metrics(x, xq) -> dict:
    """SQNR, max relative error and flushed fraction of ``xq`` against finite ``x``.

    Returns ``{"sqnr_db", "max_rel_err", "flushed_frac", "n"}``; the definitions are
    in the module docstring (float64 arithmetic on the float32 values).
    """
    x = as_float32(x).astype(np.float64).ravel()
    xq = as_float32(xq, "xq").astype(np.float64).ravel()
    if x.shape != xq.shape:
        raise ValueError(f"xq must have the shape of x, {x.shape}, not {xq.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite")
    err = xq - x
    sig = float(np.dot(x, x))
    noise = float(np.dot(err, err))   # NaN if xq has NaN: reported as such
    if noise == 0.0:
        sqnr = float("inf")
    elif sig == 0.0:
        sqnr = float("-inf")
    else:
        sqnr = float(10.0 * np.log10(sig / noise))
    nz = x != 0
    rel = np.abs(err[nz]) / np.abs(x[nz])
    return {
        "sqnr_db": sqnr,
        "max_rel_err": float(np.max(rel)) if rel.size else 0.0,
        "flushed_frac": float(np.mean(xq[nz] == 0)) if rel.size else 0.0,
        "n": int(x.size),
    }


def _check_tile(tile) -> tuple[int, int]:
    if not isinstance(tile, (tuple, list)) or len(tile) != 2:
        raise ValueError(f"tile must be a pair (rows, cols) of positive integers, not {tile!r}")
    return check_block_size(tile[0], "tile rows"), check_block_size(tile[1], "tile cols")


def format_accuracy(x, fmt, *, block_size: int = DEFAULT_BLOCK_SIZE, tile=DEFAULT_TILE, **options) -> dict:
    """Metrics of one format on one tensor, 1D blocks and 2D tiles.

    ``x`` is taken through :func:`as_matrix`. Returns ``{"1d": metrics, "tile": metrics}``
    with the dicts of :func:`error_metrics` plus ``clipped_frac`` (the same dict twice for
    ``bf16``, whose clipped fraction is 0; NaN tile metrics and the format's own 16-element
    blocks for ``mx9``/``mx6``/``mx4``, which take only the default options: SPEC.md 11).
    ``options`` as :func:`fake_quantize`.
    """
    f = get_format(fmt)
    bs = check_block_size(block_size)
    tl = _check_tile(tile)
    m = as_matrix(x)
    if f.name == REFERENCE_FORMAT:
        r = {**error_metrics(m, to_bf16(m)), "clipped_frac": 0.0}
        return {"1d": r, "tile": dict(r)}
    if not f.allows_tiles:
        q = _quantized(m, f, block_size=bs, tile=None, options=options)
        r = {**error_metrics(m, dequantize(q)), "clipped_frac": clipped_fraction(m, q)}
        return {"1d": r, "tile": {**{k: float("nan") for k in r if k != "n"}, "n": r["n"]}}
    out = {}
    for key, kw in (("1d", dict(block_size=bs, tile=None)), ("tile", dict(block_size=None, tile=tl))):
        q = _quantized(m, f, options=options, **kw)
        out[key] = {**error_metrics(m, dequantize(q)), "clipped_frac": clipped_fraction(m, q)}
    return out


def accuracy_formats(spec="all", *, with_reference: bool = True) -> list[str]:
    """Canonical format names from ``"all"`` or a comma-separated list (OCP aliases allowed).

    ``"all"`` is every element format, then bf16 when ``with_reference``.
    """
    if isinstance(spec, str) and spec.strip().lower() == "all":
        return [*ELEMENT_FORMATS, *([REFERENCE_FORMAT] if with_reference else [])]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        n = get_format(item, param="format").name
        if n not in names:
            names.append(n)
    if not names:
        raise ValueError(f"formats must name at least one format, not {spec!r}")
    return names


def accuracy_table(formats="all", *, distributions=None, block_size: int = DEFAULT_BLOCK_SIZE,
                   tile=DEFAULT_TILE, size=DEFAULT_SIZE, seed: int = 0, tensors=None,
                   scale_rounding="floor", rounding="rne", sr_bits: int = 8, sr_seed: int = 0) -> list[dict]:
    """One row per (format, scale rule, tensor): SQNR, max relative error, flushed and clipped
    fractions, 1D and tiled.

    Parameters
    ----------
    formats : "all", str or list of str
        See :func:`accuracy_formats`.
    distributions : list of str, optional
        Names from :data:`DISTRIBUTIONS` (default: all of them, drawn at ``size``, ``seed``).
    tensors : dict of name -> array, optional
        User tensors, measured after the distributions (see :func:`as_matrix`).
    scale_rounding : str or list
        Scale rules measured side by side (:func:`scale_rounding_modes`; default ``floor``).
    rounding, sr_bits, sr_seed
        Element rounding options (SPEC.md 9); ``sr_seed`` is the generator's ``seed``.
        The BDR formats (``mx9``, ``mx6``, ``mx4``) take only ``floor`` and ``rne``
        (SPEC.md 11): they get a ``floor`` row when ``floor`` is asked for with ``rne``, and
        no row otherwise (a ValueError when such a format is the only one asked for).

    Returns
    -------
    list of dict
        Keys ``format, scale_rounding, distribution, sqnr_1d_db, sqnr_tile_db, max_rel_1d,
        max_rel_tile, flushed_1d, flushed_tile, clipped_1d, clipped_tile`` (bf16 rows: one,
        with ``scale_rounding`` "-").
    """
    names = accuracy_formats(formats)
    modes = scale_rounding_modes(scale_rounding)
    dists = list(DISTRIBUTIONS) if distributions is None else list(distributions)
    data = {d: make_distribution(d, size, seed) for d in dists}
    for k, v in (tensors or {}).items():
        data[k] = as_matrix(v)
    rows = []
    for n in names:
        if n == REFERENCE_FORMAT:
            fmodes = ["-"]
        elif get_format(n).microexp_group:          # BDR: floor and rne only (SPEC.md 11)
            fmodes = ["floor"] if "floor" in modes and rounding_mode(rounding) is Rounding.RNE else []
            if not fmodes and len(names) == 1:       # nothing else asked for: say why
                check_bdr_options(get_format(n), modes[0], rounding)
        else:
            fmodes = modes
        for mode in fmodes:
            opts = {} if mode == "-" else dict(scale_rounding=mode, rounding=rounding, sr_bits=sr_bits,
                                               seed=sr_seed)
            for d, x in data.items():
                r = format_accuracy(x, n, block_size=block_size, tile=tile, **opts)
                rows.append({
                    "format": n, "scale_rounding": mode, "distribution": d,
                    "sqnr_1d_db": r["1d"]["sqnr_db"], "sqnr_tile_db": r["tile"]["sqnr_db"],
                    "max_rel_1d": r["1d"]["max_rel_err"], "max_rel_tile": r["tile"]["max_rel_err"],
                    "flushed_1d": r["1d"]["flushed_frac"], "flushed_tile": r["tile"]["flushed_frac"],
                    "clipped_1d": r["1d"]["clipped_frac"], "clipped_tile": r["tile"]["clipped_frac"],
                })
    return rows


@lru_cache(maxsize=None)
def _default_tensors() -> tuple:
    out = []
    for d in DISTRIBUTIONS:
        x = make_distribution(d, DEFAULT_SIZE, 0)
        x.setflags(write=False)
        out.append(x)
    return tuple(out)


@lru_cache(maxsize=None)
def _default_sqnr(name: str) -> tuple[float, float]:
    s1, st = [], []
    for x in _default_tensors():
        r = format_accuracy(x, name, block_size=DEFAULT_BLOCK_SIZE, tile=DEFAULT_TILE)
        s1.append(r["1d"]["sqnr_db"])
        st.append(r["tile"]["sqnr_db"])
    return float(np.mean(s1)), float(np.mean(st))


def default_sqnr(fmt: str) -> dict:
    """Mean SQNR (dB) of ``fmt`` over the default distributions (256x256, seed 0).

    Returns ``{"sqnr_1d_db": float, "sqnr_tile_db": float}``: 1D blocks of 32 along
    the rows and 32x32 tiles. ``fmt`` may be ``"bf16"`` (both figures equal) or an
    OCP alias. Results are cached per format (about 0.1 s on first use).

    Raises
    ------
    ValueError
        Unknown format.
    """
    name = get_format(fmt).name
    s1, st = _default_sqnr(name)
    return {"sqnr_1d_db": s1, "sqnr_tile_db": st}
