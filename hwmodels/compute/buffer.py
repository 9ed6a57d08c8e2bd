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


def read_misses(runs: Iterable[tuple[object, int, int]], capacity_words: int | None) -> int:
    """DRAM words read for a sequence of runs `(block_key, block_words, repeats)`: a block read in full, in a fixed
    order, `repeats` times in a row. `block_key` is None for a block no other run reads again."""
    misses = 0
    count = 0                        # distinct words fetched since the last turnover
    present: dict[object, int] = {}  # block -> s: positions [s, size) of its order are in the buffer
    for key, size, repeats in runs:
        if size <= 0 or repeats <= 0:
            continue
        for _ in range(min(repeats, 2)):
            s = present.get(key, size) if key is not None else size
            if capacity_words is None or count + s < capacity_words:
                misses += s          # positions [0, s) miss, [s, size) hit
                count += s
                if key is not None:
                    present[key] = 0
                continue
            # the buffer turns over inside the miss run; from then on every word of this read misses
            misses += size
            count = (size - (capacity_words - count)) % capacity_words
            present.clear()
            if count and key is not None:
                present[key] = size - count
        if repeats > 2 and present.get(key) != 0:
            # after two reads the block is either resident (later reads all hit) or larger than the buffer; then
            # every read misses in full and the fill level advances by `size` modulo the capacity
            assert capacity_words is not None and size >= capacity_words
            misses += (repeats - 2) * size
            count = (count + (repeats - 2) * size) % capacity_words
            present.clear()
            if count and key is not None:
                present[key] = size - count
    return misses


def cyclic_misses(unique_words: int, reads: int, capacity_words: int | None) -> int:
    """DRAM words read when the same sequence of distinct blocks (`unique_words` in all) is read over and over
    (`reads` words in all). If it fits (unique < G) each word is fetched once. Otherwise every read misses: at the
    start of a pass the buffer holds only a tail of the previous pass, and reaching that tail takes at least G
    further misses, which turn the buffer over first."""
    if capacity_words is None or unique_words < capacity_words:
        return unique_words
    return reads
