"""The reference model's configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TransformerConfig:
    """Pre-LayerNorm Transformer. `n_encoder_layers=0` gives a decoder-only LM (no cross-attention)."""

    vocab_size: int
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 256
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    max_len: int = 64
    dropout: float = 0.0
    label_smoothing: float = 0.0
    activation: str = "relu"        # "relu" | "gelu" (tanh form)
    dtype: str = "float32"          # "float64" for gradient checks
    pad_id: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_heads", "d_ff", "max_len"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TransformerConfig.{name} must be positive, got {getattr(self, name)}")
        if self.n_encoder_layers < 0 or self.n_decoder_layers <= 0:
            raise ValueError("TransformerConfig needs n_encoder_layers >= 0 and n_decoder_layers > 0")
        if self.d_model % self.n_heads or self.d_model % 2:
            raise ValueError(f"d_model {self.d_model} must be even and divisible by n_heads {self.n_heads}")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.label_smoothing < 1.0):
            raise ValueError("dropout and label_smoothing must lie in [0, 1)")
        if self.activation not in ("relu", "gelu"):
            raise ValueError(f"unknown activation {self.activation!r}; choose relu or gelu")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"unknown dtype {self.dtype!r}; choose float32 or float64")

    @property
    def decoder_only(self) -> bool:
        return self.n_encoder_layers == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformerConfig:
        return cls(**d)
