"""Turn a recorded step (capture_record) into a Trace with the builder's conventions (workloads/builder.py):

- forward GEMM operands A and B at q0, a bias or accumulated input at point None;
- backward GEMM operands at q2, except stashes (q1); a partial gradient accumulated into at q3;
- a stash (role stashed_activation, point q1) for every forward value autograd saved that backward reads, written
  as an extra output by the forward op that produced the value, read in place of the value by backward ops;
- everything written in backward is a gradient at q3 (weight_grad for the parameters' final gradients);
- one Adam op per trained parameter, reading the weight, its gradient (q3) and its two moments;
- activations read by a forward GEMM are stored at q0 (their writes and other reads use q0 too);
- GEMMs read weights through copies `W@q0` / `W@q2` (role weight_copy, source W) that W's Adam op writes;
- storage metadata for sim.storage: a stash names its value as `source`; a tensor's `block_axis` is the axis of its
  storage that its GEMM consumer reduces over (from the operand's strides at capture: the first GEMM that reads it
  decides; everything else -1).
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

    axes: dict[str, int] = {}                      # trace tensor -> block axis (first GEMM reader decides)
    copies: dict[str, dict[str, int]] = {}         # weight -> {copy name: block axis}

    def gemm_read(n: str, i: int, point: str, raw) -> str:
        """The tensor a GEMM reads as operand i: a weight through its copy at `point`."""
        axis = raw.gemm_axes[i] if raw.gemm_axes else -1
        if roles.get(n) == "weight":
            known = copies.setdefault(n, {})
            name = next((c for c, a in known.items() if c.startswith(f"{n}@{point}") and a == axis), None)
            if name is None:
                name = f"{n}@{point}" + ("" if f"{n}@{point}" not in known else f"#{len(known)}")
                known[name] = axis
            return name
        axes.setdefault(n, axis)
        return n

    for raw in ops:
        if raw.phase == "forward":
            inputs = [access(gemm_read(n, i, "q0", raw) if raw.gemm and i < 2 else n,
                             "q0" if raw.gemm and i < 2 else None, e) for i, (n, e) in enumerate(raw.inputs)]
            outputs = [access(n, None) for n in raw.outputs]
            outputs += [access(f"{n}.stash", "q1") for n in raw.outputs if n in stashes]
        else:
            inputs = []
            for i, (n, e) in enumerate(raw.inputs):
                if n in stashes:
                    inputs.append(access(gemm_read(f"{n}.stash", i, "q1", raw) if raw.gemm and i < 2
                                         else f"{n}.stash", "q1", e))
                elif raw.gemm:
                    inputs.append(access(gemm_read(n, i, "q2", raw) if i < 2 else n, "q2" if i < 2 else "q3", e))
                else:
                    inputs.append(access(n, "q3" if roles[n] in _GRAD_ROLES else None, e))
            outputs = [access(n, "q3") for n in raw.outputs]
        macs = raw.gemm.macs if raw.gemm else 0
        trace.ops.append(Op(raw.name, raw.kind, raw.phase, raw.layer, tuple(inputs), tuple(outputs), macs,
                            raw.flops + 2 * macs, raw.gemm))
    copy_of = {c: (w, a) for w, known in copies.items() for c, a in known.items()}
    for name in used:
        if name.endswith(".stash") and name[:-len(".stash")] in stashes:
            value = name[:-len(".stash")]
            trace.tensors[name] = Tensor(name, tensors[value].shape, "stashed_activation", "q1", axes.get(name, -1),
                                         source=value)
        elif name in copy_of:
            w, axis = copy_of[name]
            point = name.split("@", 1)[1][:2]
            trace.tensors[name] = Tensor(name, tensors[w].shape, "weight_copy", point, axis, source=w)
        else:
            axis = axes.get(name, -1) if len(tensors[name].shape) >= 2 else -1
            trace.tensors[name] = Tensor(name, tensors[name].shape, roles[name], block_axis=axis)
    for w in copies:  # a weight only GEMMs read still has its master
        trace.tensors.setdefault(w, Tensor(w, tensors[w].shape, "weight"))
    _optimizer(trace, weight_grads, copies)
    _mark_q0(trace)
    return trace


def _stashes(tensors: dict[str, RawTensor], ops: list[RawOp], saved: list[str]) -> set[str]:
    """Saved forward values that a forward op produced and a backward op reads. Parameters, buffers and step inputs
    are read where they live (nothing is copied); a saved value no backward op reads is not kept."""
    read_in_backward = {n for op in ops if op.phase == "backward" for n, _ in op.inputs}
    produced_in_forward = {n for op in ops if op.phase == "forward" for n in op.outputs}
    return {n for n in saved if n in produced_in_forward and n in read_in_backward
            and tensors[n].role == "activation"}


def _optimizer(trace: Trace, weight_grads: dict[str, str], copies: dict[str, dict[str, int]]) -> None:
    """One Adam op per parameter: reads w, its gradient (q3), m and v; writes w, m, v and w's GEMM copies."""
    for w, g in weight_grads.items():
        shape = trace.tensors[g].shape if w not in trace.tensors else trace.tensors[w].shape
        trace.tensors.setdefault(w, Tensor(w, shape, "weight"))
        m = trace.tensors[f"{w}.adam_m"] = Tensor(f"{w}.adam_m", shape, "optimizer_state")
        v = trace.tensors[f"{w}.adam_v"] = Tensor(f"{w}.adam_v", shape, "optimizer_state")
        flops = FLOPS_PER_ELEMENT["adam"][0] * trace.tensors[w].elements
        trace.ops.append(Op(f"{w}.adam", "optimizer", "optimizer", None,
                            (Operand(w), Operand(g, "q3"), Operand(m.name), Operand(v.name)),
                            (Operand(w), Operand(m.name), Operand(v.name),
                             *(Operand(c, trace.tensors[c].dsq_point) for c in copies.get(w, ()))), 0, flops))


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
