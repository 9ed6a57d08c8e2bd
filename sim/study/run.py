"""`run_study`: train the reference model under each policy, cost each policy's recorded precision timeline on the
target workload and machine through the engine, and integrate over the run."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from sim.engine import ResultCache
from sim.study.costing import cost_timeline, phase_spans_s, prefetch
from sim.study.frames import busy_frame, timeline_frame, traffic_frame

SCHEMA_VERSION = 1
TABLES = ("summary", "metrics", "timeline", "configs", "traffic", "busy", "bandwidth")


@dataclass(frozen=True)
class StudyConfig:
    """What a study runs. Defaults give a quick study (a few minutes on 2 cores)."""

    task: str = "numwords"
    workload: str = "transformer-iwslt"
    hw: str = "edge-npu"
    policies: tuple[str, ...] = ("fp32", "fixed16", "dsq")
    steps: int = 100                  # the README main command's default (sim/commands/study.py DEFAULTS)
    seed: int = 0
    fidelity: str = "tile"
    bw_fidelity: str | None = None    # fidelity of the what-if bandwidth re-costing (None: `fidelity`)
    batch: int | None = None
    seq_len: int | None = None
    dram_bw_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)   # what-if bandwidths for the speedup plot
    eval_every: int | None = None     # evaluation interval in steps (None: steps // 5, so curves have 5 points)
    device_hour_price: float | None = None   # price of one device hour: adds the run's device-time cost
    price_kwh: float | None = None           # price of one kWh: adds the energy cost (when `energy_j` is modelled)
    seeds: tuple[int, ...] = ()       # several training seeds (empty: just `seed`); the first one's run is shown

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("a study needs at least one policy")
        if len(set(self.policies)) != len(self.policies):
            raise ValueError(f"policies must be distinct, got {', '.join(self.policies)}")
        if int(self.steps) <= 0:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if self.eval_every is not None and int(self.eval_every) <= 0:
            raise ValueError(f"eval_every must be a positive integer, got {self.eval_every!r}")
        if self.bw_fidelity is None:
            object.__setattr__(self, "bw_fidelity", self.fidelity)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds!r}")
        if not self.dram_bw_scales or not all(s > 0 for s in self.dram_bw_scales):
            raise ValueError(f"dram_bw_scales must be positive numbers, got {self.dram_bw_scales!r}")
        for key in ("device_hour_price", "price_kwh"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not (value >= 0 and math.isfinite(value))):
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")
        from sim.limits import check_overrides, check_steps

        check_steps(self.steps)
        for scale in self.dram_bw_scales:
            check_overrides(dram_bw_scale=scale)


@dataclass
class StudyResult:
    """Every table of a study (DataFrames); `out_dir`/`report_path` when written to disk."""

    config: StudyConfig
    summary: pd.DataFrame      # one row per policy: accuracy, totals over the run, speedup, traffic reduction
    metrics: pd.DataFrame      # training curves: policy, step, losses, BLEU ...
    timeline: pd.DataFrame     # precision segments: policy, step_start, step_end, label, q0..q3, q0_bits..q3_bits
    configs: pd.DataFrame      # per policy and distinct configuration: steps and per-step simulated figures
    traffic: pd.DataFrame      # policy, by (role | point), key, dram_bytes (whole run)
    busy: pd.DataFrame         # policy, by (unit | overlap | phase), key, busy_s (whole run)
    bandwidth: pd.DataFrame    # policy x dram_bw_scale: per-step time_s and dram_bytes (sweep-shaped)
    out_dir: Path | None = None
    report_path: Path | None = None
    extras: dict = field(default_factory=dict, repr=False)   # engine results, roofline results (not saved)
    seeds: pd.DataFrame | None = None  # one row per policy and seed: final metrics and run totals (seeds.csv)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem if name.endswith((".toml", ".json")) else name)


def study_seeds(cfg: StudyConfig) -> tuple[int, ...]:
    return tuple(cfg.seeds) or (int(cfg.seed),)


class _PolicyRun:
    """One policy's training run under `dir`: reuse a finished one (done.json), or train (resuming a checkpoint).
    With several seeds each seed has its own run, under `policies/<name>/seed<k>/`."""

    def __init__(self, cfg: StudyConfig, policy_name: str, root: Path, seed: int | None = None):
        self.cfg, self.name = cfg, policy_name
        self.seed = study_seeds(cfg)[0] if seed is None else int(seed)
        self.dir = root / "policies" / _safe(policy_name)
        if len(study_seeds(cfg)) > 1:
            self.dir = self.dir / f"seed{self.seed}"

    @property
    def key(self) -> tuple[str, int]:
        return self.name, self.seed

    def fingerprint(self) -> dict:
        return {"task": self.cfg.task, "policy": self.name, "steps": int(self.cfg.steps), "seed": self.seed,
                "eval_every": self.eval_every}

    @property
    def eval_every(self) -> int:
        return int(self.cfg.eval_every or max(1, self.cfg.steps // 5))

    def load_finished(self):
        """(metrics, timeline, info) of a finished run with the same settings, else None."""
        from sim.policy.timeline import Timeline

        done = self.dir / "done.json"
        if not done.is_file():
            return None
        try:
            info = json.loads(done.read_text())
            if info.get("run") != self.fingerprint():
                return None
            return pd.read_parquet(self.dir / "metrics.parquet"), Timeline.load(self.dir / "timeline.json"), info
        except (OSError, ValueError, KeyError):
            return None  # an unreadable record: train again

    def train(self, train_fn: Callable, resume: bool, progress: bool, report_steps: bool = False):
        """Train (in this process); `report_steps`: send each finished step to the pool's progress queue."""
        from sim.progress import accepts, report

        if not resume and self.dir.exists():
            shutil.rmtree(self.dir)  # a fresh study: the training module refuses to overwrite a run
        t0 = time.perf_counter()
        extra = {}
        if report_steps and accepts(train_fn, "on_step"):
            extra["on_step"] = lambda done: report(f"{self.name}#{self.seed}", done)
        result = train_fn(self.cfg.task, self.name, self.cfg.steps, self.seed, out_dir=self.dir / "train",
                          resume=resume, eval_every=self.eval_every, progress=progress, **extra)
        info = {"run": self.fingerprint(), "final": {k: _num(v) for k, v in result.final.items()},
                "train_wall_s": float(getattr(result, "wall_s", time.perf_counter() - t0))}
        from sim.sweep.store import atomic_write_bytes, atomic_write_frame

        atomic_write_frame(result.metrics, self.dir / "metrics.parquet")
        atomic_write_bytes(self.dir / "timeline.json", json.dumps(result.timeline.to_dict()).encode())
        atomic_write_bytes(self.dir / "done.json", json.dumps(info).encode())  # last: marks the run finished
        return result.metrics, result.timeline, info


