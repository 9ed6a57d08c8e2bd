"""The training loop: resume ends exactly like a straight run, divergence stops cleanly, the CLI contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.policy import Timeline, get_policy
from sim.training import TransformerConfig
from sim.training.checkpoint import load_checkpoint
from sim.training.tasks.numwords import VOCAB
from sim.training.train import TIMING_COLUMNS, TrainingDiverged, train

ROOT = Path(__file__).resolve().parent.parent
TINY = TransformerConfig(vocab_size=len(VOCAB), d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1,
                         n_decoder_layers=1, max_len=12, dropout=0.1, label_smoothing=0.1)
STEPS, EVAL = 12, 4


def _run(out: Path, policy: str = "dsq", **kw) -> object:
    return train("numwords", policy, steps=STEPS, seed=3, out_dir=out, eval_every=EVAL, model_config=TINY,
                 progress=False, **kw)


def _stop_at(step: int, exc: type[BaseException]):
    def hook(done: int) -> None:
        if done == step:
            raise exc("stop")
    return hook


def _params(out: Path) -> dict[str, np.ndarray]:
    arrays, meta = load_checkpoint(out / "checkpoint.npz")
    assert meta["step"] == STEPS
    return arrays


def _metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv").drop(columns=list(TIMING_COLUMNS))


@pytest.mark.parametrize(("stop", "exc"), [(6, KeyboardInterrupt), (8, RuntimeError)])
def test_interrupted_then_resumed_run_ends_exactly_as_a_straight_one(tmp_path: Path, stop: int, exc: type) -> None:
    straight = _run(tmp_path / "straight")
    with pytest.raises(exc):
        _run(tmp_path / "cut", on_step=_stop_at(stop, exc))
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.npz")[1]["step"] == (stop // EVAL) * EVAL
    resumed = _run(tmp_path / "cut", resume=True)
    a, b = _params(tmp_path / "straight"), _params(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    pd.testing.assert_frame_equal(_metrics(tmp_path / "straight"), _metrics(tmp_path / "cut"))
    assert len(_metrics(tmp_path / "cut")) == STEPS // EVAL
    assert resumed.final == straight.final
    # dsq changes precision during the run; the recorded timeline is the policy's schedule, resumed or not
    planned = get_policy("dsq").timeline(STEPS)
    assert len(planned.changes) == len(get_policy("dsq").stages) >= 2
    for run in ("straight", "cut"):
        assert Timeline.load(tmp_path / run / "timeline.json").changes == planned.changes


def test_dropout_and_seed_matter(tmp_path: Path) -> None:
    """Guards the test above against passing because nothing random happens."""
    a = _run(tmp_path / "a", policy="fp32")
    b = train("numwords", "fp32", steps=STEPS, seed=4, out_dir=tmp_path / "b", eval_every=EVAL, model_config=TINY,
              progress=False)
    assert a.metrics["train_loss"].iloc[-1] != b.metrics["train_loss"].iloc[-1]


def test_existing_run_needs_resume_and_a_matching_identity(tmp_path: Path) -> None:
    _run(tmp_path, policy="fp32")
    with pytest.raises(ValueError, match="--resume"):
        _run(tmp_path, policy="fp32")
    with pytest.raises(ValueError, match="different run"):
        _run(tmp_path, policy="bf16", resume=True)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch) -> None:
    from sim.training.model import Transformer

    real = Transformer.loss_and_grads
    calls = {"n": 0}

    def poisoned(self, batch, precision=None):
        calls["n"] += 1
        loss, grads = real(self, batch, precision)
        return (float("nan") if calls["n"] == 7 else loss), grads

    monkeypatch.setattr(Transformer, "loss_and_grads", poisoned)
    # the 7th step diverges; steps are numbered as in the metrics, whose rows and checkpoints count completed steps
    with pytest.raises(TrainingDiverged, match="loss is nan at step 7; last good checkpoint at step 4"):
        _run(tmp_path)
    assert load_checkpoint(tmp_path / "checkpoint.npz")[1]["step"] == 4
    assert pd.read_csv(tmp_path / "metrics.csv")["step"].tolist() == [4]


def test_an_exploding_finite_loss_stops_the_run_like_nan(tmp_path: Path, monkeypatch) -> None:
    from sim.training.model import Transformer
    from sim.training.train import EXPLOSION_FACTOR

    real = Transformer.loss_and_grads
    calls = {"n": 0}
    limit = EXPLOSION_FACTOR * np.log(len(VOCAB))

    def exploding(self, batch, precision=None):
        calls["n"] += 1
        loss, grads = real(self, batch, precision)
        return {6: limit * 0.99, 7: limit * 1.01}.get(calls["n"], loss), grads  # just below, then just above

    monkeypatch.setattr(Transformer, "loss_and_grads", exploding)
    with pytest.raises(TrainingDiverged, match=r"exceeds 4 x ln\(vocabulary 43\) = 15 at step 7; last good "
                                               "checkpoint at step 4"):
        _run(tmp_path)
    assert load_checkpoint(tmp_path / "checkpoint.npz")[1]["step"] == 4
    assert pd.read_csv(tmp_path / "metrics.csv")["step"].tolist() == [4]


def test_bad_seed_is_rejected_before_anything_is_written(tmp_path: Path) -> None:
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            train("numwords", "fp32", steps=STEPS, seed=seed, out_dir=tmp_path / "run", model_config=TINY,
                  progress=False)
    assert not (tmp_path / "run").exists()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim.cli", "train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_json_summary_and_files(tmp_path: Path) -> None:
    proc = _cli("--task", "shakespeare", "--policy", "bf16", "--steps", "3", "--eval-every", "2", "--out",
                str(tmp_path), "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary) == {"task", "policy", "steps", "final_valid_loss", "bpc", "exact_match", "wall_s",
                            "steps_per_s"}
    assert summary["task"] == "shakespeare" and summary["steps"] == 3 and summary["exact_match"] is None
    assert summary["bpc"] == pytest.approx(summary["final_valid_loss"] / np.log(2))
    assert pd.read_csv(tmp_path / "metrics.csv")["step"].tolist() == [2, 3]
    assert Timeline.load(tmp_path / "timeline.json").changes[0][1].label == "bf16"


@pytest.mark.parametrize("args", [
    ("--task", "numwords", "--policy", "nosuchpolicy"),
    ("--task", "numwords", "--steps", "0"),
    ("--task", "klingon"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = _cli(*args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "error" in proc.stderr


def test_cli_divergence_is_one_line_nonzero(tmp_path: Path) -> None:
    proc = _cli("--task", "numwords", "--steps", "6", "--eval-every", "2", "--lr", "1e30", "--out", str(tmp_path),
                "--no-progress")
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "training diverged" in lines[0] and "Traceback" not in proc.stderr


def test_cli_exploding_loss_is_divergence(tmp_path: Path) -> None:
    """--lr 50 keeps the loss finite (it used to end with a valid loss of 1.5e5 and exit 0)."""
    proc = _cli("--task", "numwords", "--steps", "30", "--eval-every", "10", "--lr", "50", "--out", str(tmp_path),
                "--no-progress")
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "training diverged: loss" in lines[0] and "exceeds" in lines[0]
    assert not (tmp_path / "checkpoint.npz").exists() and not (tmp_path / "metrics.csv").exists()


def test_cli_negative_seed_names_the_option_and_creates_nothing(tmp_path: Path) -> None:
    proc = _cli("--task", "numwords", "--seed", "-1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--seed" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_cli_resume_without_a_checkpoint_says_it_starts_a_new_run(tmp_path: Path) -> None:
    args = ("--task", "shakespeare", "--policy", "fp32", "--steps", "2", "--eval-every", "2", "--out",
            str(tmp_path / "run"), "--resume", "--no-progress", "--json")
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert "no checkpoint" in proc.stderr and "starting a new run" in proc.stderr
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")[1]["step"] == 2
    again = _cli(*args)  # now there is one: resumed (already complete), no note
    assert again.returncode == 0 and "no checkpoint" not in again.stderr


@pytest.mark.slow
def test_numwords_fp32_learns_the_task(tmp_path: Path) -> None:
    """The default numwords model reaches a high test BLEU in a few hundred steps (fp32)."""
    result = train("numwords", "fp32", steps=600, seed=0, out_dir=tmp_path, progress=False)
    assert result.final["bleu"] > 95 and result.final["exact_match"] > 0.9
    assert result.metrics["valid_loss"].iloc[-1] < result.metrics["valid_loss"].iloc[0]


SR_POLICY = {"name": "sr", "kind": "fixed",
             "config": {"q0": "mxint8", "q1": "mxint8", "q2": "mxint8_sr", "q3": "mxint8_sr"}}


def test_stochastic_rounding_run_resumes_exactly_and_depends_on_its_stream(tmp_path: Path) -> None:
    """A policy with `_sr` formats: its random bits come from the model's checkpointed rounding stream, so an
    interrupted run resumes bit for bit and the same seed repeats it; the draws really change the numbers."""
    from sim.policy import policy_from_dict

    def run(out: Path, **kw) -> object:
        return _run(out, policy=policy_from_dict(SR_POLICY), **kw)

    straight = run(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", on_step=_stop_at(6, KeyboardInterrupt))
    resumed = run(tmp_path / "cut", resume=True)
    a, b = _params(tmp_path / "straight"), _params(tmp_path / "cut")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert resumed.final == straight.final
    again = run(tmp_path / "again")
    assert again.final == straight.final
    nearest = _run(tmp_path / "nearest", policy=policy_from_dict(
        {**SR_POLICY, "config": {q: "mxint8" for q in ("q0", "q1", "q2", "q3")}}))
    assert nearest.metrics["train_loss"].iloc[-1] != straight.metrics["train_loss"].iloc[-1]


def test_model_rng_state_holds_both_streams_and_reads_an_older_checkpoint() -> None:
    from sim.training.model import Transformer

    model = Transformer(TINY, seed=1)
    state = model.rng_state()
    assert set(state) == {"dropout", "rounding"}
    before = model.rounding_rng.random()
    model.rng.random()
    model.set_rng_state(state)
    assert model.rounding_rng.random() == before
    older = Transformer(TINY, seed=1)
    older.rng.random()
    older.set_rng_state(Transformer(TINY, seed=1).rng.bit_generator.state)  # a checkpoint with the dropout state only
    assert older.rng.random() == Transformer(TINY, seed=1).rng.random()
