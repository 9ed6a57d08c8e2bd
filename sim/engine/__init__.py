"""The discrete-event engine: replay a training-step trace on a machine under a precision configuration.

    simulate(trace, machine, config, fidelity="tile") -> SimResult
    simulate_policy(trace, machine, policy, total_steps=..., fidelity=...) -> PolicySimResult

Fidelities: `roofline` (the analytic lower bound of sim.roofline, no simulation), `tile` (default: SimPy replay,
DRAM transfers through the bulk DRAM model), `transaction` (every burst through the transaction-level DRAM model, the
compiled core running each DMA batch in one call: the reference `tile` is validated against, ~5-8 M bursts per CPU
second) and `sampled` (EXPERIMENTAL: a stratified sample of ops at transaction level, extrapolated from tile with a
nominal 95 % interval: sim.engine.sampled).
"""

from __future__ import annotations

import dataclasses
import time

from sim.engine.cache import DEFAULT_CACHE, ResultCache, cache_key, trace_fingerprint
from sim.engine.replay import FIDELITIES, EngineOptions
from sim.engine.result import PolicySimResult, SimResult
from sim.engine.timeline import timeline_events, write_timeline

__all__ = ["FIDELITIES", "EngineOptions", "PolicySimResult", "ResultCache", "SimResult", "clear_memos", "simulate",
           "simulate_policy", "timeline_events", "write_timeline"]


def simulate(trace, machine, config, fidelity: str = "tile", options: EngineOptions | None = None,
             cache: ResultCache | None = DEFAULT_CACHE) -> SimResult:
    """One training step of `trace` on `machine` under PrecisionConfig `config`; cached (pass cache=None to skip)."""
    if fidelity not in FIDELITIES:
        raise ValueError(f"unknown fidelity {fidelity!r}; valid: {', '.join(FIDELITIES)}")
    options = options or EngineOptions()
    # once, for the result cache's key and the plan memo's (below); a roofline without the cache needs neither
    fingerprint = trace_fingerprint(trace) if cache is not None or fidelity != "roofline" else None
    key = cache_key(trace, machine, config, fidelity, options, fingerprint) if cache is not None else None
    if key is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    if fidelity == "roofline":
        result = _roofline_result(trace, machine, config)
    else:
        from sim.counting import count
        from sim.engine.machine_view import MachineView
        from sim.engine.plan import plan_trace
        from sim.engine.replay import run_replay
        from sim.storage import resolve

        wall0 = time.perf_counter()
        mv = MachineView(machine)
        plan_key = (fingerprint, _without_dram(machine), repr(config), options.max_steps)
        planned = _PLANS.pop(plan_key, None)
        if planned is None:
            storage = resolve(trace, config)  # the step as this configuration stores it (sim.storage)
            planned = (storage, plan_trace(trace, config, mv, options.max_steps, storage),
                       count(trace, config, storage))
        _PLANS[plan_key] = planned  # most recent last
        while len(_PLANS) > PLAN_MEMO_MAX:
            _PLANS.pop(next(iter(_PLANS)))
        storage, plans, counts = planned
        if fidelity == "sampled":
            from sim.engine.sampled import run_sampled

            result = run_sampled(storage.trace, mv, config, plans, options, machine.dram, counts)
        else:
            result = run_replay(storage.trace, mv, config, plans, fidelity, options, machine.dram, counts)
        result.minimal = minimal_traffic(counts)
        _add_energy(result, trace, machine, config, counts, storage)
        result.wall_s = time.perf_counter() - wall0  # planning included
    if key is not None:
        cache.put(key, result)
    return result


# Plans and counts of recent (trace, machine without its DRAM, config, max_steps): they do not read the DRAM, so a
# bandwidth what-if (or any DRAM variant) replays the same plans; the replay only reads them.
_PLANS: dict[tuple, tuple] = {}
PLAN_MEMO_MAX = 8


def clear_memos() -> None:
    """Forget the process-wide memos of plans and DRAM work (`units.WorkMemo`, up to ~0.3 GB per DRAM after many
    bandwidth what-ifs): for a long notebook session. Results never depend on them."""
    from sim.engine import units

    _PLANS.clear()
    units._BULK_COSTS.clear()
    units._WORK_MEMOS.clear()


def _without_dram(machine) -> str:
    """The machine's identity as planning sees it: every field but the DRAM (and the record of overrides, whose
    effects are in the fields)."""
    if not dataclasses.is_dataclass(machine):
        return repr(machine)
    return repr(dataclasses.replace(machine, dram=None, overrides=()))


