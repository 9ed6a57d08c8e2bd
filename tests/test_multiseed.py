"""Several seeds: Student-t quantiles, mean and 95 % interval against hand computations, seed parsing, the
study's per-seed table and interval columns, and `dsqsim train --seeds`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd
import pytest

from sim.cli import main
from sim.policy import get_policy
from sim.study import StudyConfig, run_study
from sim.study.seeds import aggregate_seeds, format_mean_ci, mean_ci, parse_seeds, t_quantile


@pytest.mark.parametrize("df, table", [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622),
                                       (30, 2.0423)])
def test_t_quantile_matches_the_table(df, table):
    assert t_quantile(0.975, df) == pytest.approx(table, abs=1e-4)


def test_mean_ci_by_hand():
    # values 10, 12, 14, 16: mean 13, sample sd sqrt(20/3), half-width t(0.975, 3) * sd / 2
    mean, half = mean_ci([10, 12, 14, 16])
    assert mean == 13
    assert half == pytest.approx(3.182446 * math.sqrt(20 / 3) / 2, rel=1e-6)
    assert math.isnan(mean_ci([5.0])[1]) and mean_ci([5.0])[0] == 5.0
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 0.0)
    assert format_mean_ci(13, half, 2) == f"13.00 ± {half:.2f}"


def test_aggregate_seeds_per_policy():
    frame = pd.DataFrame({"policy": ["a", "a", "b", "b", "b"], "x": [1.0, 3.0, 2.0, 2.0, 5.0]})
    agg = aggregate_seeds(frame, "policy", ["x", "missing"]).set_index("policy")
    assert agg.loc["a", "n_seeds"] == 2 and agg.loc["a", "x_mean"] == 2.0
    assert agg.loc["a", "x_ci95"] == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2), rel=1e-6)
    assert agg.loc["b", "x_mean"] == 3.0 and "missing_mean" not in agg


def test_parse_seeds():
    assert parse_seeds("0,1,2", None) == (0, 1, 2)
    assert parse_seeds(None, 3, seed=5) == (5, 6, 7)
    assert parse_seeds(None, None, seed=4) == (4,)
    for seeds, repeats, msg in (("0,x", None, "integers"), ("1,1", None, "distinct"), ("0", 2, "not both"),
                                (None, 0, "positive")):
        with pytest.raises(ValueError, match=msg):
            parse_seeds(seeds, repeats)


@dataclass
class _SeededFake:
    """A stand-in for train whose final BLEU depends on the seed, so the interval is known in advance."""

    calls: list

    def __call__(self, task, policy, steps, seed, out_dir, resume=False, eval_every=None, progress=False):
        self.calls.append((policy, seed))
        metrics = pd.DataFrame({"step": [steps], "train_loss": [1.0], "valid_loss": [1.0], "bleu": [10.0]})
        bleu = 10.0 * (seed + 1) + (5.0 if policy == "dsq" else 0.0)
        return type("R", (), {"metrics": metrics, "timeline": get_policy(policy).timeline(steps), "wall_s": 0.01,
                              "final": {"final_valid_loss": 0.5, "bleu": bleu}})()


def test_study_over_seeds_reports_mean_and_interval(tmp_path):
    calls: list = []
    cfg = StudyConfig(task="numwords", workload="tiny-mt", hw="edge-npu", policies=("fp32", "dsq"), steps=10,
                      fidelity="roofline", dram_bw_scales=(1.0,), seeds=(0, 1, 2))
    r = run_study(cfg, tmp_path / "s", train_fn=_SeededFake(calls), workers=1, report=True)
    assert sorted(calls) == sorted((p, s) for p in ("fp32", "dsq") for s in (0, 1, 2))
    row = r.summary.set_index("policy").loc["dsq"]
    mean, half = mean_ci([15.0, 25.0, 35.0])
    assert row["n_seeds"] == 3
    assert row["final_bleu_mean"] == pytest.approx(mean) and row["final_bleu_ci95"] == pytest.approx(half)
    assert row["speedup_ci95"] == pytest.approx(0.0, abs=1e-12)  # a schedule's timeline does not depend on the seed
    assert row["speedup_mean"] == pytest.approx(row["speedup"])
    seeds = pd.read_csv(tmp_path / "s" / "seeds.csv")
    assert len(seeds) == 6 and set(seeds.seed) == {0, 1, 2}
    assert (tmp_path / "s" / "policies" / "dsq" / "seed1" / "done.json").is_file()
    assert (tmp_path / "s" / "plots" / "seed_intervals.png").is_file()
    assert "95 % Student-t interval" in (tmp_path / "s" / "report.html").read_text()


def test_train_cli_seeds_json(tmp_path, capsys):
    rc = main(["train", "--task", "numwords-hard", "--policy", "fp32", "--steps", "2", "--eval-every", "2",
               "--seeds", "0,1", "--workers", "1", "--out", str(tmp_path / "t"), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["seeds"] == [0, 1] and len(out["runs"]) == 2
    losses = [run["final_valid_loss"] for run in out["runs"]]
    assert out["mean"]["final_valid_loss"] == pytest.approx(sum(losses) / 2)
    assert out["ci95"]["final_valid_loss"] == pytest.approx(mean_ci(losses)[1])
    assert (tmp_path / "t" / "seed1" / "metrics.csv").is_file()
