"""mxsf.studies.accuracy and ``mxsf accuracy``.

The metrics are checked against a direct computation written here from
``quantize``/``quantize_tiles``/``dequantize`` (bf16 from ml_dtypes' RNE cast), not
through the module's own helpers.
"""

from __future__ import annotations

import csv
import json
import math

import ml_dtypes
import numpy as np
import pytest

from mxsf.cli import main
from mxsf.golden import ELEMENT_FORMATS, dequantize, quantize, quantize_tiles
from mxsf.studies import accuracy as acc


def direct(x, xq):
    """SQNR (dB) and max relative error, by the definitions of the docstring."""
    x = np.asarray(x, dtype=np.float64)
    xq = np.asarray(xq, dtype=np.float64)
    sqnr = 10 * math.log10(np.sum(x ** 2) / np.sum((xq - x) ** 2))
    nz = x != 0
    return sqnr, float(np.max(np.abs(xq[nz] - x[nz]) / np.abs(x[nz])))


def test_all_names():
    for name in acc.__all__:
        assert hasattr(acc, name), name


@pytest.mark.parametrize("fmt", [*ELEMENT_FORMATS, "bf16"])
@pytest.mark.parametrize("dist", ["student_t2", "gaussian_outliers"])
def test_metrics_match_direct_computation(fmt, dist):
    x = acc.make_distribution(dist, (64, 96), seed=3)
    r = acc.format_accuracy(x, fmt, block_size=16, tile=(8, 32))
    if fmt == "bf16":
        xq1 = xqt = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    elif fmt in ("mx9", "mx6", "mx4"):         # SPEC.md 11: 1D blocks of 16 only, no tiles
        xq1, xqt = dequantize(quantize(x, fmt, block_size=16, axis=1)), None
        assert all(math.isnan(r["tile"][k]) for k in ("sqnr_db", "max_rel_err", "flushed_frac"))
        # the fixed block wins over block_size
        assert acc.format_accuracy(x, fmt, block_size=32, tile=(8, 32))["1d"] == r["1d"]
    else:
        xq1 = dequantize(quantize(x, fmt, block_size=16, axis=1))
        xqt = dequantize(quantize_tiles(x, fmt, tile=(8, 32)))
    for key, xq in (("1d", xq1), ("tile", xqt)):
        if xq is None:
            continue
        sqnr, mre = direct(x, xq)
        assert r[key]["sqnr_db"] == pytest.approx(sqnr, rel=1e-12, abs=1e-9)
        assert r[key]["max_rel_err"] == pytest.approx(mre, rel=1e-12)
        nz = x != 0
        assert r[key]["flushed_frac"] == pytest.approx(np.mean(xq[nz] == 0))
    if fmt == "bf16":
        assert r["1d"] == r["tile"]


def test_table_rows_match_format_accuracy():
    rows = acc.accuracy_table(["mxsf", "mxint8"], distributions=["laplace"], size=(40, 70), seed=5,
                              block_size=8, tile=(16, 16))
    assert [(r["format"], r["distribution"]) for r in rows] == [("mxsf", "laplace"), ("int8", "laplace")]
    x = acc.make_distribution("laplace", (40, 70), seed=5)
    sqnr, mre = direct(x, dequantize(quantize_tiles(x, "int8", tile=(16, 16))))
    assert rows[1]["sqnr_tile_db"] == pytest.approx(sqnr, rel=1e-12)
    assert rows[1]["max_rel_tile"] == pytest.approx(mre, rel=1e-12)


def test_user_tensor_and_shapes():
    v = np.linspace(-3, 3, 100, dtype=np.float64)     # 1D: one row; float64 accepted
    r = acc.format_accuracy(v, "fp8_e4m3", tile=(4, 4))
    sqnr, _ = direct(v.astype(np.float32)[None], dequantize(quantize(v.astype(np.float32)[None], "fp8_e4m3")))
    assert r["1d"]["sqnr_db"] == pytest.approx(sqnr, rel=1e-12)
    assert acc.as_matrix(np.zeros((2, 3, 5), np.float32)).shape == (6, 5)
    rows = acc.accuracy_table(["fp8_e2m5"], distributions=[], tensors={"mine": v})
    assert [r["distribution"] for r in rows] == ["mine"]


