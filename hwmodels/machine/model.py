"""`Machine`: compute units + SRAM buffers + a DRAM + a clock; one object every simulator level reads."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from hwmodels.compute import DATAFLOWS, GemmResult, PrecisionLaw, ThroughputUnit, VectorUnit, systolic_gemm
from hwmodels.compute._checks import positive_int
from hwmodels.compute.energy import ComputeEnergy
from hwmodels.compute.precision import check_bits
from hwmodels.dram import DramSpec


@dataclass(frozen=True)
class ArraySpec:
    """An R x C systolic MAC array with one dataflow and a precision law for its MACs."""

    rows: int
    cols: int
    dataflow: str = "os"
    law: PrecisionLaw = field(default_factory=PrecisionLaw)

    def __post_init__(self) -> None:
        for key in ("rows", "cols"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"array {key} must be a positive integer, got {value!r}")
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"unknown dataflow {self.dataflow!r}; valid: {', '.join(DATAFLOWS)}")


@dataclass(frozen=True)
class SramSpec:
    """Double-buffered on-chip buffers for A, B and the output, in kB (1024 bytes) each."""

    a_kb: float
    b_kb: float
    out_kb: float

    def __post_init__(self) -> None:
        for key in ("a_kb", "b_kb", "out_kb"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not (value > 0 and math.isfinite(value)):
                raise ValueError(f"sram {key} must be a positive number, got {value!r}")

    @property
    def total_kb(self) -> float:
        return self.a_kb + self.b_kb + self.out_kb

    def scaled_to(self, total_kb: float) -> SramSpec:
        f = total_kb / self.total_kb
        return SramSpec(self.a_kb * f, self.b_kb * f, self.out_kb * f)


@dataclass(frozen=True)
class Machine:
    """An accelerator: a systolic array (NPU-like) or a throughput peak table (GPU-like), plus SRAM, DRAM, vector unit.

    Exactly one of `array` and `throughput` is set. GEMM cycles and vector cycles are at `clock_ghz`.
    """

    name: str
    clock_ghz: float
    dram: DramSpec
    vector: VectorUnit
    sram: SramSpec
    array: ArraySpec | None = None
    throughput: ThroughputUnit | None = None
    description: str = ""
    source: str = ""                      # preset file it was loaded from
    overrides: tuple[tuple[str, Any], ...] = ()
    dram_capacity_gb: float | None = None  # DRAM capacity in GB (1e9 bytes); None: from the DRAM organisation
    energy: ComputeEnergy = field(default_factory=ComputeEnergy)  # per-op/SRAM energies ([energy] table)

    def __post_init__(self) -> None:
        if isinstance(self.clock_ghz, bool) or not isinstance(self.clock_ghz, int | float) or \
                not (self.clock_ghz > 0 and math.isfinite(self.clock_ghz)):
            raise ValueError(f"machine {self.name!r}: clock_ghz must be a positive number, got {self.clock_ghz!r}")
        if (self.array is None) == (self.throughput is None):
            raise ValueError(f"machine {self.name!r}: define exactly one of [array] and [throughput]")
        cap = self.dram_capacity_gb
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int | float) or
                                not (cap > 0 and math.isfinite(cap))):
            raise ValueError(f"machine {self.name!r}: dram_capacity_gb must be a positive number, got {cap!r}")

    # --- what the roofline and engine read -------------------------------------------------------------------
    @property
    def dram_bw_gbps(self) -> float:
        """Peak DRAM bandwidth, GB/s (1e9 bytes/s)."""
        return self.dram.peak_gbps

    @property
    def dram_capacity_bytes(self) -> int:
        """DRAM capacity in bytes: `dram_capacity_gb` when the machine file sets it, else the DRAM organisation's
        channels x ranks x devices per rank x device density (`DramSpec.capacity_bytes`)."""
        if self.dram_capacity_gb is not None:
            return int(round(self.dram_capacity_gb * 1e9))
        return self.dram.capacity_bytes

    @property
    def sram_kb(self) -> float:
        """Total on-chip buffer capacity, kB."""
        return self.sram.total_kb

    def peak_macs_per_s(self, bits_a: int, bits_b: int) -> float:
        """Peak multiply-accumulates per second for operands of these widths (NumberFormat.mult_bits)."""
        if self.throughput is not None:
            return self.throughput.peak_macs_per_s(bits_a, bits_b)
        assert self.array is not None
        per_mac = self.array.law.products_per_mac(bits_a, bits_b)
        return float(self.array.rows * self.array.cols * per_mac) * self.clock_ghz * 1e9

    def gemm(self, m: int, k: int, n: int, bits_a: int = 16, bits_b: int = 16, bits_out: int | None = None,
             batch: int = 1) -> GemmResult:
        """`batch` independent A[m,k] x B[k,n] GEMMs, timed on the array (SCALE-Sim-exact) or the throughput model."""
        bits_out = max(check_bits(bits_a, "bits_a"), check_bits(bits_b, "bits_b")) if bits_out is None else bits_out
        batch = positive_int(batch, "batch")
        if self.throughput is not None:
            m, k, n = positive_int(m, "m"), positive_int(k, "k"), positive_int(n, "n")
            return self.throughput.gemm(m, k, n, bits_a, bits_b, bits_out, self.clock_ghz, batch)
        a = self.array
        assert a is not None
        one = systolic_gemm(a.rows, a.cols, a.dataflow, m, k, n, bits_a, bits_b,
                            (self.sram.a_kb, self.sram.b_kb, self.sram.out_kb), bits_out, a.law)
        if batch == 1:
            return one
        # the batch runs back to back; each GEMM's operands are distinct tensors
        return dataclasses.replace(
            one, compute_cycles=one.compute_cycles * batch, sram_reads=one.sram_reads * batch,
            sram_writes=one.sram_writes * batch, dram_read_bytes=one.dram_read_bytes * batch,
            dram_write_bytes=one.dram_write_bytes * batch, macs=one.macs * batch, folds=one.folds * batch)

    def vector_cycles(self, kind: str, elements: int) -> int:
        """Cycles of the vector unit for a non-GEMM op of `kind` (a workloads OP_KINDS name) over `elements`."""
        return self.vector.cycles(kind, elements)

    def cycles_to_s(self, cycles: float) -> float:
        return cycles / (self.clock_ghz * 1e9)

    # --- variants ----------------------------------------------------------------------------------------------
    def with_overrides(self, dram_bw_scale: float | None = None, array: tuple[int, int] | None = None,
                       sram_kb: float | None = None, dram_channels: int | None = None,
                       clock_ghz: float | None = None, dataflow: str | None = None) -> Machine:
        """A copy with what-if changes: DRAM bandwidth x scale, array R x C, total SRAM kB (split as before),
        DRAM channels, clock, dataflow. None leaves a field alone; the name stays, the changes go to `overrides`."""
        changes: dict[str, Any] = {}
        done: list[tuple[str, Any]] = []
        dram = self.dram
        if dram_channels is not None:
            dram = dram.with_overrides(channels=dram_channels)
            done.append(("dram_channels", dram_channels))
        if dram_bw_scale is not None:
            if isinstance(dram_bw_scale, bool) or not isinstance(dram_bw_scale, int | float) or \
                    not (dram_bw_scale > 0 and math.isfinite(dram_bw_scale)):
                raise ValueError(f"dram_bw_scale must be a positive number, got {dram_bw_scale!r}")
            if dram_bw_scale != 1:
                dram = dram.scaled(dram_bw_scale)
                done.append(("dram_bw_scale", dram_bw_scale))
        if dram is not self.dram:
            changes["dram"] = dram
        if array is not None or dataflow is not None:
            if self.array is None:
                raise ValueError(f"machine {self.name!r} has no systolic array to resize (it is a throughput model)")
            rows, cols = array if array is not None else (self.array.rows, self.array.cols)
            changes["array"] = ArraySpec(rows, cols, dataflow or self.array.dataflow, self.array.law)
            done += [("array", (rows, cols))] if array is not None else []
            done += [("dataflow", dataflow)] if dataflow is not None else []
        if sram_kb is not None:
            if isinstance(sram_kb, bool) or not isinstance(sram_kb, int | float) or \
                    not (sram_kb > 0 and math.isfinite(sram_kb)):
                raise ValueError(f"sram_kb must be a positive number, got {sram_kb!r}")
            changes["sram"] = self.sram.scaled_to(sram_kb)
            done.append(("sram_kb", sram_kb))
        if clock_ghz is not None:
            changes["clock_ghz"] = clock_ghz
            done.append(("clock_ghz", clock_ghz))
        if not changes:
            return self
        return dataclasses.replace(self, overrides=self.overrides + tuple(done), **changes)

    def summary(self) -> dict[str, Any]:
        """A flat description for tables and JSON."""
        out: dict[str, Any] = {"name": self.name, "clock_ghz": self.clock_ghz, "dram": self.dram.name,
                               "dram_bw_gbps": self.dram_bw_gbps, "sram_kb": self.sram_kb,
                               "dram_capacity_bytes": self.dram_capacity_bytes,
                               "vector_lanes": self.vector.lanes,
                               "peak_tmacs_16x16": self.peak_macs_per_s(16, 16) / 1e12}
        if self.array is not None:
            out.update(array=f"{self.array.rows}x{self.array.cols}", dataflow=self.array.dataflow)
        return out


def parse_array_size(text: str, what: str = "array") -> tuple[int, int]:
    """'32x32' -> (32, 32); `what` names the option in the error."""
    parts = text.lower().split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        rows = cols = 0
    if rows <= 0 or cols <= 0:
        raise ValueError(f"{what} must be ROWSxCOLS with positive integers (e.g. 32x32), got {text!r}")
    return rows, cols