def _num(v):
    return None if v is None else float(v)


def _train_one(run: _PolicyRun, train_fn: Callable, resume: bool, report_steps: bool):
    return run.train(train_fn, resume, False, report_steps)  # one aggregated bar in the parent, none per worker


def _train_all(runs: list[_PolicyRun], train_fn: Callable, resume: bool, progress: bool, workers: int,
               say: Callable[[str], None]) -> dict[tuple[str, int], tuple]:
    """Train the runs not finished yet, `workers` at a time (processes); finished runs are reused. Keyed by
    (policy, seed)."""
    finished: dict[tuple[str, int], tuple] = {}
    todo = []
    for run in runs:
        done = run.load_finished() if resume else None
        if done is not None:
            say(f"[{run.name}] reusing the finished training run in {run.dir}")
            finished[run.key] = done
        else:
            todo.append(run)
    if workers <= 1 or len(todo) <= 1:
        for run in todo:
            say(f"[{run.name}] training {run.cfg.steps} steps on task {run.cfg.task} ...")
            finished[run.key] = run.train(train_fn, resume, progress)
        return finished
    from concurrent.futures import as_completed

    from sim.lifecycle import worker_pool
    from sim.progress import QueueBar
    from sim.sweep.executors import process_context

    say(f"training {', '.join(r.name for r in todo)} ({runs[0].cfg.steps} steps on task {runs[0].cfg.task}), "
        f"{min(workers, len(todo))} at a time ...")
    ctx = process_context()
    steps_q = ctx.Queue() if progress else None
    total = sum(run.cfg.steps for run in todo)
    with (QueueBar(steps_q, total, "training", progress, "step") if progress else _Nothing()) as bar, \
            worker_pool(min(workers, len(todo)), ctx, steps_q) as pool:  # trainers die with this process
        futures = {pool.submit(_train_one, run, train_fn, resume, progress): run for run in todo}
        for fut in as_completed(futures):
            run = futures[fut]
            finished[run.key] = fut.result()
            if progress:
                bar.set(f"{run.name}#{run.seed}", run.cfg.steps)
            say(f"[{run.name}] trained in {finished[run.key][2]['train_wall_s']:.0f} s")
    return finished


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _default_train() -> Callable:
    from sim.training.train import train

    return train


