# amaranth: UnusedElaboratable=no
"""``mxsf infer``: the digits MLP's matmuls through the generated array (vector path)
give the golden model's logits bit for bit."""

import numpy as np
import pytest

from mxsf.cli.infer import golden_logits, rtl_logits, train_fp32
from mxsf.studies.train import DEMO_FORMATS, NARROW_FORMATS, load_digits_split
from simsupport import require_simulator


@pytest.fixture(scope="module")
def trained():
    _, _, xte, yte = load_digits_split(0)
    return train_fp32(epochs=15, seed=0), xte, yte


@pytest.mark.sim
@pytest.mark.parametrize("fmt,blocking", [("mxsf", "tile"), ("fp8_e4m3", "1d")])
def test_inference_through_array_equals_golden(build_root, trained, fmt, blocking):
    """First 48 test images through a 2x2 array (block 32, 8 lanes) on Verilator."""
    require_simulator("verilator")
    params, xte, yte = trained
    r = rtl_logits(params, xte[:48], fmt, blocking, sim="verilator", build_root=build_root, rows=2, cols=2)
    assert r.logits.shape == (48, 10)
    assert r.bit_exact, np.flatnonzero(r.logits.view(np.uint32) != r.golden.view(np.uint32))[:5]
    acc = np.mean(np.argmax(r.logits, 1) == yte[:48])
    assert acc > 0.85
    assert not (golden_logits(params, xte[:48], "fp32") == r.logits).all()    # the MX cast does something


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("blocking", ["tile", "1d"])
@pytest.mark.parametrize("fmt", DEMO_FORMATS + NARROW_FORMATS)
def test_inference_full_test_set(build_root, trained, fmt, blocking):
    """Every test image, every MX format, both blockings, through the 4x4 array."""
    require_simulator("verilator")
    params, xte, yte = trained
    r = rtl_logits(params, xte, fmt, blocking, sim="verilator", build_root=build_root)
    assert r.bit_exact
