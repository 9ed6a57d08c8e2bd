"""The few machine quantities the engine needs, read once from `hwmodels.machine.Machine` and memoised."""

from __future__ import annotations

import math


class MachineView:
    """Clock, SRAM budget, array granularity and memoised compute costs of one machine."""

    def __init__(self, machine) -> None:
        self.machine = machine
        self.name = str(machine.name)
        self.clock_ghz = float(machine.clock_ghz)
        self.sram_bytes = float(machine.sram_kb) * 1024
        array = getattr(machine, "array", None)
        self.has_array = array is not None
        rows = int(array.rows) if array is not None else 16
        cols = int(array.cols) if array is not None else 16
        # tile edges are multiples of the array's rows/cols; K is cut in multiples of the rows too
        self.granule_m, self.granule_n, self.granule_k = rows, cols, rows
        self._gemm: dict[tuple, int] = {}
        self._vector: dict[tuple, int] = {}

    def gemm_cycles(self, m: int, k: int, n: int, bits_a: int, bits_b: int) -> int:
        key = (m, k, n, bits_a, bits_b)
        if key not in self._gemm:
            if self.has_array:
                cycles = int(self.machine.gemm(m, k, n, bits_a, bits_b).compute_cycles)
            else:  # a roofline-only machine (GPU-like peak table): MACs at the peak rate for these widths
                per_cycle = float(self.machine.peak_macs_per_s(bits_a, bits_b)) / (self.clock_ghz * 1e9)
                cycles = math.ceil(m * k * n / per_cycle)
            self._gemm[key] = cycles
        return self._gemm[key]

    def vector_cycles(self, kind: str, elements: int) -> int:
        key = (kind, elements)
        if key not in self._vector:
            self._vector[key] = int(self.machine.vector_cycles(kind, elements))
        return self._vector[key]
