"""Policies side by side: each policy's roofline bound, minimal and tiled DRAM traffic and energy per training step,
averaged over its timeline (`compare`, `compare_traffic`; the `dsqsim compare` command)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from sim.policy.timeline import work_weights
from sim.precision import PrecisionConfig
from sim.roofline import RooflineResult, roofline

COMPARE_COLUMNS = ["policy", "macs", "arith_bitops", "dram_bytes", "dram_bytes_tiled", "reread_factor",
                   "dram_bytes_dsq", "dram_bytes_dsq_tiled", "time_lower_bound_s", "speedup", "traffic_reduction",
                   "traffic_reduction_dsq", "traffic_reduction_tiled", "traffic_reduction_dsq_tiled",
                   "energy_j", "energy_ratio", "energy_j_tiled"]


def _weighted_configs(policy, total_steps: int, timeline=None) -> list[tuple[PrecisionConfig, float]]:
    """(config, fraction of steps) pairs: a recorded timeline if given, else the policy's own schedule, then its
    extra passes (fractions then sum above 1)."""
    if isinstance(policy, PrecisionConfig):
        return [(policy, 1.0)]
    timeline = timeline if timeline is not None else policy.timeline(total_steps)
    try:  # a Timeline (its extra passes add to the step's work) or a plain list of pairs
        return work_weights(timeline)
    except ValueError:
        raise ValueError(f"policy {getattr(policy, 'name', policy)!r} has an empty timeline") from None


def compare(trace, machine, policies, total_steps: int = 1000, timelines: dict | None = None,
            tiled: bool = True) -> pd.DataFrame:
    """One row per policy; see `compare_traffic`, which also returns the traffic breakdown."""
    return compare_traffic(trace, machine, policies, total_steps, timelines, tiled)[0]


def compare_traffic(trace, machine, policies, total_steps: int = 1000, timelines: dict | None = None,
                    tiled: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per policy, traffic breakdown): policies are Policy objects, PrecisionConfigs, or names/paths for
    `sim.policy.get_policy`. (a Policy, a PrecisionConfig, or a name/path for `sim.policy.get_policy`).

    A time-adaptive policy is averaged over its timeline, weighted by the fraction of steps at each configuration:
    its schedule over `total_steps`, or the recorded `timelines[policy_name]` when given. `speedup` is the first
    policy's average lower-bound step time over this policy's. MACs, bit-operations and bytes are averages of
    per-step integers, rounded to whole units; `configs` is the number of distinct configurations averaged.

    DRAM traffic in both views of `sim.traffic`: `dram_bytes` minimal, `dram_bytes_tiled` as the engine moves it at
    tile fidelity (`tiled=False` skips the engine: NaN), `reread_factor` their ratio; `_dsq` columns count q0..q3
    traffic only. `traffic_reduction*` are the first policy's bytes over this one's in each view and scope.
    Energy (`sim.energy`, joules per step): `energy_j` at the roofline, `energy_j_tiled` of the engine's tiled step,
    `energy_ratio` = energy_j / the first policy's (< 1: less energy), `energy_by_component` (roofline) a dict.
    The breakdown has one row per policy and DSQ point or tensor role (`sim.traffic.BREAKDOWN_COLUMNS`).
    """
    from sim.energy import COMPONENTS, step_energy
    from sim.traffic import breakdown_frame, breakdown_rows, reread_factor, scope_bytes

    if not policies:
        raise ValueError("compare needs at least one policy")
    timelines = timelines or {}
    cache: dict[PrecisionConfig, RooflineResult] = {}
    sims: dict[PrecisionConfig, Any] = {}
    tiled_energy: dict[PrecisionConfig, float] = {}
    rows, breakdown = [], []
    for pol in policies:
        if isinstance(pol, str):
            from sim.policy import get_policy

            pol = get_policy(pol)
        name = pol.label if isinstance(pol, PrecisionConfig) else pol.name
        weighted = _weighted_configs(pol, total_steps, timelines.get(name))
        pairs = []
        for config, frac in weighted:
            if config not in cache:
                cache[config] = roofline(trace, machine, config)
            if tiled and config not in sims:
                from sim.engine import simulate

                sims[config] = simulate(trace, machine, config, "tile")
                tiled_energy[config] = step_energy(sims[config], machine, config, trace).energy_j \
                    if not math.isnan(cache[config].energy_j) else math.nan
            pairs.append((cache[config], sims.get(config), frac))

        def avg(value, pairs=pairs) -> float:
            return math.fsum(frac * value(r, s) for r, s, frac in pairs)

        def avg_dict(get, pairs=pairs) -> dict[str, float]:
            out: dict[str, float] = {}
            for r, s, frac in pairs:
                for k, v in get(r, s).items():
                    out[k] = out.get(k, 0.0) + frac * float(v)
            return out

        minimal = {"point": avg_dict(lambda r, s: r.counts.bytes_by_point),
                   "role": avg_dict(lambda r, s: r.counts.bytes_by_role)}
        tiled_views = {"point": avg_dict(lambda r, s: s.bytes_by_point),
                       "role": avg_dict(lambda r, s: s.bytes_by_role)} if tiled else None
        breakdown += breakdown_rows(name, minimal, tiled_views)
        # Counts are integers per step: their averages are rounded to whole units (no spurious 1e-8 residues).
        row = {"policy": name, "macs": round(avg(lambda r, s: r.counts.macs)),
               "arith_bitops": round(avg(lambda r, s: r.counts.arith_bitops)),
               "dram_bytes": round(avg(lambda r, s: r.counts.dram_bytes)),
               "dram_bytes_tiled": round(avg(lambda r, s: s.dram_bytes)) if tiled else float("nan"),
               "dram_bytes_dsq": round(scope_bytes(minimal["point"], "dsq")),
               "dram_bytes_dsq_tiled": round(scope_bytes(tiled_views["point"], "dsq")) if tiled else float("nan"),
               "time_lower_bound_s": avg(lambda r, s: r.time_lower_bound_s)}
        row["reread_factor"] = reread_factor(row["dram_bytes_tiled"], row["dram_bytes"])
        # energy (sim.energy): roofline (minimal traffic, lower-bound time) and, when simulated, the tiled step
        row["energy_j"] = avg(lambda r, s: r.energy_j)
        row["energy_j_tiled"] = math.fsum(f * tiled_energy[c] for c, f in weighted) if tiled else float("nan")
        row["energy_by_component"] = {k: avg(lambda r, s, k=k: r.energy_by_component.get(k, math.nan))
                                      for k in COMPONENTS}
        row["configs"] = len(weighted)
        rows.append(row)
    df = pd.DataFrame(rows)
    df["speedup"] = df["time_lower_bound_s"].iloc[0] / df["time_lower_bound_s"]
    for col, base in (("traffic_reduction", "dram_bytes"), ("traffic_reduction_dsq", "dram_bytes_dsq"),
                      ("traffic_reduction_tiled", "dram_bytes_tiled"),
                      ("traffic_reduction_dsq_tiled", "dram_bytes_dsq_tiled")):
        df[col] = df[base].iloc[0] / df[base]
    df["energy_ratio"] = df["energy_j"] / df["energy_j"].iloc[0]  # this policy's step energy over the first's
    return df[[*COMPARE_COLUMNS, "configs", "energy_by_component"]], breakdown_frame(breakdown)
