"""Element formats of the golden model against SPEC.md section 1.

Every expected value here is computed from the SPEC.md text with exact rationals
(hand-written field decoding per format), never from the model's own table builder.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from mxsf.golden import ALIASES, ELEMENT_FORMATS, FORMATS, decode, format_names, get_format

TWO = Fraction(2)

# SPEC.md section 1, transcribed by hand: layout fields, bias, largest, smallest > 0, emax_elem.
SPEC = {
    "fp8_e4m3": dict(kind="fp", bits=8, e=4, m=3, bias=7, largest=Fraction(448), smallest=TWO**-9, emax=8),
    "fp8_e5m2": dict(kind="fp", bits=8, e=5, m=2, bias=15, largest=Fraction(57344), smallest=TWO**-16, emax=15),
    "fp6_e3m2": dict(kind="fp", bits=6, e=3, m=2, bias=3, largest=Fraction(28), smallest=TWO**-4, emax=4),
    "fp6_e2m3": dict(kind="fp", bits=6, e=2, m=3, bias=1, largest=Fraction(15, 2), smallest=TWO**-3, emax=2),
    "fp4_e2m1": dict(kind="fp", bits=4, e=2, m=1, bias=1, largest=Fraction(6), smallest=Fraction(1, 2), emax=2),
    "int8": dict(kind="int", bits=8, largest=Fraction(127, 64), smallest=Fraction(1, 64), emax=0),
    "fp8_e2m5": dict(kind="fp", bits=8, e=2, m=5, bias=1, largest=Fraction(63, 8), smallest=TWO**-5, emax=2),
    "mxsf": dict(kind="mxsf", bits=8, largest=Fraction(63, 8), smallest=TWO**-9, emax=2),
    # SPEC.md 11: the code table reads a code with microexponent 0, relative to 2^E: m x 2^-(p-1)
    "mx9": dict(kind="bdr", bits=8, p=7, largest=Fraction(127, 64), smallest=Fraction(1, 64), emax=0),
    "mx6": dict(kind="bdr", bits=5, p=4, largest=Fraction(15, 8), smallest=Fraction(1, 8), emax=0),
    "mx4": dict(kind="bdr", bits=3, p=2, largest=Fraction(3, 2), smallest=Fraction(1, 2), emax=0),
    "bf16": dict(kind="fp", bits=16, e=8, m=7, bias=127, largest=(2 - TWO**-7) * TWO**127,
                 smallest=TWO**-133, emax=127),
}
OCP_ALIASES = {
    "mxfp8_e4m3": "fp8_e4m3", "mxfp8_e5m2": "fp8_e5m2", "mxfp6_e3m2": "fp6_e3m2",
    "mxfp6_e2m3": "fp6_e2m3", "mxfp4_e2m1": "fp4_e2m1", "mxint8": "int8",
}
MX_NAMES = [n for n in SPEC if n != "bf16"]
ML_DTYPES = {
    "fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp6_e3m2": ml_dtypes.float6_e3m2fn, "fp6_e2m3": ml_dtypes.float6_e2m3fn,
    "fp4_e2m1": ml_dtypes.float4_e2m1fn,
}


def spec_decode(name: str, code: int):
    """(kind, magnitude, sign) of a code per SPEC.md: kind in 'fin', 'inf', 'nan'."""
    p = SPEC[name]
    bits = p["bits"]
    s = (code >> (bits - 1)) & 1
    if p["kind"] == "int":
        v = code - 256 if code >= 128 else code
        return "fin", Fraction(abs(v), 64), int(v < 0)
    if p["kind"] == "bdr":
        s, m = code >> p["p"], code & ((1 << p["p"]) - 1)
        return "fin", m * TWO ** (1 - p["p"]), s
    if p["kind"] == "mxsf":
        e = (code >> 5) & 3
        m = code & 31
        if e != 0:
            return "fin", TWO ** (e - 1) * (1 + Fraction(m, 32)), s
        E, M = m >> 2, m & 3
        if E != 0:
            return "fin", TWO ** (E - 8) * (1 + Fraction(M, 4)), s
        return "fin", TWO**-7 * Fraction(M, 4), s
    eb, mb, bias = p["e"], p["m"], p["bias"]
    e = (code >> mb) & ((1 << eb) - 1)
    m = code & ((1 << mb) - 1)
    all_ones = (1 << eb) - 1
    if name == "fp8_e4m3" and e == all_ones and m == 7:
        return "nan", None, s
    if name in ("fp8_e5m2", "bf16") and e == all_ones:
        return ("inf" if m == 0 else "nan"), None, s
    if e == 0:
        return "fin", Fraction(m, 1 << mb) * TWO ** (1 - bias), s
    return "fin", (1 + Fraction(m, 1 << mb)) * TWO ** (e - bias), s


def check_value(got: float, expected, name, code):
    kind, mag, s = expected
    if kind == "nan":
        assert math.isnan(got), (name, hex(code), got)
    elif kind == "inf":
        assert got == (-math.inf if s else math.inf), (name, hex(code), got)
    else:
        assert math.isfinite(got), (name, hex(code), got)
        assert Fraction(got) == (-mag if s else mag), (name, hex(code), got, mag, s)
        if mag == 0 and SPEC[name]["kind"] != "int":
            # every FP format and MXSF: the sign bit with magnitude 0 is -0
            assert math.copysign(1.0, got) == (-1.0 if s else 1.0), (name, hex(code), got)


@pytest.mark.parametrize("name", list(SPEC))
def test_every_code_decodes_per_spec(name):
    f = get_format(name)
    n = 1 << SPEC[name]["bits"]
    assert f.n_codes == n and f.bits == SPEC[name]["bits"]
    assert f.values.shape == (n,)
    dec = decode(np.arange(n), name)
    for code in range(n):
        exp = spec_decode(name, code)
        check_value(float(f.values[code]), exp, name, code)
        check_value(float(dec[code]), exp, name, code)


@pytest.mark.parametrize("name", list(SPEC))
def test_constants(name):
    p = SPEC[name]
    f = get_format(name)
    n = 1 << p["bits"]
    fin = [spec_decode(name, c) for c in range(n)]
    mags = [m for k, m, sg in fin if k == "fin" and sg == 0]  # positive values (int8 also has -2)
    largest, smallest = max(mags), min(m for m in mags if m > 0)
    assert largest == p["largest"] and smallest == p["smallest"]
    assert Fraction(f.max_value) == largest
    assert Fraction(f.min_value) == smallest
    # emax_elem: the unbiased exponent of the largest value (floor(log2(largest)))
    m, e = math.frexp(float(largest))
    assert e - 1 == p["emax"]
    assert f.emax_elem == p["emax"]
    if p["kind"] == "fp":
        assert (f.exp_bits, f.man_bits, f.bias) == (p["e"], p["m"], p["bias"])
    # the largest finite magnitude code
    assert spec_decode(name, f.max_code) == ("fin", largest, 0)
    assert f.lsb_exp == round(math.log2(float(smallest)))


@pytest.mark.parametrize("name", list(SPEC))
def test_specials(name):
    f = get_format(name)
    n = 1 << SPEC[name]["bits"]
    exp_nan = [c for c in range(n) if spec_decode(name, c)[0] == "nan"]
    exp_inf = [c for c in range(n) if spec_decode(name, c)[0] == "inf"]
    assert list(np.flatnonzero(f.is_nan)) == exp_nan
    assert list(np.flatnonzero(f.is_inf)) == exp_inf
    assert f.has_nan == bool(exp_nan)
    assert f.has_inf == bool(exp_inf)
    if name == "fp8_e4m3":
        assert exp_nan == [0x7F, 0xFF] and exp_inf == []
        assert f.max_code == 0x7E
    elif name == "fp8_e5m2":
        assert exp_inf == [0x7C, 0xFC]
        assert exp_nan == [0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF]
        assert f.values[0x7C] == np.inf and f.values[0xFC] == -np.inf
        assert f.max_code == 0x7B
    elif name == "bf16":
        assert exp_inf == [0x7F80, 0xFF80]
        assert len(exp_nan) == 2 * 127
    else:
        assert exp_nan == [] and exp_inf == []


def test_spot_values():
    v = lambda name, code: float(get_format(name).values[code])  # noqa: E731
    assert v("fp8_e4m3", 0x7E) == 448 and v("fp8_e4m3", 0x01) == 2.0**-9 and v("fp8_e4m3", 0x08) == 2.0**-6
    assert v("fp8_e4m3", 0xFE) == -448
    assert v("fp8_e5m2", 0x7B) == 57344 and v("fp8_e5m2", 0x01) == 2.0**-16 and v("fp8_e5m2", 0x3C) == 1.0
    assert v("fp6_e3m2", 0x1F) == 28 and v("fp6_e3m2", 0x01) == 2.0**-4 and v("fp6_e3m2", 0x3F) == -28
    assert v("fp6_e2m3", 0x1F) == 7.5 and v("fp6_e2m3", 0x01) == 0.125 and v("fp6_e2m3", 0x20) == 0
    assert [v("fp4_e2m1", c) for c in range(8)] == [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    assert v("fp4_e2m1", 0xF) == -6
    assert v("int8", 0x7F) == 127 / 64 and v("int8", 0x01) == 1 / 64 and v("int8", 0xFF) == -1 / 64
    assert v("int8", 0x80) == -2.0 and v("int8", 0x81) == -127 / 64
    assert v("fp8_e2m5", 0x7F) == 7.875 and v("fp8_e2m5", 0x01) == 2.0**-5 and v("fp8_e2m5", 0x1F) == 31 / 32
    assert v("fp8_e2m5", 0x20) == 1.0
    assert v("mxsf", 0x7F) == 7.875 and v("mxsf", 0x01) == 2.0**-9 and v("mxsf", 0x20) == 1.0
    assert v("mxsf", 0x1F) == 0.875 and v("mxsf", 0x04) == 2.0**-7 and v("mxsf", 0x03) == 3 * 2.0**-9
    assert v("mxsf", 0xFF) == -7.875
    assert v("bf16", 0x3F80) == 1.0 and v("bf16", 0x0001) == 2.0**-133
    assert v("bf16", 0x7F7F) == float((2 - TWO**-7) * TWO**127)


def test_int8_is_twos_complement_over_64():
    vals = get_format("int8").values
    for code in range(256):
        signed = code - 256 if code & 0x80 else code
        assert vals[code] == signed / 64
    assert get_format("int8").has_neg_zero is False


def test_mxsf_magnitude_rises_with_code():
    f = get_format("mxsf")
    mags = f.values[:128]
    assert np.all(np.diff(mags) > 0)
    assert np.array_equal(f.values[128:], -mags)
    assert f.values[0] == 0 and f.values[0x80] == 0
    assert not np.signbit(f.values[0]) and np.signbit(f.values[0x80])
    # E3M2 mode covers [2^-7, 1): codes 0x04..0x1F; E2M5 mode covers [1, 8)
    assert mags[0x04] == 2.0**-7 and mags[0x1F] < 1 <= mags[0x20]
    # the E2M5 half has 5 mantissa bits: spacing 2^(e-1-5)
    for code in range(0x20, 0x7F):
        e = code >> 5
        assert mags[code + 1] - mags[code] == 2.0 ** (e - 1 - 5)


@pytest.mark.parametrize("name", list(ML_DTYPES))
def test_ocp_fp_formats_decode_like_ml_dtypes(name):
    f = get_format(name)
    codes = np.arange(f.n_codes, dtype=np.uint8)
    ref = codes.view(ML_DTYPES[name]).astype(np.float64)
    got = f.values
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.array_equal(got[ok], ref[ok])
    assert np.array_equal(np.signbit(got[ok]), np.signbit(ref[ok]))


def test_bf16_decodes_like_ml_dtypes():
    f = get_format("bf16")
    with np.errstate(invalid="ignore"):
        ref = np.arange(1 << 16, dtype=np.uint16).view(ml_dtypes.bfloat16).astype(np.float64)
    got = f.values
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.array_equal(got[ok], ref[ok])
    assert np.array_equal(np.signbit(got[ok]), np.signbit(ref[ok]))


@pytest.mark.parametrize("name", MX_NAMES)
def test_int_values_scale_to_values(name):
    """The integer significand table (used by the exact dot product) matches SPEC values."""
    f = get_format(name)
    lsb = SPEC[name]["smallest"]
    for code in range(f.n_codes):
        kind, mag, s = spec_decode(name, code)
        if kind == "fin":
            assert Fraction(int(f.int_values[code])) * lsb == (-mag if s else mag)


def test_aliases():
    assert set(ALIASES) == set(OCP_ALIASES)
    for alias, name in OCP_ALIASES.items():
        assert ALIASES[alias] == name
        assert get_format(alias) is get_format(name) is FORMATS[name]
        assert get_format(alias, element_only=True).name == name
        assert np.array_equal(decode(np.arange(4), alias), decode(np.arange(4), name))
        assert FORMATS[name].ocp_name == alias
    assert set(format_names(include_aliases=True)) == set(SPEC) | set(OCP_ALIASES)
    assert tuple(ELEMENT_FORMATS) == tuple(MX_NAMES)
    assert set(format_names(include_bf16=False)) == set(MX_NAMES)
    f = get_format("mxsf")
    assert get_format(f) is f


@pytest.mark.parametrize("bad", ["fp7", "", "mxfp8", "e4m3", "fp8-e4m3"])
def test_unknown_format_raises(bad):
    with pytest.raises(ValueError) as ei:
        get_format(bad)
    msg = str(ei.value)
    assert "fmt" in msg and repr(bad) in msg


@pytest.mark.parametrize("bad", [None, 8, 3.5, b"mxsf"])
def test_non_string_format_raises(bad):
    with pytest.raises(ValueError) as ei:
        get_format(bad)
    msg = str(ei.value)
    assert "fmt" in msg and repr(bad) in msg


def test_bf16_not_an_element_format():
    assert get_format("bf16").name == "bf16"
    with pytest.raises(ValueError) as ei:
        get_format("bf16", element_only=True)
    assert "bf16" in str(ei.value) and "fmt" in str(ei.value)
    with pytest.raises(ValueError):
        get_format("bf16").int_values  # noqa: B018


@pytest.mark.parametrize("name,bad", [("fp8_e4m3", 256), ("fp8_e4m3", -1), ("fp6_e3m2", 64),
                                      ("fp4_e2m1", 16), ("bf16", 1 << 16)])
def test_decode_out_of_range_raises(name, bad):
    with pytest.raises(ValueError) as ei:
        decode(np.array([0, bad]), name)
    assert "codes" in str(ei.value)


def test_formats_are_frozen():
    f = get_format("mxsf")
    with pytest.raises(Exception):
        f.bias = 3  # type: ignore[misc]
