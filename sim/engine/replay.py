"""Replay a training-step trace on a machine as SimPy processes.

Each op is a process: it waits for the ops that wrote its inputs (trace dependencies), takes its compute unit
(systolic array for GEMMs, vector unit otherwise), and runs a three-stage double-buffered pipeline over its steps:
a loader streams step i+1's operands from DRAM while step i computes (at most two input buffers), and a storer
drains step i's outputs while step i+1 computes (at most two output buffers). The unit is released after the last
step computes; the op is done when its last output reaches DRAM. Independent ops overlap where units allow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from sim.engine.plan import OpPlan, Step
from sim.engine.result import OP_COLUMNS, SimResult
from sim.engine.units import BulkDramPort, CountingEnvironment, TransactionDramPort, Unit

FIDELITIES = ("roofline", "tile", "transaction", "sampled")
COMPUTE_UNITS = ("array", "vector")


@dataclass(frozen=True)
class EngineOptions:
    """Knobs of the replay. `max_steps` caps simulated steps per op (identical tiles are merged beyond it);
    `overlap=False` runs ops strictly one after another in trace order; `compute_scale` divides every compute
    duration (a what-if: a huge value is unbounded compute). `sample_budget_s` and `seed` choose the `sampled`
    fidelity's sample (sim.engine.sampled): the CPU seconds its transaction-level replays may take, nominally."""

    max_steps: int = 8
    overlap: bool = True
    compute_scale: float = 1.0
    sample_budget_s: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not self.compute_scale > 0:
            raise ValueError(f"compute_scale must be positive, got {self.compute_scale}")
        if not self.sample_budget_s > 0:
            raise ValueError(f"sample_budget_s must be positive, got {self.sample_budget_s}")


class Replay:
    """One simulation: the environment, its units, the DRAM port and the op processes."""

    def __init__(self, plans: list[OpPlan], make_port, options: EngineOptions | None = None) -> None:
        """`make_port(env)` builds the DRAM port (see `dram_port_factory`)."""
        self.env = CountingEnvironment()
        self.plans = plans
        self.options = options or EngineOptions()
        self.units = {name: Unit(self.env, name) for name in (*COMPUTE_UNITS, "dma_read", "dma_write")}
        self.dram = make_port(self.env)
        self.done = [self.env.event() for _ in plans]
        self.records: list[dict] = []

    # ---- processes ---------------------------------------------------------------------------------------------
    def _dma(self, engine: str, transfers, is_write: bool, label: str):
        """Move one step's transfers. The DRAM port serialises batches (one shared bus), so the DMA engine needs no
        queue of its own; it is busy while its batch is on the bus."""
        start, end = yield from self.dram.transfer(transfers, is_write, label)
        self.units[engine].log(start, end, label)

    def _loader(self, plan: OpPlan, steps: list[Step], loaded, computed):
        for i, step in enumerate(steps):
            if i >= 2:
                yield computed[i - 2]  # the input buffer it will overwrite is free once that step computed
            if step.loads:
                yield from self._dma("dma_read", step.loads, False, plan.name)
            loaded[i].succeed()

    def _storer(self, plan: OpPlan, steps: list[Step], computed, stored):
        for i, step in enumerate(steps):
            yield computed[i]
            if step.stores:
                yield from self._dma("dma_write", step.stores, True, plan.name)
            stored[i].succeed()

    def _op(self, plan: OpPlan):
        env = self.env
        deps = [self.done[d] for d in plan.deps]
        if not self.options.overlap and plan.index > 0:
            deps.append(self.done[plan.index - 1])
        if deps:
            yield env.all_of(deps)
        ready = env.now
        unit = self.units[plan.unit]
        steps = plan.steps
        n = len(steps)
        loaded = [env.event() for _ in range(n)]
        computed = [env.event() for _ in range(n)]
        stored = [env.event() for _ in range(n)]
        scale = self.options.compute_scale
        with unit.resource.request() as req:
            yield req
            start = env.now
            env.process(self._loader(plan, steps, loaded, computed))
            storer = env.process(self._storer(plan, steps, computed, stored))
            for i, step in enumerate(steps):
                yield loaded[i]
                if i >= 2 and not stored[i - 2].processed:
                    yield stored[i - 2]  # both output buffers still draining
                if step.cycles:
                    t0 = env.now
                    yield env.timeout(step.cycles if scale == 1 else step.cycles / scale)
                    unit.log(t0, env.now, plan.name)
                computed[i].succeed()
            compute_end = env.now
        yield storer
        self.records.append({
            "index": plan.index, "name": plan.name, "kind": plan.kind, "phase": plan.phase, "layer": plan.layer,
            "unit": plan.unit, "ready_cycle": ready, "start_cycle": start, "compute_end_cycle": compute_end,
            "end_cycle": env.now, "compute_cycles": plan.compute_cycles / scale if scale != 1 else plan.compute_cycles,
            "read_bytes": sum(a.total_bytes for a in plan.accesses if not a.is_write),
            "write_bytes": sum(a.total_bytes for a in plan.accesses if a.is_write),
            "tiles": plan.tiles, "steps": n,
        })
        self.done[plan.index].succeed()

    # ---- run ---------------------------------------------------------------------------------------------------
    def run(self) -> float:
        for plan in self.plans:
            self.env.process(self._op(plan))
        # run until the last op is done, not until the queue empties: a DRAM model may keep waking (refresh)
        try:
            self.env.run(until=self.env.all_of(self.done))
        except RuntimeError as exc:  # SimPy: no events left before `until` triggered
            raise RuntimeError(f"replay deadlocked: {len(self.records)} of {len(self.plans)} ops finished") from exc
        self.events = self.env.events_scheduled
        self.dram.finish()
        return float(self.env.now)


