"""Counting: MACs, arithmetic bit-operations and minimal DRAM traffic of one training step under a precision config.

Traffic model (minimal traffic, docs/counting.md): the step as `sim.storage.resolve` stores it under the
configuration. Every tensor has one stored format and every access of it moves that format's bytes; each operand of
an op is one DRAM access of the tensor (the whole tensor, or the rows a gather touches:
`trace.access_elements(operand)`), so a tensor is written once by its producer and read once by each consumer. A
copy that a configuration stores exactly as its source (a stash, a weight copy) is the source: no write. A format's
`bits_per_element` includes its shared-exponent overhead (bfp4 with 16-element blocks and an 8-bit exponent stores 4.5
bits per element); each access is rounded up to whole bytes, as the engine counts it.
Arithmetic cost: each MAC of a GEMM costs `mult_bits(A) x mult_bits(B)` bit-operations at the operands' *compute*
formats (their DSQ points: an operand stored at q3 and converted on chip to q2 multiplies at q2's width); non-GEMM
ops do no MACs and cost no bit-operations here (their work is `flops`).
In `Counts.accesses`, `tensor` is the stored tensor, `fmt` its stored format, `point` the DSQ point of the access
(the precision the op works at; "other" outside q0..q3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sim.precision import DSQ_POINTS, PrecisionConfig
from sim.storage import Storage, compute_format, resolve

# Key used in `bytes_by_point` for accesses outside q0..q3 (master weights, optimizer state, other activations).
OTHER_POINT = "other"
GEMM_KINDS = ("gemm", "bmm")


@dataclass(frozen=True)
class Access:
    """One DRAM access of a whole tensor by an op."""

    op_index: int
    tensor: str
    role: str
    point: str | None
    direction: str  # "read" | "write"
    fmt: str
    elements: int
    bytes: int


@dataclass
class Counts:
    """Totals for one training step; `ops` has one row per op, `accesses` one row per tensor access (its `point`
    column says "other" for accesses outside q0..q3)."""

    config_label: str
    macs: int
    flops: int
    arith_bitops: int
    dram_bytes: int
    read_bytes: int
    write_bytes: int
    bytes_by_role: dict[str, int]
    bytes_by_point: dict[str, int]
    ops: pd.DataFrame = field(repr=False)
    accesses: pd.DataFrame = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """The scalar fields, JSON-ready."""
        return {
            "config": self.config_label, "macs": self.macs, "flops": self.flops, "arith_bitops": self.arith_bitops,
            "dram_bytes": self.dram_bytes, "read_bytes": self.read_bytes, "write_bytes": self.write_bytes,
            "bytes_by_role": dict(self.bytes_by_role), "bytes_by_point": dict(self.bytes_by_point),
        }


def access_bytes(elements: int, fmt) -> int:
    """Whole bytes of one access: the format's packed size (shared exponents included), rounded up, as the engine
    (sim.engine.plan.access_bytes) counts it, so roofline and engine traffic agree op by op."""
    return math.ceil(round(fmt.storage_bytes(int(elements)), 6))


def _accesses(storage: Storage) -> list[Access]:
    out: list[Access] = []
    trace = storage.trace
    for i, op in enumerate(trace.ops):
        for direction, operands in (("read", op.inputs), ("write", op.outputs)):
            for operand in operands:
                tensor = trace.tensors[operand.tensor]
                fmt = storage.formats[tensor.name]
                n = int(trace.access_elements(operand))
                out.append(Access(i, tensor.name, tensor.role, operand.point, direction, fmt.name, n,
                                  access_bytes(n, fmt)))
    return out


def gemm_operand_bits(trace, op, config: PrecisionConfig) -> tuple[int, int]:
    """Multiplier widths of a GEMM's operands A = inputs[0] and B = inputs[1], at their compute formats."""
    a, b = op.inputs[0], op.inputs[1]
    fa = compute_format(a, trace.tensors[a.tensor], config)
    fb = compute_format(b, trace.tensors[b.tensor], config)
    return int(fa.mult_bits), int(fb.mult_bits)


def count(trace, config: PrecisionConfig, storage: Storage | None = None) -> Counts:
    """MACs, bit-operations and minimal DRAM traffic of one step of `trace` under `config` (as stored by
    `sim.storage.resolve(trace, config)`, which may be passed in when already computed)."""
    storage = storage if storage is not None else resolve(trace, config)
    trace = storage.trace
    accesses = _accesses(storage)
    acc = pd.DataFrame([a.__dict__ for a in accesses], columns=list(Access.__dataclass_fields__))
    acc["point"] = [p if isinstance(p, str) else OTHER_POINT for p in acc["point"]]  # None arrives as NaN

    rows = []
    for i, op in enumerate(trace.ops):
        bits_a = bits_b = 0
        if op.kind in GEMM_KINDS and op.macs > 0:
            bits_a, bits_b = gemm_operand_bits(trace, op, config)
        rows.append({
            "op_index": i, "name": op.name, "kind": op.kind, "phase": op.phase, "layer": op.layer,
            "macs": int(op.macs), "flops": int(op.flops), "bits_a": bits_a, "bits_b": bits_b,
            "arith_bitops": int(op.macs) * bits_a * bits_b,
        })
    ops = pd.DataFrame(rows, columns=["op_index", "name", "kind", "phase", "layer", "macs", "flops",
                                      "bits_a", "bits_b", "arith_bitops"])
    ops["layer"] = ops["layer"].astype("Int64")  # None for ops outside a layer (embedding, loss, optimizer)
    n_ops = len(ops)
    by_dir = acc.pivot_table(index="op_index", columns="direction", values="bytes", aggfunc="sum", fill_value=0)
    ops["read_bytes"] = by_dir.get("read", pd.Series(dtype="int64")).reindex(range(n_ops), fill_value=0).to_numpy()
    ops["write_bytes"] = by_dir.get("write", pd.Series(dtype="int64")).reindex(range(n_ops), fill_value=0).to_numpy()
    ops["dram_bytes"] = ops["read_bytes"] + ops["write_bytes"]
    by_pt = acc.pivot_table(index="op_index", columns="point", values="bytes", aggfunc="sum", fill_value=0)
    for p in (*DSQ_POINTS, OTHER_POINT):
        col = by_pt[p] if p in by_pt.columns else pd.Series(dtype="int64")
        ops[f"bytes_{p}"] = col.reindex(range(n_ops), fill_value=0).to_numpy().astype("int64")

    # Totals are exact Python integers, summed from the access and op records (no fixed-width overflow).
    by_role: dict[str, int] = {}
    by_point = dict.fromkeys((*DSQ_POINTS, OTHER_POINT), 0)
    read = write = 0
    for a in accesses:
        by_role[a.role] = by_role.get(a.role, 0) + a.bytes
        by_point[a.point or OTHER_POINT] += a.bytes
        if a.direction == "read":
            read += a.bytes
        else:
            write += a.bytes
    return Counts(
        config_label=config.label,
        macs=sum(r["macs"] for r in rows),
        flops=sum(r["flops"] for r in rows),
        arith_bitops=sum(r["arith_bitops"] for r in rows),
        dram_bytes=read + write,
        read_bytes=read,
        write_bytes=write,
        bytes_by_role=dict(sorted(by_role.items())),
        bytes_by_point=by_point,
        ops=ops,
        accesses=acc,
    )
