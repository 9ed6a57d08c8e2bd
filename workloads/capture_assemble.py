"""Turn a recorded step (capture_record) into a Trace with the builder's conventions (workloads/builder.py):

- forward GEMM operands A and B at q0, a bias or accumulated input at point None;
- backward GEMM operands at q2, except stashes (q1); a partial gradient accumulated into at q3;
- a stash (role stashed_activation, point q1) for every forward value autograd saved that backward reads, written
  as an extra output by the forward op that produced the value, read in place of the value by backward ops;
- everything written in backward is a gradient at q3 (weight_grad for the parameters' final gradients);
- one Adam op per trained parameter, reading the weight, its gradient (q3) and its two moments;
- activations read by a forward GEMM are stored at q0 (their writes and other reads use q0 too).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from workloads.builder import FLOPS_PER_ELEMENT
from workloads.trace import Op, Operand, Tensor, Trace

if TYPE_CHECKING:
    from workloads.capture_record import RawOp, RawTensor

_GRAD_ROLES = ("activation_grad", "weight_grad")


def assemble(workload: str, spec: dict[str, Any], batch: int, seq_len: int, tensors: dict[str, RawTensor],
             ops: list[RawOp], saved: list[str], weight_grads: dict[str, str]) -> Trace:
    """`weight_grads`: parameter tensor -> the tensor holding its final gradient (each written in backward)."""
    roles = {name: t.role for name, t in tensors.items()}
    for g in weight_grads.values():
        roles[g] = "weight_grad"
    stashes = _stashes(tensors, ops, saved)
    trace = Trace(workload=workload, spec=spec, batch=batch, seq_len=seq_len)
    used: dict[str, None] = {}

    def access(name: str, point: str | None, elements: int | None = None) -> Operand:
        used.setdefault(name, None)
        return Operand(name, point, elements)

    for raw in ops:
        if raw.phase == "forward":
            inputs = [access(n, "q0" if raw.gemm and i < 2 else None, e) for i, (n, e) in enumerate(raw.inputs)]
            outputs = [access(n, None) for n in raw.outputs]
            outputs += [access(f"{n}.stash", "q1") for n in raw.outputs if n in stashes]
        else:
            inputs = []
            for i, (n, e) in enumerate(raw.inputs):
                if n in stashes:
                    inputs.append(access(f"{n}.stash", "q1", e))
                elif raw.gemm:
                    inputs.append(access(n, "q2" if i < 2 else "q3", e))
                else:
                    inputs.append(access(n, "q3" if roles[n] in _GRAD_ROLES else None, e))
            outputs = [access(n, "q3") for n in raw.outputs]
        macs = raw.gemm.macs if raw.gemm else 0
        trace.ops.append(Op(raw.name, raw.kind, raw.phase, raw.layer, tuple(inputs), tuple(outputs), macs,
                            raw.flops + 2 * macs, raw.gemm))
    for name in used:
        if name.endswith(".stash") and name[:-len(".stash")] in stashes:
            trace.tensors[name] = Tensor(name, tensors[name[:-len(".stash")]].shape, "stashed_activation", "q1")
        else:
            trace.tensors[name] = Tensor(name, tensors[name].shape, roles[name])
    _optimizer(trace, weight_grads)
    _mark_q0(trace)
    return trace


def _stashes(tensors: dict[str, RawTensor], ops: list[RawOp], saved: list[str]) -> set[str]:
    """Saved forward values that a forward op produced and a backward op reads. Parameters, buffers and step inputs
    are read where they live (nothing is copied); a saved value no backward op reads is not kept."""
    read_in_backward = {n for op in ops if op.phase == "backward" for n, _ in op.inputs}
    produced_in_forward = {n for op in ops if op.phase == "forward" for n in op.outputs}
    return {n for n in saved if n in produced_in_forward and n in read_in_backward
            and tensors[n].role == "activation"}


def _optimizer(trace: Trace, weight_grads: dict[str, str]) -> None:
    """One Adam op per parameter: reads w, its gradient (q3), m and v; writes w, m and v."""
    for w, g in weight_grads.items():
        shape = trace.tensors[g].shape if w not in trace.tensors else trace.tensors[w].shape
        trace.tensors.setdefault(w, Tensor(w, shape, "weight"))
        m = trace.tensors[f"{w}.adam_m"] = Tensor(f"{w}.adam_m", shape, "optimizer_state")
        v = trace.tensors[f"{w}.adam_v"] = Tensor(f"{w}.adam_v", shape, "optimizer_state")
        flops = FLOPS_PER_ELEMENT["adam"][0] * trace.tensors[w].elements
        trace.ops.append(Op(f"{w}.adam", "optimizer", "optimizer", None,
                            (Operand(w), Operand(g, "q3"), Operand(m.name), Operand(v.name)),
                            (Operand(w), Operand(m.name), Operand(v.name)), 0, flops))


def _mark_q0(trace: Trace) -> None:
    """Activations that feed a forward GEMM are stored at q0 (as workloads.builder does)."""
    q0 = {o.tensor for op in trace.ops if op.phase == "forward" and op.gemm is not None for o in op.inputs[:2]
          if trace.tensors[o.tensor].role == "activation"}
    for name in q0:
        trace.tensors[name] = replace(trace.tensors[name], dsq_point="q0")

    def fix(operands: tuple[Operand, ...]) -> tuple[Operand, ...]:
        return tuple(replace(o, point="q0") if o.point is None and o.tensor in q0 else o for o in operands)

    trace.ops = [replace(op, inputs=fix(op.inputs), outputs=fix(op.outputs))
                 if any(o.tensor in q0 for o in (*op.inputs, *op.outputs)) else op for op in trace.ops]
