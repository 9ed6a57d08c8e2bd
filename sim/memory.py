"""Memory footprint of a training step, from the liveness of the tensors in its trace (docs/memory.md).

The step is taken as a configuration stores it (`sim.storage.resolve`): copies equal to their source are not there,
and reads of them go to the source, so an activation that backward reads directly stays live until that read. Each
tensor occupies `sim.counting.access_bytes(elements, stored format)` bytes while it is live:
- weights (fp32 masters and their stored low-precision copies), optimizer state, and step inputs (tensors no op
  writes, e.g. token ids): the whole step;
- everything else: from the first op that touches it (its write) to the last op that touches it (its last read);
  at an op, its inputs and outputs are all live.
The peak is the largest sum of live bytes over the ops, in program order (forward, loss, backward, optimizer).
Nothing is freed early or recomputed, and there is no allocator fragmentation or workspace: this is the footprint
of the dataflow itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.counting import access_bytes
from sim.precision import PrecisionConfig
from sim.storage import resolve

CATEGORIES = ("weights", "optimizer", "gradients", "stash", "activations")
WHOLE_STEP_ROLES = ("weight", "weight_copy", "optimizer_state")
_CATEGORY_OF_ROLE = {"weight": "weights", "weight_copy": "weights", "optimizer_state": "optimizer",
                     "weight_grad": "gradients", "activation_grad": "gradients"}
MAX_BATCH_LIMIT = 1 << 40  # the batch search stops here (a step whose peak never reaches the capacity)


@dataclass
class Footprint:
    """Peak DRAM bytes of one step under one configuration, and what they hold.

    `at_peak` splits `peak_bytes` by category (it sums to it). The other fields are each category's own figure:
    `weights_bytes` (masters + stored copies) and `optimizer_bytes` are live the whole step; `gradient_bytes` is the
    largest number of gradient bytes (weight and activation gradients) live at once; `stash_bytes` is everything
    saved for backward (activations and stashes written in forward and read by a backward op, plus step inputs that
    backward reads), live at the forward/backward boundary; `stash_by_layer` splits it by the layer of the first
    backward op that reads each tensor (None: outside the layers, e.g. the final norm or the embeddings).
    """

    workload: str
    batch: int
    seq_len: int
    config: str
    peak_bytes: int
    peak_op: str
    peak_phase: str
    at_peak: dict[str, int]
    weights_bytes: int
    optimizer_bytes: int
    gradient_bytes: int
    stash_bytes: int
    stash_by_layer: dict[int | None, int]
    live_bytes: np.ndarray = field(repr=False)   # live bytes at each op, program order

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload, "batch": self.batch, "seq_len": self.seq_len, "config": self.config,
                "peak_bytes": self.peak_bytes, "peak_op": self.peak_op, "peak_phase": self.peak_phase,
                "at_peak": dict(self.at_peak), "weights_bytes": self.weights_bytes,
                "optimizer_bytes": self.optimizer_bytes, "gradient_bytes": self.gradient_bytes,
                "stash_bytes": self.stash_bytes}


def live_intervals(trace) -> dict[str, tuple[int, int]]:
    """For each tensor, the first and last op index (inclusive) at which it occupies DRAM (module docstring)."""
    n = len(trace.ops)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    written: set[str] = set()
    for i, op in enumerate(trace.ops):
        for o in op.inputs:
            first.setdefault(o.tensor, i)
            last[o.tensor] = i
        for o in op.outputs:
            first.setdefault(o.tensor, i)
            last[o.tensor] = i
            written.add(o.tensor)
    out = {}
    for name, t in trace.tensors.items():
        if t.role in WHOLE_STEP_ROLES or name not in written:
            out[name] = (0, n - 1)
        else:
            out[name] = (first[name], last[name])
    return out


def _backward_readers(trace, backward_start: int) -> dict[str, int | None]:
    """Tensor -> layer of the first backward op that reads it (only tensors some backward op reads)."""
    out: dict[str, int | None] = {}
    for op in trace.ops[backward_start:]:
        if op.phase != "backward":
            continue
        for o in op.inputs:
            out.setdefault(o.tensor, op.layer)
    return out


def footprint(trace, config: PrecisionConfig) -> Footprint:
    """The step's peak DRAM footprint under `config` (see the module docstring for the liveness rules)."""
    storage = resolve(trace, config)
    st = storage.trace
    n = len(st.ops)
    if n == 0:
        raise ValueError(f"trace {trace.workload!r} has no ops")
    intervals = live_intervals(st)
    phases = [op.phase for op in st.ops]
    backward_start = next((i for i, p in enumerate(phases) if p == "backward"), n)
    readers = _backward_readers(st, backward_start)
    delta = np.zeros((len(CATEGORIES), n + 1), dtype=np.int64)
    index = {c: k for k, c in enumerate(CATEGORIES)}
    stash_by_layer: dict[int | None, int] = {}
    stash_bytes = 0
    for name, t in st.tensors.items():
        start, end = intervals[name]
        nbytes = access_bytes(t.elements, storage.formats[name])
        category = _CATEGORY_OF_ROLE.get(t.role)
        if category is None:  # an activation or a stash: saved for backward if it crosses the boundary to a reader
            saved = name in readers and start < backward_start <= end
            category = "stash" if saved else "activations"
            if saved:
                stash_bytes += nbytes
                layer = readers[name]
                stash_by_layer[layer] = stash_by_layer.get(layer, 0) + nbytes
        k = index[category]
        delta[k, start] += nbytes
        delta[k, end + 1] -= nbytes
    live = np.cumsum(delta, axis=1)[:, :n]     # category x op
    total = live.sum(axis=0)
    peak = int(np.argmax(total))
    own_peak = live.max(axis=1)
    return Footprint(
        workload=trace.workload, batch=trace.batch, seq_len=trace.seq_len, config=config.label,
        peak_bytes=int(total[peak]), peak_op=st.ops[peak].name, peak_phase=phases[peak],
        at_peak={c: int(live[index[c], peak]) for c in CATEGORIES},
        weights_bytes=int(own_peak[index["weights"]]), optimizer_bytes=int(own_peak[index["optimizer"]]),
        gradient_bytes=int(own_peak[index["gradients"]]), stash_bytes=stash_bytes,
        stash_by_layer=stash_by_layer, live_bytes=total)


