"""A precision configuration: the number format at each DSQ point (q0..q3) and for the other tensors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sim.formats import NumberFormat, get_format

__all__ = ["DSQ_POINTS", "PrecisionConfig", "ROLE_FIELDS"]

DSQ_POINTS = ("q0", "q1", "q2", "q3")
# Tensors accessed outside a DSQ point take the format of this field, by role (docs/architecture.md).
ROLE_FIELDS = {
    "weight": "master",
    "weight_copy": "master",  # a copy always carries its point (q0 or q2); without one it would be the master
    "optimizer_state": "optimizer",
    "weight_grad": "q3",
    "activation_grad": "q3",
    "activation": "activation",
    "stashed_activation": "activation",
}


@dataclass(frozen=True)
class PrecisionConfig:
    """Format names at q0 (forward GEMM operands), q1 (stash), q2 (backward GEMM operands), q3 (gradients written),
    plus ``activation`` (the stored format of activations outside q0..q3: GEMM outputs read by softmax, GELU or a
    residual add, the residual stream), ``master`` weights and ``optimizer`` moments.

    ``activation`` is a field like the others: policy files and presets give it, labels show it. Left out
    (``None``), it is q0's format, the convention of a configuration that names only q0..q3.

    Names are canonicalised on construction (``"fp8"`` -> ``"fp8_e4m3"``, ``activation=None`` -> q0), so equal
    configurations compare and hash equal; unknown names raise ValueError.
    """

    q0: str
    q1: str
    q2: str
    q3: str
    activation: str | None = None
    master: str = "fp32"
    optimizer: str = "fp32"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "activation":
                value = self.q0
            try:
                canonical = get_format(value).name
            except ValueError as exc:
                raise ValueError(f"precision config {f.name}: {exc}") from None
            object.__setattr__(self, f.name, canonical)

    @classmethod
    def uniform(cls, fmt: str | NumberFormat) -> PrecisionConfig:
        """The same format at q0..q3 and for activations (master weights and optimizer stay fp32)."""
        name = get_format(fmt).name
        return cls(name, name, name, name, activation=name)

    @property
    def points(self) -> tuple[str, str, str, str]:
        return (self.q0, self.q1, self.q2, self.q3)

    def format_at(self, point: str | None, role: str) -> NumberFormat:
        """The format of an access at DSQ ``point``; with no point, the format of tensors of ``role``."""
        if point is not None:
            if point not in DSQ_POINTS:
                raise ValueError(f"unknown DSQ point {point!r}; valid: {', '.join(DSQ_POINTS)} or None")
            return get_format(getattr(self, point))
        if role not in ROLE_FIELDS:
            raise ValueError(f"unknown tensor role {role!r}; valid: {', '.join(ROLE_FIELDS)}")
        return get_format(getattr(self, ROLE_FIELDS[role]))

    @property
    def label(self) -> str:
        """Short name: "bf16" when uniform, else "q0=bfp8/q1=bfp4/q2=bfp8/q3=bfp16/act=bfp8" (+ non-fp32 master and
        optimizer)."""
        uniform = len(set(self.points)) == 1 and self.activation == self.q0
        parts = [self.q0] if uniform else [f"{p}={v}" for p, v in zip(DSQ_POINTS, self.points, strict=True)]
        if not uniform:
            parts.append(f"act={self.activation}")
        if self.master != "fp32":
            parts.append(f"master={self.master}")
        if self.optimizer != "fp32":
            parts.append(f"opt={self.optimizer}")
        return "/".join(parts)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PrecisionConfig:
        """Inverse of to_dict; ValueError naming missing or unknown keys."""
        if not isinstance(d, dict):
            raise ValueError(f"a precision config must be a table of q0..q3 formats, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown precision config key(s) {', '.join(unknown)}; valid: {', '.join(names)}")
        missing = [p for p in DSQ_POINTS if p not in d]
        if missing:
            raise ValueError(f"precision config is missing {', '.join(missing)}")
        return cls(**d)
