"""`run_tune`: multi-objective search (Optuna NSGA-II) over time-adaptive DSQ policies: accuracy of the reference
loop on a task against the simulated cost of the policy's recorded timeline on a workload and machine.

Trials live in an Optuna storage (default `sqlite:///DIR/study.db`), so a killed search resumes: finished and pruned
trials are read back, never re-run; a trial cut off mid-training is marked failed and its parameters re-queued.
Determinism: the sampler is re-seeded before each trial from (seed, number of finished trials), so with one worker
the same seed gives the same trials and front. Pruning (deterministic too): at each evaluation after the first, a
trial whose validation loss is worse by more than `prune_margin` than a finished trial's at the same step, where
that trial's cost is no higher than this one's planned cost, is dominated already and stops. With `max_loss_gap`,
a trial whose validation loss is more than that (relative) above the lowest finished trial's at the same step stops
too, whatever its cost: it is outside the accuracy range searched for (a cheap diverging trial no longer runs to the
end).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.tune.space import (
    LADDERS,
    check_families,
    check_roundings,
    near_base,
    near_zero_params,
    suggest_near,
    suggest_policy,
    to_toml,
)

OBJECTIVES = {"time": ("time_s", "simulated training time [s]"), "dram": ("dram_bytes", "DRAM traffic [bytes]"),
              "energy": ("energy_j", "energy [J]")}
STUDY_NAME = "dsqsim-tune"


@dataclass(frozen=True)
class TuneConfig:
    task: str = "numwords-hard"
    workload: str = "transformer-iwslt"
    hw: str = "edge-npu"
    trials: int = 20
    steps: int = 300
    seed: int = 0
    objective: str = "time"
    families: tuple[str, ...] = ("bfp",)
    roundings: tuple[str, ...] = ("nearest",)  # several: each point picks one (stochastic: the `_sr` formats)
    max_stages: int = 3
    fidelity: str = "tile"
    eval_every: int | None = None      # None: steps // 4 (three chances to prune)
    prune_margin: float = 0.1          # relative validation-loss gap that counts as dominated
    max_loss_gap: float | None = None  # relative gap to the best finished trial's loss that stops any trial
    around: dict[str, Any] | None = None  # a base policy's dict: search its neighbourhood (`space.suggest_near`)

    def __post_init__(self) -> None:
        for key in ("trials", "steps", "max_stages"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}")
        object.__setattr__(self, "families", check_families(tuple(self.families)))
        object.__setattr__(self, "roundings", check_roundings(tuple(self.roundings)))
        if self.eval_every is not None and int(self.eval_every) < 1:
            raise ValueError(f"eval_every must be a positive integer, got {self.eval_every!r}")
        if not self.prune_margin >= 0:
            raise ValueError(f"prune_margin must be >= 0, got {self.prune_margin}")
        if self.max_loss_gap is not None and not (self.max_loss_gap > 0 and math.isfinite(self.max_loss_gap)):
            raise ValueError(f"max_loss_gap must be a number > 0, got {self.max_loss_gap}")
        if self.around is not None:
            near_base(self.around)  # a policy it cannot search around fails here, before any trial

    @property
    def every(self) -> int:
        return int(self.eval_every or max(1, self.steps // 4))


@dataclass
class TuneResult:
    trials: pd.DataFrame   # one row per finished or pruned trial
    pareto: pd.DataFrame   # the non-dominated finished trials
    out_dir: Path
    plot_path: Path | None

    def summary(self) -> dict[str, Any]:
        keep = ("policy_file", "metric", "speedup", "dram_reduction", "bitops_reduction", "objective_value", "trial")
        return {"trials": int(len(self.trials)),
                "pareto": [{k: _plain(r[k]) for k in keep if k in r} for r in self.pareto.to_dict("records")]}


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ValueError("dsqsim tune needs Optuna: pip install 'dsqsim[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class _Evaluator:
    """Trains and costs one trial's policy; shared state: the workload, machine, engine cache and fp32 baseline."""

    def __init__(self, cfg: TuneConfig, out: Path, train_fn: Callable | None, train_kwargs: dict[str, Any]):
        from hwmodels.machine import get_machine
        from sim.engine import ResultCache
        from sim.training.tasks import get_task
        from workloads import resolve_workload

        self.cfg, self.out = cfg, out
        self.task = get_task(cfg.task)
        self.trace, self.machine = resolve_workload(cfg.workload), get_machine(cfg.hw)
        self.cache = ResultCache(out / "cache")
        self.train_kwargs = train_kwargs
        self.train_fn = train_fn or _default_train()
        self.metric = self.task.metric
        self.maximize = self.metric == "bleu"
        from sim.policy import get_policy

        self.baseline = self.cost(get_policy("fp32").timeline(cfg.steps))

    def cost(self, timeline) -> dict[str, float]:
        from sim.study.costing import cost_timeline

        c = cost_timeline(self.trace, self.machine, timeline, self.cfg.fidelity, self.cache)
        steps = timeline.total_steps
        out = {k: c.figures[k] * steps for k in ("time_s", "dram_bytes", "arith_bitops")}
        energies = [getattr(r, "energy_j", None) for _, _, r in c.results]
        if all(e is not None for e in energies):
            out["energy_j"] = sum(f * float(e) for (_, f, _), e in zip(c.results, energies, strict=True)) * steps
        elif self.cfg.objective == "energy":
            raise ValueError("--objective energy needs engine results with an energy figure (energy_j); this engine "
                             "reports none: use --objective time or dram")
        return out

    def ratios(self, cost: dict[str, float]) -> dict[str, float]:
        b = self.baseline
        return {"speedup": b["time_s"] / cost["time_s"], "dram_reduction": b["dram_bytes"] / cost["dram_bytes"],
                "bitops_reduction": b["arith_bitops"] / cost["arith_bitops"]}

    def objective_value(self, cost: dict[str, float]) -> float:
        return float(cost[OBJECTIVES[self.cfg.objective][0]])