def policy_configs(policy, total_steps: int = 1000) -> list[PrecisionConfig]:
    """The distinct configurations `policy` runs through over `total_steps`, in order of first use."""
    seen: list[PrecisionConfig] = []
    for config, _ in policy.timeline(total_steps):
        if config not in seen:
            seen.append(config)
    return seen


def worst_footprint(trace, configs: Iterable[PrecisionConfig]) -> Footprint:
    """The footprint of the configuration with the largest peak (a time-adaptive policy must fit at every one)."""
    prints = [footprint(trace, c) for c in configs]
    if not prints:
        raise ValueError("no configuration to measure")
    return max(prints, key=lambda f: f.peak_bytes)


def max_batch(rebuild: Callable[[int], Any], configs: Sequence[PrecisionConfig], capacity_bytes: int,
              start: int = 1) -> int:
    """The largest batch whose peak fits `capacity_bytes` under every configuration (0: not even batch 1).

    `rebuild(batch)` returns the step's trace at that batch. Every tensor that depends on the batch grows with it,
    so the peak is non-decreasing in the batch: a doubling search from `start`, then bisection, over rebuilt traces.
    """
    cache: dict[int, bool] = {}

    def fits(batch: int) -> bool:
        if batch not in cache:
            trace = rebuild(batch)
            cache[batch] = all(footprint(trace, c).peak_bytes <= capacity_bytes for c in configs)
        return cache[batch]

    if not fits(1):
        return 0
    lo, hi = 1, max(2, int(start))
    while fits(hi):
        lo, hi = hi, hi * 2
        if hi > MAX_BATCH_LIMIT:
            raise RuntimeError(f"the peak does not grow with the batch (still fits at batch {lo})")
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


TABLE_COLUMNS = ("policy", "config", "peak_bytes", "stash_bytes", "weights_bytes", "optimizer_bytes",
                 "gradient_bytes", "max_batch", "peak_op")


