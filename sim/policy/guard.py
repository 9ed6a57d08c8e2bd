"""`dsq-guard`: a monitored DSQ policy that raises precision when it measures too much quantization error, and
rolls training back to the last checkpoint (one level higher everywhere) when the training loss spikes or diverges.

Each DSQ point climbs its own ladder: point q at level i uses ``stages[i].q`` (activations follow q0's level;
master and optimizer formats the highest level in use). Levels only rise and the stages are monotone
(`check_monotone`), so precision never decreases. The training loop (sim.training.train) measures every
``probe_every`` steps (sim.training.probe: relative error ||q(x) - x|| / ||x|| per point over the step's tensors) and
calls `observe_quantization`; a point whose error exceeds its threshold (or whose share of nonzero elements flushed
to zero exceeds its `flush_thresholds` entry, when given) in ``patience`` consecutive probes moves up one level from
the next step. With `grad_threshold`, each probe also recomputes the step's gradients on the same batch with every
point one level up (the shadow) and, when their relative difference ||g - g_shadow|| / ||g_shadow|| exceeds the
threshold in ``patience`` consecutive probes, raises every point that differs one level: the per-point errors stay
near a format's resolution all run, while this one grows as the gradient signal shrinks late in training.
Every change is recorded with its reason (`change_reason`, the timeline's `reason`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sim.policy.policies import Policy, _check_step, check_monotone
from sim.policy.timeline import Timeline
from sim.precision import DSQ_POINTS, PrecisionConfig

DEFAULT_THRESHOLDS = {"q0": 0.15, "q1": 0.25, "q2": 0.15, "q3": 0.08}


class GuardPolicy(Policy):
    kind = "dsq-guard"

    def __init__(self, name: str, stages: Sequence[PrecisionConfig], thresholds: dict[str, float] | float | None = None,
                 probe_every: int = 50, patience: int = 1, spike_factor: float = 2.0, spike_warmup: int = 50,
                 max_rollbacks: int = 3, flush_thresholds: dict[str, float] | None = None,
                 grad_threshold: float | None = None, description: str = "") -> None:
        super().__init__(name, description)
        if not stages:
            raise ValueError(f"policy {name!r} needs at least one stage")
        self.stages = list(stages)
        check_monotone(self.stages)
        if thresholds is None:
            thresholds = dict(DEFAULT_THRESHOLDS)
        elif isinstance(thresholds, int | float):
            thresholds = {q: float(thresholds) for q in DSQ_POINTS}
        if not isinstance(thresholds, dict) or set(thresholds) - set(DSQ_POINTS):
            raise ValueError(f"policy {name!r}: thresholds must be a number or a table of {', '.join(DSQ_POINTS)}")
        if not all(isinstance(v, int | float) and v > 0 for v in thresholds.values()):
            raise ValueError(f"policy {name!r}: thresholds must be positive numbers, got {thresholds}")
        for key, value, low in (("probe_every", probe_every, 1), ("patience", patience, 1),
                                ("spike_warmup", spike_warmup, 0), ("max_rollbacks", max_rollbacks, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"policy {name!r}: {key} must be an integer >= {low}, got {value!r}")
        if not (isinstance(spike_factor, int | float) and spike_factor > 1 and math.isfinite(spike_factor)):
            raise ValueError(f"policy {name!r}: spike_factor must be a finite number > 1, got {spike_factor!r}")
        flush = dict(flush_thresholds or {})
        if set(flush) - set(DSQ_POINTS) or not all(isinstance(v, int | float) and 0 < v <= 1 for v in flush.values()):
            raise ValueError(f"policy {name!r}: flush_thresholds must map q0..q3 to shares in (0, 1], got {flush}")
        if grad_threshold is not None and not (isinstance(grad_threshold, int | float) and grad_threshold > 0
                                               and math.isfinite(grad_threshold)):
            raise ValueError(f"policy {name!r}: grad_threshold must be a positive number, got {grad_threshold!r}")
        self.grad_threshold = None if grad_threshold is None else float(grad_threshold)
        self.thresholds = {q: float(v) for q, v in thresholds.items()}
        self.flush_thresholds = {q: float(v) for q, v in flush.items()}
        self.probe_every, self.patience = probe_every, patience
        self.spike_factor, self.spike_warmup, self.max_rollbacks = float(spike_factor), spike_warmup, max_rollbacks
        self._reset_state()

    def _reset_state(self) -> None:
        self.levels = {q: 0 for q in DSQ_POINTS}
        self.over = {q: 0 for q in (*DSQ_POINTS, "grad")}  # consecutive probes above threshold
        self.pending: list[str] = []            # reasons of raises not yet in use
        self.changes: list[dict[str, Any]] = []  # {"step", "levels", "reason"}: first step of each new config
        self.probes: list[dict[str, Any]] = []   # every measurement: step, point, rel_error, flush_share
        self.loss_ema, self.loss_count, self.rollbacks = math.nan, 0, 0

    # ---- configuration ------------------------------------------------------------------------------------------
    def _config(self, levels: dict[str, int]) -> PrecisionConfig:
        top = self.stages[max(levels.values())]
        d = {q: getattr(self.stages[levels[q]], q) for q in DSQ_POINTS}
        d.update(activation=self.stages[levels["q0"]].activation, master=top.master, optimizer=top.optimizer)
        return PrecisionConfig.from_dict(d)

    def config_at(self, step: int, total_steps: int) -> PrecisionConfig:
        _check_step(step, total_steps)
        return self._config(self.levels)

    def _next_levels(self) -> dict[str, int]:
        return {q: min(level + 1, len(self.stages) - 1) for q, level in self.levels.items()}

    def shadow_config(self) -> PrecisionConfig | None:
        """Every point one level up, when `grad_threshold` is set and that differs from the current config."""
        if self.grad_threshold is None:
            return None
        shadow = self._config(self._next_levels())
        return None if shadow == self._config(self.levels) else shadow

    def _raise(self, points: Sequence[str], reason: str) -> bool:
        raised = [q for q in points if self.levels[q] < len(self.stages) - 1]
        for q in raised:
            self.levels[q] += 1
            self.over[q] = 0
        if raised:
            self.pending.append(reason)
        return bool(raised)

    def change_reason(self, step: int, total_steps: int) -> str:
        """The reasons of raises made since the last call; they take effect at `step` (recorded in `changes`)."""
        if not self.pending:
            return ""
        reason, self.pending = "; ".join(self.pending), []
        self.changes = [c for c in self.changes if c["step"] < step]  # a rollback replays from `step`
        self.changes.append({"step": int(step), "levels": dict(self.levels), "reason": reason})
        return reason

    # ---- observations -------------------------------------------------------------------------------------------
    def observe_quantization(self, step: int, stats: dict[str, dict[str, float]]) -> None:
        too_high = []
        for q in DSQ_POINTS:
            s = stats.get(q)
            if s is None:
                continue
            err, flush = float(s.get("rel_error", 0.0)), float(s.get("flush_share", 0.0))
            self.probes.append({"step": int(step), "point": q, "rel_error": err, "flush_share": flush,
                                "level": self.levels[q]})
            why = []
            if err > self.thresholds.get(q, math.inf):
                why.append(f"{q} relative error {err:.3g} > {self.thresholds[q]:g}")
            if flush > self.flush_thresholds.get(q, math.inf):
                why.append(f"{q} flushed share {flush:.3g} > {self.flush_thresholds[q]:g}")
            self.over[q] = self.over[q] + 1 if why else 0
            if self.over[q] >= self.patience:
                too_high.append(" and ".join(why))
        points = [r.split()[0] for r in too_high]
        grad = stats.get("grad")
        if grad is not None and self.grad_threshold is not None:
            err = float(grad["rel_error"])
            self.probes.append({"step": int(step), "point": "grad", "rel_error": err,
                                "cosine": float(grad.get("cosine", math.nan)), "level": max(self.levels.values())})
            self.over["grad"] = self.over["grad"] + 1 if err > self.grad_threshold else 0
            if self.over["grad"] >= self.patience:
                self.over["grad"] = 0
                now, nxt = self._config(self.levels), self._config(self._next_levels())
                differ = [q for q in DSQ_POINTS if getattr(nxt, q) != getattr(now, q)]
                points += [q for q in differ if q not in points]
                too_high.append(f"gradient error {err:.3g} against the next level > {self.grad_threshold:g}")
        if points:
            self._raise(points, f"step {step}: " + ", ".join(too_high))

    def observe_train_loss(self, step: int, loss: float) -> bool:
        loss = float(loss)
        warm = self.loss_count >= self.spike_warmup
        if math.isfinite(loss) and not (warm and loss > self.spike_factor * self.loss_ema):
            self.loss_ema = loss if self.loss_count == 0 else 0.95 * self.loss_ema + 0.05 * loss
            self.loss_count += 1
            return False
        if self.rollbacks >= self.max_rollbacks:
            return False
        what = (f"loss {loss:.4g} > {self.spike_factor:g} x running mean {self.loss_ema:.4g}" if math.isfinite(loss)
                else f"loss {loss}")
        if not self._raise(DSQ_POINTS, f"step {step}: {what}; rolled back to the last checkpoint, all points up"):
            return False  # nothing left to raise: let the loop report the divergence
        self.rollbacks += 1
        self.loss_ema, self.loss_count = math.nan, 0  # judge the replay against itself
        return True

    # ---- state, plan, file form ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "levels": dict(self.levels), "over": dict(self.over),
                "pending": list(self.pending), "changes": [dict(c) for c in self.changes],
                "probes": [dict(p) for p in self.probes], "loss_ema": self.loss_ema, "loss_count": self.loss_count,
                "rollbacks": self.rollbacks}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        super().load_state_dict(d)
        try:
            levels = {q: int(d["levels"][q]) for q in DSQ_POINTS}
            over = {q: int(d["over"].get(q, 0)) for q in (*DSQ_POINTS, "grad")}
            state = (list(d["pending"]), list(d["changes"]), list(d["probes"]), float(d["loss_ema"]),
                     int(d["loss_count"]), int(d["rollbacks"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {self.kind} policy state: {exc}") from None
        if any(not 0 <= v < len(self.stages) for v in levels.values()):
            raise ValueError(f"policy state has levels {levels} beyond {self.name!r}'s {len(self.stages)} stages")
        self.levels, self.over = levels, over
        self.pending, self.changes, self.probes, self.loss_ema, self.loss_count, self.rollbacks = state

    def timeline(self, total_steps: int) -> Timeline:
        """Before training: stage 0 throughout. After: the observed changes, with their reasons."""
        timeline = Timeline(total_steps)
        timeline.record(0, self._config({q: 0 for q in DSQ_POINTS}))
        for c in self.changes:
            if 0 < c["step"] < total_steps:
                timeline.record(c["step"], self._config(c["levels"]), c["reason"])
        return timeline

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "stages": [s.to_dict() for s in self.stages], "thresholds": dict(self.thresholds),
                "probe_every": self.probe_every, "patience": self.patience, "spike_factor": self.spike_factor,
                "spike_warmup": self.spike_warmup, "max_rollbacks": self.max_rollbacks,
                **({"flush_thresholds": dict(self.flush_thresholds)} if self.flush_thresholds else {}),
                **({"grad_threshold": self.grad_threshold} if self.grad_threshold is not None else {})}
