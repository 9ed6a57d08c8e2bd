"""GEMM tiling to on-chip SRAM with double buffering, and the DRAM re-reads it implies.

Loop nest (output stationary): `for outer tile: for inner tile: for k tile`, partial sums stay in SRAM until the
k loop ends, so C is written exactly once. With order "m" the m tiles are outer: an A tile (i, kk) changes every step
unless K fits in one tile (nk == 1), in which case the A panel stays resident across the n tiles and A is read once;
B is re-read once per m tile. Order "n" is the mirror image. The plan with the least DRAM traffic that fits wins;
ties go to fewer (larger) tiles. When everything fits (one tile), traffic is the minimal A + B + C.

SRAM budget: two buffers each of the A and B tiles (the next tile streams in while the current one computes) plus two
fp32 accumulator tiles (one accumulates while the previous one drains to DRAM). The budget is either one pool of
bytes or separate (A, B, output) buffers, as a machine's `SramSpec` defines them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

ACC_BYTES = 4  # partial sums accumulate in fp32 in SRAM


@dataclass(frozen=True)
class GemmTiling:
    """Tile sizes, loop order and re-read counts of one GEMM `A[m,k] x B[k,n]` (repeated `batch` times)."""

    m: int
    k: int
    n: int
    tm: int
    tk: int
    tn: int
    order: str      # "m": m tiles outer; "n": n tiles outer
    a_reads: int    # how many times all of A is read from DRAM (per batch element)
    b_reads: int
    batch: int = 1

    @property
    def nm(self) -> int:
        return -(-self.m // self.tm)

    @property
    def nk(self) -> int:
        return -(-self.k // self.tk)

    @property
    def nn(self) -> int:
        return -(-self.n // self.tn)

    @property
    def tiles(self) -> int:
        return self.batch * self.nm * self.nk * self.nn

    def sram_bytes(self, a_bits: float, b_bits: float) -> float:
        return sram_need_bytes(self.tm, self.tk, self.tn, a_bits, b_bits)


def sram_need_bytes(tm: int, tk: int, tn: int, a_bits: float, b_bits: float) -> float:
    """Double-buffered A and B tiles plus double-buffered fp32 accumulators."""
    return sum(buffer_need_bytes(tm, tk, tn, a_bits, b_bits))


def buffer_need_bytes(tm: int, tk: int, tn: int, a_bits: float, b_bits: float) -> tuple[float, float, float]:
    """(A, B, output) buffer bytes of a double-buffered tile."""
    return 2 * tm * tk * a_bits / 8, 2 * tk * tn * b_bits / 8, 2 * tm * tn * ACC_BYTES


def fits(tm: int, tk: int, tn: int, a_bits: float, b_bits: float, sram: float | tuple[float, float, float]) -> bool:
    """Whether the double-buffered tile fits one pool of `sram` bytes or separate (A, B, output) buffers."""
    need = buffer_need_bytes(tm, tk, tn, a_bits, b_bits)
    if isinstance(sram, tuple):
        return all(n <= cap for n, cap in zip(need, sram, strict=True))
    return sum(need) <= sram


def _candidates(dim: int, granule: int) -> list[int]:
    """The whole dimension, or the granule (array rows/cols) times a power of two below it."""
    sizes = {dim}
    size = max(1, granule)
    while size < dim:
        sizes.add(size)
        size *= 2
    return sorted(sizes)


def reads_for(order: str, nm: int, nk: int, nn: int) -> tuple[int, int]:
    """(a_reads, b_reads) of the loop nest: a tile is reloaded whenever its index changes between steps."""
    if order == "m":
        return (1 if nk == 1 else nn), (1 if (nk == 1 and nn == 1) else nm)
    return (1 if (nk == 1 and nm == 1) else nn), (1 if nk == 1 else nm)


@lru_cache(maxsize=4096)  # a trace repeats a handful of GEMM shapes per layer
def plan_gemm(m: int, k: int, n: int, a_bits: float, b_bits: float, sram_bytes: float | tuple[float, float, float],
              granule_m: int = 1, granule_k: int = 1, granule_n: int = 1, batch: int = 1) -> GemmTiling:
    """The least-traffic tiling of `A[m,k] x B[k,n]` whose double-buffered tiles fit in `sram_bytes` (one pool or
    (A, B, output) buffers)."""
    if min(m, k, n, batch) <= 0:
        raise ValueError(f"GEMM dimensions must be positive, got batch={batch} m={m} k={k} n={n}")
    a_total, b_total = m * k * a_bits, k * n * b_bits
    best: tuple | None = None
    for tk in _candidates(k, granule_k):
        nk = -(-k // tk)
        for tm in _candidates(m, granule_m):
            nm = -(-m // tm)
            for tn in _candidates(n, granule_n):
                if not fits(tm, tk, tn, a_bits, b_bits, sram_bytes):
                    continue
                nn = -(-n // tn)
                for order in ("m", "n"):
                    ar, br = reads_for(order, nm, nk, nn)
                    key = (ar * a_total + br * b_total, nm * nk * nn, -tk, order)
                    if best is None or key < best[0]:
                        best = (key, GemmTiling(m, k, n, tm, tk, tn, order, ar, br, batch))
    if best is None:
        tm, tk, tn = min(m, granule_m), min(k, granule_k), min(n, granule_n)
        need_kb = sram_need_bytes(tm, tk, tn, a_bits, b_bits) / 1024
        have_kb = (sum(sram_bytes) if isinstance(sram_bytes, tuple) else sram_bytes) / 1024
        raise ValueError(f"SRAM of {have_kb:g} KB cannot hold the smallest double-buffered GEMM tile "
                         f"({tm}x{tk}x{tn} needs {need_kb:.1f} KB); use a larger --sram-kb")
    return best[1]


def edge_counts(dim: int, tile: int) -> list[tuple[int, int]]:
    """[(tile extent, how many tiles have it)]: full tiles and at most one edge tile."""
    full, rest = divmod(dim, tile)
    out = [(tile, full)] if full else []
    if rest:
        out.append((rest, 1))
    return out


def split_total(total: int, weights: list[float]) -> list[int]:
    """Split an integer `total` in proportion to `weights`; the parts are integers summing exactly to `total`."""
    wsum = float(sum(weights))
    if total == 0 or wsum <= 0:
        return [0] * len(weights)
    out, cum, prev = [], 0.0, 0
    for w in weights:
        cum += w
        cur = math.floor(total * cum / wsum + 1e-9)
        cur = min(cur, total)
        out.append(cur - prev)
        prev = cur
    out[-1] += total - prev
    return out
