"""Workload models: Transformer specs and training-step traces. Knows nothing of `sim` or `hwmodels`."""

from workloads.api import build_trace, resolve_workload
from workloads.capture import capture_trace
from workloads.hf_config import spec_from_hf_config
from workloads.spec import ModelSpec, describe_spec, get_spec, list_specs
from workloads.trace import DSQ_POINTS, OP_KINDS, PHASES, ROLES, GemmShape, Op, Operand, Tensor, Trace

__all__ = [
    "DSQ_POINTS", "OP_KINDS", "PHASES", "ROLES", "GemmShape", "ModelSpec", "Op", "Operand", "Tensor", "Trace",
    "build_trace", "capture_trace", "describe_spec", "get_spec", "list_specs", "resolve_workload",
    "spec_from_hf_config",
]
