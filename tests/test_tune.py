"""`dsqsim tune` on a tiny budget: monotone search space, outputs, same seed -> same trials and front, a killed
search resumes without recomputing finished trials, the objective check, the Pareto mask."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest

from sim.cli import main
from sim.policy import check_monotone, get_policy, policy_from_dict
from sim.policy.policies import _precision_key
from sim.precision import PrecisionConfig
from sim.training import TransformerConfig
from sim.training.tasks.numwords_hard import MAX_WORDS, VOCAB
from sim.training.train import train
from sim.tune import LADDERS, TuneConfig, run_tune, suggest_policy
from sim.tune.search import _pareto_mask

TINY_MODEL = TransformerConfig(vocab_size=len(VOCAB), d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1,
                               n_decoder_layers=1, max_len=MAX_WORDS + 2)
CFG = TuneConfig(task="numwords-hard", workload="tiny-mt", hw="edge-npu", trials=3, steps=4, seed=7,
                 fidelity="roofline", eval_every=2)
TIMING = ("train_wall_s",)


def test_ladders_increase_strictly():
    for family, ladder in LADDERS.items():
        keys = [_precision_key(f) for f in ladder]
        assert keys == sorted(keys) and len(set(keys)) == len(keys), family


def test_every_sampled_policy_is_monotone_and_loads():
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1))
    kinds = set()
    for i in range(60):
        trial = study.ask()
        spec = suggest_policy(trial, ("bfp", "mx", "fp"), 3, f"t{i}")
        policy = policy_from_dict(spec)
        kinds.add(spec["kind"])
        check_monotone([c for c, _ in policy.timeline(100)])
        study.tell(trial, [0.0, 1.0])
    assert kinds == {"fixed", "dsq", "dsq-loss"}


def test_pareto_mask_by_hand():
    df = pd.DataFrame({"metric": [50.0, 60.0, 40.0, 60.0, None], "objective_value": [2.0, 3.0, 1.0, 4.0, 0.5]})
    assert _pareto_mask(df, maximize=True) == [True, True, True, False, False]
    assert _pareto_mask(df.assign(metric=-df.metric), maximize=False) == [True, True, True, False, False]


class _Counting:
    """train, counting calls; raises KeyboardInterrupt on call number `stop_at` (1-based) to kill the search."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls, self.stop_at = 0, stop_at

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt("killed")
        return train(*args, **kwargs)


def _stable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in TIMING if c in df]).reset_index(drop=True)


def test_tiny_search_outputs_and_same_seed_same_front(tmp_path):
    a = run_tune(CFG, tmp_path / "a", model_config=TINY_MODEL)
    assert len(a.trials) == 3 and set(a.trials.state) <= {"complete", "pruned"}
    trials = pd.read_csv(tmp_path / "a" / "trials.csv")
    assert len(trials) == 3 and {"policy_file", "metric", "speedup", "dram_reduction", "bitops_reduction",
                                 "objective_value"} <= set(trials.columns)
    pareto = pd.read_csv(tmp_path / "a" / "pareto.csv")
    assert len(pareto) >= 1 and set(pareto.trial) <= set(trials.trial)
    for f in trials.policy_file:
        get_policy(str(tmp_path / "a" / f))  # each trial's policy is usable as --policy FILE
    assert (tmp_path / "a" / "pareto.png").is_file()
    done = trials[trials.state == "complete"]
    assert (done.speedup > 0).all() and (done.objective_value > 0).all()
    b = run_tune(CFG, tmp_path / "b", model_config=TINY_MODEL)
    pd.testing.assert_frame_equal(_stable(a.trials), _stable(b.trials))
    assert a.summary() == b.summary()


