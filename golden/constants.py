"""Bit-level constants of IEEE binary32, bfloat16 and the E8M0 scale (SPEC.md 2 and 5).

The one place these numbers live: the golden model and the hardware both import them.
"""

__all__ = [
    "F32_BITS", "F32_MAN_BITS", "F32_EXP_BITS", "F32_BIAS", "F32_EXP_SPECIAL",
    "F32_SIGN_MASK", "F32_ABS_MASK", "F32_INF_BITS", "F32_CANONICAL_NAN",
    "BF16_BITS", "BF16_MAN_BITS", "BF16_CANONICAL_NAN",
    "E8M0_BITS", "E8M0_BIAS", "E8M0_NAN", "E8M0_MIN_EXP", "E8M0_MAX_EXP", "E8M0_ONE",
    "DEFAULT_BLOCK_SIZE", "BDR_BLOCK_SIZE", "BDR_PAIR_SIZE", "BDR_MICROEXP_BITS",
]

# -- IEEE binary32 ---------------------------------------------------------------------
F32_BITS = 32
F32_MAN_BITS = 23
F32_EXP_BITS = 8
F32_BIAS = 127
F32_EXP_SPECIAL = 0xFF            #: exponent field of Inf and NaN
F32_SIGN_MASK = 0x8000_0000
F32_ABS_MASK = 0x7FFF_FFFF
F32_INF_BITS = 0x7F80_0000        #: +Inf
F32_CANONICAL_NAN = 0x7FC0_0000   #: the quiet NaN every block produces (SPEC.md 5)

# -- bfloat16 (the top half of a binary32) ---------------------------------------------
BF16_BITS = 16
BF16_MAN_BITS = 7
BF16_CANONICAL_NAN = 0x7FC0

# -- E8M0 shared scale: value 2^(byte - 127), 0xFF is NaN -------------------------------
E8M0_BITS = 8
E8M0_BIAS = 127
E8M0_NAN = 0xFF
E8M0_MIN_EXP = -127
E8M0_MAX_EXP = 127
E8M0_ONE = E8M0_BIAS              #: the byte of scale 2^0

# -- blocks -----------------------------------------------------------------------------
DEFAULT_BLOCK_SIZE = 32           #: OCP MX block (SPEC.md 4) for formats without a fixed block

# -- shared-microexponent (BDR) formats, SPEC.md 11 -------------------------------------
BDR_BLOCK_SIZE = 16               #: elements sharing the 8-bit exponent (one E8M0-coded byte)
BDR_PAIR_SIZE = 2                 #: neighbouring elements sharing one microexponent
BDR_MICROEXP_BITS = 1             #: width of a microexponent (tau in {0, 1})
