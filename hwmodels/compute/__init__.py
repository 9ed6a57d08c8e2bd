"""Compute models: systolic arrays (fold-level, SCALE-Sim-exact timing), precision-scalable MACs, a vector unit,
and a throughput model for GPU-like machines."""

from hwmodels.compute.buffer import generation_capacity_words, read_misses
from hwmodels.compute.precision import PrecisionLaw
from hwmodels.compute.systolic import DATAFLOWS, FoldPlan, GemmResult, fold_plan, systolic_gemm
from hwmodels.compute.throughput import PeakEntry, ThroughputUnit
from hwmodels.compute.vector import DEFAULT_OPS_PER_ELEMENT, VectorUnit

__all__ = [
    "DATAFLOWS", "DEFAULT_OPS_PER_ELEMENT", "FoldPlan", "GemmResult", "PeakEntry", "PrecisionLaw", "ThroughputUnit",
    "VectorUnit", "fold_plan", "generation_capacity_words", "read_misses", "systolic_gemm",
]