def dram_port_factory(fidelity: str, dram_spec, clock_ghz: float):
    """The DRAM port constructor for a replay fidelity."""
    if fidelity == "tile":
        return lambda env: BulkDramPort(env, dram_spec, clock_ghz)
    if fidelity == "transaction":
        return lambda env: TransactionDramPort(env, dram_spec, clock_ghz)
    raise ValueError(f"unknown replay fidelity {fidelity!r}; valid: tile, transaction")


def union_length(intervals) -> float:
    """Total length covered by a list of (start, end, ...) intervals."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e, *_ in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def stall_breakdown(compute: list, dram: list, total: float) -> dict[str, float]:
    """Cycles with compute and DRAM both busy, compute only, DRAM only (compute waits on DRAM), and neither."""
    c, d = union_length(compute), union_length(dram)
    both = c + d - union_length([*compute, *dram])
    return {"compute_overlap_dram": both, "compute_only": c - both, "dram_only": d - both,
            "idle": max(0.0, total - (c + d - both))}


def run_replay(trace, machine_view, config, plans: list[OpPlan], fidelity: str, options: EngineOptions,
               dram_spec, counts) -> SimResult:
    """Simulate the plans and collect a SimResult."""
    wall0 = time.perf_counter()
    replay = Replay(plans, dram_port_factory(fidelity, dram_spec, machine_view.clock_ghz), options)
    cycles = replay.run()
    ops = pd.DataFrame(sorted(replay.records, key=lambda r: r["index"]), columns=OP_COLUMNS)
    units = replay.units
    intervals = {name: u.intervals for name, u in units.items()}
    intervals["dram"] = replay.dram.intervals
    for ch, iv in sorted(replay.dram.channel_intervals.items()):
        intervals[f"dram_ch{ch}"] = iv
    busy = {name: (union_length(iv) / cycles if cycles else 0.0) for name, iv in intervals.items()
            if not name.startswith("dram_ch")}
    # a channel is busy while its data bus moves bursts: bursts x burst time, over the step
    spec = dram_spec
    channel_bytes_per_cycle = spec.request_bytes / (spec.burst_cycles * spec.tCK_ns) / machine_view.clock_ghz
    for ch in range(spec.channels):
        b = replay.dram.channel_bytes.get(ch, 0)
        busy[f"dram_ch{ch}"] = b / channel_bytes_per_cycle / cycles if cycles else 0.0
    compute_iv = [*units["array"].intervals, *units["vector"].intervals]
    by_role: dict[str, int] = {}
    by_point: dict[str, int] = {}
    for p in plans:
        for a in p.accesses:
            by_role[a.role] = by_role.get(a.role, 0) + a.total_bytes
            by_point[a.point] = by_point.get(a.point, 0) + a.total_bytes
    read_b, write_b = replay.dram.bytes_read, replay.dram.bytes_written
    return SimResult(
        workload=str(trace.workload), machine=machine_view.name, config_label=config.label, fidelity=fidelity,
        clock_ghz=machine_view.clock_ghz, cycles=cycles, time_s=cycles / (machine_view.clock_ghz * 1e9),
        macs=int(counts.macs), arith_bitops=int(counts.arith_bitops), dram_bytes=read_b + write_b,
        read_bytes=read_b, write_bytes=write_b, bytes_by_role=by_role, bytes_by_point=by_point, busy=busy,
        stall_cycles=stall_breakdown(compute_iv, replay.dram.intervals, cycles),
        events=replay.events + replay.dram.model_events, wall_s=time.perf_counter() - wall0,
        ops=ops, intervals=intervals, dram_events=replay.dram.model_events,
    )
