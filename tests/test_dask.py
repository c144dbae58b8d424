"""``mxsf compare --scheduler``: the same sweep on a Dask distributed cluster gives the
same table as the local process pool."""

from __future__ import annotations

import json
import re

import pytest

from simsupport import needs_yosys

distributed = pytest.importorskip("distributed")

_SWEEP = ["compare", "--designs", "pe", "--formats", "fp8_e4m3", "--block-size", "4",
          "--lanes", "1", "-q", "--no-cache"]


def _rows(folder):
    data = json.loads((folder / "compare.json").read_text())
    return data["columns"], data["rows"]


@needs_yosys
def test_compare_on_a_dask_cluster_gives_the_local_table(tmp_path, capsys):
    from mxsf.cli import main

    local, remote = tmp_path / "local", tmp_path / "dask"
    assert main([*_SWEEP, "--jobs", "1", "--out", str(local / "out"),
                 "--synth-dir", str(local / "synth")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            assert main([*_SWEEP, "--scheduler", cluster.scheduler_address,
                         "--out", str(remote / "out"), "--synth-dir", str(remote / "synth")]) == 0
            # the jobs really ran on the workers
            prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
            assert any(str(p).startswith("mxsf") for p in prefixes), prefixes
    capsys.readouterr()
    cols_l, rows_l = _rows(local / "out")
    cols_r, rows_r = _rows(remote / "out")
    assert cols_l == cols_r and rows_l == rows_r and len(rows_l) == 2
    assert (local / "out" / "compare.md").read_text() == (remote / "out" / "compare.md").read_text()


def test_unreachable_scheduler_exits_2(tmp_path, capsys, monkeypatch):
    from mxsf.cli import main
    from mxsf.synth import compare

    monkeypatch.setattr(compare, "SCHEDULER_TIMEOUT_S", 2.0)      # nothing listens on port 9

    assert main([*_SWEEP, "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "out"),
                 "--synth-dir", str(tmp_path / "synth")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'", err), err
    assert not (tmp_path / "out" / "compare.json").exists()
