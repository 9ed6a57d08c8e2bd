"""Chrome trace event format export (opens in Perfetto or chrome://tracing): one track per compute unit, DMA
engine and DRAM channel, plus one track per op showing its whole lifetime."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

TRACK_ORDER = ("array", "vector", "dma_read", "dma_write", "dram")


def timeline_events(result) -> list[dict[str, Any]]:
    """Trace events (`ph` "X" complete events, timestamps in microseconds) for a SimResult."""
    us_per_cycle = 1e-3 / result.clock_ghz
    title = f"{result.workload} on {result.machine} ({result.config_label})"
    events: list[dict[str, Any]] = [{"ph": "M", "pid": 1, "tid": 0, "name": "process_name", "args": {"name": title}}]
    rest = sorted(set(result.intervals) - set(TRACK_ORDER), key=lambda t: (len(t), t))  # dram_ch2 before dram_ch10
    tracks = [t for t in TRACK_ORDER if t in result.intervals] + rest
    for tid, track in enumerate(tracks, start=1):
        events.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name", "args": {"name": track}})
        events.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}})
        for start, end, label in result.intervals[track]:
            events.append({"ph": "X", "pid": 1, "tid": tid, "name": label, "cat": track,
                           "ts": start * us_per_cycle, "dur": (end - start) * us_per_cycle})
    ops_tid = len(tracks) + 1
    events.append({"ph": "M", "pid": 1, "tid": ops_tid, "name": "thread_name", "args": {"name": "ops"}})
    for row in result.ops.itertuples(index=False):
        events.append({"ph": "X", "pid": 1, "tid": ops_tid, "name": row.name, "cat": row.phase,
                       "ts": row.start_cycle * us_per_cycle, "dur": (row.end_cycle - row.start_cycle) * us_per_cycle,
                       "args": {"kind": row.kind, "unit": row.unit, "tiles": int(row.tiles),
                                "ready_cycle": row.ready_cycle, "compute_cycles": int(row.compute_cycles)}})
    return events


def write_timeline(result, path: str | os.PathLike) -> None:
    """Write the Chrome trace JSON atomically."""
    doc = {"traceEvents": timeline_events(result), "displayTimeUnit": "ns",
           "otherData": {"fidelity": result.fidelity, "cycles": result.cycles, "clock_ghz": result.clock_ghz}}
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OSError(f"timeline directory does not exist: {directory}")
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
