"""Progress across workers (one aggregated bar per phase on stderr) and the transaction-level time estimate."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd
import pytest
from tqdm import tqdm

import sim.progress
from sim.policy import get_policy


@dataclass
class _StepTrain:
    """A stand-in trainer that reports every step through `on_step`, as the reference trainer does."""

    def __call__(self, task, policy, steps, seed, out_dir, resume=False, eval_every=None, progress=False,
                 on_step=None):
        for step in range(1, steps + 1):
            if on_step is not None:
                on_step(step)
        metrics = pd.DataFrame({"step": [steps], "train_loss": [1.0], "valid_loss": [1.0], "bleu": [1.0]})
        return type("R", (), {"metrics": metrics, "timeline": get_policy(policy).timeline(steps), "wall_s": 0.01,
                              "final": {"final_valid_loss": 1.0, "bleu": 1.0}})()


@pytest.fixture
def visible_bars(monkeypatch):
    """Bars written to a buffer, as on a terminal (under pytest stderr is not a TTY, so bars are off)."""
    out = io.StringIO()

    def bar(total, desc, enabled, unit="it", initial=0):
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=out, disable=not enabled,
                    mininterval=0, ascii=True)

    monkeypatch.setattr(sim.progress, "bar", bar)
    return out


def test_study_shows_one_bar_per_phase_fed_by_the_workers(tmp_path, visible_bars):
    from sim.study import StudyConfig, run_study

    cfg = StudyConfig(task="numwords", workload="tiny-mt", hw="edge-npu", policies=("fp32", "dsq"), steps=6,
                      eval_every=3, fidelity="roofline", dram_bw_scales=(1.0, 2.0))
    r = run_study(cfg, tmp_path / "s", train_fn=_StepTrain(), workers=2, progress=True, report=False)
    text = visible_bars.getvalue()
    assert "training" in text and "12/12" in text  # steps of both policies, reported from two worker processes
    n = 2 * len(r.configs)  # every configuration at the machine's bandwidth and at 2x
    assert "simulating" in text and f"{n}/{n}" in text
    assert any(f" {k}/12 " in text for k in range(1, 6))  # updated step by step, not only when a run ends


def test_no_bars_when_disabled(tmp_path, visible_bars):
    from sim.study import StudyConfig, run_study

    cfg = StudyConfig(task="numwords", workload="tiny-mt", hw="edge-npu", policies=("fp32", "dsq"), steps=4,
                      eval_every=2, fidelity="roofline", dram_bw_scales=(1.0,))
    run_study(cfg, tmp_path / "s", train_fn=_StepTrain(), workers=2, progress=False, report=False)
    assert visible_bars.getvalue() == ""


def test_sweep_bar(tmp_path, visible_bars):
    from sim.sweep import run_sweep

    run_sweep("tiny-mt", "edge-npu", "fp32", [0.5, 1.0, 2.0], fidelity="roofline", progress=True)
    assert "sweep" in visible_bars.getvalue() and "3/3" in visible_bars.getvalue()


def test_transaction_estimate_is_printed_before_and_is_the_right_size(capsys):
    """The estimate comes from the engine plan's bursts and a rate measured now; it is within 3x of the run (a
    workload of ~2 M bursts, where the DRAM and the engine's work dominate the command's fixed costs). The run's
    CPU time is the better of two: a half-second run is at the mercy of one hiccup of a shared host."""
    import json
    import tempfile
    import time

    from sim.cli import main

    size = ["--batch", "32", "--seq-len", "128"]
    main(["simulate", "--workload", "tiny-lm", "--hw", "edge-npu", "--policy", "bf16", "--json", *size])  # imports
    capsys.readouterr()
    runs = []
    for _ in range(2):
        t0 = time.process_time()
        assert main(["simulate", "--workload", "tiny-lm", "--hw", "edge-npu", "--policy", "bf16", "--fidelity",
                     "transaction", "--json", "--cache-dir", tempfile.mkdtemp(), *size]) == 0
        runs.append((time.process_time() - t0, capsys.readouterr()))
    cpu_s = min(t for t, _ in runs)
    out, err = runs[0][1]
    line = err.strip().splitlines()[0]
    assert line.startswith("transaction fidelity:") and "bursts" in line
    from hwmodels.machine import get_machine
    from sim.precision import PrecisionConfig
    from workloads import resolve_workload

    machine = get_machine("edge-npu")
    seconds, bursts, rate = sim.progress.transaction_estimate(resolve_workload("tiny-lm", batch=32, seq_len=128),
                                                               machine, [PrecisionConfig.uniform("bf16")])
    assert bursts * machine.dram.request_bytes >= json.loads(out)["dram_bytes"]  # the plan's traffic, re-reads too
    assert cpu_s / 3 < seconds < cpu_s * 3, (cpu_s, seconds, bursts, rate)


def test_queue_bar_sums_the_latest_value_per_key():
    import multiprocessing

    q = multiprocessing.get_context("fork").Queue()
    with sim.progress.QueueBar(q, 20, "t", enabled=False) as qb:
        for key, value in (("a", 3), ("b", 4), ("a", 5)):
            q.put((key, value))
        deadline = __import__("time").monotonic() + 10
        while qb.latest != {"a": 5, "b": 4} and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
    assert qb.latest == {"a": 5, "b": 4} and qb.bar.n == 9


def test_sweep_estimate_adds_the_engine_costs_per_point(monkeypatch):
    """The sweep's estimate counts each point's bursts and the engine's own costs, as `dsqsim simulate` does; both
    measured once per workload, machine shape and configuration (the bandwidth axis re-uses them)."""
    from sim.sweep.grid import SweepPoint
    from sim.sweep.points import estimate_line

    calls = []

    def work(trace, machine, config):
        calls.append(config)
        return 1000, 2.0  # bursts, engine CPU seconds

    monkeypatch.setattr(sim.progress, "transaction_work", work)
    monkeypatch.setattr(sim.progress, "measured_burst_rate", lambda dram: 100.0)
    points = [SweepPoint("tiny-lm", "edge-npu", "bf16", dram_bw_scale=s, fidelity="transaction") for s in (1, 2, 4)]
    line = estimate_line(points, workers=1)
    assert len(calls) == 1  # measured once for the three bandwidths
    assert "3e+03 DRAM bursts" in line and "36 s" in line  # 3 x (1000 / 100 + 2.0) s