def run_study(
    config: StudyConfig | None = None,
    out_dir: str | Path | None = "dsqsim-out",
    *,
    resume: bool = False,
    progress: bool = False,
    report: bool = True,
    workers: int | None = None,
    train_fn: Callable | None = None,
    log: Callable[[str], None] | None = None,
    **overrides,
) -> StudyResult:
    """Run a study (`StudyConfig` fields may be given as keyword overrides, e.g. `steps=50`).

    With `out_dir`, tables are written as CSV and Parquet, plots under `plots/`, and `report.html`; training runs
    live under `policies/<name>/` and, with `resume=True`, a finished policy is reused and an interrupted one
    continues from its checkpoint. Policies train `workers` at a time in separate processes (default: one per
    core). `train_fn` replaces `sim.training.train.train` (same signature; picklable when workers > 1).
    """
    if overrides:
        base = asdict(config or StudyConfig())
        unknown = sorted(set(overrides) - set(base))
        if unknown:
            raise ValueError(f"unknown study option(s) {', '.join(unknown)}; valid: {', '.join(base)}")
        base.update({k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
        config = StudyConfig(**base)
    cfg = config or StudyConfig()
    say = log or (lambda msg: None)
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise OSError(f"study output {str(out)!r} exists and is not a directory")
    trace, machine, _ = _resolve(cfg)  # bad names fail here, before any training
    train_fn = train_fn or _default_train()
    if out is None:
        return _run_study(cfg, None, trace, machine, resume, progress, report, workers, train_fn, say)
    from sim.lifecycle import RunLock

    with RunLock(out, "study directory"):  # one live owner per directory (a second study fails in one line)
        return _run_study(cfg, out, trace, machine, resume, progress, report, workers, train_fn, say)


def _run_study(cfg: StudyConfig, out: Path | None, trace, machine, resume: bool, progress: bool, report: bool,
               workers: int, train_fn: Callable, say: Callable[[str], None]) -> StudyResult:
    root = out if out is not None else Path(tempfile.mkdtemp(prefix="dsqsim-study-"))
    cache = ResultCache(root / "cache")  # on disk, so parallel workers fill it and a re-run reuses it
    seeds = study_seeds(cfg)
    runs = [_PolicyRun(cfg, name, root, seed) for name in cfg.policies for seed in seeds]
    all_trained = _train_all(runs, train_fn, resume, progress, workers, say)
    trained = {name: all_trained[(name, seeds[0])] for name in cfg.policies}  # the first seed's run is shown
    jobs = [(machine, c, cfg.fidelity) for tr in all_trained.values() for c, _ in tr[1]]
    jobs += [(machine.with_overrides(dram_bw_scale=float(s)), c, cfg.bw_fidelity) for name in cfg.policies
             for c, _ in trained[name][1] for s in cfg.dram_bw_scales if s != 1.0 or cfg.bw_fidelity != cfg.fidelity]
    say(f"simulating {len(jobs)} configuration(s), {workers} at a time ...")
    slow = [c for m, c, f in jobs if f == "transaction" and m is machine]
    if slow:
        from sim.progress import estimate_line

        say(estimate_line(trace, machine, dict.fromkeys(slow), workers) + " per bandwidth point")
    from sim.progress import bar

    with bar(len(jobs), "simulating", progress, "config") as sim_bar:
        prefetch(trace, jobs, cache, workers, on_done=lambda: sim_bar.update(1))

    parts = [_cost_policy(cfg, name, *trained[name], trace, machine, cache, say) for name in cfg.policies]
    seed_rows = seed_table(cfg, all_trained, trace, machine, cache)
    if out is None:
        shutil.rmtree(root, ignore_errors=True)
    summaries = [p["summary"] for p in parts]
    metrics = [p["metrics"] for p in parts]
    timelines = [p["timeline"] for p in parts]
    configs = [p["configs"] for p in parts]
    bandwidth = [row for p in parts for row in p["bandwidth"]]
    spans = {p["summary"]["policy"]: p["spans"] for p in parts}
    extras = {p["summary"]["policy"]: p["extras"] for p in parts}

    summary = _with_ratios(pd.DataFrame(summaries), cfg)
    if len(seeds) > 1:
        summary = with_seed_intervals(summary, seed_rows)
    result = StudyResult(
        config=cfg, summary=summary, metrics=_lead(pd.concat(metrics, ignore_index=True), ["policy", "step"]),
        timeline=pd.concat(timelines, ignore_index=True),
        configs=_lead(pd.concat(configs, ignore_index=True), ["policy", "config", "steps", "fraction"]),
        traffic=traffic_frame(summary), busy=busy_frame(summary, spans),
        bandwidth=pd.DataFrame(bandwidth), extras=extras, seeds=seed_rows,
    )
    if out is not None:
        from sim.study.output import write_study
        from sim.sweep.store import atomic_write_frame

        for suffix in (".csv", ".parquet"):  # before the report, which reads it
            atomic_write_frame(seed_rows, out / f"seeds{suffix}")
        write_study(result, out, trace, machine, report=report)
        say(f"wrote the study tables to {out}/" + (f"; report: {result.report_path}" if report else ""))
    return result


def _cost_policy(cfg: StudyConfig, name: str, m: pd.DataFrame, tl, info: dict, trace, machine, cache,
                 say: Callable[[str], None]) -> dict:
    """One policy's rows: its timeline costed per configuration, integrated over the run's steps, and re-costed at
    each what-if DRAM bandwidth."""
    say(f"[{name}] costing {len(tl)} configuration(s) on {cfg.workload} / {cfg.hw} ({cfg.fidelity}) ...")
    cost = cost_timeline(trace, machine, tl, cfg.fidelity, cache)
    steps = tl.total_steps
    f = cost.figures
    final = {(k if k.startswith("final_") else f"final_{k}"): v for k, v in info.get("final", {}).items()}
    summary = {"policy": name, "steps": steps, **final, "train_wall_s": info.get("train_wall_s"),
               **{k: v * steps for k, v in f.items() if _is_additive(k)},  # per step -> whole run
               "step_time_s": f["time_s"], "compute_busy": f["compute_busy"], "dram_busy": f["dram_busy"],
               "configs": f["configs"], "extra_passes": sum(getattr(tl, "extra_passes", {}).values()),
               "sim_events": f["events"], "sim_wall_s": f["sim_wall_s"],
               **_memory(cfg, trace, machine, tl)}
    spans: dict[str, float] = {}
    for _, frac, res in cost.results:
        for phase, sec in phase_spans_s(res).items():
            spans[phase] = spans.get(phase, 0.0) + frac * sec * steps
    bandwidth = []
    for scale in cfg.dram_bw_scales:
        bw = cost if scale == 1.0 and cfg.bw_fidelity == cfg.fidelity else cost_timeline(
            trace, machine.with_overrides(dram_bw_scale=float(scale)), tl, cfg.bw_fidelity, cache, minimal=False,
            energy=False)
        bandwidth.append({"workload": cfg.workload, "hw": cfg.hw, "policy": name, "dram_bw_scale": float(scale),
                          "fidelity": cfg.bw_fidelity,
                          **{k: bw.figures[k] for k in ("time_s", "dram_bytes", "compute_busy", "dram_busy")}})
    return {"summary": summary, "metrics": m.assign(policy=name), "timeline": timeline_frame(name, tl),
            "configs": cost.configs.assign(policy=name, steps=(cost.configs.fraction * steps).round().astype(int)),
            "spans": spans, "bandwidth": bandwidth, "extras": {"timeline": tl, "cost": cost}}


def _resolve(cfg: StudyConfig):
    from hwmodels.machine import get_machine
    from sim.policy import get_policy
    from sim.sweep.grid import FIDELITIES
    from sim.training.tasks import list_tasks
    from workloads import resolve_workload

    if cfg.task not in list_tasks():
        raise ValueError(f"unknown task {cfg.task!r}; choose from {', '.join(list_tasks())}")
    policies = {name: get_policy(name) for name in cfg.policies}
    machine = get_machine(cfg.hw)
    trace = resolve_workload(cfg.workload, batch=cfg.batch, seq_len=cfg.seq_len)
    from sim.limits import check_trace

    check_trace(trace)
    for fidelity in (cfg.fidelity, cfg.bw_fidelity):
        if fidelity not in FIDELITIES:
            raise ValueError(f"unknown fidelity {fidelity!r}; choose from {', '.join(FIDELITIES)}")
    return trace, machine, policies


def _is_additive(key: str) -> bool:
    from sim.study.costing import ADDITIVE

    return key in ADDITIVE or key.startswith(("bytes_", "busy_", "stall_", "min_", "energy_"))


def _memory(cfg: StudyConfig, trace, machine, timeline) -> dict:
    """Peak DRAM footprint of the policy's worst configuration and the largest batch fitting the machine's DRAM under
    every configuration it ran (sim.memory); max_batch is None for a trace-file workload."""
    from sim.memory import run_memory

    configs = list(dict.fromkeys(c for c, _ in timeline))
    return run_memory(cfg.workload, trace, machine, configs)


def _with_costs(summary: pd.DataFrame, cfg: StudyConfig | None) -> list[str]:
    """Device hours (the simulated training time of the run on one device), energy in kWh when `energy_j` exists,
    and with prices the cost of the run; `cost_includes` says which parts the cost has. Returns the new columns."""
    summary["device_hours"] = summary["time_s"] / 3600.0
    cols = ["device_hours"]
    if "energy_j" in summary:
        summary["energy_kwh"] = summary["energy_j"] / 3.6e6
        cols.append("energy_kwh")
    parts = []
    if cfg is not None and cfg.device_hour_price is not None:
        summary["cost_device"] = summary["device_hours"] * cfg.device_hour_price
        parts.append(("cost_device", "device time"))
    if cfg is not None and cfg.price_kwh is not None and "energy_kwh" in summary:
        summary["cost_energy"] = summary["energy_kwh"] * cfg.price_kwh
        parts.append(("cost_energy", "energy"))
    unpriced = cfg is not None and cfg.price_kwh is not None and "energy_kwh" not in summary
    if parts or unpriced:
        summary["cost"] = sum(summary[c] for c, _ in parts) if parts else float("nan")
        summary["cost_includes"] = (" + ".join(what for _, what in parts) or "nothing") + (
            " (energy not priced: no energy model in this summary)" if unpriced else "")
        cols += ["cost", "cost_includes", *(c for c, _ in parts)]
    return cols


def _with_ratios(summary: pd.DataFrame, cfg: StudyConfig | None = None) -> pd.DataFrame:
    """Speedup and reductions of each policy against the first one (ratios: > 1 means better); memory, energy and
    cost of the run (return on investment) beside them."""
    from sim.precision import DSQ_POINTS

    # both traffic views (sim.traffic): tiled (the engine, `dram_bytes`) and minimal; whole step and q0..q3 only
    summary["dram_bytes_minimal"] = summary["min_dram_bytes"]
    summary["reread_factor"] = summary["dram_bytes"] / summary["dram_bytes_minimal"]
    for view, prefix in (("", "bytes_point_"), ("_minimal", "min_bytes_point_")):
        cols = [f"{prefix}{q}" for q in DSQ_POINTS if f"{prefix}{q}" in summary]
        summary[f"dram_bytes_dsq{view}"] = summary[cols].sum(axis=1)
    first = summary.iloc[0]
    summary["speedup"] = first["time_s"] / summary["time_s"]
    summary["bitops_reduction"] = first["arith_bitops"] / summary["arith_bitops"]
    for col in ("dram_bytes", "dram_bytes_minimal", "dram_bytes_dsq", "dram_bytes_dsq_minimal"):
        summary[col.replace("dram_bytes", "traffic_reduction")] = first[col] / summary[col]
    if "energy_j" in summary:
        summary["energy_reduction"] = first["energy_j"] / summary["energy_j"]
    roi = ["peak_bytes", "max_batch", "energy_j", "energy_reduction", *_with_costs(summary, cfg)]
    lead = ["policy", "steps", "time_s", "speedup", *roi, "dram_bytes", "dram_bytes_minimal", "reread_factor",
            "traffic_reduction", "traffic_reduction_minimal", "traffic_reduction_dsq", "traffic_reduction_dsq_minimal",
            "arith_bitops", "bitops_reduction"]
    return _lead(summary, lead)


def _lead(df: pd.DataFrame, first: Sequence[str]) -> pd.DataFrame:
    first = [c for c in first if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def seed_table(cfg: StudyConfig, trained: dict[tuple[str, int], tuple], trace, machine, cache) -> pd.DataFrame:
    """One row per (policy, seed): final metrics, and the run's totals from costing that seed's own timeline (a
    loss-triggered policy's timeline differs between seeds); speedup and reductions against the first policy's run
    with the same seed."""
    rows = []
    for (name, seed), (_, tl, info) in trained.items():
        f = cost_timeline(trace, machine, tl, cfg.fidelity, cache).figures
        final = {(k if k.startswith("final_") else f"final_{k}"): v for k, v in info.get("final", {}).items()}
        rows.append({"policy": name, "seed": seed, **final, "time_s": f["time_s"] * tl.total_steps,
                     "dram_bytes": f["dram_bytes"] * tl.total_steps,
                     "arith_bitops": f["arith_bitops"] * tl.total_steps})
    df = pd.DataFrame(rows)
    base = df[df.policy == cfg.policies[0]].set_index("seed")
    df["speedup"] = df.seed.map(base.time_s) / df.time_s
    df["traffic_reduction"] = df.seed.map(base.dram_bytes) / df.dram_bytes
    df["bitops_reduction"] = df.seed.map(base.arith_bitops) / df.arith_bitops
    return df


def with_seed_intervals(summary: pd.DataFrame, seeds: pd.DataFrame) -> pd.DataFrame:
    """Summary plus `n_seeds` and `<col>_mean`/`<col>_ci95` (Student t, 95 %) over seeds for the final metrics,
    speedup and reductions."""
    from sim.study.seeds import aggregate_seeds

    cols = [c for c in seeds.columns if c.startswith("final_")]
    cols += ["speedup", "traffic_reduction", "bitops_reduction"]
    agg = aggregate_seeds(seeds, "policy", cols)
    return summary.merge(agg, on="policy", how="left")
