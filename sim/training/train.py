"""The training loop: a task, a precision policy, checkpoints that make a resumed run end exactly as a straight one.

Every step: the policy's config for this step → forward/backward quantized by it → Adam (master weights fp32).
Every `eval_every` steps (and at the end): evaluate in fp32 on the validation split, let the policy observe the
validation loss, append a row to DIR/metrics.csv, write DIR/checkpoint.npz atomically and DIR/timeline.json.
A NaN/Inf loss or gradient, or a training loss above EXPLOSION_FACTOR x ln(vocabulary size) (four times the loss of
a uniform guess: a model that bad has diverged, even while its numbers stay finite), stops the run with
`TrainingDiverged`; the last good checkpoint is left as it was. Steps are numbered as in the metrics: step n is the
n-th step (metrics rows and checkpoints are at the number of steps completed).
Monitored policies (`probe_every` set, e.g. dsq-guard): every `probe_every` steps the step's quantization error is
measured (sim.training.probe) and passed to `policy.observe_quantization`; `policy.observe_train_loss` returning
True rolls the run back to its last checkpoint (the policy keeps its raised precision) instead of diverging.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .checkpoint import CHECKPOINT_NAME, atomic_write_bytes, load_checkpoint, save_checkpoint
from .model import Transformer
from .optim import Adam, AdamConfig
from .tasks import Task, get_task

METRICS_NAME, TIMELINE_NAME, PROBES_NAME = "metrics.csv", "timeline.json", "probes.csv"
# Columns that depend on the wall clock, so differ between a straight and a resumed run.
TIMING_COLUMNS = ("wall_s",)
# A training loss above this many times ln(vocab_size), the loss of a uniform guess, counts as divergence.
EXPLOSION_FACTOR = 4.0


class TrainingDiverged(RuntimeError):
    """`step` counts steps from 1, as the metrics do: the step that diverged."""

    def __init__(self, step: int, what: str, checkpoint_step: int | None, out_dir: Path) -> None:
        kept = f"last good checkpoint at step {checkpoint_step} in {out_dir}" if checkpoint_step else "no checkpoint"
        super().__init__(f"training diverged: {what} at step {step}; {kept}")
        self.step, self.checkpoint_step = step, checkpoint_step


@dataclass
class TrainResult:
    task: str
    policy: str
    steps: int
    seed: int
    out_dir: Path
    metrics: pd.DataFrame          # one row per evaluation
    final: dict[str, float]        # final_valid_loss and bleu/exact_match (numwords, test split) or bpc
    wall_s: float                  # all sessions of the run, resumed ones included
    steps_per_s: float             # this session
    timeline: Any = field(repr=False, default=None)

    def summary(self) -> dict[str, Any]:
        """The dict `dsqsim train --json` prints."""
        out: dict[str, Any] = {"task": self.task, "policy": self.policy, "steps": self.steps,
                               "final_valid_loss": self.final["final_valid_loss"]}
        if "bpc" in self.final:
            out["bpc"] = self.final["bpc"]
        else:
            out["bleu"] = self.final["bleu"]
        out["exact_match"] = self.final.get("exact_match")
        out.update(wall_s=round(self.wall_s, 3), steps_per_s=round(self.steps_per_s, 3))
        return out


def _resolve_policy(policy: Any) -> tuple[Any, str]:
    from sim.policy import Policy, get_policy

    if isinstance(policy, Policy):
        return policy, policy.name
    if not isinstance(policy, str):
        raise ValueError(f"policy must be a name, a policy file path or a Policy, got {type(policy).__name__}")
    return get_policy(policy), policy


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(f: Any) -> None:
        f.write(pd.DataFrame(rows).to_csv(index=False).encode())

    atomic_write_bytes(path, write)


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def single_blas_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run `fn` with one BLAS thread: this model's GEMMs are small, and on a shared 2-core machine OpenBLAS's
    spinning threads made a numwords step 5x slower (measured: 0.24 s vs 0.05 s CPU per step)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from threadpoolctl import threadpool_limits

        # Overflow to inf/NaN is caught as divergence by the loop, not printed as warnings.
        with threadpool_limits(limits=1, user_api="blas"), np.errstate(over="ignore", invalid="ignore"):
            return fn(*args, **kwargs)

    return wrapper


@single_blas_thread
def train(task: str | Task, policy: Any, steps: int | None = None, seed: int = 0, out_dir: str | Path = "run",
          resume: bool = False, eval_every: int | None = None, model_config: Any = None,
          adam: AdamConfig | None = None, lr: float | None = None, progress: bool = True,
          on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train `task` under `policy` for `steps` steps (task default if None), writing into `out_dir`.

    `lr` overrides the task's peak learning rate. `resume=True` continues from out_dir's checkpoint (or starts
    fresh if there is none: studies resume every run; `dsqsim train --resume` says so on stderr); without it an
    existing checkpoint is an error. `on_step(step)` is called after each completed step (tests use it to
    interrupt a run). Raises `TrainingDiverged` on NaN/Inf or an exploding loss (module docstring).
    """
    from sim.policy import Timeline

    # Every argument is checked before anything is written.
    task_obj = get_task(task) if isinstance(task, str) else task
    policy_obj, policy_name = _resolve_policy(policy)
    steps = task_obj.default_steps if steps is None else steps
    eval_every = eval_every or task_obj.eval_every
    if steps <= 0 or eval_every <= 0:
        raise ValueError(f"steps and eval_every must be positive, got {steps} and {eval_every}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"the seed must be a non-negative integer, got {seed!r}")
    cfg = model_config or task_obj.model_config()
    adam = adam or task_obj.adam_config()
    if lr is not None:
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive finite number, got {lr}")
        adam = dataclasses.replace(adam, lr=lr)
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    explosion_loss = EXPLOSION_FACTOR * math.log(cfg.vocab_size)
    model = Transformer(cfg, seed)
    opt = Adam(model.params, adam, steps, seed=seed)
    data_rng = np.random.default_rng([seed, 2])
    timeline = Timeline(steps)
    rows: list[dict[str, Any]] = []
    start, wall_before, ckpt_step = 0, 0.0, None
    loss_sum, loss_count = 0.0, 0
    run_id = {"task": task_obj.name, "policy": policy_name, "steps": steps, "seed": seed, "lr": adam.lr,
              "eval_every": eval_every}
    def restore(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        nonlocal timeline, rows, start, wall_before, loss_sum, loss_count, ckpt_step
        for k, p in model.params.items():
            p[...] = arrays[f"p/{k}"]
        opt.load_state_dict({"t": meta["opt_t"], "m": {k: arrays[f"m/{k}"] for k in model.params},
                             "v": {k: arrays[f"v/{k}"] for k in model.params}})
        model.set_rng_state(meta["model_rng"])
        data_rng.bit_generator.state = meta["data_rng"]
        timeline = Timeline.from_dict(meta["timeline"])
        rows, start, wall_before = list(meta["metrics"]), meta["step"], meta["wall_s"]
        loss_sum, loss_count, ckpt_step = meta["loss_sum"], meta["loss_count"], meta["step"]
        _write_metrics(out / METRICS_NAME, rows)  # drop rows written after the checkpoint

    if resume and ckpt_path.exists():
        arrays, meta = load_checkpoint(ckpt_path)
        if meta["run"] != run_id:
            raise ValueError(f"{out} holds a different run ({meta['run']}); not resuming it as {run_id}")
        restore(arrays, meta)
        policy_obj.load_state_dict(meta["policy"])
    elif (out / METRICS_NAME).exists():
        (out / METRICS_NAME).unlink()

    def checkpoint(step: int, wall_s: float) -> None:
        arrays = {f"p/{k}": v for k, v in model.params.items()}
        arrays.update({f"m/{k}": v for k, v in opt.m.items()})
        arrays.update({f"v/{k}": v for k, v in opt.v.items()})
        meta = {"run": run_id, "step": step, "opt_t": opt.t, "model_rng": model.rng_state(),
                "data_rng": data_rng.bit_generator.state, "policy": policy_obj.state_dict(),
                "timeline": timeline.to_dict(), "metrics": rows, "wall_s": wall_s, "loss_sum": loss_sum,
                "loss_count": loss_count, "model_config": cfg.to_dict(), "adam": adam.to_dict()}
        save_checkpoint(ckpt_path, arrays, meta)
        atomic_write_bytes(out / TIMELINE_NAME, lambda f: f.write(_timeline_json(timeline)))
        probes = getattr(policy_obj, "probes", None)
        if probes:  # a monitored policy's measurements, one row per probe and point (the "grad" point: shadow)
            atomic_write_bytes(out / PROBES_NAME, lambda f: f.write(pd.DataFrame(probes).to_csv(index=False).encode()))

    from tqdm import tqdm

    from .probe import record_quantization

    probe_every = getattr(policy_obj, "probe_every", None)
    t0 = time.perf_counter()
    bar = tqdm(total=steps, initial=start, file=sys.stderr, disable=not progress, desc=f"{task_obj.name}/{policy_name}",
               unit="step", dynamic_ncols=True)
    try:
        if probe_every and ckpt_step is None:
            checkpoint(0, 0.0)  # a monitored policy can roll back to the start
            ckpt_step = 0
        step = start
        while step < steps:
            config = policy_obj.config_at(step, steps)
            timeline.record(step, config, policy_obj.change_reason(step, steps))
            probing = bool(probe_every) and step % probe_every == 0
            batch = task_obj.sample_batch(data_rng)
            rng_state = model.rng_state() if probing else None  # a shadow pass replays these masks and roundings
            with record_quantization(probing) as qstats:
                loss, grads = model.loss_and_grads(batch, config)
            if probing:
                shadow = policy_obj.shadow_config()
                policy_obj.observe_quantization(step, _probe_stats(model, batch, grads, qstats, rng_state, shadow))
                if shadow is not None:
                    timeline.record_extra("shadow gradient", shadow)
            lr = opt.lr_at(opt.t)
            exploded = not math.isfinite(loss) or loss > explosion_loss  # checked before the update, as below
            gnorm = math.nan if exploded else opt.step(grads, config)
            if policy_obj.observe_train_loss(step, loss if math.isfinite(gnorm) else math.nan):
                before = timeline
                step_back = _roll_back(restore, ckpt_path, bar)
                # The discarded steps were computed: they stay in the cost as extra passes, beside every extra
                # pass made before the rollback (the restored timeline holds only those up to the checkpoint).
                timeline.extra_passes = dict(before.extra_passes)
                for s in range(step_back, step + 1):
                    timeline.record_extra("rolled back", before.config_at(s))
                step = step_back
                continue
            if not math.isfinite(loss):
                raise TrainingDiverged(step + 1, f"loss is {loss}", ckpt_step, out)
            if loss > explosion_loss:
                raise TrainingDiverged(step + 1, f"loss {loss:.4g} exceeds {EXPLOSION_FACTOR:g} x ln(vocabulary "
                                       f"{cfg.vocab_size}) = {explosion_loss:.3g}", ckpt_step, out)
            if not math.isfinite(gnorm):
                raise TrainingDiverged(step + 1, f"gradient norm is {gnorm}", ckpt_step, out)
            loss_sum, loss_count = loss_sum + loss, loss_count + 1
            done = step + 1
            bar.update(1)
            if done % eval_every == 0 or done == steps:
                ev = task_obj.evaluate(model)
                policy_obj.observe(done, ev["valid_loss"])
                wall_s = wall_before + time.perf_counter() - t0
                row = {"step": done, "train_loss": loss_sum / loss_count, **ev, "lr": lr, "grad_norm": gnorm,
                       "precision": config.label, "wall_s": round(wall_s, 3)}
                rows.append(row)
                loss_sum, loss_count = 0.0, 0
                _append_metrics(out / METRICS_NAME, row)
                checkpoint(done, wall_s)
                ckpt_step = done
                bar.set_postfix(valid_loss=f"{ev['valid_loss']:.3f}", precision=config.label)
            if on_step is not None:
                on_step(done)
            step = done
    finally:
        bar.close()
    session_s = time.perf_counter() - t0
    final = {"final_valid_loss": rows[-1]["valid_loss"]}
    if task_obj.metric == "bpc":
        final["bpc"] = rows[-1]["bpc"]
    else:
        test = task_obj.evaluate(model, "test")
        final.update(bleu=test["bleu"], exact_match=test["exact_match"], test_loss=test["test_loss"])
    return TrainResult(task_obj.name, policy_name, steps, seed, out, pd.DataFrame(rows), final,
                       wall_before + session_s, (steps - start) / session_s if session_s > 0 else float("nan"),
                       timeline)


def _probe_stats(model: Transformer, batch: dict[str, np.ndarray], grads: dict[str, np.ndarray], qstats: Any,
                 rng_state: dict[str, Any], shadow: Any) -> dict[str, dict[str, float]]:
    """The probe's per-point errors, plus the gradient error against a `shadow` precision on the same batch (same
    dropout masks and rounding stream) when the policy asks for one. The shadow pass leaves the run's numerics and
    RNG untouched."""
    from .probe import gradient_error

    stats = qstats.summary()
    if shadow is not None:
        after = model.rng_state()
        model.set_rng_state(rng_state)
        _, reference = model.loss_and_grads(batch, shadow)
        model.set_rng_state(after)
        stats["grad"] = gradient_error(grads, reference)
    return stats


def _roll_back(restore: Callable[[dict, dict], None], ckpt_path: Path, bar: Any) -> int:
    """Restore the last checkpoint (not the policy: it keeps the precision it raised); the step to continue at."""
    arrays, meta = load_checkpoint(ckpt_path)
    restore(arrays, meta)
    bar.reset(total=bar.total)
    bar.update(meta["step"])
    return int(meta["step"])


def _timeline_json(timeline: Any) -> bytes:
    import json

    return (json.dumps(timeline.to_dict(), indent=1) + "\n").encode()
