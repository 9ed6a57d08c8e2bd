"""The sweep machinery (grid, pools, Dask, incremental writes, resume) around a stand-in point function."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from sim.sweep import SweepInterrupted, build_grid, run_sweep


class CountingPoint:
    """A picklable point function that logs every computation to a file (one line per call, any process)."""

    def __init__(self, log: Path, fail_on: float | None = None, mode: str = "raise"):
        self.log, self.fail_on, self.mode = str(log), fail_on, mode

    def __call__(self, point) -> dict:
        if self.fail_on is not None and point.dram_bw_scale == self.fail_on:
            if self.mode == "kill":
                os._exit(3)  # a worker dying mid-point
            if self.mode == "interrupt":
                raise KeyboardInterrupt
            raise RuntimeError("point failed")
        with open(self.log, "a") as fh:
            fh.write(point.key() + "\n")
        # A memory-bound toy: time falls with DRAM bandwidth; the policy halves the bytes.
        dram_bytes = 1e6 * (0.5 if point.policy == "dsq" else 1.0)
        return {"time_s": dram_bytes / (1e9 * point.dram_bw_scale), "dram_bytes": dram_bytes, "pid": os.getpid()}


def _calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_grid_is_the_product_with_option_named_columns():
    pts = build_grid("w1,w2", ["hw"], "fp32,dsq", [0.5, 1, 2], ["32x32"], [None])
    assert len(pts) == 2 * 1 * 2 * 3
    assert len({p.key() for p in pts}) == len(pts)
    assert {p.array for p in pts} == {"32x32"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dram_bw_scales": [0]}, "dram_bw_scale"),
        ({"dram_bw_scales": ["x"]}, "dram_bw_scale"),
        ({"arrays": ["32by32"]}, "ROWSxCOLS"),
        ({"sram_kbs": [-1]}, "sram_kb"),
        ({"fidelity": "exact"}, "roofline, tile, transaction"),
    ],
)
def test_grid_rejects_bad_axes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_grid("w", "h", "p", **kwargs)


def test_rows_have_axis_columns_and_figures(tmp_path):
    log = tmp_path / "log"
    df = run_sweep("w", "h", "fp32,dsq", [0.5, 1.0], out=tmp_path / "r.parquet", point_fn=CountingPoint(log))
    assert list(df.columns[:6]) == ["workload", "hw", "policy", "dram_bw_scale", "array", "sram_kb"]
    assert len(df) == 4 and len(_calls(log)) == 4
    on_disk = pd.read_parquet(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(on_disk, df)
    fast = df[(df.policy == "dsq") & (df.dram_bw_scale == 1.0)].time_s.item()
    slow = df[(df.policy == "fp32") & (df.dram_bw_scale == 0.5)].time_s.item()
    assert slow == pytest.approx(4 * fast)


def test_resume_computes_only_new_points(tmp_path):
    log, out = tmp_path / "log", tmp_path / "r.parquet"
    run_sweep("w", "h", "fp32,dsq", [0.5, 1.0], out=out, point_fn=CountingPoint(log))
    first = set(_calls(log))
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r.parquet.parts").iterdir()}
    df = run_sweep("w", "h", "fp32,dsq", [0.5, 1.0, 2.0], out=out, resume=True, point_fn=CountingPoint(log))
    calls = _calls(log)
    assert len(df) == 6 and len(calls) == 6  # 4 + only the 2 new points
    assert first.isdisjoint(calls[4:])
    assert all((tmp_path / "r.parquet.parts" / n).stat().st_mtime_ns == t for n, t in mtimes.items())
    # Without resume the sweep starts over.
    run_sweep("w", "h", "fp32", [0.5], out=out, point_fn=CountingPoint(log))
    assert len(_calls(log)) == 7 and len(pd.read_parquet(out)) == 1


def test_failed_point_keeps_finished_points_then_resume(tmp_path):
    log, out = tmp_path / "log", tmp_path / "r.parquet"
    with pytest.raises(RuntimeError, match="point failed"):
        run_sweep("w", "h", "fp32", [0.5, 1.0, 2.0], out=out, point_fn=CountingPoint(log, fail_on=2.0))
    assert len(pd.read_parquet(out)) == 2
    df = run_sweep("w", "h", "fp32", [0.5, 1.0, 2.0], out=out, resume=True, point_fn=CountingPoint(log))
    assert len(df) == 3 and len(_calls(log)) == 3


def test_ctrl_c_keeps_finished_points(tmp_path):
    log, out = tmp_path / "log", tmp_path / "r.parquet"
    with pytest.raises(KeyboardInterrupt):
        run_sweep("w", "h", "fp32", [0.5, 1.0, 2.0], out=out, point_fn=CountingPoint(log, 2.0, "interrupt"))
    saved = pd.read_parquet(out)
    assert sorted(saved.dram_bw_scale) == [0.5, 1.0]
    parts = list((tmp_path / "r.parquet.parts").glob("*.json"))
    assert len(parts) == 2 and all(json.loads(p.read_text())["policy"] == "fp32" for p in parts)


def test_process_pool_runs_in_parallel_and_survives_a_killed_worker(tmp_path):
    log, out = tmp_path / "log", tmp_path / "r.parquet"
    df = run_sweep("w", "h", "fp32,dsq", [0.5, 1.0, 2.0], out=out, workers=2, point_fn=CountingPoint(log))
    assert len(df) == 6 and df.pid.nunique() >= 1 and os.getpid() not in set(df.pid)
    out2 = tmp_path / "k.parquet"
    with pytest.raises(SweepInterrupted, match="resume"):
        run_sweep("w", "h", "fp32", [0.5, 1.0, 2.0, 4.0], out=out2, workers=2,
                  point_fn=CountingPoint(log, 4.0, "kill"))
    saved_keys = {p.stem for p in (tmp_path / "k.parquet.parts").glob("*.json")}
    n_before = len(_calls(log))
    df2 = run_sweep("w", "h", "fp32", [0.5, 1.0, 2.0, 4.0], out=out2, resume=True, workers=2,
                    point_fn=CountingPoint(log))
    recomputed = _calls(log)[n_before:]
    assert len(df2) == 4 and saved_keys.isdisjoint(recomputed) and len(recomputed) == 4 - len(saved_keys)


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    log, out = tmp_path / "log", tmp_path / "r.parquet"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        df = run_sweep("w", "h", "fp32,dsq", [0.5, 1.0], out=out, executor="dask",
                       scheduler=cluster.scheduler_address, point_fn=CountingPoint(log))
        assert len(df) == 4
        df2 = run_sweep("w", "h", "fp32,dsq", [0.5, 1.0, 2.0], out=out, resume=True, executor="dask",
                        scheduler=cluster.scheduler_address, point_fn=CountingPoint(log))
    assert len(df2) == 6 and len(_calls(log)) == 6
    pd.testing.assert_frame_equal(df2.iloc[:4].drop(columns="wall_s"), df.drop(columns="wall_s"))


def test_bad_executor_and_scheduler(tmp_path):
    with pytest.raises(ValueError, match="local, dask"):
        run_sweep("w", "h", "p", executor="ray", point_fn=CountingPoint(tmp_path / "l"))
    with pytest.raises(ValueError, match="--scheduler"):
        run_sweep("w", "h", "p", scheduler="tcp://x:1", point_fn=CountingPoint(tmp_path / "l"))
    with pytest.raises(ValueError, match=".parquet or .csv"):
        run_sweep("w", "h", "p", out=tmp_path / "r.txt", point_fn=CountingPoint(tmp_path / "l"))
