"""Results of the engine: one configuration (`SimResult`) and a policy averaged over its timeline
(`PolicySimResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

OP_COLUMNS = ["index", "name", "kind", "phase", "layer", "unit", "ready_cycle", "start_cycle", "compute_end_cycle",
              "end_cycle", "compute_cycles", "read_bytes", "write_bytes", "tiles", "steps"]


@dataclass
class SimResult:
    """One training step of a trace on a machine under one precision configuration.

    Times are in machine clock cycles unless the name says `_s`. `busy` maps each unit, DMA engine, the DRAM and
    each DRAM channel to the fraction of the step it was busy (a channel: data-bus occupancy of its bytes).
    `stall_cycles` splits the step into cycles where compute and DRAM overlap, compute runs alone, only DRAM is busy
    (compute waits on DRAM) and neither is busy (dependency and latency gaps).
    """

    workload: str
    machine: str
    config_label: str
    fidelity: str
    clock_ghz: float
    cycles: float
    time_s: float
    macs: int
    arith_bitops: int
    dram_bytes: int
    read_bytes: int
    write_bytes: int
    bytes_by_role: dict[str, int]
    bytes_by_point: dict[str, int]
    busy: dict[str, float]
    stall_cycles: dict[str, float]
    events: int
    wall_s: float
    ops: pd.DataFrame = field(repr=False)
    intervals: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict, repr=False)
    dram_events: int = 0   # the DRAM model's share of `events` (bulk: row visits and refresh steps it computed)
    energy_j: float | None = None   # the step's energy (sim.energy.step_energy); None without an energy model
    energy_by_component: dict[str, float] = field(default_factory=dict)
    minimal: dict | None = None     # the step's minimal traffic (sim.traffic): {"dram_bytes", "by_point", "by_role"}
    sampled: Any = None    # sampled fidelity: sim.engine.sampled.SampledEstimate (estimate, 95 % interval, sample)

    @property
    def compute_busy(self) -> float:
        """Fraction of the step in which some compute unit was computing."""
        return self._frac("compute_overlap_dram") + self._frac("compute_only")

    @property
    def dram_busy(self) -> float:
        """Fraction of the step in which the DRAM was moving data."""
        return self._frac("compute_overlap_dram") + self._frac("dram_only")

    def _frac(self, key: str) -> float:
        return float(self.stall_cycles.get(key, 0.0)) / self.cycles if self.cycles else 0.0

    def to_dict(self, include_ops: bool = False) -> dict[str, Any]:
        d = {
            "workload": self.workload, "machine": self.machine, "config": self.config_label,
            "fidelity": self.fidelity, "clock_ghz": self.clock_ghz, "cycles": self.cycles, "time_s": self.time_s,
            "macs": self.macs, "arith_bitops": self.arith_bitops, "dram_bytes": self.dram_bytes,
            "read_bytes": self.read_bytes, "write_bytes": self.write_bytes,
            "bytes_by_role": dict(self.bytes_by_role), "bytes_by_point": dict(self.bytes_by_point),
            "compute_busy": self.compute_busy, "dram_busy": self.dram_busy, "busy": dict(self.busy),
            "stall_cycles": dict(self.stall_cycles), "events": self.events, "dram_events": self.dram_events,
            "wall_s": self.wall_s, "energy_j": self.energy_j,
            "energy_by_component": dict(self.energy_by_component), "minimal": self.minimal,
        }
        if self.sampled is not None:
            d["sampled"] = self.sampled.to_dict()
        if include_ops:
            d["ops"] = self.ops.to_dict(orient="records")
        return d


@dataclass
class PolicySimResult:
    """A policy's step cost averaged over its timeline: each distinct configuration simulated once, weighted by the
    fraction of training steps spent in it."""

    policy: str
    total_steps: int
    configs: list[tuple[Any, float, SimResult]]   # (PrecisionConfig, fraction of steps, result)

    def _avg(self, attr: str) -> float:
        return float(sum(f * getattr(r, attr) for _, f, r in self.configs))

    @property
    def cycles(self) -> float:
        return self._avg("cycles")

    @property
    def time_s(self) -> float:
        return self._avg("time_s")

    @property
    def dram_bytes(self) -> float:
        return self._avg("dram_bytes")

    @property
    def arith_bitops(self) -> float:
        return self._avg("arith_bitops")

    @property
    def compute_busy(self) -> float:
        """Time-weighted: the fraction of all simulated step time in which compute was busy."""
        return self._time_weighted("compute_busy")

    @property
    def dram_busy(self) -> float:
        return self._time_weighted("dram_busy")

    def _time_weighted(self, attr: str) -> float:
        total = self.cycles
        return float(sum(f * r.cycles * getattr(r, attr) for _, f, r in self.configs) / total) if total else 0.0

    @property
    def events(self) -> int:
        return int(sum(r.events for _, _, r in self.configs))

    @property
    def wall_s(self) -> float:
        return float(sum(r.wall_s for _, _, r in self.configs))

    def to_dict(self) -> dict[str, Any]:
        first = self.configs[0][2]
        return {
            "workload": first.workload, "machine": first.machine, "policy": self.policy, "fidelity": first.fidelity,
            "total_steps": self.total_steps, "cycles": self.cycles, "time_s": self.time_s,
            "dram_bytes": self.dram_bytes, "arith_bitops": self.arith_bitops, "compute_busy": self.compute_busy,
            "dram_busy": self.dram_busy, "events": self.events, "wall_s": self.wall_s,
            "configs": [{"config": r.config_label, "fraction": f, "cycles": r.cycles, "time_s": r.time_s,
                         "dram_bytes": r.dram_bytes, "arith_bitops": r.arith_bitops,
                         "compute_busy": r.compute_busy, "dram_busy": r.dram_busy, "events": r.events,
                         "dram_events": r.dram_events, "wall_s": r.wall_s} for _, f, r in self.configs],
        }
