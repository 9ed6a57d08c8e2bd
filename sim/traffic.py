"""Two views of a step's DRAM traffic, side by side: minimal and tiled.

- **minimal** (`sim.counting`): every tensor written once by its producer and read once by each consumer, at its
  stored format. No machine can move less for this step and configuration.
- **tiled** (`sim.engine`, tile fidelity): what the engine moves on a given machine, where a GEMM whose operands do
  not fit its SRAM re-reads them once per tile of the other operand.

Their ratio is the *re-read factor* (>= 1). Ratios between policies can be counted over the whole step
(scope "step") or over q0..q3 traffic only (scope "dsq": published DSQ figures often count only the quantized
tensors, leaving out master weights, optimizer state and other activations).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sim.precision import DSQ_POINTS

SCOPES = ("step", "dsq")
BREAKDOWN_COLUMNS = ["policy", "by", "key", "minimal_bytes", "tiled_bytes", "reread_factor"]


def scope_bytes(bytes_by_point: Mapping[str, float], scope: str) -> float:
    """Bytes counted under `scope`: every point ("step") or q0..q3 only ("dsq")."""
    if scope not in SCOPES:
        raise ValueError(f"unknown traffic scope {scope!r}; valid: {', '.join(SCOPES)}")
    keys = DSQ_POINTS if scope == "dsq" else bytes_by_point.keys()
    return float(sum(bytes_by_point.get(k, 0) for k in keys))


def reread_factor(tiled_bytes: float, minimal_bytes: float) -> float:
    """Tiled over minimal traffic (NaN when nothing moves or the tiled view is missing)."""
    if minimal_bytes and tiled_bytes == tiled_bytes and tiled_bytes is not None:
        return float(tiled_bytes) / float(minimal_bytes)
    return float("nan")


def breakdown_rows(policy: str, minimal: Mapping[str, Mapping[str, float]],
                   tiled: Mapping[str, Mapping[str, float]] | None) -> list[dict]:
    """Rows of `BREAKDOWN_COLUMNS` for one policy; `minimal`/`tiled` map "point" and "role" to {key: bytes}."""
    rows = []
    for by in ("point", "role"):
        keys = dict.fromkeys([*minimal.get(by, {}), *((tiled or {}).get(by, {}))])
        for key in keys:
            lo = float(minimal.get(by, {}).get(key, 0.0))
            hi = float(tiled[by].get(key, 0.0)) if tiled is not None else float("nan")
            rows.append({"policy": policy, "by": by, "key": key, "minimal_bytes": lo, "tiled_bytes": hi,
                         "reread_factor": reread_factor(hi, lo)})
    return rows


def breakdown_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS)
