"""Closed-loop studies: a real tiny study end to end, the integration over the timeline, resume, CLI errors."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.counting import count
from sim.policy import get_policy
from sim.study import StudyConfig, run_study
from sim.study.run import TABLES
from workloads import resolve_workload

TINY = {"task": "numwords", "workload": "tiny-mt", "hw": "edge-npu"}


@dataclass
class _FakeTrain:
    """Stands in for sim.training.train: the policy's own schedule as the timeline, synthetic curves."""

    calls: list
    fail_on: str | None = None

    def __call__(self, task, policy, steps, seed, out_dir, resume=False, eval_every=None, progress=False):
        self.calls.append((policy, resume))
        if policy == self.fail_on:
            raise KeyboardInterrupt
        timeline = get_policy(policy).timeline(steps)
        evals = list(range(eval_every, steps + 1, eval_every))
        metrics = pd.DataFrame({"step": evals, "train_loss": [3.0 / s for s in evals],
                                "valid_loss": [3.1 / s for s in evals], "bleu": [float(s) for s in evals]})
        return type("R", (), {"metrics": metrics, "timeline": timeline, "wall_s": 0.01,
                              "final": {"final_valid_loss": 0.5, "bleu": 12.0}})()


def test_tiny_study_end_to_end(tmp_path):
    """Real training (4 steps) of two policies in parallel, engine costing, files, plots and report."""
    out = tmp_path / "study"
    r = run_study(StudyConfig(**TINY, policies=("fp32", "dsq"), steps=4, eval_every=2, dram_bw_scales=(0.5, 1.0)),
                  out, workers=2)
    assert list(r.summary.policy) == ["fp32", "dsq"]
    s = r.summary.set_index("policy")
    assert np.isfinite(s.final_valid_loss).all() and (s.final_bleu >= 0).all()
    assert s.loc["fp32", "speedup"] == 1.0 and s.loc["dsq", "traffic_reduction"] > 1.5
    assert s.loc["dsq", "arith_bitops"] < s.loc["fp32", "arith_bitops"] / 4  # bfp4-8 multiplies vs 24-bit
    assert set(r.metrics.policy) == {"fp32", "dsq"} and {"step", "valid_loss"} <= set(r.metrics.columns)
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"), getattr(r, name), check_dtype=False)
        assert (out / f"{name}.csv").stat().st_size > 0
    for plot in ("training_curves", "precision_timeline", "dram_traffic", "speedup_vs_bandwidth", "busy_summary",
                 "roofline_fp32", "roofline_dsq"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 5000
        assert (out / "plots" / f"{plot}.svg").read_text().lstrip().startswith("<?xml")
    html = (out / "report.html").read_text()
    assert r.report_path == out / "report.html" and html.count("data:image/png;base64,") >= 7
    assert "<table" in html and "src='http" not in html  # self-contained


def test_totals_integrate_the_timeline_with_counting(tmp_path):
    """Run totals = sum over timeline segments of (steps x per-step counts), checked against sim.counting."""
    calls: list = []
    steps = 30
    r = run_study(StudyConfig(**TINY, policies=("fixed16", "dsq"), steps=steps, fidelity="roofline",
                              dram_bw_scales=(1.0,)), None, train_fn=_FakeTrain(calls), workers=1)
    trace = resolve_workload("tiny-mt")
    for policy in ("fixed16", "dsq"):
        segments = get_policy(policy).timeline(steps).segments()
        expect_bytes = sum((e - s) * count(trace, c).dram_bytes for s, e, c in segments)
        expect_bitops = sum((e - s) * count(trace, c).arith_bitops for s, e, c in segments)
        row = r.summary.set_index("policy").loc[policy]
        assert row.dram_bytes == pytest.approx(expect_bytes, rel=1e-9)
        assert row.arith_bitops == pytest.approx(expect_bitops, rel=1e-9)
        assert row.steps == steps
        by_point = r.traffic[(r.traffic.policy == policy) & (r.traffic.by == "point")].dram_bytes.sum()
        assert by_point == pytest.approx(expect_bytes, rel=1e-9)
    assert len(get_policy("dsq").timeline(steps).segments()) > 1  # the dsq case really integrates segments
    s = r.summary.set_index("policy")
    # energy and minimal traffic integrate the same way; the parts of the energy add up to its total
    for policy in ("fixed16", "dsq"):
        segments = get_policy(policy).timeline(steps).segments()
        expect_min = sum((e - st) * count(trace, c).dram_bytes for st, e, c in segments)
        assert s.loc[policy, "dram_bytes_minimal"] == pytest.approx(expect_min, rel=1e-9)
        parts = [c for c in s.columns if c.startswith("energy_") and c.endswith("_j") and c != "energy_j"]
        assert len(parts) == 7 and s.loc[policy, "energy_j"] > 0
        assert s.loc[policy, parts].sum() == pytest.approx(s.loc[policy, "energy_j"], rel=1e-9)
    assert s.loc["dsq", "energy_reduction"] == pytest.approx(s.loc["fixed16", "energy_j"] / s.loc["dsq", "energy_j"])
    assert s.loc["dsq", "speedup"] == pytest.approx(s.loc["fixed16", "time_s"] / s.loc["dsq", "time_s"])


def test_resume_reuses_finished_policies(tmp_path):
    out, calls = tmp_path / "s", []
    cfg = StudyConfig(**TINY, policies=("fp32", "dsq"), steps=10, fidelity="roofline", dram_bw_scales=(1.0,))
    with pytest.raises(KeyboardInterrupt):  # interrupted while training the second policy
        run_study(cfg, out, train_fn=_FakeTrain(calls, fail_on="dsq"), workers=1)
    assert calls == [("fp32", False), ("dsq", False)]
    first = run_study(cfg, out, resume=True, train_fn=_FakeTrain(calls), workers=1, report=False)
    assert calls[2:] == [("dsq", True)]  # fp32 reused; dsq continues from its checkpoint
    again = run_study(cfg, out, resume=True, train_fn=_FakeTrain(calls), workers=1, report=False)
    assert len(calls) == 3
    pd.testing.assert_frame_equal(again.summary.drop(columns="sim_wall_s"), first.summary.drop(columns="sim_wall_s"))
    run_study(cfg.__class__(**{**cfg.__dict__, "steps": 20}), out, resume=True, train_fn=_FakeTrain(calls),
              workers=1, report=False)
    assert len(calls) == 5  # other settings: both retrained
    run_study(cfg, out, train_fn=_FakeTrain(calls), workers=1, report=False)
    assert calls[5:] == [("fp32", False), ("dsq", False)]  # no --resume: fresh


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"})


BAD_STUDY = [
    (["--hw", "no-such-hw"], "no-such-hw"),
    (["--policies", "fp32,nope"], "nope"),
    (["--policies", "fp32,fp32"], "distinct"),
    (["--task", "chess"], "numwords"),
    (["--workload", "nowhere"], "nowhere"),
    (["--fidelity", "exact"], "tile"),
    (["--dram-bw-scale", "0,1"], "dram_bw_scales"),
    (["--steps", "0"], "positive"),
]


@pytest.mark.parametrize("args, words", BAD_STUDY[:2])
def test_study_bad_input_subprocess(tmp_path, args, words):
    proc = _cli("study", "--out", str(tmp_path / "o"), *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and words in lines[0]
    assert not (tmp_path / "o" / "summary.csv").exists()


@pytest.mark.parametrize("args, words", BAD_STUDY[2:])
def test_study_bad_input_is_one_line_exit_2(tmp_path, capsys, args, words):
    from sim.cli import main

    try:
        code = main(["study", "--out", str(tmp_path / "o"), *args])
    except SystemExit as exc:  # argparse type errors exit from the parser
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0]
    assert not (tmp_path / "o" / "summary.csv").exists()


@pytest.mark.slow
def test_default_study_command_end_to_end(tmp_path):
    """The README's main command: plain `dsqsim study` on built-in defaults, run where the user stands."""
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "study", "--no-progress"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=1800,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = tmp_path / "dsqsim-out" / "report.html"
    assert f"report: {report.relative_to(tmp_path)}" in proc.stdout and report.stat().st_size > 100_000
    summary = pd.read_csv(tmp_path / "dsqsim-out" / "summary.csv").set_index("policy")
    assert list(summary.index) == ["fp32", "fixed16", "dsq"]
    assert summary.loc["dsq", "speedup"] > summary.loc["fixed16", "speedup"] > 1
    assert summary.loc["fp32", "final_bleu"] > 10  # the quick run does learn the task


def test_cli_and_python_defaults_agree():
    """`dsqsim study` and `run_study(StudyConfig())` run the same default study."""
    from sim.commands.study import DEFAULTS

    cfg = StudyConfig()
    assert (cfg.task, cfg.workload, cfg.hw, ",".join(cfg.policies), cfg.steps) == (
        DEFAULTS["task"], DEFAULTS["workload"], DEFAULTS["hw"], DEFAULTS["policies"], DEFAULTS["steps"])


def test_a_monitored_policys_shadow_passes_are_in_the_study_totals(tmp_path):
    """dsq-guard's probe at step 0 runs one shadow pass one level up: the study reports it and its time counts."""
    from hwmodels.machine import get_machine
    from sim.engine import simulate

    r = run_study(StudyConfig(**TINY, policies=("fp32", "dsq-guard"), steps=4, eval_every=2, fidelity="roofline",
                              dram_bw_scales=(1.0,)), tmp_path / "g", workers=1)
    s = r.summary.set_index("policy")
    assert s.loc["fp32", "extra_passes"] == 0 and s.loc["dsq-guard", "extra_passes"] == 1
    guard = get_policy("dsq-guard")
    trace, machine = resolve_workload("tiny-mt"), get_machine("edge-npu")
    step = simulate(trace, machine, guard.stages[0], "roofline").time_s
    shadow = simulate(trace, machine, guard.stages[1], "roofline").time_s
    assert s.loc["dsq-guard", "time_s"] == pytest.approx(4 * step + shadow, rel=1e-9)
    assert "extra_passes" in (tmp_path / "g" / "report.html").read_text()
