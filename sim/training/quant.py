"""Where a `PrecisionConfig` acts on the reference model: one small object the layers call at each DSQ point.

Quantization follows docs/training.md: every GEMM operand is quantized in blocks along that GEMM's reduction axis K
(one bfp/mx shared exponent per block of K), forward operands at q0, backward operands at q2, stashes at q1 (blocked
along the axis their backward GEMM reduces over, or along the last axis when only elementwise ops read them);
gradients are written at q3 blocked along their last axis, as stored, and a backward GEMM re-quantizes the stored q3
value to q2 along its own K. Every GEMM of the model runs through `Quantizer.gemm`, so a test can intercept all of
them (`_matmul`). Formats without blocks (fixed: one scale per tensor; float: per element) do not depend on the axis.
A stochastic-rounding format (`mxint8_sr`, ...) draws from the Quantizer's `rng`: the model's own rounding stream in
training (checkpointed with the run), a fixed-seed one elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.formats import get_format, quantize

_ROLES = {"q0": "activation", "q1": "stashed_activation", "q2": "activation_grad", "q3": "activation_grad"}


def _matmul(a: np.ndarray, b: np.ndarray, a_point: str, b_point: str) -> np.ndarray:
    """The one place the reference model multiplies two GEMM operands (a test replaces it to inspect them)."""
    return a @ b


class Quantizer:
    """Applies one precision configuration; every method is the identity for fp32 (or `precision=None`)."""

    def __init__(self, precision: Any = None, training: bool = True,
                 rng: np.random.Generator | Sequence[int] | int | None = None) -> None:
        self.precision = precision
        self.training = training
        # random bits of stochastic-rounding formats (`_sr`): a Generator, or a seed made into one on first use
        # (None: seed 0), so a caller without such formats pays nothing
        self.rng = rng
        self._fmt: dict[str, Any] = {}
        if precision is None:
            return
        for point, role in _ROLES.items():
            self._fmt[point] = _non_fp32(precision.format_at(point, role))
        self._fmt["act"] = _non_fp32(precision.format_at(None, "activation"))
        self._fmt["master"] = _non_fp32(get_format(precision.master))
        self._fmt["optimizer"] = _non_fp32(get_format(precision.optimizer))

    def apply(self, key: str, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """x at the format of `key` (a DSQ point, "act", "master" or "optimizer"), blocks along `axis`."""
        fmt = self._fmt.get(key)
        if fmt is None:
            return x
        if fmt.rounding == "stochastic" and not isinstance(self.rng, np.random.Generator):
            self.rng = np.random.default_rng(0 if self.rng is None else self.rng)
        return quantize(x, fmt, axis=axis, rng=self.rng).astype(x.dtype, copy=False)

    def apply_parts(self, key: str, x: np.ndarray, part_axis: int, axes: Sequence[int]) -> np.ndarray:
        """x holds len(axes) parts along `part_axis` (Q, K, V of one fused projection); part i is blocked along
        axes[i] (an axis of x). A format without blocks quantizes x at once: the fused tensor keeps the one
        fixed-point scale it has as stored."""
        fmt = self._fmt.get(key)
        if fmt is None:
            return x
        if fmt.block_size is None:
            return self.apply(key, x)
        out = np.empty_like(x)
        start = 0
        while start < len(axes):  # consecutive parts blocked along the same axis: one call
            stop = start + 1
            while stop < len(axes) and axes[stop] == axes[start]:
                stop += 1
            index = (slice(None),) * (part_axis % x.ndim) + (slice(start, stop),)
            out[index] = self.apply(key, x[index], axes[start])
            start = stop
        return out

    def gemm(self, a: np.ndarray, b: np.ndarray, a_point: str, b_point: str,
             ready: tuple[bool, bool] = (False, False)) -> np.ndarray:
        """a @ b with each operand at its DSQ point, blocked along K: a's last axis, b's second to last. A q1
        operand is a stash (quantized along K when it was written) and an operand flagged in `ready` was quantized
        along K by the caller; both are used as they are."""
        if a_point != "q1" and not ready[0]:
            a = self.apply(a_point, a, -1)
        if b_point != "q1" and not ready[1]:
            b = self.apply(b_point, b, -2)
        return _matmul(a, b, a_point, b_point)

    def q0(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """Forward GEMM operand, blocked along that GEMM's K."""
        return self.apply("q0", x, axis)

    def stash(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """q1: the copy of an activation kept for the backward pass, blocked along its backward consumer's K."""
        return self.apply("q1", x, axis)

    def q2(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        """Backward GEMM operand (dy, W), blocked along that GEMM's K."""
        return self.apply("q2", x, axis)

    def q3(self, x: np.ndarray) -> np.ndarray:
        """Gradient written back (dx, dW), blocked along its last axis as stored."""
        return self.apply("q3", x)

    def act(self, x: np.ndarray) -> np.ndarray:
        """Forward activation that is no GEMM operand (e.g. a GEMM output read by GELU)."""
        return self.apply("act", x)

    def master(self, x: np.ndarray) -> np.ndarray:
        return self.apply("master", x)

    def optimizer(self, x: np.ndarray) -> np.ndarray:
        return self.apply("optimizer", x)


def _non_fp32(fmt: Any) -> Any:
    return None if fmt.name == "fp32" else fmt
