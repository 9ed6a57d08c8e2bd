"""Adam with linear warm-up and cosine decay, global-norm gradient clipping, state for checkpoints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .quant import Quantizer


@dataclass(frozen=True)
class AdamConfig:
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-9
    weight_decay: float = 0.0      # decoupled (AdamW) when > 0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1      # cosine decay from lr to lr * min_lr_ratio at the last step
    clip_norm: float | None = 1.0  # global gradient norm; None disables

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Adam:
    """Updates `params` in place. Moments are kept at the `optimizer` format and weights at the `master` format of
    the precision config passed to `step` (fp32 by default, i.e. unquantized). `seed`: the run's seed, which with
    the step seeds the random bits of stochastically rounded (`_sr`) master/moment formats."""

    def __init__(self, params: dict[str, np.ndarray], config: AdamConfig, total_steps: int, seed: int = 0) -> None:
        self.params, self.config, self.total_steps, self.seed = params, config, total_steps, seed
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def lr_at(self, step: int) -> float:
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        span = max(1, self.total_steps - c.warmup_steps)
        progress = min(1.0, (step - c.warmup_steps) / span)
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def step(self, grads: dict[str, np.ndarray], precision: Any = None) -> float:
        """One update; returns the global gradient norm before clipping."""
        # stochastic rounding of master weights/moments (`_sr` formats) draws a fresh, reproducible stream per step
        # and run (the run's seed in it: two seeds must not share their rounding)
        c, qz = self.config, Quantizer(precision, rng=[self.seed, self.t, 4])
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
        scale = min(1.0, c.clip_norm / (norm + 1e-12)) if c.clip_norm else 1.0
        lr = self.lr_at(self.t)
        self.t += 1
        bc1, bc2 = 1 - c.beta1 ** self.t, 1 - c.beta2 ** self.t
        for k, p in self.params.items():
            g = grads[k] * scale if scale != 1.0 else grads[k]
            m, v = self.m[k], self.v[k]
            m *= c.beta1
            m += (1 - c.beta1) * g
            v *= c.beta2
            v += (1 - c.beta2) * (g * g)
            if precision is not None:
                m[...] = qz.optimizer(m)
                v[...] = qz.optimizer(v)
            update = (m / bc1) / (np.sqrt(v / bc2) + c.eps)
            if c.weight_decay:
                update += c.weight_decay * p
            p -= lr * update
            if precision is not None:
                p[...] = qz.master(p)
        return norm

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        for k in self.params:
            self.m[k][...] = state["m"][k]
            self.v[k][...] = state["v"][k]
