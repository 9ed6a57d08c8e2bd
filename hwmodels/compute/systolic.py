"""Fold-level model of a GEMM A[M,K] x B[K,N] on an R x C systolic array, timed exactly as SCALE-Sim 3.0.0 times it.

SCALE-Sim (GEMM input mode) maps the problem per dataflow onto a spatial Sr x Sc grid folded onto the array, with a
temporal dimension T streamed through it:

    dataflow  Sr (rows)  Sc (cols)  T    cycles per fold       stationary operand
    os        M          N          K    T + R + C - 2         outputs
    ws        K          N          M    2R + C + T - 2        B (weights)
    is        K          M          N    2R + C + T - 2        A (inputs)

Folds run back to back with no overlap (each drains before the next fills), column folds outermost, so a GEMM takes
ceil(Sr/R)·ceil(Sc/C)·(cycles per fold) - 1 cycles: SCALE-Sim reports the index of the last cycle. SRAM words are
counted as SCALE-Sim's demand matrices count them, except that SCALE-Sim's `os` adds R + C phantom ofmap writes per
fold (it counts the padded fold's dimensions); here the writes are the real outputs. Partial sums in `ws`/`is` are
written once per row fold, and SCALE-Sim drains every SRAM write to DRAM, so DRAM writes equal SRAM writes.

Precision: a MAC that computes P products per cycle (see `PrecisionLaw`) consumes P elements of the reduction
dimension K per cycle, so the array runs the GEMM as M x ceil(K/P) x N; P < 1 stretches K the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction

from hwmodels.compute._checks import positive_int
from hwmodels.compute.buffer import cyclic_misses, generation_capacity_words, read_misses
from hwmodels.compute.precision import PrecisionLaw, check_bits

DATAFLOWS = ("os", "ws", "is")


@dataclass(frozen=True)
class GemmResult:
    """One GEMM on one compute unit. Word counts are operand elements; bytes use the operand widths."""

    compute_cycles: int
    utilization: float          # MACs / (cycles x peak MACs per cycle)
    sram_reads: int             # A and B elements read from the operand SRAMs
    sram_writes: int            # output (and partial-sum) elements written to the output SRAM
    dram_read_bytes: float
    dram_write_bytes: float
    macs: int = 0
    folds: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FoldPlan:
    """How one GEMM folds onto the array (in array terms, after the precision law)."""

    dataflow: str
    rows: int
    cols: int
    sr: int
    sc: int
    t: int
    row_folds: int
    col_folds: int
    cycles_per_fold: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def cycles(self) -> int:
        return self.folds * self.cycles_per_fold - 1


def fold_plan(rows: int, cols: int, dataflow: str, m: int, k: int, n: int) -> FoldPlan:
    """SCALE-Sim's mapping of A[m,k] x B[k,n] onto an rows x cols array."""
    if dataflow == "os":
        sr, sc, t = m, n, k
        per_fold = t + rows + cols - 2
    elif dataflow == "ws":
        sr, sc, t = k, n, m
        per_fold = 2 * rows + cols + t - 2
    elif dataflow == "is":
        sr, sc, t = k, m, n
        per_fold = 2 * rows + cols + t - 2
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}; valid: {', '.join(DATAFLOWS)}")
    return FoldPlan(dataflow, rows, cols, sr, sc, t, math.ceil(sr / rows), math.ceil(sc / cols), per_fold)


def _chunks(total: int, step: int, count: int) -> list[int]:
    return [min(step, total - i * step) for i in range(count)]


