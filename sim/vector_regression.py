"""``mxsf test DESIGN --vectors N`` / ``--exhaustive``: vector-file regressions with one
progress line per run (the format of :func:`mxsf.sim.regression.run_regression`).

Each run builds the design's Verilog (:func:`~mxsf.sim.build.build_verilog`) and vector
testbench (cached), generates seeded stimulus and the golden expectation
(:mod:`mxsf.sim.vector_benches`), runs it and prints
``PASS <design>.<case> [<sim>] (<s> s: <beats> beats, <checked> results checked, <rate> beats/s)``
or ``FAIL ...`` with the mismatch report, then ``N passed, M failed``.
"""

from __future__ import annotations

import sys
import time
from typing import Sequence, TextIO

import numpy as np

from mxsf.gen.verilog import build_verilog

from .run import SIMULATORS, BuildError, Simulator, SimulatorUnavailable
from .vector_benches import (VectorResult, array_case, bf16_pe_case, gemm_case, gemm_runs, maxexp_case,
                             pe_pairs_case, pe_random_case, requant_case, run_case)
from .vectors import VectorRunError

__all__ = ["VECTOR_DESIGNS", "run_vector_regression"]

#: Designs with a vector regression.
VECTOR_DESIGNS = ("pe", "bf16-pe", "maxexp", "requantizer", "array", "gemm")
#: Dot products (or transactions) per simulator run; a larger count is split in batches.
BATCH = 250_000
#: GEMM: simulated cycles per batch of runs (each batch loads fresh operands from reset).
GEMM_BATCH_CYCLES = 2_000_000


