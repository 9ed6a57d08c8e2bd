"""The recorder behind workloads.capture: a TorchDispatchMode that logs every aten op of one training step by storage.

Imported only once torch is known to be installed. A trace tensor is one *version of one storage*: a view shares its
base's storage and so is the same tensor (no op, no traffic); an in-place op writes a new version of the storage it
mutates. Saved-tensor hooks report which forward values autograd keeps for backward: those become the stashes.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.module_tracker import ModuleTracker

from workloads.capture_ops import FACTORY_OPS, GEMM_OPERANDS, classify, gemm_shape
from workloads.trace import GemmShape

_LAYER = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")


@dataclass
class RawTensor:
    name: str
    shape: tuple[int, ...]
    role: str                  # weight | activation (forward values, step inputs, constants) | activation_grad
    producer: int | None       # index of the recorded op that wrote this version; None for sources

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass
class RawOp:
    name: str
    aten: str
    kind: str
    phase: str                 # forward | backward
    layer: int | None
    inputs: list[tuple[str, int | None]]   # (tensor, elements touched when a gather reads fewer than all)
    outputs: list[str]
    flops: int
    gemm: GemmShape | None = None
    stashes: list[str] = field(default_factory=list)
    gemm_axes: tuple[int, int] | None = None  # the axis (-1/-2) of each GEMM operand's storage that K runs along


class Recorder(TorchDispatchMode):
    """Records ops between `phase` changes; `sources()` must name parameters, buffers and inputs first."""

    def __init__(self, tracker: ModuleTracker) -> None:
        super().__init__()
        self.tracker = tracker
        self.phase = "forward"
        self.tensors: dict[str, RawTensor] = {}
        self.ops: list[RawOp] = []
        self.saved: list[str] = []          # tensor versions autograd saved, in order
        self.unmapped: Counter[str] = Counter()
        self._current: dict[int, str] = {}  # storage id -> current version's tensor name
        self._versions: Counter[str] = Counter()
        self._base: dict[str, str] = {}     # tensor name -> the name of its storage's first version
        self._names: Counter[str] = Counter()
        self._keep: list[object] = []       # storages held so their ids are never reused during the step

    # ---- storages and tensor versions ------------------------------------------------------------------------
    def _key(self, t: torch.Tensor) -> int:
        storage = t.untyped_storage()
        key = storage._cdata
        if key not in self._current:
            self._keep.append(storage)
        return key

    def _new(self, base: str, shape: tuple[int, ...], role: str, producer: int | None) -> str:
        """A fresh tensor name: `base`, or `base.vN` for the N-th version of a storage written in place."""
        self._versions[base] += 1
        name = base if self._versions[base] == 1 else f"{base}.v{self._versions[base]}"
        self._base[name] = base
        self.tensors[name] = RawTensor(name, tuple(int(s) for s in shape) or (1,), role, producer)
        return name

    def source(self, t: torch.Tensor, name: str, role: str) -> str:
        """Register a tensor that exists before the step (parameter, buffer, input)."""
        key = self._key(t)
        if key not in self._current:
            storage_elements = t.untyped_storage().nbytes() // t.element_size()
            whole = t.numel() == storage_elements  # else a view: the tensor is its whole storage
            self._current[key] = self._new(name, tuple(t.shape) if whole else (storage_elements,), role, None)
        return self._current[key]

    def materialise(self, source: str, shape: tuple[int, ...], base: str) -> str:
        """A backward copy of `source` into a fresh gradient tensor of `shape` (expanding a broadcast value)."""
        name = self._new(base, shape, "activation_grad", len(self.ops))
        self.ops.append(RawOp(base, "clone", "elementwise", "backward", None, [(source, None)], [name], 0))
        return name

    def name_of(self, t: torch.Tensor) -> str | None:
        return self._current.get(self._key(t))

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        """saved_tensors_hooks pack: note the version autograd keeps (it checks that version in backward)."""
        if self.phase == "forward" and t.numel():
            name = self.name_of(t)
            if name is not None:
                self.saved.append(name)
        return t

    # ---- module context --------------------------------------------------------------------------------------
    def _where(self) -> tuple[str, int | None]:
        """Innermost module path (root class name dropped) and the layer index it names, if any."""
        parents = [p for p in self.tracker.parents if p != "Global"]
        if not parents:
            return "", None
        path = max(parents, key=lambda p: (p.count("."), len(p)))
        path = path.split(".", 1)[1] if "." in path else ""
        m = _LAYER.search(path)
        return path, int(m.group(1)) if m else None

    # ---- dispatch --------------------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self._record(func, args, kwargs, out)
        return out

    def _record(self, func, args, kwargs, out) -> None:
        aten = func.overloadpacket.__name__
        ins = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        mutated = {self._key(t) for t in _written_args(func, args, kwargs)}
        role = "activation" if self.phase == "forward" else "activation_grad"
        if aten in FACTORY_OPS:  # a value made from sizes: a source, like a step input
            for t in outs:
                key = self._key(t)
                base = self._base[self._current[key]] if key in self._current else f"{self.phase[0]}.{aten}"
                self._current[key] = self._new(base, tuple(t.shape), "activation", None)
            return
        in_keys = {self._key(t) for t in ins}
        new_outs = [t for t in outs if t.numel() and (self._key(t) not in in_keys or self._key(t) in mutated)]
        if not new_outs:  # a view, a reshape, a detach: the same storage under another shape
            return
        module, layer = self._where()
        op_name = f"{module}.{aten}" if module else aten
        self._names[op_name] += 1
        if self._names[op_name] > 1:
            op_name = f"{op_name}#{self._names[op_name]}"
        gemm = gemm_axes = None
        if aten in GEMM_OPERANDS:
            ia, ib, ic = GEMM_OPERANDS[aten]
            tensor_args = [a for a in args if isinstance(a, torch.Tensor)]
            a, b = tensor_args[ia], tensor_args[ib]
            gemm = gemm_shape(aten, tuple(a.shape), tuple(b.shape))
            gemm_axes = (_k_axis(a, -1), _k_axis(b, -2))  # K is A's last dimension and B's second to last
            ordered = [a, b] + ([tensor_args[ic]] if ic is not None else [])
            inputs = [(self._input(t), None) for t in ordered]
            kind, flops_per_element = ("bmm" if aten.startswith(("bmm", "baddbmm")) else "gemm"), 0
        else:
            mapped = classify(aten, torch.Tag.pointwise in func.tags, torch.Tag.reduction in func.tags)
            if mapped is None:
                self.unmapped[aten] += 1
                mapped = ("elementwise", 1)
            kind, flops_per_element = mapped
            inputs = self._plain_inputs(aten, ins)
        outputs = []
        index = len(self.ops)
        for i, t in enumerate(new_outs):
            key = self._key(t)
            if key in mutated and key in self._current:  # in place: the next version of the same storage
                old = self.tensors[self._current[key]]
                outputs.append(self._new(self._base[old.name], old.shape, role, index))
            else:
                base = op_name if len(new_outs) == 1 else f"{op_name}.{i}"
                outputs.append(self._new(base, tuple(t.shape), role, index))
            self._current[self._key(t)] = outputs[-1]
        if not inputs:  # e.g. a copy into a fresh buffer from a constant: a source after all
            for name in outputs:
                self.tensors[name].producer = None
            return
        out_elements = sum(t.numel() for t in new_outs)
        self.ops.append(RawOp(op_name, aten, kind, self.phase, layer, inputs, outputs,
                              flops_per_element * out_elements, gemm, gemm_axes=gemm_axes))

    def _input(self, t: torch.Tensor) -> str:
        name = self.name_of(t)
        if name is None:  # a tensor made outside the step (a constant the model closes over)
            name = self.source(t, "const", "activation")
        return name

    def _plain_inputs(self, aten: str, ins: list[torch.Tensor]) -> list[tuple[str, int | None]]:
        """Distinct storages read, once each; an embedding lookup reads only the rows its ids name."""
        seen: dict[str, int | None] = {}
        for t in ins:
            if not t.numel():
                continue
            seen.setdefault(self._input(t), None)
        if aten == "embedding" and len(ins) >= 2:
            table, ids = ins[0], ins[1]
            rows = min(ids.numel(), table.shape[0])
            seen[self._input(table)] = rows * math.prod(table.shape[1:])
        return list(seen.items())


def _written_args(func, args, kwargs) -> list[torch.Tensor]:
    """The tensor arguments an op mutates (in-place and out= variants), from its schema's alias annotations."""
    written = []
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is None or not arg.alias_info.is_write:
            continue
        value = args[i] if i < len(args) else kwargs.get(arg.name)
        written.extend(t for t in tree_leaves(value) if isinstance(t, torch.Tensor))
    return written


def _k_axis(t: torch.Tensor, k_dim: int) -> int:
    """The axis of `t`'s storage that the view's dimension `k_dim` runs along: -1 when that dimension is the
    contiguous one (stride 1), else -2 (a transposed view, e.g. W.t() of nn.Linear's [out, in] weight)."""
    if t.dim() < 2:
        return -1
    return -1 if t.stride(k_dim) == 1 else -2
