"""A sweep that fails never destroys earlier results: input is validated before the first write, new parts are
staged beside the old ones and swapped in only when every point has finished."""

from __future__ import annotations

import pandas as pd
import pytest
from test_sweep_machinery import CountingPoint, _calls

from sim.cli import main
from sim.sweep import run_sweep


def _snapshot(out) -> dict[str, bytes]:
    """Every file of a sweep output (the table and its parts), by name."""
    parts = out.with_name(out.name + ".parts")
    files = {out.name: out.read_bytes()}
    files.update({f"parts/{p.name}": p.read_bytes() for p in sorted(parts.glob("*.json"))})
    return files


def test_bad_sweep_over_finished_results_changes_nothing(tmp_path, capsys):
    out = tmp_path / "bw.parquet"
    base = ["sweep", "--workload", "tiny-mt", "--hw", "edge-npu", "--policies", "bf16", "--out", str(out),
            "--workers", "1", "--no-progress"]
    assert main([*base, "--dram-bw-scale", "1,2"]) == 0
    before = _snapshot(out)
    assert len(before) == 3
    capsys.readouterr()
    # Valid names, but the SRAM cannot hold one tile: found while validating, before any output is touched.
    assert main([*base, "--dram-bw-scale", "1", "--sram-kb", "0.001"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SRAM" in err[0]
    assert _snapshot(out) == before
    assert not out.with_name(out.name + ".parts.new").exists()


def test_failing_point_keeps_earlier_results_then_resume_adopts_the_new_points(tmp_path):
    log, out = tmp_path / "log", tmp_path / "r.parquet"
    run_sweep("w", "h", "fp32", [0.5, 1.0], out=out, point_fn=CountingPoint(log))
    before = _snapshot(out)
    # A fresh run over those results that fails mid-way (after 2 of its 3 points).
    with pytest.raises(RuntimeError, match="point failed"):
        run_sweep("w", "h", "dsq", [0.5, 1.0, 2.0], out=out, point_fn=CountingPoint(log, fail_on=2.0))
    assert _snapshot(out) == before  # the table and parts of the first run, byte for byte
    staged = sorted(p.stem for p in (tmp_path / "r.parquet.parts.new").glob("*.json"))
    assert len(staged) == 2
    n = len(_calls(log))
    df = run_sweep("w", "h", "dsq", [0.5, 1.0, 2.0], out=out, resume=True, point_fn=CountingPoint(log))
    assert len(_calls(log)) == n + 1  # only the failed point is computed again
    assert len(df) == 3 and set(df.policy) == {"dsq"}
    assert not (tmp_path / "r.parquet.parts.new").exists()
    assert set(staged) <= {p.stem for p in (tmp_path / "r.parquet.parts").glob("*.json")}


def test_fresh_run_swaps_in_its_results_only_when_finished(tmp_path):
    log, out = tmp_path / "log", tmp_path / "r.parquet"
    run_sweep("w", "h", "fp32", [0.5, 1.0], out=out, point_fn=CountingPoint(log))
    old_keys = {p.stem for p in (tmp_path / "r.parquet.parts").glob("*.json")}
    df = run_sweep("w", "h", "dsq", [4.0], out=out, point_fn=CountingPoint(log))
    new_keys = {p.stem for p in (tmp_path / "r.parquet.parts").glob("*.json")}
    assert len(new_keys) == 1 and new_keys.isdisjoint(old_keys)  # a fresh run replaces, as before
    pd.testing.assert_frame_equal(pd.read_parquet(out), df)
    assert not (tmp_path / "r.parquet.parts.new").exists() and not (tmp_path / "r.parquet.parts.old").exists()


def test_ctrl_c_over_earlier_results_keeps_them(tmp_path):
    log, out = tmp_path / "log", tmp_path / "r.parquet"
    run_sweep("w", "h", "fp32", [0.5], out=out, point_fn=CountingPoint(log))
    before = _snapshot(out)
    with pytest.raises(KeyboardInterrupt):
        run_sweep("w", "h", "fp32", [1.0, 2.0], out=out, point_fn=CountingPoint(log, 2.0, "interrupt"))
    assert _snapshot(out) == before