def _default_train() -> Callable:
    from sim.training.train import train

    return train


def _finished_curves(study, optuna) -> list[tuple[float, dict[int, float]]]:
    """(objective value, {step: valid_loss}) of every completed trial, for pruning."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        curve = {int(k): float(v) for k, v in t.user_attrs.get("curve", {}).items()}
        out.append((float(t.values[1]), curve))
    return out


class _Pruned(Exception):
    pass


def _run_trial(study, ev: _Evaluator, optuna, seed_offset: int) -> None:
    """Ask for one trial, train and cost it, tell the study."""
    from sim.policy import policy_from_dict

    cfg = ev.cfg
    study.sampler = _sampler(optuna, cfg, seed_offset)
    trial = study.ask()
    name = f"trial{trial.number:03d}"
    if cfg.around is not None:
        spec = suggest_near(trial, cfg.around, name)
        trial.set_user_attr("family", near_base(cfg.around)[0])
    else:
        spec = suggest_policy(trial, cfg.families, cfg.max_stages, name, cfg.roundings)
    policy = policy_from_dict(spec, name)  # check_monotone runs here
    twin = _same_policy(study, optuna, spec)
    if twin is not None:  # the sampler proposed a policy already trained: reuse its result, train nothing
        for key in ("policy_file", "policy", "curve", "cost", "final", "timeline", "pruned_because"):
            if key in twin.user_attrs:
                trial.set_user_attr(key, twin.user_attrs[key])
        trial.set_user_attr("same_as", twin.number)
        if twin.state == optuna.trial.TrialState.COMPLETE:
            study.tell(trial, list(twin.values))
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    policy_file = ev.out / "policies" / f"{name}.toml"
    policy_file.parent.mkdir(parents=True, exist_ok=True)
    policy_file.write_text(f"# dsqsim tune trial {trial.number} (task {cfg.task}, {cfg.steps} steps, seed "
                           f"{cfg.seed}; cost on {cfg.workload} / {cfg.hw})\n" + to_toml(spec))
    planned = ev.objective_value(ev.cost(policy.timeline(cfg.steps)))
    finished = _finished_curves(study, optuna)
    run_dir = ev.out / "runs" / name
    shutil.rmtree(run_dir, ignore_errors=True)
    curve: dict[int, float] = {}
    trial.set_user_attr("policy_file", str(policy_file.relative_to(ev.out)))
    trial.set_user_attr("policy", spec)

    def on_step(step: int) -> None:
        if step % cfg.every or step >= cfg.steps:
            return
        rows = pd.read_csv(run_dir / "metrics.csv")
        loss = float(rows["valid_loss"].iloc[-1])
        curve[step] = loss
        if step <= cfg.every:
            return  # the first evaluation is too early to judge
        for cost, other in finished:
            if cost <= planned and step in other and loss > other[step] * (1 + cfg.prune_margin):
                raise _Pruned(f"valid loss {loss:.4g} at step {step} vs {other[step]:.4g} for a cheaper trial")
        if cfg.max_loss_gap is None:
            return
        best = min((other[step] for _, other in finished if step in other), default=None)
        if best is not None and loss > best * (1 + cfg.max_loss_gap):
            raise _Pruned(f"valid loss {loss:.4g} at step {step}: more than {100 * cfg.max_loss_gap:g} % above "
                          f"the best finished trial's {best:.4g}")

    from sim.training.train import TrainingDiverged

    try:
        result = ev.train_fn(cfg.task, policy, cfg.steps, cfg.seed, out_dir=run_dir, eval_every=cfg.every,
                             progress=False, on_step=on_step, **ev.train_kwargs)
    except (_Pruned, TrainingDiverged) as exc:
        trial.set_user_attr("curve", {str(k): v for k, v in curve.items()})
        trial.set_user_attr("pruned_because", str(exc))
        trial.set_user_attr("cost", {"planned_" + OBJECTIVES[cfg.objective][0]: planned})
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    curve.update({int(r["step"]): float(r["valid_loss"]) for r in result.metrics.to_dict("records")})
    cost = ev.cost(result.timeline)
    metric = float(result.final[ev.metric])
    trial.set_user_attr("curve", {str(k): v for k, v in curve.items()})
    trial.set_user_attr("cost", cost)
    trial.set_user_attr("final", {k: _plain(v) for k, v in result.final.items()})
    trial.set_user_attr("timeline", [[s, c.label, result.timeline.reasons.get(s, "")]
                                     for s, c in result.timeline.changes])
    study.tell(trial, [metric, ev.objective_value(cost)])


def _same_policy(study, optuna, spec: dict[str, Any]):
    """A finished trial whose policy equals `spec` but for its name, else None."""
    def key(d: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in d.items() if k != "name"}, sort_keys=True)

    wanted = key(spec)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                      optuna.trial.TrialState.PRUNED)):
        if "policy" in t.user_attrs and key(t.user_attrs["policy"]) == wanted:
            return t
    return None


def _sampler(optuna, cfg: TuneConfig, offset: int):
    population = max(4, min(20, cfg.trials // 3))
    return optuna.samplers.NSGAIISampler(population_size=population, seed=cfg.seed * 1_000_003 + offset)


def _open_study(cfg: TuneConfig, storage: str, optuna, create: bool):
    directions = ["maximize" if _metric_of(cfg.task) == "bleu" else "minimize", "minimize"]
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, directions=directions,
                                load_if_exists=True) if create else optuna.load_study(study_name=STUDY_NAME,
                                                                                       storage=storage)
    return study


def _metric_of(task: str) -> str:
    from sim.training.tasks import get_task

    return get_task(task).metric


def _count(study, optuna, with_running: bool = False) -> int:
    states = [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    if with_running:
        states.append(optuna.trial.TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=tuple(states)))


def _worker(cfg: TuneConfig, out: str, storage: str, train_fn: Callable | None, train_kwargs: dict,
            parallel: bool, worker: int = 0) -> None:
    """Run trials until the study holds `cfg.trials` finished ones. The sampler seed: sequentially, the number of
    finished trials (reproducible); in parallel, the number of all trials and the worker's index (workers that ask
    at the same moment get different seeds, so they do not duplicate a trial)."""
    optuna = _optuna()
    study = _open_study(cfg, storage, optuna, create=False)
    ev = _Evaluator(cfg, Path(out), train_fn, train_kwargs)
    while _count(study, optuna, with_running=parallel) < cfg.trials:
        offset = len(study.get_trials(deepcopy=False)) * 64 + worker if parallel else _count(study, optuna)
        _run_trial(study, ev, optuna, offset)


def _settings(cfg: TuneConfig) -> dict[str, Any]:
    """What a search was run with (all but the trial count, which a resume may raise), JSON-ready."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items() if k != "trials"}