def systolic_gemm(
    rows: int, cols: int, dataflow: str, m: int, k: int, n: int,
    bits_a: int = 16, bits_b: int = 16, sram_kb: float | tuple[float, float, float] | None = None,
    bits_out: int | None = None, law: PrecisionLaw | None = None,
) -> GemmResult:
    """Cycles, utilisation, SRAM and DRAM traffic of A[m,k] x B[k,n] on a rows x cols systolic array.

    `sram_kb`: size of each double-buffered SRAM (A, B, output), one number or a triple; None = unbounded (every
    operand element read from DRAM once). `law`: precision law of the MACs; None = one product per cycle whatever
    the widths (a plain SCALE-Sim array). `bits_out` defaults to max(bits_a, bits_b).
    """
    rows, cols = positive_int(rows, "rows"), positive_int(cols, "cols")
    m, k, n = positive_int(m, "m"), positive_int(k, "k"), positive_int(n, "n")
    bits_a, bits_b = check_bits(bits_a, "bits_a"), check_bits(bits_b, "bits_b")
    bits_out = max(bits_a, bits_b) if bits_out is None else check_bits(bits_out, "bits_out")
    per_mac = law.products_per_mac(bits_a, bits_b) if law is not None else Fraction(1)
    k_array = math.ceil(k / per_mac)
    plan = fold_plan(rows, cols, dataflow, m, k_array, n)
    # SCALE-Sim drains every output write to DRAM, so the output buffer's size does not change the counts
    sram_a, sram_b, _ = _sram_words(sram_kb, bits_a, bits_b, bits_out)

    cap_a, cap_b = generation_capacity_words(sram_a), generation_capacity_words(sram_b)
    # Fold order is column folds outermost. The operand indexed by the inner (row) fold is re-read as the same
    # sequence of blocks on every outer pass; the one indexed by the outer fold is read row_folds times in a row.
    if dataflow == "os":
        reads_a, reads_b = m * k * plan.col_folds, k * n * plan.row_folds
        writes = m * n
        dram_a = cyclic_misses(m * k, reads_a, cap_a)
        runs_b = [(fc, k * used, plan.row_folds) for fc, used in enumerate(_chunks(n, cols, plan.col_folds))]
        dram_b = k * n if cap_b is None or k * n < cap_b else read_misses(runs_b, cap_b)
    elif dataflow == "ws":  # A's K-chunks cycle; each B block is read once
        reads_a, reads_b = m * k * plan.col_folds, k * n
        writes = m * n * plan.row_folds
        dram_a, dram_b = cyclic_misses(m * k, reads_a, cap_a), reads_b
    else:  # is: each A block is read once; B's K-chunks cycle
        reads_a, reads_b = m * k, k * n * plan.col_folds
        writes = m * n * plan.row_folds
        dram_a, dram_b = reads_a, cyclic_misses(k * n, reads_b, cap_b)

    macs = m * k * n
    return GemmResult(
        compute_cycles=plan.cycles,
        # SCALE-Sim's count is 0 cycles for one 1-deep fold on a 1x1 array; utilisation then counts one cycle
        utilization=float(macs / (max(plan.cycles, 1) * rows * cols * per_mac)),
        sram_reads=reads_a + reads_b,
        sram_writes=writes,
        dram_read_bytes=(dram_a * bits_a + dram_b * bits_b) / 8,
        dram_write_bytes=writes * bits_out / 8,
        macs=macs,
        folds=plan.folds,
    )


def _sram_words(sram_kb, bits_a: int, bits_b: int, bits_out: int) -> tuple[int | None, int | None, int | None]:
    """Words of each buffer at its operand's width (SCALE-Sim: 1-byte words, so kB x 1024)."""
    if sram_kb is None:
        return None, None, None
    sizes = tuple(sram_kb) if isinstance(sram_kb, tuple | list) else (sram_kb,) * 3
    if len(sizes) != 3:
        raise ValueError(f"sram_kb must be one size or three (A, B, output), got {sram_kb!r}")
    for size in sizes:
        if not isinstance(size, int | float) or isinstance(size, bool) or not size > 0 or not math.isfinite(size):
            raise ValueError(f"sram_kb must be positive, got {size!r}")
    return tuple(int(size * 1024 * 8 // bits) for size, bits in zip(sizes, (bits_a, bits_b, bits_out), strict=True))
