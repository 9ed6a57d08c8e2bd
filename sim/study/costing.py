"""Cost a precision timeline on a workload and machine: one engine run per distinct configuration (cached), weighted
by the fraction of training steps spent in it.

`step_figures` is the per-step average (what a sweep point reports); a study multiplies by the number of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sim.policy.timeline import work_weights
from sim.precision import PrecisionConfig

# Figures averaged over steps with the step fractions (additive per step).
ADDITIVE = ("cycles", "time_s", "macs", "arith_bitops", "dram_bytes", "read_bytes", "write_bytes")
STALL_KEYS = ("compute_overlap_dram", "compute_only", "dram_only", "idle")
FIDELITY_COST = ("transaction", "tile", "roofline")  # slowest first


@dataclass
class TimelineCost:
    """A timeline's step cost. `configs` has one row per distinct configuration; `results` the engine results."""

    figures: dict[str, float]                       # per-step averages, flat (see `step_figures`)
    configs: pd.DataFrame
    results: list[tuple[PrecisionConfig, float, Any]] = field(repr=False)  # (config, fraction, SimResult)


def step_figures(weighted: Iterable[tuple[float, Any]]) -> dict[str, float]:
    """Per-step averages over (fraction, SimResult) pairs whose fractions sum to 1 (more with a recorded timeline's
    extra passes: `cost_timeline`).

    Additive figures (cycles, time_s, bytes, bit-operations, `bytes_role_<role>`, `bytes_point_<q>`,
    `stall_<kind>_s`, `busy_<unit>_s`) are fraction-weighted sums; `compute_busy`/`dram_busy` are fractions of the
    total simulated time.
    """
    weighted = list(weighted)
    out: dict[str, float] = {k: 0.0 for k in ADDITIVE}
    compute_busy_s = dram_busy_s = 0.0
    for frac, r in weighted:
        for k in ADDITIVE:
            out[k] += frac * float(getattr(r, k))
        for role, b in r.bytes_by_role.items():
            out[f"bytes_role_{role}"] = out.get(f"bytes_role_{role}", 0.0) + frac * float(b)
        for point, b in r.bytes_by_point.items():
            key = f"bytes_point_{point if point else 'other'}"
            out[key] = out.get(key, 0.0) + frac * float(b)
        cycle_s = 1.0 / (r.clock_ghz * 1e9)
        for kind in STALL_KEYS:
            out[f"stall_{kind}_s"] = out.get(f"stall_{kind}_s", 0.0) + frac * r.stall_cycles.get(kind, 0.0) * cycle_s
        for unit, busy_frac in r.busy.items():
            if not unit.startswith("dram_ch"):  # per-channel occupancy stays in the engine result
                out[f"busy_{unit}_s"] = out.get(f"busy_{unit}_s", 0.0) + frac * busy_frac * r.time_s
        compute_busy_s += frac * r.compute_busy * r.time_s
        dram_busy_s += frac * r.dram_busy * r.time_s
    out["compute_busy"] = compute_busy_s / out["time_s"] if out["time_s"] else 0.0
    out["dram_busy"] = dram_busy_s / out["time_s"] if out["time_s"] else 0.0
    out["configs"] = len(weighted)
    out["events"] = float(sum(r.events for _, r in weighted))
    out["sim_wall_s"] = float(sum(r.wall_s for _, r in weighted))
    return out


def phase_spans_s(result) -> dict[str, float]:
    """Wall span of each training phase in one simulated step (first op start to last op end), seconds."""
    ops = result.ops
    if ops.empty:
        return {}
    spans = ops.groupby("phase", sort=False).agg(start=("start_cycle", "min"), end=("end_cycle", "max"))
    return {str(p): float(r.end - r.start) / (result.clock_ghz * 1e9) for p, r in spans.iterrows()}


