"""Where a `PrecisionConfig` acts on the reference model: one small object the layers call at each DSQ point.

Quantization follows docs/architecture.md ("Access semantics"): forward GEMM operands at q0, a stash at q1 when it is
written (the backward pass reads that quantized copy), backward GEMM operands dy and W at q2, gradients written by
backward ops at q3, other forward activations at `activation`. Every tensor is quantized as it is stored: blocks run
along the last (contiguous) axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ROLES = {"q0": "activation", "q1": "stashed_activation", "q2": "activation_grad", "q3": "activation_grad"}


class Quantizer:
    """Applies one precision configuration; every method is the identity for fp32 (or `precision=None`)."""

    def __init__(self, precision: Any = None, training: bool = True) -> None:
        self.precision = precision
        self.training = training
        self._fmt: dict[str, Any] = {}
        if precision is None:
            return
        from sim.formats import get_format

        for point, role in _ROLES.items():
            self._fmt[point] = _non_fp32(precision.format_at(point, role))
        self._fmt["act"] = _non_fp32(precision.format_at(None, "activation"))
        self._fmt["master"] = _non_fp32(get_format(precision.master))
        self._fmt["optimizer"] = _non_fp32(get_format(precision.optimizer))

    def _apply(self, key: str, x: np.ndarray) -> np.ndarray:
        fmt = self._fmt.get(key)
        if fmt is None:
            return x
        from sim.formats import quantize

        return quantize(x, fmt, axis=-1).astype(x.dtype, copy=False)

    def q0(self, x: np.ndarray) -> np.ndarray:
        """Forward GEMM operand."""
        return self._apply("q0", x)

    def stash(self, x: np.ndarray) -> np.ndarray:
        """q1: the copy of an activation kept for the backward pass."""
        return self._apply("q1", x)

    def q2(self, x: np.ndarray) -> np.ndarray:
        """Backward GEMM operand (dy, W)."""
        return self._apply("q2", x)

    def q3(self, x: np.ndarray) -> np.ndarray:
        """Gradient written back (dx, dW)."""
        return self._apply("q3", x)

    def act(self, x: np.ndarray) -> np.ndarray:
        """Forward activation that is no GEMM operand (e.g. a GEMM output read by GELU)."""
        return self._apply("act", x)

    def master(self, x: np.ndarray) -> np.ndarray:
        return self._apply("master", x)

    def optimizer(self, x: np.ndarray) -> np.ndarray:
        return self._apply("optimizer", x)


def _non_fp32(fmt: Any) -> Any:
    return None if fmt.name == "fp32" else fmt
