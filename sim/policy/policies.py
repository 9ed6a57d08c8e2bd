"""Precision policies: which PrecisionConfig a training step uses, given the step and (for loss-triggered DSQ) the
validation losses observed so far."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sim.formats import get_format
from sim.policy.timeline import Timeline
from sim.precision import DSQ_POINTS, PrecisionConfig

__all__ = ["Policy", "FixedPolicy", "SchedulePolicy", "LossTriggeredPolicy", "CyclicPolicy", "check_monotone"]

_MONOTONE_FIELDS = (*DSQ_POINTS, "activation")


def _check_step(step: int, total_steps: int) -> None:
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0 <= step < total_steps:
        raise ValueError(f"step {step} outside 0..{total_steps - 1}")


def _precision_key(name: str) -> tuple[int, float]:
    """Order of precision: multiply width first, then storage bits (e.g. bfp8_b32 < bfp8 < bf16)."""
    fmt = get_format(name)
    return fmt.mult_bits, fmt.bits_per_element


def check_monotone(stages: Sequence[PrecisionConfig]) -> None:
    """ValueError if any point's precision (mult_bits, then bits_per_element) decreases from one stage to the next."""
    for i in range(1, len(stages)):
        for point in _MONOTONE_FIELDS:
            before, after = getattr(stages[i - 1], point), getattr(stages[i], point)
            if _precision_key(after) < _precision_key(before):
                raise ValueError(
                    f"stage {i + 1} lowers {point} from {before} to {after}: precision must never decrease "
                    f"(compared by mult_bits, then bits_per_element)"
                )


def _stage_starts(at: Sequence[float], total_steps: int) -> list[int]:
    """First step of each stage after the first: ceil(fraction * total_steps)."""
    return [min(total_steps, math.ceil(f * total_steps - 1e-9)) for f in at]