def test_killed_search_resumes_without_recomputing(tmp_path):
    killer = _Counting(stop_at=3)  # trials 0 and 1 finish, trial 2 is cut off mid-training
    with pytest.raises(KeyboardInterrupt):
        run_tune(CFG, tmp_path / "s", train_fn=killer, model_config=TINY_MODEL)
    before = optuna.load_study(study_name="dsqsim-tune", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    finished = {t.number: t.values for t in before.trials if t.state.is_finished()}
    assert len(finished) == 2
    with pytest.raises(ValueError, match="already holds a search"):
        run_tune(CFG, tmp_path / "s", model_config=TINY_MODEL)
    counter = _Counting()
    result = run_tune(CFG, tmp_path / "s", resume=True, train_fn=counter, model_config=TINY_MODEL)
    assert counter.calls == 1  # only the interrupted trial runs again
    assert len(result.trials) == 3
    rows = result.trials.set_index("trial")
    for number, values in finished.items():
        if values is not None:
            assert rows.loc[number, "metric"] == pytest.approx(values[0])
    with pytest.raises(ValueError, match="not resuming"):
        run_tune(TuneConfig(**{**CFG.__dict__, "steps": 6}), tmp_path / "s", resume=True, model_config=TINY_MODEL)


def test_bad_options_fail_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match="objective"):
        TuneConfig(objective="latency")
    with pytest.raises(ValueError, match="family"):
        TuneConfig(families=("posit",))
    from hwmodels.machine import get_machine
    from sim.engine import simulate
    from workloads import resolve_workload

    has_energy = hasattr(simulate(resolve_workload("tiny-mt"), get_machine("edge-npu"),
                                  PrecisionConfig.uniform("fp32"), "roofline"), "energy_j")
    energy = TuneConfig(**{**CFG.__dict__, "objective": "energy", "trials": 1})
    if has_energy:
        assert run_tune(energy, tmp_path / "e", model_config=TINY_MODEL).trials.objective.iloc[0] == "energy_j"
    else:
        with pytest.raises(ValueError, match="energy_j") as info:
            run_tune(energy, tmp_path / "e", model_config=TINY_MODEL)
        assert "\n" not in str(info.value) and not (tmp_path / "e" / "policies").exists()  # before any trial


def test_cli_json_last_line(tmp_path, capsys):
    rc = main(["tune", "--task", "numwords-hard", "--workload", "tiny-mt", "--hw", "edge-npu", "--trials", "2",
               "--steps", "2", "--fidelity", "roofline", "--out", str(tmp_path / "c"), "--json",
               "--prune-margin", "0.25", "--max-loss-gap", "3"])
    assert rc == 0
    settings = json.loads((tmp_path / "c" / "tune.json").read_text())["config"]
    assert settings["prune_margin"] == 0.25 and settings["max_loss_gap"] == 3.0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["trials"] == 2 and out["pareto"]
    assert {"policy_file", "metric", "speedup", "dram_reduction", "bitops_reduction"} <= set(out["pareto"][0])