def test_metric_edge_cases():
    x = np.array([[1.0, -0.5, 0.0, 2.0]], np.float32)
    assert acc.error_metrics(x, x)["sqnr_db"] == math.inf
    assert acc.error_metrics(x, x)["max_rel_err"] == 0.0
    m = acc.error_metrics(x, np.array([[1.0, 0.0, 0.0, 2.0]], np.float32))
    assert m["max_rel_err"] == 1.0 and m["flushed_frac"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("bad, msg", [
    (np.arange(6).reshape(2, 3), "floating-point"),
    (np.array([[1.0, np.nan]]), "NaN/Inf"),
    (np.float32(1.0), "at least one dimension"),
])
def test_bad_tensors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        acc.format_accuracy(bad, "mxsf")


def test_bad_parameters():
    with pytest.raises(ValueError, match=r"^fmt must be one of"):
        acc.format_accuracy(np.ones((2, 2), np.float32), "fp9")
    with pytest.raises(ValueError, match=r"^tile must be a pair"):
        acc.format_accuracy(np.ones((2, 2), np.float32), "mxsf", tile=(4,))
    with pytest.raises(ValueError, match=r"^tile rows must be"):
        acc.format_accuracy(np.ones((2, 2), np.float32), "mxsf", tile=(0, 4))
    with pytest.raises(ValueError, match=r"^distribution must be one of"):
        acc.make_distribution("cauchy")
    with pytest.raises(ValueError, match=r"^size must be a pair"):
        acc.make_distribution("gaussian", (0, 4))


def test_distributions_are_seeded():
    for d in acc.DISTRIBUTIONS:
        a = acc.make_distribution(d, (16, 32), seed=7)
        assert a.dtype == np.float32 and a.shape == (16, 32) and np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, acc.make_distribution(d, (16, 32), seed=7))
        assert not np.array_equal(a, acc.make_distribution(d, (16, 32), seed=8))
    # the binade spread really is per row
    b = acc.make_distribution("gaussian_binades", (256, 256))
    rms = np.sqrt(np.mean(b.astype(np.float64) ** 2, axis=1))
    assert np.log2(rms.max() / rms.min()) > 6


def test_default_sqnr():
    r = acc.default_sqnr("mxsf")
    assert set(r) == {"sqnr_1d_db", "sqnr_tile_db"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in r.values())
    # the mean over the default distributions, computed here directly
    s1, st = [], []
    for d in acc.DISTRIBUTIONS:
        x = acc.make_distribution(d, (256, 256), seed=0)
        s1.append(direct(x, dequantize(quantize(x, "mxsf", block_size=32)))[0])
        st.append(direct(x, dequantize(quantize_tiles(x, "mxsf", tile=(32, 32))))[0])
    assert r["sqnr_1d_db"] == pytest.approx(np.mean(s1), rel=1e-12)
    assert r["sqnr_tile_db"] == pytest.approx(np.mean(st), rel=1e-12)
    hits = acc._default_sqnr.cache_info().hits
    assert acc.default_sqnr("mxsf") == r       # cached
    assert acc._default_sqnr.cache_info().hits == hits + 1
    b = acc.default_sqnr("bf16")
    assert b["sqnr_1d_db"] == b["sqnr_tile_db"] > r["sqnr_1d_db"]
    assert acc.default_sqnr("mxfp8_e4m3") == acc.default_sqnr("fp8_e4m3")
    with pytest.raises(ValueError):
        acc.default_sqnr("fp3")


# ------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------