def run_tune(cfg: TuneConfig, out_dir: str | Path, *, resume: bool = False, workers: int = 1,
             storage: str | None = None, train_fn: Callable | None = None, log: Callable[[str], None] | None = None,
             **train_kwargs: Any) -> TuneResult:
    """Run (or, with `resume`, continue) a search into `out_dir`; `train_kwargs` go to `train` (e.g. a small
    `model_config` for tests). Returns the trials and the Pareto front, also written as CSV with a plot."""
    optuna = _optuna()
    say = log or (lambda m: None)
    out = Path(out_dir)
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    if out.exists() and not resume and (out / "study.db").exists():
        raise ValueError(f"{out} already holds a search; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    _Evaluator(cfg, out, train_fn, train_kwargs)  # bad names and `--objective energy` fail before any trial
    study = _open_study(cfg, storage, optuna, create=True)
    settings = _settings(cfg)
    stored = study.user_attrs.get("settings")
    if stored is not None and {**_settings(TuneConfig()), **stored} != settings:  # newer options: their defaults
        raise ValueError(f"the search in {out} was run with {stored}; not resuming it with {settings}")
    study.set_user_attr("settings", settings)
    if cfg.around is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(near_zero_params(cfg.around))  # the base policy first: the front's reference point
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, state=optuna.trial.TrialState.FAIL)  # cut off: retry it
        study.enqueue_trial(t.params, skip_if_exists=False)
        say(f"trial {t.number} was interrupted; re-queued with the same parameters")
    done = _count(study, optuna)
    say(f"{done} trial(s) finished before; running {max(0, cfg.trials - done)} more, {workers} at a time")
    if workers <= 1:
        _worker(cfg, str(out), storage, train_fn, train_kwargs, parallel=False)
    else:
        from concurrent.futures import ProcessPoolExecutor

        from sim.sweep.executors import process_context

        with ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) as pool:
            for fut in [pool.submit(_worker, cfg, str(out), storage, train_fn, train_kwargs, True, w)
                        for w in range(workers)]:
                fut.result()
    return write_results(cfg, out, study, optuna)


