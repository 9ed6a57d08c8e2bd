"""Reference implementations the faster bulk-model code is compared against (not a test module).

`reference_with_refresh` is the per-interval refresh loop `BulkDram._with_refresh` ran until the closed form of
`hwmodels.dram.refresh` replaced it (one Python iteration and a numpy window count per refresh interval), copied
verbatim apart from taking the spec and an expanded rank array. `patched_reference()` makes `BulkDram.time` (both
its numpy and its scalar path) use it, so whole engine runs can be compared with the code path as it was.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

import hwmodels.dram.bulk as bulk_module
import hwmodels.dram.bulk_scalar as bulk_scalar_module


def reference_with_refresh(s, cycles: float, rank: np.ndarray, start_ns: float) -> tuple[float, int]:
    """(cycles with refreshes, refreshes): one loop iteration per refresh interval."""
    if s.refresh_policy == "NONE":
        return cycles, 0
    simultaneous = s.refresh_policy == "RANK_LEVEL_SIMULTANEOUS"
    interval = s.tREFI if simultaneous else max(s.tREFI // s.ranks, 1)
    n = len(rank)
    half_window = (s.trans_queue_size + s.cmd_queue_size) * s.channels
    start = start_ns / s.tCK_ns
    k = math.floor(start / interval) + 1
    end, count = start + cycles, 0
    while k * interval < end:
        pos = int((k * interval - start) / (end - start) * n)
        in_flight = rank[max(pos - half_window, 0):min(pos + half_window + 1, n)]
        if s.ranks == 1:
            share = 1.0  # every burst is on the one rank
        elif len(in_flight) == 0:
            share = 0.0
        elif simultaneous:
            share = max(np.count_nonzero(in_flight == r) for r in range(s.ranks)) / len(in_flight)
        else:
            share = np.count_nonzero(in_flight == (k - 1) % s.ranks) / len(in_flight)
        end += (s.tRP + s.tRFC) * share
        k += 1
        count += 1
    return end - start, count


def _reference(spec, cycles, runs, start_ns, exact=None):
    rank = runs.expand() if runs is not None else np.zeros(0, dtype=np.int64)
    if spec.ranks == 1:
        rank = np.zeros(0, dtype=np.int64)
    return reference_with_refresh(spec, cycles, rank, start_ns)


@contextlib.contextmanager
def patched_reference():
    """Within the block, the bulk model charges refreshes with the per-interval reference loop."""
    modules = (bulk_module, bulk_scalar_module)
    saved = [m.with_refresh for m in modules]
    for m in modules:
        m.with_refresh = _reference
    try:
        yield
    finally:
        for m, f in zip(modules, saved, strict=True):
            m.with_refresh = f