def cost_timeline(trace, machine, pairs: Iterable[tuple[PrecisionConfig, float]], fidelity: str = "tile",
                  cache=None, minimal: bool = True, energy: bool = True) -> TimelineCost:
    """Simulate each distinct configuration of `pairs` ((config, fraction of steps), e.g. a `Timeline`) once.
    `minimal`: also count each configuration's minimal traffic (`min_*` figures; machine-independent, so a
    re-costing of the same timeline on another machine can skip it). `energy`: also the step's energy
    (`energy_j` and `energy_<component>_j`, `sim.energy.step_energy`) where the machine has an energy model."""
    from sim.engine import DEFAULT_CACHE, simulate

    # A recorded timeline's extra passes (shadow gradients, rolled-back steps) are work too: weights sum above 1
    results = [(c, f, simulate(trace, machine, c, fidelity, cache=cache or DEFAULT_CACHE))
               for c, f in work_weights(pairs)]
    from sim.counting import count
    from sim.energy import energy_supported, step_energy

    energy = energy and energy_supported(machine)
    minimal_by: dict[PrecisionConfig, dict[str, float]] = {}
    for c, _, r in results:  # the engine's result carries both (results cached by older versions may not)
        stale = (minimal and r.minimal is None) or (energy and getattr(r, "energy_j", None) is None)
        counts = count(trace, c) if stale else None
        if minimal and r.minimal is None:
            from sim.engine import minimal_traffic

            r.minimal = minimal_traffic(counts)
        if energy and getattr(r, "energy_j", None) is None:
            e = step_energy(r, machine, c, trace, counts)
            r.energy_j, r.energy_by_component = e.energy_j, dict(e.energy_by_component)
        minimal_by[c] = _minimal_traffic(r.minimal) if minimal else {}
        if energy:
            minimal_by[c].update({"energy_j": r.energy_j,
                                  **{f"energy_{k}_j": v for k, v in r.energy_by_component.items()}})
    rows = [{"config": c.label, "fraction": f, **{k: getattr(r, k) for k in ADDITIVE},
             "min_dram_bytes": minimal_by[c].get("min_dram_bytes"), "compute_busy": r.compute_busy,
             "dram_busy": r.dram_busy, **c.to_dict()} for c, f, r in results]
    figures = step_figures((f, r) for _, f, r in results)
    for c, f, _ in results:  # minimal traffic (sim.traffic) beside the engine's tiled bytes; energy
        for k, v in minimal_by[c].items():
            figures[k] = figures.get(k, 0.0) + f * v
    return TimelineCost(figures=figures, configs=pd.DataFrame(rows), results=results)


def _minimal_traffic(m: dict) -> dict[str, float]:
    """Figures of a result's minimal traffic (`SimResult.minimal`): `min_dram_bytes`, `min_bytes_point_<q>`,
    `min_bytes_role_<role>`."""
    out = {"min_dram_bytes": float(m["dram_bytes"])}
    out.update({f"min_bytes_point_{k}": float(v) for k, v in m["by_point"].items()})
    out.update({f"min_bytes_role_{k}": float(v) for k, v in m["by_role"].items()})
    return out


def _simulate_into(trace, machine, config, fidelity: str, cache_dir: str) -> None:
    from sim.engine import ResultCache, simulate

    simulate(trace, machine, config, fidelity, cache=ResultCache(cache_dir))


def prefetch(trace, jobs: Iterable[tuple[Any, PrecisionConfig, str]], cache, workers: int,
             on_done: Callable[[], None] | None = None) -> None:
    """Simulate (machine, config, fidelity) jobs `workers` at a time into `cache` (a ResultCache with a directory),
    so later `cost_timeline` calls with that cache are hits. Jobs already cached are skipped by the engine.
    `on_done()` is called as each job finishes (in process, one after another, when there is no pool)."""
    jobs = list({(repr(m), c, f): (m, c, f) for m, c, f in jobs}.values())
    if workers <= 1 or len(jobs) <= 1 or cache is None or cache.directory is None:
        if on_done is None or cache is None:
            return  # nothing to gain: cost_timeline simulates them in process
        from sim.engine import simulate

        for m, c, f in jobs:  # what cost_timeline would do next, one by one, so progress can be shown
            simulate(trace, m, c, f, cache=cache)
            on_done()
        return
    from concurrent.futures import as_completed

    from sim.lifecycle import worker_pool

    # Slowest fidelity first, so the pool ends evenly.
    jobs.sort(key=lambda j: FIDELITY_COST.index(j[2]) if j[2] in FIDELITY_COST else len(FIDELITY_COST))
    with worker_pool(min(workers, len(jobs))) as pool:  # workers die with this process
        for fut in as_completed([pool.submit(_simulate_into, trace, m, c, f, str(cache.directory))
                                 for m, c, f in jobs]):
            fut.result()
            if on_done is not None:
                on_done()

