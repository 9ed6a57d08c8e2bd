"""Counting: MACs, arithmetic bit-operations and minimal DRAM traffic of one training step under a precision config.

Traffic model (minimal traffic): every operand of an op is one DRAM access of the tensor (the whole tensor, or the rows
a gather touches: `trace.access_elements(operand)`), so a tensor is written
once by its producer and read once by each consumer, at `config.format_at(operand.point, tensor.role)`. A format's
`bits_per_element` already includes its shared-exponent overhead (bfp4 with 16-element blocks and an 8-bit exponent
stores 4.5 bits per element). Arithmetic cost: each MAC of a GEMM costs `mult_bits(A) x mult_bits(B)` bit-operations
(fixed16 x fixed16 = 256); non-GEMM ops do no MACs and cost no bit-operations here (their work is `flops`).
Each access is rounded up to whole bytes, as the engine counts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sim.precision import DSQ_POINTS, PrecisionConfig

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


def _accesses(trace, config: PrecisionConfig) -> list[Access]:
    out: list[Access] = []
    fmt_cache: dict[tuple[str | None, str], Any] = {}
    for i, op in enumerate(trace.ops):
        for direction, operands in (("read", op.inputs), ("write", op.outputs)):
            for operand in operands:
                tensor = trace.tensors[operand.tensor]
                key = (operand.point, tensor.role)
                if key not in fmt_cache:
                    fmt_cache[key] = config.format_at(operand.point, tensor.role)
                fmt = fmt_cache[key]
                n = int(trace.access_elements(operand))
                out.append(Access(i, tensor.name, tensor.role, operand.point, direction, fmt.name, n,
                                  access_bytes(n, fmt)))
    return out


def gemm_operand_bits(trace, op, config: PrecisionConfig) -> tuple[int, int]:
    """Multiplier widths of a GEMM's operands A = inputs[0] and B = inputs[1]."""
    a, b = op.inputs[0], op.inputs[1]
    fa = config.format_at(a.point, trace.tensors[a.tensor].role)
    fb = config.format_at(b.point, trace.tensors[b.tensor].role)
    return int(fa.mult_bits), int(fb.mult_bits)


def count(trace, config: PrecisionConfig) -> Counts:
    """MACs, bit-operations and minimal DRAM traffic of one step of `trace` under `config`."""
    accesses = _accesses(trace, config)
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

    role_sums = acc.groupby("role")["bytes"].sum()
    point_sums = acc.groupby("point")["bytes"].sum()
    return Counts(
        config_label=config.label,
        macs=int(ops["macs"].sum()),
        flops=int(ops["flops"].sum()),
        arith_bitops=int(ops["arith_bitops"].sum()),
        dram_bytes=int(acc["bytes"].sum()),
        read_bytes=int(ops["read_bytes"].sum()),
        write_bytes=int(ops["write_bytes"].sum()),
        bytes_by_role={str(r): int(v) for r, v in role_sums.items()},
        bytes_by_point={p: int(point_sums.get(p, 0)) for p in (*DSQ_POINTS, OTHER_POINT)},
        ops=ops,
        accesses=acc,
    )
