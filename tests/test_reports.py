"""Plots and the HTML report on frames of the documented shapes (no simulation needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports import plots
from reports.html import write_report
from reports.load import load_results

POLICIES = ("fp32", "fixed16", "dsq")


def _sweep() -> pd.DataFrame:
    rows = []
    for p, f in zip(POLICIES, (1.0, 0.5, 0.25), strict=True):
        for s in (0.25, 1.0, 4.0):
            # compute 1 ms per step, memory f * 8 ms / s: a roofline-like toy
            rows.append({"workload": "w", "hw": "h", "policy": p, "dram_bw_scale": s, "array": None,
                         "sram_kb": None, "time_s": max(1e-3, f * 8e-3 / s), "dram_bytes": f * 1e9,
                         "bytes_role_weight": f * 4e8, "bytes_role_activation": f * 6e8,
                         "bytes_point_q0": f * 7e8, "bytes_point_other": f * 3e8})
    return pd.DataFrame(rows)


def _labels_have_units(fig) -> None:
    assert fig.axes[0].get_ylabel()
    for ax in fig.axes:
        assert ax.get_xlabel()
        for label in (ax.get_xlabel(), ax.get_ylabel()):
            if label and not any(word in label for word in ("step", "policy", "bits")):
                assert "[" in label, label  # a unit


def test_speedup_plot_shows_baseline_over_policy_time():
    fig = plots.speedup_vs_bandwidth(_sweep())
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines if line.get_label() in POLICIES}
    x, y = lines["dsq"].get_data()
    # fp32 time / dsq time: at 0.25x both memory-bound (ratio 4); at 4x fp32 2 ms, dsq compute-bound 1 ms
    assert list(x) == [0.25, 1.0, 4.0] and np.allclose(y, [4.0, 4.0, 2.0])
    assert np.allclose(lines["fp32"].get_data()[1], 1.0)
    assert "speedup over fp32" in ax.get_ylabel()
    _labels_have_units(fig)
    with pytest.raises(ValueError, match="fp32, fixed16, dsq"):
        plots.speedup_vs_bandwidth(_sweep(), baseline="bf16")


def test_speedup_plot_panels_per_swept_array():
    df = pd.concat([_sweep().assign(array="8x8"), _sweep().assign(array="32x32")], ignore_index=True)
    fig = plots.speedup_vs_bandwidth(df)
    assert len(fig.axes) == 2 and {a.get_title() for a in fig.axes} == {"array=8x8", "array=32x32"}


def test_traffic_bars_stack_to_the_totals():
    traffic = pd.DataFrame([{"policy": p, "by": by, "key": k, "dram_bytes": v}
                            for p, f in zip(POLICIES, (4.0, 2.0, 1.0), strict=True)
                            for by, k, v in (("role", "weight", f * 1e9), ("role", "activation", f * 2e9),
                                             ("point", "q0", f * 1.5e9), ("point", "other", f * 1.5e9))])
    fig = plots.traffic_breakdown(traffic, per="whole run")
    ax_role = fig.axes[0]
    heights = {}
    for patch in ax_role.patches:
        x = round(patch.get_x() + patch.get_width() / 2)
        heights[x] = heights.get(x, 0) + patch.get_height()
    assert np.allclose([heights[i] for i in range(3)], [12, 6, 3])  # GB
    assert ax_role.get_ylabel() == "DRAM traffic [GB, whole run]"


def test_timeline_curves_and_busy_plots_write_png_and_svg(tmp_path):
    timeline = pd.DataFrame([
        {"policy": "fixed16", "step_start": 0, "step_end": 100, "label": "fixed16", "q0_bits": 16, "q1_bits": 16,
         "q2_bits": 16, "q3_bits": 16},
        {"policy": "dsq", "step_start": 0, "step_end": 40, "label": "lo", "q0_bits": 4.5, "q1_bits": 2.5,
         "q2_bits": 4.5, "q3_bits": 8.5},
        {"policy": "dsq", "step_start": 40, "step_end": 100, "label": "hi", "q0_bits": 8.5, "q1_bits": 4.5,
         "q2_bits": 8.5, "q3_bits": 16.5}])
    fig = plots.precision_timeline(timeline)
    q1 = [line for line in fig.axes[1].lines if line.get_label() == "q1"][0]
    assert list(q1.get_data()[0]) == [0, 40, 100] and list(q1.get_data()[1]) == [2.5, 4.5, 4.5]
    files = plots.save_figure(fig, tmp_path / "timeline")
    assert [f.suffix for f in files] == [".png", ".svg"] and all(f.stat().st_size > 3000 for f in files)

    metrics = pd.DataFrame([{"policy": p, "step": s, "train_loss": 3 / s, "valid_loss": 3.2 / s, "bleu": s / 10}
                            for p in POLICIES for s in (10, 20, 30)])
    fig = plots.training_curves(metrics)
    assert len(fig.axes) == 2 and "BLEU" in fig.axes[1].get_ylabel()
    _labels_have_units(fig)
    assert len(plots.training_curves(metrics.drop(columns="bleu")).axes) == 1

    busy = pd.DataFrame([{"policy": p, "by": by, "key": k, "busy_s": 1.0}
                         for p in POLICIES for by, k in (("unit", "array"), ("unit", "dram"), ("phase", "forward"),
                                                         ("phase", "backward"), ("overlap", "dram_only"))])
    fig = plots.busy_summary(busy)
    assert len(fig.axes) == 3 and all(a.get_xlabel() == "simulated time [s]" for a in fig.axes)
    plots.save_figure(fig, tmp_path / "busy.png")
    assert (tmp_path / "busy.png").exists() and not (tmp_path / "busy.svg").exists()


def test_sweep_report_is_self_contained(tmp_path):
    path = tmp_path / "sweep.parquet"
    _sweep().to_parquet(path)
    out = write_report(path, tmp_path / "report.html")
    html = out.read_text()
    assert html.count("data:image/png;base64,") == 2 and "<table" in html and "src='http" not in html
    assert (tmp_path / "report_plots" / "speedup_vs_bandwidth.svg").exists()
    assert load_results(_sweep()).kind == "sweep"


def test_report_bad_input(tmp_path):
    with pytest.raises(OSError, match="not found"):
        load_results(tmp_path / "missing")
    with pytest.raises(ValueError, match="study.json"):
        load_results(tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="parquet"):
        load_results(tmp_path / "x.txt")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match="not a sweep table"):
        load_results(tmp_path / "t.csv")
    _sweep().to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ValueError, match=".html"):
        write_report(tmp_path / "s.csv", tmp_path / "r.pdf")
    with pytest.raises(OSError, match="does not exist"):
        write_report(tmp_path / "s.csv", tmp_path / "nodir" / "r.html")


def test_report_cli_bad_input_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run([sys.executable, "-m", "sim.cli", "report", str(tmp_path / "nothing")],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "not found" in proc.stderr
