"""dsqsim: cycle-level hardware and roofline simulator for Dynamic Stashing Quantization in Transformer training."""

__version__ = "0.1.0"