class Policy:
    """Base class: maps (step, total_steps) and observed validation losses to a PrecisionConfig."""

    kind: ClassVar[str] = ""
    # Training-loop hooks (sim.training.train): measure quantization error every `probe_every` steps (None: never)
    # and pass it to `observe_quantization`; `observe_train_loss` returning True rolls back to the last checkpoint.
    probe_every: int | None = None

    def __init__(self, name: str, description: str = "") -> None:
        self.name = name
        self.description = description

    def config_at(self, step: int, total_steps: int) -> PrecisionConfig:
        raise NotImplementedError

    def observe(self, step: int, valid_loss: float) -> None:
        """Validation loss after ``step``; only loss-triggered policies act on it."""

    def observe_quantization(self, step: int, stats: dict[str, dict[str, float]]) -> None:
        """Quantization error measured at ``step``: {point: {"rel_error", "flush_share", ...}, and "grad":
        {"rel_error", "cosine"} of the step's gradients against `shadow_config`'s when there is one}; monitored only."""

    def shadow_config(self) -> PrecisionConfig | None:
        """A higher precision to recompute a probed step's gradients at, for the "grad" entry of the probe's stats
        (its error against the run's own gradients); None: no shadow pass."""
        return None

    def observe_train_loss(self, step: int, loss: float) -> bool:
        """Training loss of ``step`` (possibly NaN/inf); True asks the loop to roll back to its last checkpoint."""
        return False

    def change_reason(self, step: int, total_steps: int) -> str:
        """Why the configuration at ``step`` differs from the step before (recorded in the timeline)."""
        return ""

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if not isinstance(d, dict) or d.get("kind") != self.kind:
            got = d.get("kind") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"policy state is for kind {got!r}, not {self.kind!r}")

    def timeline(self, total_steps: int) -> Timeline:
        """The planned configuration over ``total_steps``; iterates as (config, fraction of steps) pairs."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The policy-file form (see README, "Precision policies")."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class FixedPolicy(Policy):
    """One configuration for the whole run."""

    kind = "fixed"

    def __init__(self, name: str, config: PrecisionConfig, description: str = "") -> None:
        super().__init__(name, description or f"{config.label} for the whole run")
        self.config = config

    def config_at(self, step: int, total_steps: int) -> PrecisionConfig:
        _check_step(step, total_steps)
        return self.config

    def timeline(self, total_steps: int) -> Timeline:
        return Timeline.constant(self.config, total_steps)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "description": self.description, "config": self.config.to_dict()}


class _Staged(Policy):
    """Shared by the DSQ variants: a list of stages whose precision never decreases."""

    def __init__(self, name: str, stages: Sequence[PrecisionConfig], description: str = "") -> None:
        super().__init__(name, description)
        if not stages:
            raise ValueError(f"policy {name!r} needs at least one stage")
        self.stages = list(stages)
        check_monotone(self.stages)

    @staticmethod
    def _check_at(at: Sequence[float], n_stages: int, what: str) -> list[float]:
        at = [float(f) for f in at]
        if len(at) != n_stages - 1:
            raise ValueError(f"{what} needs {n_stages - 1} stage start fraction(s) for {n_stages} stages, "
                             f"got {len(at)}")
        if any(not 0 < f < 1 for f in at) or any(b <= a for a, b in zip(at, at[1:], strict=False)):
            raise ValueError(f"{what} stage start fractions must increase strictly within (0, 1), got {at}")
        return at

    def _timeline_from_starts(self, starts: Sequence[int], total_steps: int) -> Timeline:
        """Stage i runs from starts[i-1] (stage 0 from 0) to the next start; empty stages are skipped."""
        bounds = [0, *(min(int(s), total_steps) for s in starts), total_steps]
        timeline = Timeline(total_steps)
        for stage, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
            if end > start:
                timeline.record(start, self.stages[stage])
        return timeline

    def _stages_dict(self) -> list[dict[str, str]]:
        return [s.to_dict() for s in self.stages]


class SchedulePolicy(_Staged):
    """DSQ on a schedule: stage i+1 starts at fraction ``at[i]`` of the run."""

    kind = "dsq"

    def __init__(self, name: str, stages: Sequence[PrecisionConfig], at: Sequence[float] | None = None,
                 description: str = "") -> None:
        super().__init__(name, stages, description)
        n = len(self.stages)
        self.at = self._check_at([i / n for i in range(1, n)] if at is None else at, n, f"policy {name!r}")

    def config_at(self, step: int, total_steps: int) -> PrecisionConfig:
        _check_step(step, total_steps)
        return self.stages[sum(step >= s for s in _stage_starts(self.at, total_steps))]

    def timeline(self, total_steps: int) -> Timeline:
        return self._timeline_from_starts(_stage_starts(self.at, total_steps), total_steps)

    def change_reason(self, step: int, total_steps: int) -> str:
        starts = _stage_starts(self.at, total_steps)
        return next((f"schedule: stage {i + 2} from {f:.0%} of the run" for i, (s, f) in
                     enumerate(zip(starts, self.at, strict=True)) if s == step), "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "stages": self._stages_dict(), "at": self.at}


class LossTriggeredPolicy(_Staged):
    """DSQ that moves to the next stage when the validation loss has not improved by more than ``min_delta``
    (absolute) for ``patience`` consecutive evaluations. The new stage applies from the step after the evaluation.

    ``timeline()``: once anything has been observed, the observed switches, the current stage running to the end;
    before that, the plan assumes stage starts at fractions ``assume_at`` (default: an equal split)."""

    kind = "dsq-loss"

    def __init__(self, name: str, stages: Sequence[PrecisionConfig], patience: int = 2, min_delta: float = 0.0,
                 assume_at: Sequence[float] | None = None, description: str = "") -> None:
        super().__init__(name, stages, description)
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"policy {name!r}: patience must be a positive integer, got {patience!r}")
        if not (isinstance(min_delta, int | float) and min_delta >= 0 and math.isfinite(min_delta)):
            raise ValueError(f"policy {name!r}: min_delta must be a finite number >= 0, got {min_delta!r}")
        n = len(self.stages)
        self.patience, self.min_delta = patience, float(min_delta)
        self.assume_at = self._check_at([i / n for i in range(1, n)] if assume_at is None else assume_at, n,
                                        f"policy {name!r} assume_at")
        self.switch_steps: list[int] = []  # first step of stages 2, 3, ...
        self.best_loss = math.inf
        self.bad_evals = 0
        self.evaluations = 0

    @property
    def stage(self) -> int:
        return len(self.switch_steps)

    def config_at(self, step: int, total_steps: int) -> PrecisionConfig:
        _check_step(step, total_steps)
        return self.stages[sum(step >= s for s in self.switch_steps)]

    def change_reason(self, step: int, total_steps: int) -> str:
        if step in self.switch_steps:
            return (f"validation loss plateau: no improvement > {self.min_delta:g} in {self.patience} evaluations, "
                    f"stage {self.switch_steps.index(step) + 2}")
        return ""

    def observe(self, step: int, valid_loss: float) -> None:
        self.evaluations += 1
        loss = float(valid_loss)
        if loss < self.best_loss - self.min_delta:  # NaN never counts as an improvement
            self.best_loss, self.bad_evals = loss, 0
            return
        self.bad_evals += 1
        if self.bad_evals >= self.patience and self.stage < len(self.stages) - 1:
            self.switch_steps.append(int(step) + 1)
            self.bad_evals = 0
            self.best_loss = loss if math.isfinite(loss) else math.inf  # judge the new stage against itself

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "switch_steps": list(self.switch_steps), "best_loss": self.best_loss,
                "bad_evals": self.bad_evals, "evaluations": self.evaluations}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        super().load_state_dict(d)
        try:
            switch_steps = [int(s) for s in d["switch_steps"]]
            best, bad, evaluations = float(d["best_loss"]), int(d["bad_evals"]), int(d["evaluations"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed {self.kind} policy state: {exc}") from None
        if len(switch_steps) > len(self.stages) - 1:
            raise ValueError(f"policy state has {len(switch_steps)} switches but {self.name!r} has "
                             f"{len(self.stages)} stages")
        self.switch_steps, self.best_loss, self.bad_evals, self.evaluations = switch_steps, best, bad, evaluations

    def timeline(self, total_steps: int) -> Timeline:
        if self.evaluations or self.switch_steps:
            return self._timeline_from_starts(self.switch_steps, total_steps)
        return self._timeline_from_starts(_stage_starts(self.assume_at, total_steps), total_steps)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "stages": self._stages_dict(), "patience": self.patience, "min_delta": self.min_delta,
                "assume_at": self.assume_at}


class CyclicPolicy(Policy):
    """CPT-style cyclic precision (Fu et al., ICLR 2021): within each of ``cycles`` equal cycles the bit width at
    ``points`` (default q0) rises from ``low_bits`` to ``high_bits`` along half a cosine,
    ``ceil(low + (high - low) * (1 - cos(pi * phase)) / 2)``, then drops back. Other points keep ``base``."""

    kind = "cyclic"
    FAMILIES = ("fixed", "bfp")

    def __init__(self, name: str, base: PrecisionConfig, family: str = "bfp", low_bits: int = 4,
                 high_bits: int = 8, cycles: int = 8, points: Sequence[str] = ("q0",), block_size: int | None = None,
                 description: str = "") -> None:
        super().__init__(name, description)
        if family not in self.FAMILIES:
            raise ValueError(f"cyclic policy {name!r}: unknown family {family!r}; valid: {', '.join(self.FAMILIES)}")
        if block_size is not None and family != "bfp":
            raise ValueError(f"cyclic policy {name!r}: block_size applies to the bfp family only")
        if not all(isinstance(b, int) for b in (low_bits, high_bits)) or not low_bits < high_bits:
            raise ValueError(f"cyclic policy {name!r}: need integers low_bits < high_bits, got {low_bits}, {high_bits}")
        if not isinstance(cycles, int) or cycles < 1:
            raise ValueError(f"cyclic policy {name!r}: cycles must be a positive integer, got {cycles!r}")
        bad = [p for p in points if p not in DSQ_POINTS]
        if bad or not points:
            raise ValueError(f"cyclic policy {name!r}: points must be a non-empty list of {', '.join(DSQ_POINTS)}")
        self.base, self.family, self.cycles, self.points = base, family, cycles, tuple(points)
        self.low_bits, self.high_bits, self.block_size = low_bits, high_bits, block_size
        self._configs = {b: self._config_for(b) for b in range(low_bits, high_bits + 1)}  # validates the names

    def _config_for(self, bits: int) -> PrecisionConfig:
        fmt = f"{self.family}{bits}" + (f"_b{self.block_size}" if self.block_size else "")
        d = self.base.to_dict()
        if self.base.activation == self.base.q0 and "q0" in self.points:
            d["activation"] = fmt  # activations follow q0 unless the base set them apart
        d.update({p: fmt for p in self.points})
        return PrecisionConfig.from_dict(d)

    def bits_at(self, steps: np.ndarray | int, total_steps: int) -> np.ndarray:
        """Bit width at each step (vectorised)."""
        steps = np.asarray(steps, dtype=np.int64)
        phase = (steps * self.cycles % total_steps) / total_steps  # exact integer cycle position
        span = self.high_bits - self.low_bits
        return np.ceil(self.low_bits + span * (1 - np.cos(np.pi * phase)) / 2 - 1e-9).astype(int)

    def config_at(self, step: int, total_steps: int) -> PrecisionConfig:
        _check_step(step, total_steps)
        return self._configs[int(self.bits_at(step, total_steps))]

    def timeline(self, total_steps: int) -> Timeline:
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        bits = self.bits_at(np.arange(total_steps), total_steps)
        starts = np.flatnonzero(np.diff(bits, prepend=-1))
        return Timeline(total_steps, [(int(s), self._configs[int(bits[s])]) for s in starts])

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "kind": self.kind, "description": self.description, "base": self.base.to_dict(),
             "family": self.family, "low_bits": self.low_bits, "high_bits": self.high_bits, "cycles": self.cycles,
             "points": list(self.points)}
        if self.block_size is not None:
            d["block_size"] = self.block_size
        return d
