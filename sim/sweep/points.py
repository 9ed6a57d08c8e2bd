"""The engine-backed sweep point: resolve names, apply the machine overrides, cost the policy's timeline."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sim.sweep.grid import SweepPoint, parse_array


@lru_cache(maxsize=16)
def _trace(workload: str, batch: int | None, seq_len: int | None):
    from workloads import resolve_workload

    return resolve_workload(workload, batch=batch, seq_len=seq_len)


def point_machine(point: SweepPoint):
    """The point's machine: the named preset with its DRAM bandwidth, array and SRAM overrides."""
    from hwmodels.machine import get_machine

    overrides: dict = {"dram_bw_scale": point.dram_bw_scale}
    if point.array is not None:
        overrides["array"] = parse_array(point.array)
    if point.sram_kb is not None:
        overrides["sram_kb"] = point.sram_kb
    return get_machine(point.hw).with_overrides(**overrides)


def validate_points(points: Sequence[SweepPoint]) -> None:
    """Resolve every name and override once, so bad input fails before any worker starts."""
    from sim.policy import get_policy

    for workload, batch, seq_len in {(p.workload, p.batch, p.seq_len) for p in points}:
        _trace(workload, batch, seq_len)
    for policy in {p.policy for p in points}:
        get_policy(policy)
    seen = set()
    for p in points:
        key = (p.hw, p.dram_bw_scale, p.array, p.sram_kb)
        if key not in seen:
            seen.add(key)
            point_machine(p)


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