def _cases(name: str, design, component, *, count: int, exhaustive: bool, seed: int):
    """Yield (case name, thunk making the case) for a design."""
    if name == "pe":
        from . import pe_stimulus as stim

        if exhaustive:
            fmt = component.fmt.name
            yield "code_pairs", lambda: pe_pairs_case(design, component, seed=seed, scales=stim.pair_scale_sets(fmt))
        for k, start in enumerate(range(0, count, BATCH)):
            n = min(BATCH, count - start)
            yield (f"random_dots[{start}:{start + n}]" if count > BATCH else "random_dots",
                   lambda n=n, k=k: pe_random_case(design, component, count=n, seed=seed + 7919 * k))
    elif name == "bf16-pe":
        from . import pe_stimulus as stim

        for k, start in enumerate(range(0, count, BATCH)):
            n = min(BATCH, count - start)
            yield "random_dots", lambda n=n, k=k: bf16_pe_case(
                design, component, stim.random_bf16_dots(np.random.default_rng([seed, k]), lanes=component.lanes,
                                                         count=n), seed=seed + k)
    elif name == "maxexp":
        from .tests.maxexp_tests import random_group_bits, special_group_bits

        rng = np.random.default_rng(seed)
        n = component.n
        yield "groups", lambda: maxexp_case(design, component, random_group_bits(rng, n, count)
                                            + special_group_bits(rng, n), seed=seed)
    elif name == "requantizer":
        from .tests.requant_tests import random_tile_bits, special_tile_bits

        rng = np.random.default_rng(seed)
        n = component.rows * component.cols
        fmt = component.fmt.name
        yield "tiles", lambda: requant_case(design, component, random_tile_bits(rng, n, count)
                                            + special_tile_bits(rng, fmt, n), seed=seed)
    elif name == "array":
        from .tests.systolic_tests import beat_payload, random_tile_beats

        def make():
            rng = np.random.default_rng(seed)
            fmt = component.fmt.name
            beats = random_tile_beats(rng, fmt, component.rows, component.cols, block_size=component.block_size,
                                      lanes=component.lanes, count=count)
            bf16 = fmt == "bf16"
            values: dict = {}
            for b in beats:
                for key, v in _leaves("i", beat_payload(b, bf16)):
                    values.setdefault(key, []).append(v)
            return array_case(design, component, values, len(beats), seed=seed)
        yield "random_tiles", make
    elif name == "gemm":
        from mxsf.golden.quantize import quantize_tiles

        from .tests.gemm_tests import gemm_operands

        g = component
        per_run = g.latency + 2 * g.tiles * (g.tile_period + g.rows)        # about, with stalls
        per_batch = max(1, GEMM_BATCH_CYCLES // per_run)

        def make(n, k):
            rng = np.random.default_rng([seed, k, 0x6e33])
            xa, xb = gemm_operands(rng, g)
            tile = (g.block_size, g.block_size)
            qa, qb = quantize_tiles(xa, g.fmt, tile), quantize_tiles(xb, g.fmt, tile)
            return gemm_case(design, g, qa, qb, gemm_runs(rng, count=n), seed=seed + 7919 * k)
        for k, start in enumerate(range(0, count, per_batch)):
            n = min(per_batch, count - start)
            yield (f"runs[{start}:{start + n}]" if count > per_batch else "runs", lambda n=n, k=k: make(n, k))
    else:
        raise ValueError(f"design must be one of {', '.join(VECTOR_DESIGNS)} for --vectors; not {name!r}")


def _leaves(prefix, value):
    """Flatten nested dicts/lists of a payload to ``(leaf name, int)`` pairs."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(f"{prefix}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(f"{prefix}[{i}]", v)
    else:
        yield prefix, int(value)


def run_vector_regression(design, *, sims: Sequence[Simulator] = ("verilator",), count: int = 1000,
                          exhaustive: bool = False, seed: int | None = None, encoding: str = "bin",
                          root: str = "build", out: TextIO | None = None) -> int:
    """Run the vector regression of a :class:`mxsf.gen.design.Design`.

    Parameters
    ----------
    design : Design
        From :func:`mxsf.gen.design.resolve_design` (e.g. ``resolve_design("pe", {...})``).
    sims : sequence of "verilator", "icarus"
    encoding : "bin" or "hex"
        Stimulus file encoding (see :mod:`mxsf.sim.vectors`).
    count : int
        Random dot products (PE), tiles or groups; GEMM runs (``start`` commands: the four
        transpose choices, stalled and back-to-back runs, see
        :func:`~mxsf.sim.vector_benches.gemm_runs`) on operands loaded once per batch.
    exhaustive : bool
        PE: also every code pair x {neutral, subnormal, overflow} scales.
    seed : int, optional
        Stimulus seed (a random one is drawn and printed when None).

    Returns
    -------
    int
        0 when everything passed, else 1.

    Raises
    ------
    ValueError
        A design without a vector regression, a bad simulator name or count.
    """
    name = design.name
    if name not in VECTOR_DESIGNS:
        raise ValueError(f"design must be one of {', '.join(VECTOR_DESIGNS)} for --vectors; not {name!r}")
    for sim in sims:
        if sim not in SIMULATORS:
            raise ValueError(f"sims must be among {SIMULATORS}, not {sim!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    out = out if out is not None else sys.stdout
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (1 << 31))
    component = design.probe()
    built = build_verilog(design.component_class, design.params, name=design.top, root=root)
    passed = failed = 0
    for sim in sims:
        for label, make in _cases(name, built, component, count=count, exhaustive=exhaustive, seed=seed):
            start = time.monotonic()
            try:
                case = make()
                result: VectorResult = run_case(case, sim, encoding=encoding)
            except (SimulatorUnavailable, BuildError, VectorRunError) as exc:
                print(f"FAIL {name}.{label} [{sim}]: {exc}".replace("\n", "\n    "), file=out)
                failed += 1
                continue
            wall = time.monotonic() - start
            if result.passed:
                rate = result.beats / max(result.sim_seconds, 1e-9)
                print(f"PASS {name}.{label} [{sim}] ({wall:.2f} s: {result.beats} beats, "
                      f"{case.results or result.compared_outputs} results checked, simulator {result.sim_seconds:.2f} s "
                      f"= {rate:,.0f} beats/s)", file=out)
                passed += 1
            else:
                print(f"FAIL {name}.{label} [{sim}]: {result.report}".replace("\n", "\n    "), file=out)
                print(f"     rerun with --seed {seed}", file=out)
                failed += 1
            out.flush()
    print(f"{passed} passed, {failed} failed", file=out)
    return 0 if failed == 0 else 1
