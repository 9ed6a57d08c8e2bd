"""Stored formats: how each tensor of a training step is kept in DRAM under a precision configuration.

One rule serves the counting, the roofline and the engine (docs/counting.md):
- A tensor is stored in exactly one format, `config.format_at(tensor.dsq_point, tensor.role)`, and every access of
  it moves bytes of that format. Nothing is re-quantized inside DRAM.
- An operand's DSQ point is the precision the op *computes* at. Where it differs from the stored format the op
  converts on chip: a backward GEMM reads the gradient as stored at q3 and multiplies at q2 (`compute_format`).
- A copy (`tensor.source` set: a stash of an activation, a low-precision copy of a master weight) that a
  configuration stores exactly as its source, or as an earlier copy of the same source, *is* that tensor: it is
  never written, and its reads go to the tensor it equals. "Exactly" means the same format and, for block formats
  (bfp, mx), the same blocking axis; fixed point (one scale per tensor) and element formats have no blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sim.formats import NumberFormat
from sim.precision import PrecisionConfig


def stored_format(tensor, config: PrecisionConfig) -> NumberFormat:
    """The one format `tensor` is kept in under `config`."""
    return config.format_at(tensor.dsq_point, tensor.role)


def compute_format(operand, tensor, config: PrecisionConfig) -> NumberFormat:
    """The format an op computes with on this operand (its point's; by role when it has none)."""
    return config.format_at(operand.point, tensor.role)


def storage_key(tensor, config: PrecisionConfig) -> tuple[str, int | None]:
    """Two tensors of one source with equal keys hold the same bits: (format, blocking axis or None)."""
    fmt = stored_format(tensor, config)
    return fmt.name, (tensor.block_axis if fmt.block_size else None)


@dataclass
class Storage:
    """A trace as a configuration stores it: `trace` has the copies that equal another tensor removed (their writes
    dropped, their reads redirected), `aliases` maps each removed copy to the tensor it is, `formats` gives every
    remaining tensor's stored format."""

    trace: object
    aliases: dict[str, str]
    formats: dict[str, NumberFormat]


def resolve(trace, config: PrecisionConfig) -> Storage:
    """Resolve `trace` under `config` (see the module docstring)."""
    from workloads.trace import Trace

    aliases: dict[str, str] = {}
    kept: dict[str, dict[tuple[str, int | None], str]] = {}  # source -> storage key -> tensor holding those bits
    for name, t in trace.tensors.items():
        root = t.source if t.source is not None else name
        held = kept.setdefault(root, {})
        if t.source is not None and root not in held.values():  # the source itself claims its key first
            src = trace.tensors[root]
            held.setdefault(storage_key(src, config), root)
        key = storage_key(t, config)
        if t.source is not None and key in held:
            aliases[name] = held[key]
        else:
            held.setdefault(key, name)
    if not aliases:
        tensors, ops = trace.tensors, trace.ops
    else:
        tensors = {n: t for n, t in trace.tensors.items() if n not in aliases}
        ops = []
        for op in trace.ops:
            inputs = tuple(replace(o, tensor=aliases[o.tensor]) if o.tensor in aliases else o for o in op.inputs)
            outputs = tuple(o for o in op.outputs if o.tensor not in aliases)
            ops.append(op if inputs == op.inputs and outputs == op.outputs else replace(op, inputs=inputs,
                                                                                         outputs=outputs))
    resolved = Trace(trace.workload, trace.spec, trace.batch, trace.seq_len, tensors, ops)
    formats: dict[tuple[str | None, str], NumberFormat] = {}
    by_tensor = {}
    for name, t in tensors.items():
        key = (t.dsq_point, t.role)
        if key not in formats:
            formats[key] = stored_format(t, config)
        by_tensor[name] = formats[key]
    return Storage(resolved, aliases, by_tensor)
