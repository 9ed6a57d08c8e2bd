"""Measure the quantization error at each DSQ point during one training step (for monitored policies).

`record_quantization()` wraps `Quantizer.apply` for the duration of a `with` block: every tensor quantized at q0..q3
is compared with its quantized value. The step's numerics are unchanged (the wrapper returns what `apply` returns);
only the training quantizer is observed. Per point the result aggregates all tensors of the step:

- `rel_error`: ||q(x) - x|| / ||x|| over all elements (Frobenius norms summed in squares),
- `flush_share`: share of nonzero elements that quantized to zero (underflow in a block or below a fixed scale),
- `tensors`, `elements`: how much was observed.

`gradient_error(grads, reference)` compares a step's parameter gradients with a shadow computed on the same batch at a
higher precision (the guard's next level): `rel_error` = ||g - g_ref|| / ||g_ref|| over all parameters and `cosine`.
Unlike the per-point errors, which stay near the format's resolution for the whole run, this one grows as training
converges and the batch gradient becomes a small mean of large per-example terms: the quantization noise then
swamps a shrinking signal (measured in docs/policies.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from sim.precision import DSQ_POINTS

from .quant import Quantizer


class QuantStats:
    """Running sums per DSQ point; `summary()` gives the dict a policy's `observe_quantization` receives."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}  # point -> [err^2, x^2, flushed, nonzero, tensors, elements]

    def add(self, point: str, x: np.ndarray, q: np.ndarray) -> None:
        x64, q64 = np.asarray(x, dtype=np.float64), np.asarray(q, dtype=np.float64)
        nonzero = x64 != 0
        s = self.sums.setdefault(point, [0.0] * 6)
        s[0] += float(np.sum((q64 - x64) ** 2))
        s[1] += float(np.sum(x64 ** 2))
        s[2] += float(np.count_nonzero(nonzero & (q64 == 0)))
        s[3] += float(np.count_nonzero(nonzero))
        s[4] += 1
        s[5] += x64.size

    def summary(self) -> dict[str, dict[str, float]]:
        return {p: {"rel_error": math.sqrt(s[0] / s[1]) if s[1] > 0 else 0.0,
                    "flush_share": s[2] / s[3] if s[3] else 0.0, "tensors": s[4], "elements": s[5]}
                for p, s in self.sums.items()}


@contextmanager
def record_quantization(enabled: bool = True) -> Iterator[QuantStats]:
    """Within the block, record every training-time quantization at q0..q3 into the yielded `QuantStats`."""
    stats = QuantStats()
    if not enabled:
        yield stats
        return
    original = Quantizer.apply

    def apply(self: Quantizer, key: str, x: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        q = original(self, key, x, *args, **kwargs)
        if self.training and key in DSQ_POINTS and self._fmt.get(key) is not None:
            stats.add(key, x, q)
        return q

    Quantizer.apply = apply  # type: ignore[method-assign]
    try:
        yield stats
    finally:
        Quantizer.apply = original  # type: ignore[method-assign]


def gradient_error(grads: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Relative error and cosine similarity of `grads` against `reference` over all parameters (float64 sums)."""
    diff2 = ref2 = g2 = dot = 0.0
    for k, r in reference.items():
        g64, r64 = np.asarray(grads[k], dtype=np.float64).ravel(), np.asarray(r, dtype=np.float64).ravel()
        diff2 += float(np.dot(g64 - r64, g64 - r64))
        ref2 += float(np.dot(r64, r64))
        g2 += float(np.dot(g64, g64))
        dot += float(np.dot(g64, r64))
    rel = math.sqrt(diff2 / ref2) if ref2 > 0 else 0.0
    cos = dot / math.sqrt(g2 * ref2) if g2 > 0 and ref2 > 0 else 1.0
    return {"rel_error": rel, "cosine": cos}