def test_cli_accuracy(tmp_path, capsys):
    x = acc.make_distribution("laplace", (20, 40), seed=1).astype(np.float64)
    np.save(tmp_path / "act.npy", x)
    out = tmp_path / "out"
    rc = main(["accuracy", "--formats", "mxsf,fp8_e2m5,bf16", "--size", "64", "64", "--tile", "16", "16",
               "--block-size", "16", "--seed", "2", "--input", str(tmp_path / "act.npy"), "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| mxsf" in text and "gaussian_outliers" in text and "act" in text
    for name in ("accuracy.md", "accuracy.csv", "accuracy.json", "accuracy.png"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "accuracy.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * (len(acc.DISTRIBUTIONS) + 1)
    mine = next(r for r in rows if r["format"] == "fp8_e2m5" and r["distribution"] == "act")
    sqnr, _ = direct(x.astype(np.float32), dequantize(quantize_tiles(x, "fp8_e2m5", tile=(16, 16))))
    assert float(mine["sqnr_tile_db"]) == pytest.approx(sqnr, rel=1e-9)
    meta = json.loads((out / "accuracy.json").read_text())
    assert meta["tile"] == [16, 16] and meta["seed"] == 2 and len(meta["rows"]) == len(rows)
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, msg", [
    (["accuracy", "--formats", "fp9"], "format must be one of"),
    (["accuracy", "--formats", ","], "at least one format"),
    (["accuracy", "--tile", "0", "32"], "positive integer"),
    (["accuracy", "--tile", "32"], "--tile"),
    (["accuracy", "--tile", "a", "b"], "positive integer"),
    (["accuracy", "--block-size", "-1"], "positive integer"),
    (["accuracy", "--seed", "-3"], "non-negative"),
    (["accuracy", "--input", "MISSING"], "input file not found"),
    (["accuracy", "--input", "INT"], "floating-point"),
    (["accuracy", "--input", "TEXT"], "cannot read"),
    (["accuracy", "--input", "NAN"], "NaN/Inf"),
    (["train-demo", "--formats", "fp9"], "format must be one of"),
    (["train-demo", "--epochs", "0"], "positive integer"),
    (["train-demo", "--tile", "0"], "positive integer"),
])
def test_cli_bad_options(tmp_path, capsys, argv, msg):
    np.save(tmp_path / "int.npy", np.arange(12).reshape(3, 4))
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    (tmp_path / "text.npy").write_text("not an array\n")
    paths = {"MISSING": str(tmp_path / "missing.npy"), "INT": str(tmp_path / "int.npy"),
             "NAN": str(tmp_path / "nan.npy"), "TEXT": str(tmp_path / "text.npy")}
    argv = [paths.get(a, a) for a in argv] + ["--out", str(tmp_path / "o")]
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mxsf: error: "), cap.err
    assert msg in lines[0]
    assert cap.out == ""


def test_scale_rules_clipped_fraction():
    """clipped = share of |x| > largest x 2^E of its block: [7.9, 1, 1, 1] in MXSF is clipped
    once with floor (E = 0, largest 7.875) and never with ceil (E = 1)."""
    x = np.array([[7.9, 1.0, 1.0, 1.0]], dtype=np.float32)
    r = acc.format_accuracy(x, "mxsf", block_size=4, tile=(1, 4), scale_rounding="floor")
    assert r["1d"]["clipped_frac"] == 0.25 and r["tile"]["clipped_frac"] == 0.25
    r = acc.format_accuracy(x, "mxsf", block_size=4, tile=(1, 4), scale_rounding="ceil")
    assert r["1d"]["clipped_frac"] == 0.0
    rows = acc.accuracy_table(["fp8_e4m3", "bf16"], distributions=["gaussian"], size=(64, 64),
                              scale_rounding="all")
    assert [(r["format"], r["scale_rounding"]) for r in rows] == [
        ("fp8_e4m3", "floor"), ("fp8_e4m3", "ceil"), ("fp8_e4m3", "even"), ("bf16", "-")]
    by = {r["scale_rounding"]: r for r in rows}
    assert by["ceil"]["clipped_1d"] == 0 < by["even"]["clipped_1d"] < by["floor"]["clipped_1d"]
    with pytest.raises(ValueError, match=r"^scale_rounding must be one of floor, ceil, even; not 'x'$"):
        acc.accuracy_table(["mxsf"], distributions=["gaussian"], size=(8, 8), scale_rounding="floor,x")


def test_cli_numerics_options(tmp_path, capsys):
    from mxsf.cli import main
    np.save(tmp_path / "x.npy", np.ones((4, 32), np.float32))
    assert main(["quantize", str(tmp_path / "x.npy"), "--fmt", "mxsf", "--rounding", "stochastic",
                 "--sr-bits", "4", "--seed", "7", "-o", str(tmp_path / "q.npz")]) == 0
    for argv, msg in [
        (["quantize", str(tmp_path / "x.npy"), "--fmt", "mxsf", "--scale-rounding", "up", "-o", str(tmp_path / "q.npz")],
         "scale_rounding must be one of floor, ceil, even; not 'up'"),
        (["accuracy", "--formats", "mxsf", "--size", "8", "8", "--rounding", "sr", "--out", str(tmp_path)],
         "rounding must be one of rne, stochastic; not 'sr'"),
        (["generate", "pe", "--fmt", "mxsf", "--acc", "fp16", "-o", str(tmp_path)],
         "acc must be one of fp32, bf16; not 'fp16'"),
        (["synth", "requantizer", "--fmt", "mxsf", "--tile", "2", "4", "--sr-bits", "17"],
         "sr_bits must be an integer in [1, 16], not 17"),
    ]:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == f"mxsf: error: {msg}\n", err


def test_bdr_rows_floor_rne_only():
    """mx9/mx6/mx4 take only floor and rne (SPEC.md 11): one floor row beside the other rules,
    none under stochastic rounding, and a ValueError when they are all that was asked for."""
    rows = acc.accuracy_table(["fp8_e4m3", "mx9"], distributions=["gaussian"], size=(16, 32),
                              scale_rounding="all")
    assert [(r["format"], r["scale_rounding"]) for r in rows] == [
        ("fp8_e4m3", "floor"), ("fp8_e4m3", "ceil"), ("fp8_e4m3", "even"), ("mx9", "floor")]
    rows = acc.accuracy_table(["fp8_e4m3", "mx9"], distributions=["gaussian"], size=(16, 32),
                              rounding="stochastic")
    assert [r["format"] for r in rows] == ["fp8_e4m3"]
    with pytest.raises(ValueError, match=r"^rounding='stochastic' is not defined for mx9"):
        acc.accuracy_table(["mx9"], distributions=["gaussian"], size=(16, 32), rounding="stochastic")
    with pytest.raises(ValueError, match=r"^scale_rounding='ceil' is not defined for mx6"):
        acc.format_accuracy(np.ones((2, 16), np.float32), "mx6", scale_rounding="ceil")
