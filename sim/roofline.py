"""Roofline: an analytic lower bound on one training step's time on a machine under a precision configuration.

Per op: GEMMs run at `machine.peak_macs_per_s(bits_a, bits_b)` for their operand widths; every other op runs on the
machine's vector unit (`machine.vector_cycles(kind, elements)` at `machine.clock_ghz`, over the op's largest operand,
as the engine does), its work counted in elementary vector ops (cycles x `machine.vector.lanes`). Memory time is the
op's minimal DRAM traffic (see `sim.counting`) over `machine.dram_bw_gbps` (GB/s, 1e9 bytes/s). An op's lower-bound time
is max(compute, memory): it cannot finish sooner even with its compute and memory perfectly overlapped.

The step's lower bound must hold for any schedule that respects the trace's dependencies and lets independent ops
overlap (as the engine does), so it is the largest of
- the critical path: the longest dependency chain (`trace.dependencies()`) of per-op bounds;
- the total busy time of each shared resource: the MAC array (all GEMMs), the vector unit, the DRAM (all bytes).
`serial_time_s`, the sum of per-op bounds, is what the step would take if ops never overlapped one another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sim.counting import GEMM_KINDS, Counts, count
from sim.precision import PrecisionConfig

VECTOR_ROOF = "vector"


@dataclass(frozen=True)
class Roof:
    """A horizontal roof: peak work rate of one kind of unit; its ridge point is peak / bandwidth."""

    label: str             # "8x8-bit MAC", "vector"
    peak_ops_per_s: float  # MAC/s for GEMM roofs, element-ops/s for the vector roof
    unit: str              # "MAC" | "op"
    ridge_ops_per_byte: float


@dataclass
class RooflineResult:
    """Per-op roofline (`ops`) and step totals. Times are seconds."""

    workload: str
    machine: str
    config_label: str
    dram_bw_bytes_per_s: float
    time_lower_bound_s: float        # max(critical_path_s, array_time_s, vector_time_s, memory_time_s)
    compute_time_s: float            # sum over ops of compute_s (array + vector)
    memory_time_s: float             # sum over ops of memory_s
    compute_bound_fraction: float    # share of serial_time_s spent in compute-bound ops
    roofs: list[Roof]
    counts: Counts = field(repr=False)
    ops: pd.DataFrame = field(repr=False)
    serial_time_s: float = 0.0       # sum over ops of max(compute_s, memory_s): no overlap between ops
    critical_path_s: float = 0.0     # longest dependency chain of per-op bounds
    array_time_s: float = 0.0        # sum of GEMM compute_s
    vector_time_s: float = 0.0       # sum of vector-op compute_s
    energy_j: float = math.nan       # step energy (sim.energy.roofline_energy): minimal traffic, lower-bound time
    energy_by_component: dict[str, float] = field(default_factory=dict)  # joules, sim.energy.COMPONENTS
    dram_background_estimated: bool = True

    @property
    def overlapped_bound_s(self) -> float:
        """max(total compute, total memory): the looser bound if ops could overlap one another."""
        return max(self.compute_time_s, self.memory_time_s)

    def speedup_over(self, baseline: RooflineResult) -> float:
        """How many times faster this step's lower bound is than `baseline`'s."""
        return baseline.time_lower_bound_s / self.time_lower_bound_s

    def summary(self) -> dict[str, Any]:
        return {
            "workload": self.workload, "machine": self.machine, "config": self.config_label,
            "macs": self.counts.macs, "arith_bitops": self.counts.arith_bitops, "dram_bytes": self.counts.dram_bytes,
            "time_lower_bound_s": self.time_lower_bound_s, "serial_time_s": self.serial_time_s,
            "critical_path_s": self.critical_path_s, "array_time_s": self.array_time_s,
            "vector_time_s": self.vector_time_s, "compute_time_s": self.compute_time_s,
            "memory_time_s": self.memory_time_s, "compute_bound_fraction": self.compute_bound_fraction,
            "bytes_by_point": dict(self.counts.bytes_by_point), "bytes_by_role": dict(self.counts.bytes_by_role),
            "energy_j": self.energy_j, "energy_by_component": dict(self.energy_by_component),
            "dram_background_estimated": self.dram_background_estimated,
        }


def _op_elements(trace, op) -> int:
    """Elements a vector op streams through: its largest operand (a reduction reads more than it writes)."""
    sizes = [int(trace.access_elements(o)) for o in (*op.inputs, *op.outputs)]
    return max(sizes, default=0)


def critical_path_s(dependencies: list[tuple[int, ...]], times_s) -> float:
    """Longest chain of per-op times through the dependency DAG (ops are in program order)."""
    finish: list[float] = []
    for deps, t in zip(dependencies, times_s, strict=True):
        finish.append(max((finish[d] for d in deps), default=0.0) + float(t))
    return max(finish, default=0.0)


def roofline(trace, machine, config: PrecisionConfig, counts: Counts | None = None) -> RooflineResult:
    """Per-op and whole-step roofline of `trace` on `machine` under `config`."""
    from sim.storage import resolve

    storage = resolve(trace, config)
    trace = storage.trace  # dependencies and op sizes of the step as stored (copies equal to their source elided)
    counts = counts if counts is not None else count(trace, config, storage)
    bw = float(machine.dram_bw_gbps) * 1e9
    if not bw > 0:
        raise ValueError(f"machine {machine.name!r} has non-positive DRAM bandwidth {machine.dram_bw_gbps} GB/s")
    clock_hz = float(machine.clock_ghz) * 1e9
    ops = counts.ops.copy()
    compute_s, work, peak = [], [], []
    peaks_by_bits: dict[tuple[int, int], float] = {}
    lanes = int(machine.vector.lanes)
    vector_peak = lanes * clock_hz
    has_vector = False
    for row, op in zip(ops.itertuples(index=False), trace.ops, strict=True):
        if op.kind in GEMM_KINDS and row.macs > 0:
            key = (int(row.bits_a), int(row.bits_b))
            if key not in peaks_by_bits:
                peaks_by_bits[key] = float(machine.peak_macs_per_s(*key))
            p = peaks_by_bits[key]
            compute_s.append(row.macs / p)
            work.append(float(row.macs))
            peak.append(p)
        elif op.kind in GEMM_KINDS:  # a degenerate GEMM with no MACs: nothing to compute
            compute_s.append(0.0)
            work.append(0.0)
            peak.append(float("nan"))
        else:
            elements = _op_elements(trace, op)
            cycles = int(machine.vector_cycles(op.kind, elements)) if elements else 0
            compute_s.append(cycles / clock_hz)
            work.append(float(cycles * lanes))  # vector-unit elementary ops (ops per element x elements)
            peak.append(vector_peak)
            has_vector = has_vector or cycles > 0
    ops["compute_s"] = compute_s
    ops["memory_s"] = ops["dram_bytes"] / bw
    ops["time_s"] = ops[["compute_s", "memory_s"]].max(axis=1)
    ops["bound"] = ["compute" if c >= m else "memory" for c, m in zip(ops["compute_s"], ops["memory_s"], strict=True)]
    ops["work_ops"] = work
    ops["peak_ops_per_s"] = peak
    ops["intensity_ops_per_byte"] = [w / b if b > 0 else float("inf") for w, b in zip(work, ops["dram_bytes"],
                                                                                     strict=True)]
    ops["attainable_ops_per_s"] = [w / t if t > 0 else 0.0 for w, t in zip(work, ops["time_s"], strict=True)]
    total = float(ops["time_s"].sum())
    ops["time_share"] = ops["time_s"] / total if total > 0 else 0.0

    # One roof per distinct peak: operand widths the array runs at the same rate share a roof.
    widths_by_peak: dict[float, list[str]] = {}
    for (a, b), p in sorted(peaks_by_bits.items(), key=lambda kv: (-kv[0][0] * kv[0][1], kv[0])):
        widths_by_peak.setdefault(p, []).append(f"{a}x{b}")
    roofs = [Roof(f"{', '.join(w)}-bit MAC", p, "MAC", p / bw) for p, w in sorted(widths_by_peak.items())]
    if has_vector:
        roofs.append(Roof(VECTOR_ROOF, vector_peak, "op", vector_peak / bw))
    is_gemm = ops["kind"].isin(GEMM_KINDS) if "kind" in ops else pd.Series([o.kind in GEMM_KINDS for o in trace.ops])
    array_s = float(ops.loc[is_gemm.to_numpy(), "compute_s"].sum())
    vector_s = float(ops.loc[~is_gemm.to_numpy(), "compute_s"].sum())
    memory_s = float(ops["memory_s"].sum())
    path_s = critical_path_s(trace.dependencies(), ops["time_s"])
    bound_s = max(path_s, array_s, vector_s, memory_s)
    from sim.energy import StepEnergy, energy_supported, roofline_energy

    if energy_supported(machine):
        energy = roofline_energy(trace, machine, config, counts, bound_s)
        ops["energy_j"] = energy.ops["energy_j"].to_numpy()  # per op: dynamic energy (refresh/background: per step)
    else:
        energy = StepEnergy(math.nan, {}, True)
        ops["energy_j"] = math.nan
    return RooflineResult(
        workload=str(trace.workload), machine=str(machine.name), config_label=config.label,
        dram_bw_bytes_per_s=bw, time_lower_bound_s=bound_s,
        serial_time_s=total, critical_path_s=path_s, array_time_s=array_s, vector_time_s=vector_s,
        compute_time_s=float(ops["compute_s"].sum()), memory_time_s=float(ops["memory_s"].sum()),
        compute_bound_fraction=float(ops.loc[ops["bound"] == "compute", "time_s"].sum() / total) if total else 0.0,
        roofs=roofs, counts=counts, ops=ops, energy_j=energy.energy_j,
        energy_by_component=energy.energy_by_component, dram_background_estimated=energy.dram_background_estimated,
    )


def __getattr__(name: str) -> Any:
    """`compare`, `compare_traffic` and `COMPARE_COLUMNS` moved to `sim.compare`; still importable from here."""
    if name in ("compare", "compare_traffic", "COMPARE_COLUMNS"):
        from sim import compare as _compare

        return getattr(_compare, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
