"""The stochastic-rounding random bits in hardware (docs/stochastic_rounding.md).

:func:`sr_mix` builds the 32-bit mixing function of :func:`mxsf.golden.options.sr_mix`
(four rounds of ``x ^= x >> a; x += x << b``): per round one XOR row and one adder of
``32 - b`` bits (the low ``b`` bits pass through). No multipliers.
"""

from amaranth import Cat, Signal

from mxsf.golden.options import SR_MIX_ROUNDS, SR_WEYL, sr_mix as golden_sr_mix

__all__ = ["sr_mix", "sr_mix_constant", "SR_WEYL"]


def sr_mix(m, value, name: str) -> Signal:
    """A 32-bit Signal driven (in ``m.d.comb``) with ``mix(value)``; one Signal per round."""
    x = Signal(32, name=f"{name}_in")
    m.d.comb += x.eq(value)
    for k, (a, b) in enumerate(SR_MIX_ROUNDS):
        xs = Signal(32, name=f"{name}_x{k}")
        m.d.comb += xs.eq(x ^ (x >> a))
        xa = Signal(32, name=f"{name}_a{k}")
        m.d.comb += xa.eq(Cat(xs[:b], (xs[b:] + xs[:32 - b])[:32 - b]))   # xs + (xs << b) mod 2^32
        x = xa
    return x


def sr_mix_constant(value: int) -> int:
    """``mix(value)`` of a constant, computed at elaboration (the seed's ``mix(seed)``)."""
    return int(golden_sr_mix(value))
