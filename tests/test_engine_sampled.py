"""The sampled fidelity (sim.engine.sampled): its estimate and 95 % interval against the full transaction run where
that is feasible, determinism, the allocation within budget, and the CLI wiring."""

import json

import pytest

from hwmodels.machine import get_machine
from sim.engine import EngineOptions, simulate
from sim.engine.sampled import t_quantile
from sim.precision import PrecisionConfig
from workloads import resolve_workload

BF16 = PrecisionConfig.uniform("bf16")
DSQ_LIKE = PrecisionConfig(q0="bfp8", q1="bfp4", q2="bfp8", q3="bfp16")

CASES = [(wl, hw, name) for wl in ("tiny-lm", "tiny-mt") for hw in ("edge-npu", "cloud-npu", "h100-sxm")
         for name in ("bf16", "dsq")]
BUDGET_S = 0.01  # about half of each step's bursts through the transaction model (seed 0), both replays counted


@pytest.mark.parametrize("wl,hw,name", CASES)
def test_interval_against_full_transaction_run(wl, hw, name):
    """Strict: seed 0 on every case. The rate over seeds (docs/engine.md) is the figure that matters; a method
    change that loses one of these shows up here."""
    trace, machine = resolve_workload(wl), get_machine(hw)
    cfg = BF16 if name == "bf16" else DSQ_LIKE
    full = simulate(trace, machine, cfg, "transaction", cache=None).cycles
    # every unit sampled: the hybrid replay is the transaction run, and the interval closes on it
    whole = simulate(trace, machine, cfg, "sampled", cache=None).sampled
    assert whole.samples == whole.population
    assert whole.estimate_cycles == pytest.approx(full, rel=1e-9) and whole.covers(full)
    assert whole.discrepancy_cycles == 0 and whole.sampling_half_cycles == pytest.approx(0, abs=1e-6 * full)
    part = simulate(trace, machine, cfg, "sampled", EngineOptions(sample_budget_s=BUDGET_S), cache=None).sampled
    assert part.samples < part.population and part.ci_low_cycles < part.estimate_cycles < part.ci_high_cycles
    assert part.covers(full), (part.ci_low_cycles, full, part.ci_high_cycles)


def test_interval_is_sampling_error_plus_discrepancy_bound():
    trace, machine = resolve_workload("tiny-mt"), get_machine("cloud-npu")
    s = simulate(trace, machine, DSQ_LIKE, "sampled", EngineOptions(sample_budget_s=BUDGET_S), cache=None).sampled
    half = s.sampling_half_cycles + s.discrepancy_cycles
    assert s.ci_high_cycles - s.estimate_cycles == pytest.approx(half)
    assert s.estimate_cycles - s.ci_low_cycles == pytest.approx(half)
    assert s.sampling_half_cycles > 0 and s.discrepancy_cycles > 0  # the hybrid's boundaries move the estimate


def test_same_seed_same_sample_and_budget_bounds_the_sample():
    trace, machine = resolve_workload("tiny-lm"), get_machine("edge-npu")
    small = EngineOptions(sample_budget_s=0.0025, seed=3)
    a = simulate(trace, machine, BF16, "sampled", small, cache=None).sampled
    b = simulate(trace, machine, BF16, "sampled", small, cache=None).sampled
    assert a == b
    assert a.samples < a.population  # a tiny budget samples part of the step
    other = simulate(trace, machine, BF16, "sampled", EngineOptions(sample_budget_s=0.0025, seed=4), cache=None)
    assert other.sampled.samples == a.samples and other.sampled.seed == 4
    full = simulate(trace, machine, BF16, "sampled", cache=None).sampled
    assert full.samples == full.population and full.sampled_bursts >= a.sampled_bursts


def test_t_quantile_matches_tables():
    for dof, t in [(1, 12.706), (2, 4.303), (3, 3.182), (5, 2.571), (10, 2.228), (30, 2.042), (1000, 1.962)]:
        assert t_quantile(0.975, dof) == pytest.approx(t, rel=3e-3)


def test_bad_budget_is_a_value_error():
    with pytest.raises(ValueError, match="sample_budget_s"):
        EngineOptions(sample_budget_s=0)


def test_cli_json_shows_interval(capsys):
    from sim.cli import main

    rc = main(["simulate", "--workload", "tiny-lm", "--hw", "cloud-npu", "--policy", "bf16", "--fidelity", "sampled",
               "--sample-budget-s", "0.0025", "--seed", "1", "--json"])
    assert rc in (0, None)
    out = json.loads(capsys.readouterr().out)
    s = out["sampled"][0]
    assert out["fidelity"] == "sampled" and s["seed"] == 1 and s["sample_budget_s"] == 0.0025
    assert s["ci_low_cycles"] <= out["cycles"] <= s["ci_high_cycles"]


@pytest.mark.slow
def test_interval_against_full_transaction_run_iwslt():
    """transformer-iwslt on cloud-npu (full transaction run ~17 CPU-s, the sample ~7): seed 0 at a budget that sends
    about a quarter of the bursts through the transaction model."""
    trace, machine = resolve_workload("transformer-iwslt"), get_machine("cloud-npu")
    full = simulate(trace, machine, BF16, "transaction", cache=None).cycles
    s = simulate(trace, machine, BF16, "sampled", EngineOptions(sample_budget_s=3.0), cache=None).sampled
    assert s.samples < s.population and s.sampled_bursts < s.total_bursts / 2
    assert s.covers(full), (s.ci_low_cycles, full, s.ci_high_cycles)
