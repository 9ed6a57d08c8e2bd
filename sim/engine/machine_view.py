"""The few machine quantities the engine needs, read once from `hwmodels.machine.Machine` and memoised."""

from __future__ import annotations


class MachineView:
    """Clock, SRAM budget, array granularity and memoised compute costs of one machine."""

    def __init__(self, machine) -> None:
        self.machine = machine
        self.name = str(machine.name)
        self.clock_ghz = float(machine.clock_ghz)
        sram = machine.sram
        self.sram_bytes = float(machine.sram_kb) * 1024  # the pool vector ops stream through
        # GEMM tiles live in the separate A, B and output buffers
        self.gemm_buffers_bytes = (float(sram.a_kb) * 1024, float(sram.b_kb) * 1024, float(sram.out_kb) * 1024)
        array = machine.array
        self.has_array = array is not None
        if array is not None:
            rows, cols = int(array.rows), int(array.cols)
        else:  # a throughput (GPU-like) machine: tiles are multiples of its thread-block tile
            rows, cols = int(machine.throughput.tile_m), int(machine.throughput.tile_n)
        # tile edges are multiples of the array's rows/cols; K is cut in multiples of the rows too
        self.granule_m, self.granule_n, self.granule_k = rows, cols, rows
        self._gemm: dict[tuple, int] = {}
        self._vector: dict[tuple, int] = {}

    def gemm_cycles(self, m: int, k: int, n: int, bits_a: int, bits_b: int) -> int:
        key = (m, k, n, bits_a, bits_b)
        if key not in self._gemm:
            self._gemm[key] = int(self.machine.gemm(m, k, n, bits_a, bits_b).compute_cycles)
        return self._gemm[key]

    def vector_cycles(self, kind: str, elements: int) -> int:
        key = (kind, elements)
        if key not in self._vector:
            self._vector[key] = int(self.machine.vector_cycles(kind, elements))
        return self._vector[key]