class _FakeLoss:
    """A stand-in for train: trial 0 learns well (loss 1.0), every later one badly (loss 5.0); writes metrics.csv
    and calls on_step like the real loop, so the pruning rule sees the same files."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, task, policy, steps, seed, out_dir, eval_every, progress, on_step, **kw):
        loss = 1.0 if self.calls == 0 else 5.0
        self.calls += 1
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for step in range(1, steps + 1):
            if step % eval_every == 0:
                rows.append({"step": step, "valid_loss": loss})
                pd.DataFrame(rows).to_csv(out_dir / "metrics.csv", index=False)
            on_step(step)
        return type("R", (), {"metrics": pd.DataFrame(rows), "timeline": policy.timeline(steps),
                              "final": {"final_valid_loss": loss, "bleu": 100.0 / loss}})()


def test_pruning_stops_trials_dominated_early(tmp_path):
    cfg = TuneConfig(**{**CFG.__dict__, "trials": 8, "steps": 8, "eval_every": 2})
    result = run_tune(cfg, tmp_path / "p", train_fn=_FakeLoss())
    rows = result.trials.set_index("trial")
    first_cost = rows.loc[0, "objective_value"]
    pruned = rows[rows.state == "pruned"]
    assert len(pruned) >= 1
    assert all("at step 4" in why for why in pruned.pruned_because)  # the first evaluation (step 2) is not judged
    for number in rows[rows.state == "complete"].index.drop(0):
        assert rows.loc[number, "objective_value"] < first_cost  # only cheaper trials survive a better cheaper one


@pytest.mark.slow
def test_longer_search_on_the_real_model(tmp_path):
    """A real budget (full numwords-hard model, 100 steps, 8 trials, tile costing) finds low-precision policies
    that beat fp32's simulated time; each front policy trains again under `dsqsim train --policy FILE`."""
    cfg = TuneConfig(task="numwords-hard", workload="tiny-mt", hw="edge-npu", trials=8, steps=100, seed=1,
                     fidelity="tile", families=("bfp", "mx"))
    result = run_tune(cfg, tmp_path / "t")
    assert len(result.trials) == 8 and (result.pareto.speedup > 1).any()
    best = result.pareto.sort_values("metric").iloc[-1]
    again = train("numwords-hard", str(tmp_path / "t" / best.policy_file), steps=100, seed=1,
                  out_dir=tmp_path / "again", eval_every=25, progress=False)
    assert again.final["bleu"] == pytest.approx(best.metric)  # the same run: a policy file reproduces its trial


def test_a_repeated_policy_is_not_trained_again(tmp_path, monkeypatch):
    import sim.tune.search as search

    fixed = {"kind": "fixed", "description": "same", "config": "bfp8"}
    monkeypatch.setattr(search, "suggest_policy",
                        lambda trial, families, stages, name, roundings: {"name": name, **fixed})
    counter = _Counting()
    result = run_tune(CFG, tmp_path / "d", train_fn=counter, model_config=TINY_MODEL)
    assert counter.calls == 1 and len(result.trials) == 3
    assert list(result.trials.same_as.iloc[1:]) == [0, 0] and result.trials.metric.nunique() == 1


def test_policy_file_names_make_plot_file_names():
    """A study over tune's policy files names its roofline plots without a '.toml' suffix."""
    from reports.files import slug

    name = slug("/tmp/out/policies/trial015.toml")
    assert "." not in name and name.endswith("trial015_toml")


def test_the_tuned_candidate_example_loads():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "policies" / "dsq_tuned_numwords_hard.toml"
    policy = get_policy(str(path))
    check_monotone(policy.stages)
    assert policy.kind == "dsq" and len(policy.stages) == 2


