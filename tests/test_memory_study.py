"""Return on investment in a study: peak memory, max batch, device hours, energy and cost per policy in the summary
and in the report's first table (the tiny study of tests/test_study.py, with a stand-in for training)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from sim.cli import main
from sim.memory import footprint, memory_table, policy_configs
from sim.policy import get_policy
from sim.study import StudyConfig, run_study
from sim.study.run import _with_costs
from workloads import resolve_workload

TINY = {"task": "numwords", "workload": "tiny-mt", "hw": "edge-npu"}


def _fake_train(task, policy, steps, seed, out_dir, resume=False, eval_every=None, progress=False):
    """The policy's own schedule as the timeline, synthetic curves (as in tests/test_study.py)."""
    evals = list(range(eval_every, steps + 1, eval_every))
    metrics = pd.DataFrame({"step": evals, "train_loss": [3.0 / s for s in evals],
                            "valid_loss": [3.1 / s for s in evals], "bleu": [float(s) for s in evals]})
    return type("R", (), {"metrics": metrics, "timeline": get_policy(policy).timeline(steps), "wall_s": 0.01,
                          "final": {"final_valid_loss": 0.5, "bleu": 12.0}})()


def test_study_summary_has_memory_and_cost(tmp_path):
    cfg = StudyConfig(**TINY, policies=("fp32", "dsq"), steps=20, fidelity="roofline", dram_bw_scales=(1.0,),
                      device_hour_price=2.5, price_kwh=0.3)
    r = run_study(cfg, tmp_path / "s", train_fn=_fake_train, workers=1)
    s = r.summary.set_index("policy")
    trace = resolve_workload("tiny-mt")
    table = memory_table("tiny-mt", "edge-npu", ["fp32", "dsq"]).set_index("policy")
    for policy in ("fp32", "dsq"):
        worst = max(footprint(trace, c).peak_bytes for c in policy_configs(get_policy(policy), 20))
        assert s.loc[policy, "peak_bytes"] == worst == table.loc[policy, "peak_bytes"]
        assert s.loc[policy, "max_batch"] == table.loc[policy, "max_batch"] > 1000
        hours = s.loc[policy, "time_s"] / 3600
        assert s.loc[policy, "device_hours"] == pytest.approx(hours)
        energy = s.loc[policy, "energy_j"] / 3.6e6 * 0.3 if "energy_j" in s else 0.0
        assert s.loc[policy, "cost"] == pytest.approx(hours * 2.5 + energy)
    assert s.loc["dsq", "peak_bytes"] < s.loc["fp32", "peak_bytes"]
    included = s["cost_includes"].iloc[0]
    assert included == ("device time + energy" if "energy_j" in s else
                        "device time (energy not priced: no energy model in this summary)")
    html = (tmp_path / "s" / "report.html").read_text()
    first = re.search(r"<table.*?</table>", html, re.S).group(0)  # the report's first table
    for col in ("speedup", "peak_bytes", "max_batch", "device_hours", "cost", "cost_includes", "final_valid_loss"):
        assert f"<th>{col}</th>" in first, col


def test_study_without_prices_has_no_cost():
    r = run_study(StudyConfig(**TINY, policies=("fp32",), steps=10, fidelity="roofline", dram_bw_scales=(1.0,)),
                  None, train_fn=_fake_train, workers=1)
    assert {"peak_bytes", "max_batch", "device_hours"} <= set(r.summary) and "cost" not in r.summary


def test_costs_with_and_without_energy():
    cfg = StudyConfig(policies=("a",), device_hour_price=3.0, price_kwh=0.2)
    with_energy = pd.DataFrame({"time_s": [7200.0, 3600.0], "energy_j": [3.6e6, 7.2e6]})
    cols = _with_costs(with_energy, cfg)
    assert {"device_hours", "energy_kwh", "cost", "cost_includes"} <= set(cols)
    assert list(with_energy["cost"]) == pytest.approx([2 * 3.0 + 1 * 0.2, 1 * 3.0 + 2 * 0.2])
    assert with_energy["cost_includes"].iloc[0] == "device time + energy"
    energy_only = pd.DataFrame({"time_s": [3600.0], "energy_j": [3.6e6]})
    _with_costs(energy_only, StudyConfig(policies=("a",), price_kwh=0.2))
    assert energy_only["cost"].iloc[0] == pytest.approx(0.2) and energy_only["cost_includes"].iloc[0] == "energy"
    no_energy = pd.DataFrame({"time_s": [3600.0]})
    _with_costs(no_energy, cfg)
    assert no_energy["cost"].iloc[0] == pytest.approx(3.0) and "not priced" in no_energy["cost_includes"].iloc[0]


@pytest.mark.parametrize("args, words", [(["--price-kwh", "0"], "positive"),
                                         (["--device-hour-price", "x"], "positive")])
def test_study_price_options_bad_input(tmp_path, capsys, args, words):
    try:
        code = main(["study", "--out", str(tmp_path / "o"), *args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0]
    with pytest.raises(ValueError, match="price_kwh"):
        StudyConfig(price_kwh=-1.0)