def trials_frame(cfg: TuneConfig, study, optuna, baseline: dict[str, float]) -> pd.DataFrame:
    """One row per finished or pruned trial, from the storage alone (nothing is recomputed)."""
    metric = _metric_of(cfg.task)
    key = OBJECTIVES[cfg.objective][0]
    rows = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                      optuna.trial.TrialState.PRUNED)):
        spec, cost = t.user_attrs.get("policy", {}), t.user_attrs.get("cost", {})
        row = {"trial": t.number, "state": t.state.name.lower(), "policy_file": t.user_attrs.get("policy_file"),
               "kind": spec.get("kind"), "stages": len(spec.get("stages", [spec.get("config")])),
               "family": t.params.get("family", t.user_attrs.get("family", cfg.families[0])), "metric_name": metric,
               "same_as": t.user_attrs.get("same_as")}
        if t.state == optuna.trial.TrialState.COMPLETE:
            final = t.user_attrs.get("final", {})
            row.update(metric=float(t.values[0]), objective_value=float(t.values[1]),
                       final_valid_loss=final.get("final_valid_loss"),
                       speedup=baseline["time_s"] / cost["time_s"],
                       dram_reduction=baseline["dram_bytes"] / cost["dram_bytes"],
                       bitops_reduction=baseline["arith_bitops"] / cost["arith_bitops"],
                       **{k: cost[k] for k in ("time_s", "dram_bytes", "arith_bitops", "energy_j") if k in cost},
                       switches=" | ".join(f"{s}: {lab}" + (f" ({why})" if why else "")
                                           for s, lab, why in t.user_attrs.get("timeline", [])))
        else:
            row.update(metric=math.nan, objective_value=math.nan, pruned_because=t.user_attrs.get("pruned_because"))
        row["objective"] = key
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["pareto"] = _pareto_mask(df, maximize=metric == "bleu")
    return df


def _pareto_mask(df: pd.DataFrame, maximize: bool) -> list[bool]:
    """True for finished trials no other finished trial beats on both accuracy and cost (and strictly on one)."""
    ok = df["metric"].notna() & df["objective_value"].notna()
    acc = df["metric"] if maximize else -df["metric"]
    mask = []
    for i in df.index:
        if not ok[i]:
            mask.append(False)
            continue
        dominated = ((acc[ok] >= acc[i]) & (df.objective_value[ok] <= df.objective_value[i])
                     & ((acc[ok] > acc[i]) | (df.objective_value[ok] < df.objective_value[i]))).any()
        mask.append(not dominated)
    return mask


def write_results(cfg: TuneConfig, out: Path, study, optuna) -> TuneResult:
    from reports.files import save_figure
    from reports.plots import pareto_front

    ev = _Evaluator(cfg, out, None, {})
    df = trials_frame(cfg, study, optuna, ev.baseline)
    df.to_csv(out / "trials.csv", index=False)
    pareto = df[df["pareto"]].sort_values("objective_value") if len(df) else df
    pareto.to_csv(out / "pareto.csv", index=False)
    plot_path = None
    if len(pareto):
        key, label = OBJECTIVES[cfg.objective]
        metric_label = {"bleu": f"test BLEU on {cfg.task} [0-100]", "bpc": f"validation bits per character "
                        f"({cfg.task})"}.get(ev.metric, ev.metric)
        fig = pareto_front(df, "metric", metric_label, "objective_value",
                           f"{label}, {cfg.steps} steps of {cfg.workload} on {cfg.hw}",
                           baseline_cost=ev.baseline.get(key))
        plot_path = next(p for p in save_figure(fig, out / "pareto") if p.suffix == ".png")
    (out / "tune.json").write_text(json.dumps({"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                                                          asdict(cfg).items()},
                                               "baseline_fp32": ev.baseline, "ladders": LADDERS}, indent=1) + "\n")
    return TuneResult(df, pareto, out, plot_path)


def default_workers() -> int:
    return os.cpu_count() or 1
