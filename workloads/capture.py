"""Bring your own model: one training step of a PyTorch model, captured as a Trace (needs the `torch` extra).

`capture_trace(model, inputs)` runs forward, backward of the scalar loss `model(*inputs)` returns, and an Adam update
of every trained parameter, all on the meta device under a TorchDispatchMode: no arithmetic and no weight memory,
so any model size captures in seconds. Every aten op becomes a trace op (GEMMs with their shapes and MACs; other
ops as elementwise/softmax/layernorm/embedding/loss/reduction), every tensor version a trace tensor; views share
their base's storage and are not traffic. The values autograd saves for backward (saved-tensor hooks) are the
stashes. See docs/capture.md.

A model file for the CLI (`--workload path/to/file.py:FUNCTION`) defines FUNCTION(batch, seq_len) returning
(model, inputs); it is called inside `with torch.device("meta")`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from workloads.trace import Trace

DEFAULT_BATCH = 4        # sequences per step when --batch is not given
DEFAULT_SEQ_LEN = 128    # tokens per sequence when --seq-len is not given
INSTALL_HINT = 'capturing a PyTorch model needs torch: pip install "dsqsim[torch]"'


def require_torch():
    """The torch module, or ValueError with the one-line install hint."""
    try:
        import torch
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return torch


def split_capture_source(source: str) -> tuple[str, str] | None:
    """('path/to/file.py', 'FUNCTION') for a capture source, else None."""
    path, sep, func = source.rpartition(":")
    if sep and path.endswith(".py") and func:
        return path, func
    return None


def capture_trace(model: Any, inputs: Sequence[Any], name: str | None = None, batch: int | None = None,
                  seq_len: int | None = None) -> Trace:
    """One training step of `model` (forward, backward of `model(*inputs)`, Adam) as a Trace.

    Parameters and buffers are replaced by meta-device stand-ins for the step (the model itself is not modified);
    tensor inputs are moved to the meta device. `batch`/`seq_len` label the trace; by default they are the first two
    dimensions of the first tensor input.
    """
    torch = require_torch()
    from torch.utils.module_tracker import ModuleTracker

    from workloads.capture_assemble import assemble
    from workloads.capture_record import Recorder

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"capture needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, (tuple, list)):
        raise ValueError(f"inputs must be a tuple or list of model arguments, got {type(inputs).__name__}")
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    meta_params = {n: torch.empty_like(p, device="meta").requires_grad_(p.requires_grad) for n, p in params.items()}
    meta_buffers = {n: torch.empty_like(b, device="meta") for n, b in buffers.items()}
    meta_inputs = [x.detach().to("meta") if isinstance(x, torch.Tensor) else x for x in inputs]
    batch, seq_len = _sizes(meta_inputs, batch, seq_len)

    tracker = ModuleTracker()
    rec = Recorder(tracker)
    trained = {n: p for n, p in meta_params.items() if p.requires_grad}
    for n, p in meta_params.items():
        rec.source(p, n, "weight" if p.requires_grad else "activation")  # frozen parameters: read-only inputs
    for n, b in meta_buffers.items():
        rec.source(b, n, "activation")
    for i, x in enumerate(t for t in meta_inputs if isinstance(t, torch.Tensor)):
        rec.source(x, f"input{i}", "activation")

    with torch.device("meta"), tracker, rec, torch.autograd.graph.saved_tensors_hooks(rec.pack, _unpack):
        try:
            loss = torch.func.functional_call(model, {**meta_params, **meta_buffers}, tuple(meta_inputs))
        except Exception as exc:  # the user's model failed: one line naming it
            raise ValueError(f"model(*inputs) raised {type(exc).__name__}: {_first_line(exc)}") from None
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
            raise ValueError(f"model(*inputs) must return the scalar loss, got {_describe(loss)}")
        if not loss.requires_grad:
            raise ValueError("model(*inputs) returned a loss that does not depend on any trained parameter")
        rec.phase = "backward"
        names = list(trained)
        grads = torch.autograd.grad(loss, [trained[n] for n in names], allow_unused=True)
    weight_grads = {}
    unused = []
    for n, g in zip(names, grads, strict=True):
        if g is None:
            unused.append(n)
            continue
        grad_name = rec.name_of(g)
        if grad_name is None:
            grad_name = rec.source(g, "const", "activation")
        grad = rec.tensors[grad_name]
        if grad.producer is None or grad.elements != g.numel() or grad_name in weight_grads.values():
            # a broadcast view or a value made from sizes (e.g. the gradient of w.sum()): written out whole, as
            # autograd's AccumulateGrad copies it into .grad
            grad_name = rec.materialise(grad_name, tuple(g.shape), f"{n}.grad")
        weight_grads[rec.name_of(trained[n])] = grad_name
    if unused:
        warnings.warn(f"capture: {len(unused)} parameters get no gradient and are left out of the trace: "
                      f"{', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}", stacklevel=2)
    if rec.unmapped:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(rec.unmapped.items()))
        warnings.warn(f"capture: aten ops with no mapping, recorded as generic vector ops: {listed}", stacklevel=2)
    n_params = sum(p.numel() for p in trained.values() if rec.name_of(p) in weight_grads)
    spec = {"source": "capture", "model": type(model).__name__, "params": n_params,
            "unmapped_ops": dict(rec.unmapped)}
    trace = assemble(name or type(model).__name__, spec, batch, seq_len, rec.tensors, rec.ops, rec.saved,
                     weight_grads)
    try:
        trace.validate()
    except ValueError as exc:  # the model was fine; the mapping broke a trace rule
        raise RuntimeError(f"capture produced an invalid trace (a dsqsim bug, please report): {exc}") from None
    return trace


def capture_from_file(source: str, batch: int | None = None, seq_len: int | None = None) -> Trace:
    """Capture `path/to/file.py:FUNCTION`: FUNCTION(batch, seq_len) -> (model, inputs), called on the meta device."""
    parsed = split_capture_source(source)
    if parsed is None:
        raise ValueError(f"expected path/to/file.py:FUNCTION, got {source!r}")
    path, func_name = parsed
    if not os.path.isfile(path):
        raise OSError(f"model file not found: {path}")
    torch = require_torch()
    module = _load_module(path)
    func = getattr(module, func_name, None)
    if not callable(func):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise ValueError(f"{path} has no function {func_name!r}; functions: {', '.join(found) or 'none'}")
    batch = batch or DEFAULT_BATCH
    seq_len = seq_len or DEFAULT_SEQ_LEN
    with torch.device("meta"):
        try:
            result = func(batch, seq_len)
        except Exception as exc:
            raise ValueError(f"{path}:{func_name}({batch}, {seq_len}) raised {type(exc).__name__}: "
                             f"{_first_line(exc)}") from None
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ValueError(f"{path}:{func_name} must return (model, inputs), got {_describe(result)}")
    model, inputs = result
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    return capture_trace(model, inputs, name=f"{os.path.basename(path)}:{func_name}", batch=batch, seq_len=seq_len)


def _load_module(path: str):
    name = f"_dsqsim_capture_{abs(hash(os.path.abspath(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ValueError(f"{path}: importing it raised {type(exc).__name__}: {_first_line(exc)}") from None
    return module


def _sizes(inputs: Sequence[Any], batch: int | None, seq_len: int | None) -> tuple[int, int]:
    import torch

    first = next((x for x in inputs if isinstance(x, torch.Tensor) and x.dim() > 0), None)
    shape = tuple(first.shape) if first is not None else ()
    batch = batch or (shape[0] if len(shape) >= 1 and shape[0] > 0 else 1)
    seq_len = seq_len or (shape[1] if len(shape) >= 2 and shape[1] > 0 else 1)
    return int(batch), int(seq_len)


def _unpack(t):
    return t


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)}"
    return type(value).__name__
