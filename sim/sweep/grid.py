"""The what-if grid: one `SweepPoint` per combination of the swept axes."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from hwmodels.machine import parse_array_size as parse_array  # re-exported: sweep axes are spelled like --array

# Swept axes, named as their CLI options (and as the result columns).
AXES = ("workload", "hw", "policy", "dram_bw_scale", "array", "sram_kb")
FIDELITIES = ("roofline", "tile", "transaction", "sampled")  # as sim.engine.FIDELITIES (a test checks they agree)


@dataclass(frozen=True)
class SweepPoint:
    """One what-if point. `array`/`sram_kb` None keep the machine's own; `steps` is the policy-schedule horizon."""

    workload: str
    hw: str
    policy: str
    dram_bw_scale: float = 1.0
    array: str | None = None          # "ROWSxCOLS", e.g. "32x32"
    sram_kb: float | None = None
    fidelity: str = "tile"
    batch: int | None = None
    seq_len: int | None = None
    steps: int = 1000

    def key(self) -> str:
        """Stable identity of the point: a finished point with the same key is never recomputed on resume."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)


def _positive(name: str, values: Iterable[float]) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name} values must be positive numbers, got {v!r}") from None
        if not f > 0 or f == float("inf"):
            raise ValueError(f"{name} values must be positive finite numbers, got {v!r}")
        out.append(f)
    return out


def _names(axis: str, values: str | Sequence[str]) -> list[str]:
    items = [values] if isinstance(values, str) else list(values)
    items = [s.strip() for item in items for s in str(item).split(",") if s.strip()]
    if not items:
        raise ValueError(f"{axis}: expected at least one name")
    return list(dict.fromkeys(items))  # de-duplicate, keep order


def build_grid(
    workloads: str | Sequence[str],
    hws: str | Sequence[str],
    policies: str | Sequence[str],
    dram_bw_scales: Sequence[float] = (1.0,),
    arrays: Sequence[str | None] = (None,),
    sram_kbs: Sequence[float | None] = (None,),
    fidelity: str = "tile",
    batch: int | None = None,
    seq_len: int | None = None,
    steps: int = 1000,
) -> list[SweepPoint]:
    """The Cartesian product of the axes, in a stable order (policy varies fastest within a machine point)."""
    if fidelity not in FIDELITIES:
        raise ValueError(f"unknown fidelity {fidelity!r}; choose from {', '.join(FIDELITIES)}")
    from sim.limits import check_steps

    check_steps(steps)
    scales = _positive("dram_bw_scale", dram_bw_scales)
    arrays = [None if a is None else "{}x{}".format(*parse_array(str(a))) for a in arrays]
    srams = [None if s is None else v for s in sram_kbs for v in ([None] if s is None else _positive("sram_kb", [s]))]
    for axis, values in (("dram_bw_scale", scales), ("array", arrays), ("sram_kb", srams)):
        if not values:
            raise ValueError(f"{axis}: expected at least one value")
    combos = itertools.product(
        _names("workload", workloads), _names("hw", hws), scales, arrays, srams, _names("policy", policies)
    )
    points = [
        SweepPoint(w, h, p, s, a, k, fidelity, batch, seq_len, int(steps)) for w, h, s, a, k, p in combos
    ]
    return list(dict.fromkeys(points))
