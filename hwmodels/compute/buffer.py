"""DRAM reads of a double-buffered read SRAM, as SCALE-Sim 3.0.0 counts them (estimate-bandwidth mode).

SCALE-Sim's `ReadBufferEstimateBw` splits a buffer of E words into 100 sets of floor(E/100) words and keeps the
active half (50 sets). Each demanded address that is not among the words fetched since the last turnover is a miss
(one DRAM word read) and is added; when 50 sets' worth of distinct words have been fetched, the buffer turns over
and forgets them all. So DRAM reads = misses of a cache of capacity G = 50·floor(E/100) that is flushed whenever
it fills.

A GEMM fold reads one block of an operand (e.g. the A rows of one row fold), every word once, in a fixed order per
block. So the cache state restricted to a block is always a suffix of that block's order (or all of it), and the
misses of a whole GEMM follow from fold-level arithmetic, O(folds), with no per-address simulation.
"""

from __future__ import annotations

from collections.abc import Iterable


def generation_capacity_words(buffer_words: int | None) -> int | None:
    """G, the words the active half holds before it turns over; None for an unbounded buffer."""
    if buffer_words is None:
        return None
    per_set = buffer_words // 100
    return 50 * per_set if per_set > 0 else None  # SCALE-Sim never turns over when a set holds 0 words


def read_misses(folds: Iterable[tuple[object, int]], capacity_words: int | None) -> int:
    """DRAM words read for a sequence of folds, each `(block_key, block_words)` read in full in a fixed order.

    `block_key` is None for a block read by one fold only (nothing to remember about it).
    """
    misses = 0
    count = 0                      # distinct words fetched since the last turnover
    present: dict[object, int] = {}  # block -> s: positions [s, size) of its order are in the buffer
    for key, size in folds:
        if size <= 0:
            continue
        s = present.get(key, size) if key is not None else size
        if capacity_words is None or count + s < capacity_words:
            misses += s            # positions [0, s) miss, [s, size) hit
            count += s
            if key is not None:
                present[key] = 0
            continue
        # the buffer turns over inside the miss run; from then on every word of this fold misses
        misses += size
        rest = size - (capacity_words - count)
        count = rest % capacity_words
        present.clear()
        if count and key is not None:
            present[key] = size - count
    return misses
