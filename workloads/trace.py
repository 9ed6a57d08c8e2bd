"""Training-step traces: tensors, the ops that read and write them, and the DSQ point of every access.

A trace is one training step in program order: forward, loss, backward, optimizer. Every operand of an op is one DRAM
access of the whole tensor; its `point` (q0..q3 or None) says which DSQ precision applies to that access. Tensors are
written by at most one op, except weight gradients that are accumulated (tied embeddings) and the parameters and
moments the optimizer updates in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

ROLES = ("weight", "weight_copy", "activation", "stashed_activation", "activation_grad", "weight_grad",
         "optimizer_state")
PHASES = ("forward", "loss", "backward", "optimizer")
OP_KINDS = ("gemm", "bmm", "elementwise", "softmax", "layernorm", "reduction", "embedding", "loss", "optimizer")
DSQ_POINTS = ("q0", "q1", "q2", "q3")


@dataclass(frozen=True)
class Tensor:
    """A named tensor as stored in DRAM.

    `dsq_point` is the point whose format it is stored at (None: by role, see PrecisionConfig); every access of the
    tensor moves bytes of that one format. `block_axis` is the axis (-1 or -2) that shared-exponent blocks run along
    in storage: the reduction axis of the GEMM that consumes it (-1 for everything else). `source` names the tensor
    this one is a copy of (a stash of an activation, a low-precision copy of a master weight): when a configuration
    stores both in the same format and blocking, the copy is the source itself and is never written
    (`sim.storage`).
    """

    name: str
    shape: tuple[int, ...]
    role: str
    dsq_point: str | None = None
    block_axis: int = -1
    source: str | None = None

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Operand:
    """One access of a tensor by an op, at the precision of DSQ point `point` (None: by the tensor's role).

    The access moves the whole tensor unless `elements` says it touches fewer (a gather of embedding rows).
    """

    tensor: str
    point: str | None = None
    elements: int | None = None


@dataclass(frozen=True)
class GemmShape:
    """C[batch, m, n] = A[batch, m, k] x B[batch, k, n]; batch is 1 for a plain GEMM."""

    batch: int
    m: int
    k: int
    n: int

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.k * self.n


@dataclass(frozen=True)
class Op:
    name: str
    kind: str
    phase: str
    layer: int | None
    inputs: tuple[Operand, ...]
    outputs: tuple[Operand, ...]
    macs: int
    flops: int
    gemm: GemmShape | None = None


@dataclass
class Trace:
    workload: str
    spec: dict[str, Any]
    batch: int
    seq_len: int
    tensors: dict[str, Tensor] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)

    # ---- summaries -------------------------------------------------------------------------------------------
    @property
    def param_count(self) -> int:
        return sum(t.elements for t in self.tensors.values() if t.role == "weight")

    @property
    def total_macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def total_flops(self) -> int:
        return sum(op.flops for op in self.ops)

    @property
    def tokens(self) -> int:
        """Tokens per step (per side for encoder-decoder models, whose source and target are both seq_len long)."""
        return self.batch * self.seq_len

    def summary(self) -> str:
        return (f"{self.workload}: batch {self.batch}, seq_len {self.seq_len}, {len(self.ops)} ops, "
                f"{len(self.tensors)} tensors, {self.param_count / 1e6:.2f}M params, {self.total_macs / 1e9:.2f} GMACs")

    def to_frame(self) -> pd.DataFrame:
        """One row per op: name, kind, phase, layer, macs, flops, input/output elements, gemm batch/m/k/n."""
        import pandas as pd

        rows = []
        for i, op in enumerate(self.ops):
            g = op.gemm
            rows.append({
                "index": i, "name": op.name, "kind": op.kind, "phase": op.phase, "layer": op.layer,
                "macs": op.macs, "flops": op.flops,
                "input_elements": sum(self.access_elements(o) for o in op.inputs),
                "output_elements": sum(self.access_elements(o) for o in op.outputs),
                "n_inputs": len(op.inputs), "n_outputs": len(op.outputs),
                "gemm_batch": g.batch if g else None, "gemm_m": g.m if g else None,
                "gemm_k": g.k if g else None, "gemm_n": g.n if g else None,
            })
        frame = pd.DataFrame(rows)
        for col in ("layer", "gemm_batch", "gemm_m", "gemm_k", "gemm_n"):
            frame[col] = frame[col].astype("Int64")
        return frame

    def access_elements(self, operand: Operand) -> int:
        """Elements one access moves: the whole tensor, or the part a gather touches."""
        whole = self.tensors[operand.tensor].elements
        return whole if operand.elements is None else min(operand.elements, whole)

    # ---- dependencies ----------------------------------------------------------------------------------------
    def producers(self) -> list[tuple[int, ...]]:
        """For each op index, the indices of the ops that last wrote its inputs (true data dependencies)."""
        last_writer: dict[str, int] = {}
        result = []
        for i, op in enumerate(self.ops):
            deps = {last_writer[o.tensor] for o in op.inputs if o.tensor in last_writer}
            result.append(tuple(sorted(deps)))
            for o in op.outputs:
                last_writer[o.tensor] = i
        return result

    def dependencies(self) -> list[tuple[int, ...]]:
        """Producers plus the ordering hazards of in-place writes: an op that overwrites a tensor waits for the
        previous writer (WAW) and for every reader since that write (WAR)."""
        last_writer: dict[str, int] = {}
        readers: dict[str, list[int]] = {}
        result = []
        for i, op in enumerate(self.ops):
            deps = {last_writer[o.tensor] for o in op.inputs if o.tensor in last_writer}
            for o in op.outputs:
                if o.tensor in last_writer:
                    deps.add(last_writer[o.tensor])
                deps.update(r for r in readers.get(o.tensor, ()) if r != i)
            deps.discard(i)
            result.append(tuple(sorted(deps)))
            for o in op.inputs:
                readers.setdefault(o.tensor, []).append(i)
            for o in op.outputs:
                last_writer[o.tensor] = i
                readers[o.tensor] = []
        return result

    # ---- checks ----------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check the structural rules every consumer relies on; ValueError naming the first violation."""
        from workloads.validate import validate_trace

        validate_trace(self)

    # ---- files -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from workloads.trace_io import trace_to_dict

        return trace_to_dict(self)

    def save(self, path: str) -> None:
        """Write JSON atomically (temporary file, then rename)."""
        from workloads.trace_io import save_trace

        save_trace(self, path)

    @classmethod
    def load(cls, path: str) -> Trace:
        from workloads.trace_io import load_trace

        return load_trace(path)
