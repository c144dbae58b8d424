"""The `mxsf` command line: formats, quantize, generate, test, and its error rules."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from mxsf.cli import main
from mxsf.golden import ELEMENT_FORMATS, dequantize, error_stats, get_format, quantize, quantize_tiles
from mxsf.golden.quantize import MXArray
from simsupport import require_simulator


def run(*argv):
    """Run the real console entry point in a subprocess: (exit status, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "mxsf", *argv], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_formats_table(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in ("fp8_e4m3", "mxfp8_e4m3", "mxsf", "bf16", "57344", "7.875"):
        assert name in out


def test_quantize_writes_codes_and_reports_error(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((40, 70)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "q.npz"
    assert main(["quantize", str(tmp_path / "x.npy"), "--fmt", "mxsf", "--tile", "32", "32", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    z = np.load(out)
    ref = quantize_tiles(x, "mxsf", tile=(32, 32))
    assert np.array_equal(z["codes"], ref.codes) and np.array_equal(z["scale_e8m0"], ref.scale_e8m0)
    q = MXArray(get_format(str(z["fmt"])), z["codes"], z["scale_e8m0"], tuple(z["block_shape"]))
    st = error_stats(x, dequantize(q))
    assert f"SQNR {st['sqnr_db']:.2f} dB" in text


@pytest.mark.parametrize("argv,needle", [
    (["quantize", "missing.npy", "--fmt", "mxsf", "-o", "o.npz"], "input file not found"),
    (["quantize", "INT", "--fmt", "mxsf", "-o", "o.npz"], "x must be a floating-point array"),
    (["quantize", "X", "--fmt", "fp9", "-o", "o.npz"], "fmt must be one of"),
    (["quantize", "X", "--fmt", "mxsf", "--block-size", "0", "-o", "o.npz"], "--block-size"),
    (["quantize", "X", "--fmt", "mxsf", "--tile", "3", "-o", "o.npz"], "--tile"),
    (["generate", "pe", "--fmt", "mxsf", "--lanes", "7", "-o", "g"], "lanes must divide block_size=32"),
    (["generate", "pe", "-o", "g"], "design pe needs --fmt"),
    (["generate", "pe", "--fmt", "mxsf", "--n", "4", "-o", "g"], "design pe does not take --n"),
    (["generate", "warp-drive", "-o", "g"], "design must be one of"),
    (["generate", "pe", "--fmt", "bf16", "-o", "g"], "fmt must be an MX element format"),
    (["test", "pe", "--fmt", "mxsf", "--sim", "modelsim"], "--sim"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "X.npy", np.ones((4, 4), dtype=np.float32))
    np.save(tmp_path / "INT.npy", np.ones((4, 4), dtype=np.int32))
    argv = [a.replace("X", str(tmp_path / "X.npy")) if a == "X" else
            a.replace("INT", str(tmp_path / "INT.npy")) if a == "INT" else a for a in argv]
    code, out, err = run(*argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mxsf: error: ") and needle in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "g").exists() and not (tmp_path / "o.npz").exists()


def test_generate_pe_writes_verilog_and_sidecar(tmp_path):
    code, out, err = run("generate", "pe", "--fmt", "mxfp8_e4m3", "--block-size", "16", "--lanes", "4",
                         "-o", str(tmp_path))
    assert code == 0, err
    v = tmp_path / "mx_pe_fp8_e4m3_b16_l4.v"
    side = json.loads((tmp_path / "mx_pe_fp8_e4m3_b16_l4.json").read_text())
    assert "module mx_pe_fp8_e4m3_b16_l4" in v.read_text()
    assert side["params"] == {"fmt": "fp8_e4m3", "block_size": 16, "lanes": 4}
    assert side["latency"] == 3 and side["macs_per_cycle"] == 4
    ports = {p["name"]: p for p in side["ports"]}
    assert ports["o__payload"]["width"] == 32 and ports["o__payload"]["direction"] == "out"
    fields = {f["name"]: f for f in side["payload_fields"]["i__payload"]}
    assert fields["a[0]"] == {"name": "a[0]", "offset": 0, "width": 8}
    assert fields["b[3]"]["offset"] == 56 and fields["last"]["width"] == 1
    assert ports["i__payload"]["width"] == sum(f["width"] for f in fields.values())
    assert side["format"]["name"] == "fp8_e4m3"


def test_generate_bf16_pe(tmp_path):
    code, out, err = run("generate", "bf16-pe", "--lanes", "2", "-o", str(tmp_path))
    assert code == 0, err
    side = json.loads((tmp_path / "bf16_pe_l2.json").read_text())
    assert side["latency"] == 2 and side["macs_per_cycle"] == 2


ARRAY_FORMATS = [*ELEMENT_FORMATS, "bf16"]


#: Formats the default suite generates through the CLI (the 2x2 and 4x4 array tests
#: convert every other format's array; the rest run with -m slow).
_CLI_DEFAULT = ("mxsf", "bf16", "mx4", "int8", "fp4_e2m1")


def _slow_unless_default(formats):
    return [f if f in _CLI_DEFAULT else pytest.param(f, marks=pytest.mark.slow) for f in formats]


@pytest.mark.parametrize("fmt", _slow_unless_default(ARRAY_FORMATS))
def test_generate_array_every_format(tmp_path, capsys, fmt):
    block = (fmt != "bf16" and get_format(fmt).fixed_block_size) or 2     # mx9/mx6/mx4: 16
    assert main(["generate", "array", "--fmt", fmt, "--rows", "1", "--cols", "3", "--block-size", str(block),
                 "--lanes", "2", "-o", str(tmp_path)]) == 0
    (side_path,) = tmp_path.glob("*.json")
    side = json.loads(side_path.read_text())
    assert (tmp_path / side["verilog"]).read_text().count(f"module {side['top']}(") == 1
    assert side["params"]["rows"] == 1 and side["params"]["cols"] == 3
    assert side["macs_per_cycle"] == 6
    assert side["latency"] == 1 + (2 if fmt == "bf16" else 3) + 3
    assert side_path.name in capsys.readouterr().out


@pytest.mark.parametrize("fmt", _slow_unless_default(
    [f for f in ARRAY_FORMATS if f != "bf16" and get_format(f).allows_tiles]))
def test_generate_gemm_every_format(tmp_path, fmt):
    assert main(["generate", "gemm", "--fmt", fmt, "--tile", "2", "2", "--block-size", "2",
                 "--lanes", "2", "--dim", "4", "-o", str(tmp_path)]) == 0
    (side_path,) = tmp_path.glob("*.json")
    side = json.loads(side_path.read_text())
    assert side["params"] == {"fmt": get_format(fmt).name, "rows": 2, "cols": 2, "block_size": 2,
                              "lanes": 2, "dim": 4}
    assert (tmp_path / side["verilog"]).read_text().count(f"module {side['top']}(") == 1
    assert {"a_codes__payload", "b_scale__payload", "start__payload", "o__payload", "acc__payload"} \
        <= {p["name"] for p in side["ports"]}


@pytest.mark.parametrize("argv,needle", [
    (["generate", "gemm", "--fmt", "bf16", "--tile", "2", "2"], "fmt must be an MX element format"),
    (["generate", "gemm", "--fmt", "mx9", "--tile", "2", "2"], "fmt must be a format with 2D tiles for the GEMM"),
    (["generate", "pe", "--fmt", "mx6", "--block-size", "32"], "block_size must be 16 for mx6 (SPEC.md 11"),
    (["generate", "gemm", "--fmt", "mxsf", "--tile", "2", "2", "--block-size", "4", "--dim", "6"],
     "dim must be a multiple of block_size=4, not 6"),
    (["generate", "array", "--fmt", "mxsf", "--rows", "65", "--cols", "2"], "rows must be an integer in [1, 64]"),
    (["generate", "array", "--fmt", "mxsf", "--rows", "2", "--cols", "2", "--dim", "8"],
     "design array does not take --dim"),
])
def test_generate_array_gemm_bad_params(tmp_path, capsys, argv, needle):
    assert main([*argv, "-o", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "g").exists()


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_test_command_runs_the_regression(tmp_path, sim):
    """``mxsf test``'s cocotb regression (on Verilator only with -m slow: a Verilator
    build of its own for this PE)."""
    require_simulator(sim)
    code, out, err = run("test", "pe", "--fmt", "fp4_e2m1", "--block-size", "4", "--lanes", "2",
                         "--count", "10", "--seed", "4", "--sim", sim)
    assert code == 0, out + err
    assert f"PASS pe.random_dots [{sim}]" in out and f"PASS pe.code_pairs [{sim}]" in out
    assert out.strip().splitlines()[-1].endswith("passed, 0 failed")


def test_quantize_bdr_writes_microexponents(tmp_path, capsys):
    """mx9: blocks of 16 by default, the pair microexponents saved beside codes and exponents."""
    x = np.random.default_rng(1).standard_normal((8, 40)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "q.npz"
    assert main(["quantize", str(tmp_path / "x.npy"), "--fmt", "mx9", "-o", str(out)]) == 0
    assert "1D blocks of 16" in capsys.readouterr().out
    z = np.load(out)
    ref = quantize(x, "mx9")
    assert np.array_equal(z["codes"], ref.codes) and np.array_equal(z["microexp"], ref.microexp)
    assert main(["quantize", str(tmp_path / "x.npy"), "--fmt", "mx9", "--block-size", "32", "-o", str(out)]) == 2
    assert "block_size must be 16 for mx9" in capsys.readouterr().err


def test_formats_table_bdr(capsys):
    assert main(["formats"]) == 0
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines()[2:]}
    for name, bpe in (("mx9", "9"), ("mx6", "6"), ("mx4", "4"), ("fp8_e4m3", "8.25")):
        assert rows[name].rstrip(" |").endswith(bpe), rows[name]


def test_demo_golden_section_every_format(tmp_path, capsys):
    """``mxsf demo``'s first part (what ``make demo`` prints before any simulator) for every
    element format: the BDR formats in their 1x16 blocks, without tiles (SPEC.md 11)."""
    assert main(["demo", "--golden-only", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ELEMENT_FORMATS:
        assert re.search(rf"^\| {name}( \(1x16\))? +\| \d", out, re.M), (name, out)
    assert re.search(r"^\| mx9 \(1x16\) +\| [\d.]+ +\| [\d.]+ +\| - +\| - +\|$", out, re.M), out
    assert (tmp_path / "sample.npy").exists()