def rebuilder(workload: str, seq_len: int) -> tuple[Callable[[int], Any] | None, str | None]:
    """(rebuild(batch) -> Trace, None) for a preset, spec or Hugging Face config; (None, why) for a trace file."""
    import os

    from workloads.trace_io import read_json_object

    if os.path.isfile(workload) and workload.endswith(".json"):
        data = read_json_object(workload)
        if "schema_version" in data or "ops" in data:
            return None, (f"{workload} is a trace file fixed at one batch size; give a preset, model spec or "
                          "config.json to search the batch")
    return functools.partial(_built, workload, seq_len=seq_len), None


@functools.lru_cache(maxsize=64)
def _built(workload: str, batch: int, seq_len: int):
    """Traces rebuilt for the batch search, shared by the policies of one table or study (never modified)."""
    from workloads import resolve_workload

    return resolve_workload(workload, batch=batch, seq_len=seq_len)


def run_memory(workload: str, trace, machine, configs: Sequence[PrecisionConfig]) -> dict[str, Any]:
    """A study's memory figures for one policy: `peak_bytes`, `stash_bytes` and `memory_config` of its worst
    configuration, and `max_batch` under all of them (None for a trace file)."""
    worst = worst_footprint(trace, configs)
    rebuild, _ = rebuilder(workload, trace.seq_len)
    best = None if rebuild is None else max_batch(rebuild, configs, machine.dram_capacity_bytes, start=trace.batch)
    return {"peak_bytes": worst.peak_bytes, "stash_bytes": worst.stash_bytes, "max_batch": best,
            "memory_config": worst.config}


def memory_table(workload, machine, policies: Sequence, batch: int | None = None, seq_len: int | None = None,
                 total_steps: int = 1000, rebuild: Callable[[int], Any] | None = None):
    """One row per policy (`TABLE_COLUMNS`): its worst configuration's footprint and the largest batch that fits
    `machine`'s DRAM capacity under all of its configurations.

    `workload` is a name or path (`workloads.resolve_workload`) or a Trace; for a Trace, pass `rebuild(batch)` to get
    `max_batch` (else it is None). `policies` are names or Policy objects; a time-adaptive policy's configurations
    are those of its timeline over `total_steps`. The DataFrame's `attrs` hold workload, hw, batch, seq_len,
    capacity_bytes and `max_batch_note` (why max_batch is None, when it is).
    """
    import pandas as pd

    from hwmodels.machine import get_machine
    from sim.policy import get_policy
    from workloads import resolve_workload

    machine = get_machine(machine)
    policies = [get_policy(p) for p in policies]
    if not policies:
        raise ValueError("give at least one policy")
    note = None
    if isinstance(workload, str):
        trace = resolve_workload(workload, batch=batch, seq_len=seq_len)
        rebuild, note = rebuilder(workload, trace.seq_len)
    else:
        trace = workload
        if rebuild is None:
            note = "no rebuild(batch) was given for this trace"
    if rebuild is not None:
        traces = {trace.batch: trace}

        def cached(b: int, _build=rebuild):
            if b not in traces:
                traces[b] = _build(b)
            return traces[b]
    capacity = machine.dram_capacity_bytes
    rows = []
    for policy in policies:
        configs = policy_configs(policy, total_steps)
        worst = worst_footprint(trace, configs)
        best_batch = None if rebuild is None else max_batch(cached, configs, capacity, start=trace.batch)
        rows.append({"policy": policy.name, "config": worst.config, "peak_bytes": worst.peak_bytes,
                     "stash_bytes": worst.stash_bytes, "weights_bytes": worst.weights_bytes,
                     "optimizer_bytes": worst.optimizer_bytes, "gradient_bytes": worst.gradient_bytes,
                     "max_batch": best_batch, "peak_op": worst.peak_op})
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    df["max_batch"] = df["max_batch"].astype("Int64")
    df.attrs.update(workload=trace.workload, hw=machine.name, batch=trace.batch, seq_len=trace.seq_len,
                    capacity_bytes=capacity, max_batch_note=note)
    return df
