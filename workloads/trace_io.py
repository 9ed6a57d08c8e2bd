"""Trace files: JSON with a schema version. Loading checks types and structure and raises one-line ValueErrors."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from workloads.trace import GemmShape, Op, Operand, Tensor, Trace

SCHEMA_VERSION = 3  # 2: an operand may carry the elements a gather touches; 3: weight copies, block axis, source
FORMAT_NAME = "dsqsim-trace"


def trace_to_dict(trace: Trace) -> dict[str, Any]:
    def operands(ops: tuple[Operand, ...]) -> list[list]:
        return [[o.tensor, o.point] if o.elements is None else [o.tensor, o.point, o.elements] for o in ops]

    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "workload": trace.workload,
        "spec": trace.spec,
        "batch": trace.batch,
        "seq_len": trace.seq_len,
        # compact rows keep a llama-7b trace to a few hundred kB
        "tensor_fields": ["name", "shape", "role", "dsq_point", "block_axis", "source"],
        "tensors": [[t.name, list(t.shape), t.role, t.dsq_point, t.block_axis, t.source]
                    for t in trace.tensors.values()],
        "op_fields": ["name", "kind", "phase", "layer", "inputs", "outputs", "macs", "flops", "gemm"],
        "ops": [[op.name, op.kind, op.phase, op.layer, operands(op.inputs), operands(op.outputs), op.macs, op.flops,
                 [op.gemm.batch, op.gemm.m, op.gemm.k, op.gemm.n] if op.gemm else None] for op in trace.ops],
    }


def save_trace(trace: Trace, path: str) -> None:
    """Write atomically: a temporary file in the target directory, renamed over `path` only when complete."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OSError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".trace-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(trace_to_dict(trace), f, separators=(",", ":"))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json_object(path: str) -> dict[str, Any]:
    """A JSON file's top-level object; ValueError naming the file when it is not valid JSON or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return data


def load_trace(path: str) -> Trace:
    return trace_from_dict(read_json_object(path), path)


def trace_from_dict(data: Any, source: str = "trace") -> Trace:
    """Parse and validate; any malformed content raises ValueError naming the source and what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a trace file must hold a JSON object")
    version = data.get("schema_version")
    if version is None:
        raise ValueError(f"{source}: missing schema_version (not a dsqsim trace file?)")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{source}: trace schema_version {version!r} is not supported (this dsqsim reads "
                         f"version {SCHEMA_VERSION}); rebuild it with `dsqsim trace`")
    try:
        trace = Trace(
            workload=_typed(data["workload"], str, "workload"),
            spec=_typed(data["spec"], dict, "spec"),
            batch=_typed(data["batch"], int, "batch"),
            seq_len=_typed(data["seq_len"], int, "seq_len"),
        )
        for row in _typed(data["tensors"], list, "tensors"):
            name, shape, role, point, block_axis, copy_of = _row(row, 6, "tensor")
            trace.tensors[_typed(name, str, "tensor name")] = Tensor(
                name, tuple(_typed(d, int, f"shape of {name}") for d in _typed(shape, list, f"shape of {name}")),
                _typed(role, str, f"role of {name}"), _point(point, name),
                _typed(block_axis, int, f"block_axis of {name}"),
                None if copy_of is None else _typed(copy_of, str, f"source of {name}"))
        for row in _typed(data["ops"], list, "ops"):
            name, kind, phase, layer, inputs, outputs, macs, flops, gemm = _row(row, 9, "op")
            _typed(name, str, "op name")
            trace.ops.append(Op(
                name, _typed(kind, str, f"kind of {name}"), _typed(phase, str, f"phase of {name}"),
                None if layer is None else _typed(layer, int, f"layer of {name}"),
                _operands(inputs, name), _operands(outputs, name),
                _typed(macs, int, f"macs of {name}"), _typed(flops, int, f"flops of {name}"),
                None if gemm is None else GemmShape(*(_typed(g, int, f"gemm of {name}")
                                                      for g in _row(gemm, 4, "gemm"))),
            ))
    except KeyError as exc:
        raise ValueError(f"{source}: missing field {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    try:
        trace.validate()
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return trace


def _typed(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{what} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _row(value: Any, n: int, what: str) -> list:
    if not isinstance(value, list) or len(value) != n:
        raise ValueError(f"each {what} must be a list of {n} fields, got {str(value)[:60]}")
    return value


def _point(value: Any, name: str) -> str | None:
    return None if value is None else _typed(value, str, f"DSQ point of {name}")


def _operands(value: Any, op: str) -> tuple[Operand, ...]:
    out = []
    for o in _typed(value, list, f"operands of {op}"):
        row = _row(o, len(o) if isinstance(o, list) and len(o) in (2, 3) else 2, f"operand of {op}")
        elements = None
        if len(row) == 3:
            elements = _typed(row[2], int, f"accessed elements of an operand of {op}")
            if elements <= 0:
                raise ValueError(f"accessed elements of an operand of {op} must be positive, got {elements}")
        out.append(Operand(_typed(row[0], str, f"operand of {op}"), _point(row[1], op), elements))
    return tuple(out)