def minimal_traffic(counts) -> dict:
    """The step's minimal traffic (sim.traffic) from its `sim.counting.Counts`, carried on a SimResult."""
    return {"dram_bytes": int(counts.dram_bytes), "by_point": dict(counts.bytes_by_point),
            "by_role": dict(counts.bytes_by_role)}


def _add_energy(result, trace, machine, config, counts, storage) -> None:
    """The step's energy by component (sim.energy) on the result, where the machine has an energy model."""
    from sim.energy import energy_supported, step_energy

    if energy_supported(machine):
        e = step_energy(result, machine, config, trace, counts, storage)
        result.energy_j, result.energy_by_component = e.energy_j, dict(e.energy_by_component)
        if e.ops is not None and len(e.ops) == len(result.ops):  # the op table: each op's dynamic energy
            result.ops["energy_j"] = e.ops["energy_j"].to_numpy()


def simulate_policy(trace, machine, policy, total_steps: int = 1000, fidelity: str = "tile",
                    options: EngineOptions | None = None, cache: ResultCache | None = DEFAULT_CACHE
                    ) -> PolicySimResult:
    """A policy's step cost over `total_steps`: one simulation per distinct configuration of its timeline,
    averaged with the timeline's step fractions."""
    if isinstance(policy, str):
        from sim.policy import get_policy

        policy = get_policy(policy)
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    pairs = list(policy.timeline(total_steps))
    weight = sum(f for _, f in pairs)
    if not pairs or not weight > 0:
        raise ValueError(f"policy {policy.name!r} has an empty timeline")
    merged: dict = {}
    for cfg, frac in pairs:  # a configuration visited twice (cyclic) is simulated once
        merged[cfg] = merged.get(cfg, 0.0) + frac / weight
    local = cache if cache is not None else ResultCache()
    configs = [(cfg, frac, simulate(trace, machine, cfg, fidelity, options, local)) for cfg, frac in merged.items()]
    return PolicySimResult(policy=str(policy.name), total_steps=total_steps, configs=configs)


def _roofline_result(trace, machine, config) -> SimResult:
    """The analytic lower bound dressed as a SimResult: ops back to back, each max(compute, memory)."""
    import pandas as pd

    from sim.engine.plan import op_elements
    from sim.engine.result import OP_COLUMNS
    from sim.roofline import roofline

    wall0 = time.perf_counter()
    r = roofline(trace, machine, config)
    clock_hz = float(machine.clock_ghz) * 1e9
    rows, t = [], 0.0
    for i, (row, op) in enumerate(zip(r.ops.itertuples(index=False), trace.ops, strict=True)):
        dur = row.time_s * clock_hz
        rows.append({"index": i, "name": op.name, "kind": op.kind, "phase": op.phase, "layer": op.layer,
                     "unit": "array" if op.kind in ("gemm", "bmm") and op.macs else "vector",
                     "ready_cycle": t, "start_cycle": t, "compute_end_cycle": t + row.compute_s * clock_hz,
                     "end_cycle": t + dur, "compute_cycles": row.compute_s * clock_hz,
                     "read_bytes": int(row.read_bytes), "write_bytes": int(row.write_bytes),
                     "tiles": 1 if op_elements(trace, op) or op.macs else 0, "steps": 0})
        t += dur
    cycles = r.time_lower_bound_s * clock_hz
    c = r.counts
    compute_c, memory_c = r.compute_time_s * clock_hz, r.memory_time_s * clock_hz
    # each op overlaps its own compute and memory perfectly: per op, min(c, m) is overlap
    both = float((r.ops[["compute_s", "memory_s"]].min(axis=1)).sum()) * clock_hz
    stall = {"compute_overlap_dram": both, "compute_only": compute_c - both, "dram_only": memory_c - both,
             "idle": 0.0}
    return SimResult(
        workload=str(trace.workload), machine=str(machine.name), config_label=config.label, fidelity="roofline",
        clock_ghz=float(machine.clock_ghz), cycles=cycles, time_s=r.time_lower_bound_s, macs=int(c.macs),
        arith_bitops=int(c.arith_bitops), dram_bytes=int(c.dram_bytes), read_bytes=int(c.read_bytes),
        write_bytes=int(c.write_bytes), bytes_by_role=dict(c.bytes_by_role), bytes_by_point=dict(c.bytes_by_point),
        busy={"compute": compute_c / cycles if cycles else 0.0, "dram": memory_c / cycles if cycles else 0.0},
        stall_cycles=stall, events=0, wall_s=time.perf_counter() - wall0,
        ops=pd.DataFrame(rows, columns=OP_COLUMNS), intervals={},
        energy_j=None if r.energy_j != r.energy_j else float(r.energy_j),
        energy_by_component=dict(r.energy_by_component), minimal=minimal_traffic(c),
    )
