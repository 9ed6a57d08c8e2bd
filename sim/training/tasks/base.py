"""What a training task offers the training loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ..config import TransformerConfig
from ..optim import AdamConfig


class Task(ABC):
    """A task samples training batches from a generator it is handed (so checkpoints capture the data stream) and
    evaluates a model on fixed splits. `metric` names the headline figure ("bleu" or "bpc")."""

    name: str = ""
    metric: str = ""
    batch_size: int = 32
    default_steps: int = 1000
    eval_every: int = 100

    @abstractmethod
    def model_config(self) -> TransformerConfig: ...

    def adam_config(self) -> AdamConfig:
        return AdamConfig()

    @abstractmethod
    def sample_batch(self, rng: np.random.Generator) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def evaluate(self, model: Any, split: str = "valid", precision: Any = None) -> dict[str, float]:
        """{"valid_loss" or "test_loss": ..., and the task's metrics}; `precision` None evaluates in fp32."""
