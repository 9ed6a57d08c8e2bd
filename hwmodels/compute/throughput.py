"""A throughput ("roofline") compute model for GPU-like machines: a peak table per operand precision plus wave
quantisation of output tiles over the streaming multiprocessors.

A GEMM is cut into tile_m x tile_n output tiles; `units` tiles run concurrently (one per SM), each at
peak / units; a tile takes ceil(k x tile_m x tile_n / per-unit MACs per cycle) cycles, and the GEMM takes
ceil(tiles / units) waves of tiles. This is the standard first-order model of cuBLAS-style kernels (no memory
stalls, no split-K): it is exact at full waves and captures the tail effect of small GEMMs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwmodels.compute.precision import check_bits
from hwmodels.compute.systolic import GemmResult


@dataclass(frozen=True)
class PeakEntry:
    """Dense peak of one precision: operands up to `mult_bits` bits (significand incl. hidden bit for floats)."""

    name: str
    mult_bits: int
    tflops: float           # dense, 2 FLOP per MAC, as datasheets quote


@dataclass(frozen=True)
class ThroughputUnit:
    peaks: tuple[PeakEntry, ...]
    units: int = 1          # concurrent tile engines (SMs)
    tile_m: int = 128
    tile_n: int = 128

    def __post_init__(self) -> None:
        if not self.peaks:
            raise ValueError("throughput unit: the peak table is empty")
        for key in ("units", "tile_m", "tile_n"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"throughput unit: {key} must be a positive integer, got {value!r}")
        for e in self.peaks:
            if not (isinstance(e.mult_bits, int) and e.mult_bits > 0):
                raise ValueError(f"peak {e.name!r}: mult_bits must be a positive integer, got {e.mult_bits!r}")
            if isinstance(e.tflops, bool) or not isinstance(e.tflops, int | float) or not e.tflops > 0:
                raise ValueError(f"peak {e.name!r}: tflops must be positive, got {e.tflops!r}")

    def entry(self, bits_a: int, bits_b: int) -> PeakEntry:
        """The fastest precision whose multiplier is wide enough for both operands."""
        width = max(check_bits(bits_a, "bits_a"), check_bits(bits_b, "bits_b"))
        fits = [e for e in self.peaks if e.mult_bits >= width]
        if not fits:
            widest = max(e.mult_bits for e in self.peaks)
            raise ValueError(f"no peak entry covers {width}-bit operands (widest is {widest} bits)")
        return max(fits, key=lambda e: e.tflops)

    def peak_macs_per_s(self, bits_a: int, bits_b: int) -> float:
        return self.entry(bits_a, bits_b).tflops * 1e12 / 2

    def gemm(self, m: int, k: int, n: int, bits_a: int, bits_b: int, bits_out: int, clock_ghz: float,
             batch: int = 1) -> GemmResult:
        macs_per_cycle_unit = self.peak_macs_per_s(bits_a, bits_b) / (clock_ghz * 1e9) / self.units
        tiles = batch * math.ceil(m / self.tile_m) * math.ceil(n / self.tile_n)
        waves = math.ceil(tiles / self.units)
        cycles = waves * math.ceil(k * self.tile_m * self.tile_n / macs_per_cycle_unit)
        macs = batch * m * k * n
        return GemmResult(
            compute_cycles=cycles,
            utilization=macs / (cycles * macs_per_cycle_unit * self.units),
            sram_reads=0, sram_writes=0,
            dram_read_bytes=batch * (m * k * bits_a + k * n * bits_b) / 8,
            dram_write_bytes=batch * m * n * bits_out / 8,
            macs=macs, folds=tiles,
        )
