"""Long-format tables of a study, shaped for `reports.plots` (see that module's docstring)."""

from __future__ import annotations

import pandas as pd

from sim.formats import get_format
from sim.precision import DSQ_POINTS

ROLE_PREFIX, POINT_PREFIX, BUSY_PREFIX, STALL_PREFIX = "bytes_role_", "bytes_point_", "busy_", "stall_"


def timeline_frame(policy: str, timeline) -> pd.DataFrame:
    """`Timeline.to_frame()` plus `policy` and the storage bits per element at q0..q3 (`q0_bits`...)."""
    df = timeline.to_frame()
    for q in DSQ_POINTS:
        df[f"{q}_bits"] = [get_format(name).bits_per_element for name in df[q]]
    df.insert(0, "policy", policy)
    return df


def traffic_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """Total DRAM bytes per policy, by tensor role and by DSQ point (`other`: outside q0..q3), in both views of
    `sim.traffic`: `dram_bytes` as the engine moves them (tiled), `minimal_bytes`, and their `reread_factor`."""
    from sim.traffic import reread_factor

    rows = []
    for rec in summary.to_dict("records"):
        for col, value in rec.items():
            for prefix, by in ((ROLE_PREFIX, "role"), (POINT_PREFIX, "point")):
                if col.startswith(prefix) and pd.notna(value):
                    key = col[len(prefix):]
                    lo = rec.get(f"min_{col}", 0.0)
                    lo = 0.0 if pd.isna(lo) else float(lo)
                    rows.append({"policy": rec["policy"], "by": by, "key": key, "dram_bytes": value,
                                 "minimal_bytes": lo, "reread_factor": reread_factor(value, lo)})
    return pd.DataFrame(rows, columns=["policy", "by", "key", "dram_bytes", "minimal_bytes", "reread_factor"])


def busy_frame(summary: pd.DataFrame, phase_spans: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Simulated time of the whole run per policy: busy time by unit, time split by compute/DRAM overlap, and the
    span of each training phase (`phase_spans[policy]`: phase -> seconds over the run)."""
    rows = []
    for rec in summary.to_dict("records"):
        for col, value in rec.items():
            if not pd.notna(value):
                continue
            if col.startswith(BUSY_PREFIX) and col.endswith("_s"):
                rows.append({"policy": rec["policy"], "by": "unit", "key": col[len(BUSY_PREFIX):-2], "busy_s": value})
            elif col.startswith(STALL_PREFIX) and col.endswith("_s"):
                rows.append({"policy": rec["policy"], "by": "overlap", "key": col[len(STALL_PREFIX):-2],
                             "busy_s": value})
        for phase, seconds in phase_spans.get(rec["policy"], {}).items():
            rows.append({"policy": rec["policy"], "by": "phase", "key": phase, "busy_s": seconds})
    return pd.DataFrame(rows, columns=["policy", "by", "key", "busy_s"])