def test_neighbourhood_samples_stay_monotone_near_the_base_and_the_base_comes_first(tmp_path):
    from sim.tune.space import NEAR_LOWER, NEAR_RAISE, near_base, suggest_near

    base = get_policy("dsq").to_dict()
    family, rungs, at = near_base(base)
    ladder = LADDERS[family]
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=3))
    lowered = 0
    for i in range(80):
        trial = study.ask()
        spec = suggest_near(trial, base, f"t{i}")
        policy = policy_from_dict(spec)
        check_monotone([c for c, _ in policy.timeline(100)])
        assert len(spec["stages"]) == 2 and abs(spec["at"][0] - at[0]) <= 0.2 + 1e-9
        for s, stage in enumerate(spec["stages"]):
            for q in ("q0", "q1", "q2", "q3"):
                moved = ladder.index(stage[q].removesuffix("_sr")) - rungs[s][q]
                # a point moves at most NEAR_LOWER down and NEAR_RAISE up, except where monotonicity lifts it
                assert -NEAR_LOWER <= moved <= (NEAR_RAISE if s == 0 else max(NEAR_RAISE, rungs[0][q] + NEAR_RAISE
                                                                              - rungs[s][q]))
                lowered += moved < 0
            assert stage["master"] == "fp32"
        study.tell(trial, [0.0, 1.0])
    assert lowered > 0
    with pytest.raises(ValueError, match="fixed or scheduled"):
        near_base(get_policy("dsq-guard").to_dict())
    mixed = {"kind": "fixed", "config": {"q0": "bfp8", "q1": "mxint8", "q2": "bfp8", "q3": "bfp8"}}
    with pytest.raises(ValueError, match="one family ladder"):
        near_base(mixed)
    cfg = TuneConfig(**{**CFG.__dict__, "trials": 2, "around": base})
    result = run_tune(cfg, tmp_path / "n", model_config=TINY_MODEL)
    first = policy_from_dict(json.loads(json.dumps(
        optuna.load_study(study_name="dsqsim-tune", storage=f"sqlite:///{tmp_path}/n/study.db").trials[0]
        .user_attrs["policy"])))
    assert [c for c, _ in first.timeline(100)] == [c for c, _ in get_policy("dsq").timeline(100)]
    assert list(result.trials.family) == ["mx", "mx"]  # MX stages (stochastic rounding at q2/q3)
    with pytest.raises(ValueError, match="fixed or scheduled"):
        TuneConfig(**{**CFG.__dict__, "around": get_policy("dsq-loss").to_dict()})


def test_cli_around_a_policy_it_cannot_search_is_one_line_and_exit_2(tmp_path, capsys):
    rc = main(["tune", "--task", "numwords-hard", "--workload", "tiny-mt", "--hw", "edge-npu", "--trials", "2",
               "--steps", "2", "--out", str(tmp_path / "c"), "--around", "dsq-loss"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "fixed or scheduled" in err[0] and not (tmp_path / "c").exists()


def test_roundings_are_searched_per_point_and_one_rounding_samples_as_before():
    """--roundings nearest,stochastic: each point picks its rounding for the run (stochastic: `_sr` formats on
    every stage), policies stay monotone and load; a single rounding samples exactly the parameters it always did."""
    from sim.formats import get_format

    def sample(roundings, n=40):
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=5))
        out = []
        for i in range(n):
            trial = study.ask()
            spec = suggest_policy(trial, ("mx", "bfp"), 3, f"t{i}", roundings)
            out.append((trial.params, spec))
            study.tell(trial, [0.0, 1.0])
        return out

    both = sample(("nearest", "stochastic"))
    seen = set()
    for params, spec in both:
        policy = policy_from_dict(spec)
        check_monotone([c for c, _ in policy.timeline(100)])
        stages = spec["stages"] if "stages" in spec else [spec["config"]]
        for q in ("q0", "q1", "q2", "q3"):
            stochastic = params[f"{q}_rounding"] == "stochastic"
            assert all((get_format(st[q]).rounding == "stochastic") == stochastic for st in stages)
            seen.add(stochastic)
        assert stages[0]["activation"] == stages[0]["q0"]
    assert seen == {True, False}
    nearest = sample(("nearest",))
    assert all(not any(k.endswith("_rounding") for k in p) for p, _ in nearest)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=5))
    old = []
    for i in range(40):  # the call without the argument, as before the option existed
        trial = study.ask()
        old.append(suggest_policy(trial, ("mx", "bfp"), 3, f"t{i}"))
        study.tell(trial, [0.0, 1.0])
    assert [s for _, s in nearest] == old
    with pytest.raises(ValueError, match="unknown rounding"):
        TuneConfig(**{**CFG.__dict__, "roundings": ("nearest", "upwards")})


