"""A SIMD vector unit for the non-GEMM ops of a training step (elementwise, softmax, layernorm, optimizer...).

cycles = ceil(elements x ops_per_element / lanes): each lane retires one elementary op per cycle, fully pipelined
(a fused multiply-add is one op; exp, rsqrt and division run on a pipelined special-function unit at one per cycle).
The default ops per element are counted from the textbook formulas of each kind:

    elementwise  1   one add, multiply or activation per element
    reduction    1   one accumulate per element
    embedding    1   one gathered copy per element
    softmax      5   running max, subtract, exp, sum, multiply by the reciprocal of the sum
    layernorm    5   sum, subtract-mean and square-accumulate (2), multiply by rstd, affine FMA
    loss         6   softmax (5) + log of the target probability and gradient subtract
    optimizer    12  AdamW per parameter: m FMA (2), v FMA with g^2 (3), bias-correction scales (2), sqrt (1),
                     + eps (1), divide (1), weight decay FMA (1), update FMA (1)
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

DEFAULT_OPS_PER_ELEMENT: dict[str, float] = {
    "elementwise": 1.0, "reduction": 1.0, "embedding": 1.0, "softmax": 5.0, "layernorm": 5.0, "loss": 6.0,
    "optimizer": 12.0,
}


@dataclass(frozen=True)
class VectorUnit:
    """`lanes` elementary ops per cycle; `ops_per_element` by op kind (defaults above; a machine may override)."""

    lanes: int
    ops_per_element: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_OPS_PER_ELEMENT))

    def __post_init__(self) -> None:
        if not isinstance(self.lanes, int) or isinstance(self.lanes, bool) or self.lanes <= 0:
            raise ValueError(f"vector unit: lanes must be a positive integer, got {self.lanes!r}")
        for kind, ops in self.ops_per_element.items():
            if isinstance(ops, bool) or not isinstance(ops, int | float) or not (ops > 0 and math.isfinite(ops)):
                raise ValueError(f"vector unit: ops_per_element[{kind!r}] must be a positive number, got {ops!r}")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self.ops_per_element))

    def cycles(self, kind: str, elements: int) -> int:
        """Cycles to apply an op of `kind` to `elements` elements."""
        if kind not in self.ops_per_element:
            raise ValueError(f"unknown vector op kind {kind!r}; valid: {', '.join(self.kinds)}")
        try:
            count = operator.index(elements)
        except TypeError:
            raise ValueError(f"elements must be a non-negative integer, got {elements!r}") from None
        if count < 0:
            raise ValueError(f"elements must be a non-negative integer, got {elements!r}")
        return math.ceil(count * self.ops_per_element[kind] / self.lanes)

    def __hash__(self) -> int:  # frozen dataclass with a dict field: hash by content
        return hash((self.lanes, tuple(sorted(self.ops_per_element.items()))))
