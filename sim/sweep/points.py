"""The engine-backed sweep point: resolve names, apply the machine overrides, cost the policy's timeline."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sim.sweep.grid import SweepPoint, parse_array


@lru_cache(maxsize=16)
def _trace(workload: str, batch: int | None, seq_len: int | None):
    from sim.limits import check_trace
    from workloads import resolve_workload

    trace = resolve_workload(workload, batch=batch, seq_len=seq_len)
    check_trace(trace)
    return trace


def point_machine(point: SweepPoint):
    """The point's machine: the named preset with its DRAM bandwidth, array and SRAM overrides."""
    from hwmodels.machine import get_machine

    overrides: dict = {"dram_bw_scale": point.dram_bw_scale}
    if point.array is not None:
        overrides["array"] = parse_array(point.array)
    if point.sram_kb is not None:
        overrides["sram_kb"] = point.sram_kb
    from sim.limits import check_overrides

    check_overrides(**overrides)
    return get_machine(point.hw).with_overrides(**overrides)


def validate_points(points: Sequence[SweepPoint]) -> None:
    """Resolve every name and override, and plan every (workload, machine, configuration) the grid will simulate,
    so bad input (an unknown name, an SRAM too small for a tile ...) fails in one line before anything is written
    or any worker starts. Planning is cheap (~0.1 s per configuration); the simulation itself is not run."""
    from sim.engine import EngineOptions
    from sim.engine.machine_view import MachineView
    from sim.engine.plan import plan_trace
    from sim.policy import get_policy
    from sim.roofline import roofline

    for workload, batch, seq_len in {(p.workload, p.batch, p.seq_len) for p in points}:
        _trace(workload, batch, seq_len)
    configs = {}
    for policy, steps in {(p.policy, p.steps) for p in points}:
        configs[policy, steps] = list(dict.fromkeys(c for c, _ in get_policy(policy).timeline(steps)))
    machines = {}
    for p in points:
        key = (p.hw, p.dram_bw_scale, p.array, p.sram_kb)
        if key not in machines:
            machines[key] = point_machine(p)
    max_steps = EngineOptions().max_steps
    planned = set()
    for p in points:
        machine = machines[p.hw, p.dram_bw_scale, p.array, p.sram_kb]
        trace = _trace(p.workload, p.batch, p.seq_len)
        for config in configs[p.policy, p.steps]:
            # plans do not depend on the DRAM bandwidth; the roofline needs no SRAM fit
            key = (p.workload, p.batch, p.seq_len, p.hw, p.array, p.sram_kb, config, p.fidelity == "roofline")
            if key in planned:
                continue
            planned.add(key)
            if p.fidelity == "roofline":
                roofline(trace, machine, config)
            else:
                plan_trace(trace, config, MachineView(machine), max_steps)


def estimate_line(points: Sequence[SweepPoint], workers: int) -> str:
    """The transaction-level time estimate of a grid: each point's DRAM bursts at the measured burst rate plus the
    engine's own costs (`sim.progress.transaction_work`, as `dsqsim simulate` estimates); neither depends on the DRAM
    bandwidth axis, so each is measured once per workload, machine shape and configuration."""
    from sim.policy import get_policy
    from sim.progress import duration, measured_burst_rate, transaction_work

    bursts, engine_s, rate, seen = 0, 0.0, None, {}
    for p in points:
        machine = point_machine(p)
        rate = rate or measured_burst_rate(machine.dram)
        for config in dict.fromkeys(c for c, _ in get_policy(p.policy).timeline(p.steps)):
            key = (p.workload, p.batch, p.seq_len, p.hw, p.array, p.sram_kb, config)
            if key not in seen:
                seen[key] = transaction_work(_trace(p.workload, p.batch, p.seq_len), machine, config)
            bursts += seen[key][0]
            engine_s += seen[key][1]
    seconds = (bursts / rate + engine_s) / max(1, min(workers, len(points)))
    return (f"transaction fidelity: {bursts:.3g} DRAM bursts at ~{rate:.3g} bursts/s measured here: about "
            f"{duration(seconds)} on {workers} worker(s)")


def evaluate_point(point: SweepPoint) -> dict:
    """Per-step figures of the point's policy averaged over its schedule of `point.steps` steps."""
    from sim.policy import get_policy
    from sim.study.costing import cost_timeline

    machine = point_machine(point)
    timeline = get_policy(point.policy).timeline(point.steps)
    cost = cost_timeline(_trace(point.workload, point.batch, point.seq_len), machine, timeline, point.fidelity)
    # The machine as simulated (the axis columns leave None for "the preset's own").
    actual = {"dram_bw_gbps": float(machine.dram_bw_gbps), "sram_total_kb": float(machine.sram.total_kb),
              "array_size": f"{machine.array.rows}x{machine.array.cols}" if machine.array is not None else None}
    return {**cost.figures, **actual}
