"""NumPy reference Transformer with a hand-written backward pass, trained with real quantization at q0..q3."""

from .config import TransformerConfig
from .model import Transformer
from .quant import Quantizer
from .train import TrainingDiverged, TrainResult, train

__all__ = ["TransformerConfig", "Transformer", "Quantizer", "TrainResult", "TrainingDiverged", "train"]