def test_neighbourhood_of_a_stochastic_rounding_policy_keeps_its_rounding():
    from sim.tune.space import near_base, suggest_near

    base = {"name": "b", "kind": "dsq", "at": [0.5], "stages": [
        {"q0": "mxint8", "q1": "mxfp6_e2m3", "q2": "mxint8_sr", "q3": "mxfp6_e2m3_sr", "activation": "mxint8"},
        {"q0": "mxint8", "q1": "mxint8", "q2": "mxint8_sr", "q3": "mxint8_sr", "activation": "mxint8"}]}
    assert near_base(base)[0] == "mx"
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=2))
    for i in range(30):
        trial = study.ask()
        spec = suggest_near(trial, base, f"t{i}")
        check_monotone([c for c, _ in policy_from_dict(spec).timeline(100)])
        for stage in spec["stages"]:
            assert [stage[q].endswith("_sr") for q in ("q0", "q1", "q2", "q3")] == [False, False, True, True]
        study.tell(trial, [0.0, 1.0])


def test_max_loss_gap_stops_cheap_trials_far_behind_the_best(tmp_path):
    """With --max-loss-gap, a trial 5x worse than the best finished one stops at its second evaluation even when it
    is cheaper (plain pruning lets cheaper trials run: the test above); a gap wider than 5x stops none of them."""
    base = get_policy("mxint8").to_dict()  # trial 0, the good one; its neighbours are mostly cheaper
    cfg = TuneConfig(**{**CFG.__dict__, "trials": 6, "steps": 8, "eval_every": 2, "max_loss_gap": 1.0,
                        "around": base})
    rows = run_tune(cfg, tmp_path / "g", train_fn=_FakeLoss()).trials.set_index("trial")
    assert rows.loc[0, "state"] == "complete"
    later = rows.drop(0)
    assert (later.state == "pruned").all() and later.objective_value.isna().all()
    gap = [why for why in later.pruned_because if "more than 100 % above the best finished trial's 1" in why]
    assert gap and all("at step 4" in why for why in later.pruned_because)  # the costlier ones: plain pruning
    assert len(gap) + sum("for a cheaper trial" in why for why in later.pruned_because) == len(later)
    wide = TuneConfig(**{**cfg.__dict__, "max_loss_gap": 5.0})
    kept = run_tune(wide, tmp_path / "w", train_fn=_FakeLoss()).trials.set_index("trial")
    assert (kept[kept.state == "complete"].index > 0).any()  # cheaper trials run on, as without the option
    assert not any("above the best" in str(why) for why in kept.get("pruned_because", []))
    with pytest.raises(ValueError, match="max_loss_gap"):
        TuneConfig(max_loss_gap=0.0)


@pytest.mark.parametrize(("flag", "field"), [("--max-loss-gap", "max_loss_gap"), ("--prune-margin", "prune_margin")])
def test_cli_pruning_bad_value_is_one_line_and_exit_2(tmp_path, capsys, flag, field):
    rc = main(["tune", "--task", "numwords-hard", "--workload", "tiny-mt", "--hw", "edge-npu", "--trials", "1",
               "--steps", "2", "--out", str(tmp_path / "x"), flag, "-1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and field in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x" / "policies").exists()


@pytest.mark.slow
def test_a_search_stored_before_an_option_existed_resumes(tmp_path):
    """A search whose stored settings lack a newer option (here --roundings) resumes when the option is at its
    default, and refuses when it is not."""
    cfg = TuneConfig(**{**CFG.__dict__, "trials": 1})
    run_tune(cfg, tmp_path / "r", model_config=TINY_MODEL)
    study = optuna.load_study(study_name="dsqsim-tune", storage=f"sqlite:///{tmp_path}/r/study.db")
    settings = dict(study.user_attrs["settings"])
    del settings["roundings"]
    study.set_user_attr("settings", settings)
    run_tune(TuneConfig(**{**CFG.__dict__, "trials": 1}), tmp_path / "r", resume=True, model_config=TINY_MODEL)
    with pytest.raises(ValueError, match="not resuming"):
        run_tune(TuneConfig(**{**CFG.__dict__, "trials": 1, "roundings": ("stochastic",)}), tmp_path / "r",
                 resume=True, model_config=TINY_MODEL)
