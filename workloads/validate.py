"""Structural checks of a Trace: the rules the counting, roofline and engine rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workloads.trace import DSQ_POINTS, OP_KINDS, PHASES, ROLES

if TYPE_CHECKING:
    from workloads.trace import Trace

_PHASE_ORDER = {p: i for i, p in enumerate(PHASES)}
# may be read before written in a step (parameters and their copies, optimizer state, step inputs)
_SOURCE_ROLES = ("weight", "weight_copy", "optimizer_state", "activation")


def validate_trace(trace: Trace) -> None:
    """ValueError naming the first rule a trace breaks."""
    _check_sizes(trace)
    _check_tensors(trace)
    _check_ops(trace)
    _check_dataflow(trace)
    _check_optimizer(trace)


def _fail(msg: str) -> None:
    raise ValueError(f"invalid trace: {msg}")


def _check_sizes(trace: Trace) -> None:
    for key in ("batch", "seq_len"):
        value = getattr(trace, key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            _fail(f"{key} must be a positive integer, got {value!r}")
    if not trace.ops:
        _fail("no ops")


def _check_tensors(trace: Trace) -> None:
    for name, t in trace.tensors.items():
        if t.name != name:
            _fail(f"tensor key {name!r} holds tensor named {t.name!r}")
        if t.role not in ROLES:
            _fail(f"tensor {name!r} has role {t.role!r}; valid roles: {', '.join(ROLES)}")
        if t.dsq_point is not None and t.dsq_point not in DSQ_POINTS:
            _fail(f"tensor {name!r} has DSQ point {t.dsq_point!r}; valid: {', '.join(DSQ_POINTS)} or null")
        if not t.shape or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in t.shape):
            _fail(f"tensor {name!r} has shape {t.shape!r}; dimensions must be positive integers")
        if t.block_axis not in (-1, -2) or (t.block_axis == -2 and len(t.shape) < 2):
            _fail(f"tensor {name!r} has block_axis {t.block_axis!r}; valid: -1, or -2 for tensors of 2+ dimensions")
        if t.source is not None:
            src = trace.tensors.get(t.source)
            if src is None or src.shape != t.shape or src.source is not None:
                _fail(f"tensor {name!r} is a copy of {t.source!r}, which must be an original tensor of the same shape")
        if t.role == "weight_copy" and (t.source is None or trace.tensors[t.source].role != "weight"):
            _fail(f"weight copy {name!r} must name its master weight as its source")


def _check_ops(trace: Trace) -> None:
    last_phase = 0
    for op in trace.ops:
        where = f"op {op.name!r}"
        if op.kind not in OP_KINDS:
            _fail(f"{where} has kind {op.kind!r}; valid kinds: {', '.join(OP_KINDS)}")
        if op.phase not in PHASES:
            _fail(f"{where} has phase {op.phase!r}; valid phases: {', '.join(PHASES)}")
        if _PHASE_ORDER[op.phase] < last_phase:
            _fail(f"{where} in phase {op.phase!r} comes after a later phase (ops must be in program order)")
        last_phase = _PHASE_ORDER[op.phase]
        if not op.inputs or not op.outputs:
            _fail(f"{where} needs at least one input and one output")
        for o in (*op.inputs, *op.outputs):
            if o.tensor not in trace.tensors:
                _fail(f"{where} accesses unknown tensor {o.tensor!r}")
            if o.point is not None and o.point not in DSQ_POINTS:
                _fail(f"{where} accesses {o.tensor!r} at DSQ point {o.point!r}; valid: {', '.join(DSQ_POINTS)}")
        if op.macs < 0 or op.flops < 0:
            _fail(f"{where} has macs {op.macs} and flops {op.flops}; both must be non-negative")
        if op.kind in ("gemm", "bmm"):
            if op.gemm is None or op.gemm.macs != op.macs or len(op.inputs) < 2:
                _fail(f"{where} is a {op.kind} without a matching gemm shape and two operands")
            if min(op.gemm.batch, op.gemm.m, op.gemm.k, op.gemm.n) <= 0:
                _fail(f"{where} has a non-positive gemm dimension {op.gemm}")
        elif op.gemm is not None or op.macs:
            _fail(f"{where} of kind {op.kind!r} must not carry a gemm shape or MACs")


def _check_dataflow(trace: Trace) -> None:
    written: set[str] = set()
    stash_writes: dict[str, list[str]] = {}
    stash_reads: dict[str, list[str]] = {}
    for op in trace.ops:
        for o in op.inputs:
            t = trace.tensors[o.tensor]
            if o.tensor not in written and t.role not in _SOURCE_ROLES:
                _fail(f"op {op.name!r} reads {o.tensor!r} (role {t.role}) before any op writes it")
            if t.role == "stashed_activation":
                if op.phase != "backward":
                    _fail(f"stash {o.tensor!r} is read by {op.name!r} in phase {op.phase} (only backward reads)")
                stash_reads.setdefault(o.tensor, []).append(op.name)
        for o in op.outputs:
            t = trace.tensors[o.tensor]
            if t.role == "stashed_activation":
                if op.phase != "forward":
                    _fail(f"stash {o.tensor!r} is written by {op.name!r} in phase {op.phase} (only forward writes)")
                stash_writes.setdefault(o.tensor, []).append(op.name)
            elif t.role == "activation" and o.tensor in written:
                _fail(f"activation {o.tensor!r} is written twice (second by {op.name!r})")
            elif t.role in ("weight", "weight_copy") and op.phase != "optimizer":
                _fail(f"{t.role.replace('_', ' ')} {o.tensor!r} is written by {op.name!r} outside the optimizer")
            written.add(o.tensor)
    for name, t in trace.tensors.items():
        if t.role != "stashed_activation":
            continue
        if len(stash_writes.get(name, ())) != 1:
            _fail(f"stash {name!r} is written {len(stash_writes.get(name, ()))} times (must be exactly once)")
        if not stash_reads.get(name):
            _fail(f"stash {name!r} is never read in backward")


def _check_optimizer(trace: Trace) -> None:
    """Every weight has exactly one gradient tensor and exactly one optimizer op, which reads that gradient."""
    updates: dict[str, list[str]] = {}
    grad_of: dict[str, str] = {}
    for op in trace.ops:
        if op.kind != "optimizer":
            continue
        weights = [o.tensor for o in op.outputs if trace.tensors[o.tensor].role == "weight"]
        grads = [o.tensor for o in op.inputs if trace.tensors[o.tensor].role == "weight_grad"]
        if len(weights) != 1 or len(grads) != 1:
            _fail(f"optimizer op {op.name!r} must update one weight from one gradient")
        updates.setdefault(weights[0], []).append(op.name)
        if grads[0] in grad_of:
            _fail(f"gradient {grads[0]!r} is used for both {grad_of[grads[0]]!r} and {weights[0]!r}")
        grad_of[grads[0]] = weights[0]
    for name, t in trace.tensors.items():
        if t.role == "weight" and len(updates.get(name, ())) != 1:
            _fail(f"weight {name!r} has {len(updates.get(name, ()))} optimizer ops (must be exactly one)")
        if t.role == "weight_grad" and name not in grad_of:
            _fail(f"weight gradient {name!r} is not used by any optimizer op")
