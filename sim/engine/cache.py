"""Result cache keyed by (trace, machine, precision configuration, fidelity, engine options): in memory always,
and on disk (pickles under a directory, e.g. ~/.cache/dsqsim) when asked."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

DEFAULT_DIR = Path("~/.cache/dsqsim").expanduser()


def trace_fingerprint(trace) -> str:
    """A digest of everything in a trace the engine reads (ops, tensors, workload name, batch, seq_len)."""
    h = hashlib.sha256()
    h.update(repr((trace.workload, trace.batch, trace.seq_len)).encode())
    for name in sorted(trace.tensors):
        h.update(repr(trace.tensors[name]).encode())
    for op in trace.ops:
        h.update(repr(op).encode())
    return h.hexdigest()


ENGINE_VERSION = "engine-v2"  # bump when results of the same inputs change (v2: stored formats, bulk refresh, energy)


def cache_key(trace, machine, config, fidelity: str, options, fingerprint: str | None = None) -> str:
    """`fingerprint`: the trace's `trace_fingerprint`, when the caller has it already."""
    h = hashlib.sha256()
    fingerprint = trace_fingerprint(trace) if fingerprint is None else fingerprint
    for part in (fingerprint, repr(machine), repr(config), fidelity, repr(options), ENGINE_VERSION):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


class ResultCache:
    """In-memory cache of SimResults (the `max_entries` most recently stored; a result carries its timeline
    intervals, up to tens of MB for a large workload), optionally backed by a directory of pickles."""

    def __init__(self, directory: str | os.PathLike | None = None, max_entries: int = 64) -> None:
        self.memory: dict[str, object] = {}
        self.max_entries = max_entries
        self.directory = Path(directory).expanduser() if directory is not None else None
        self.hits = 0
        self.misses = 0

    def get(self, key: str):
        if key in self.memory:
            self.hits += 1
            return self.memory[key]
        if self.directory is not None:
            path = self.directory / f"{key}.pkl"
            if path.is_file():
                try:
                    with path.open("rb") as f:
                        value = pickle.load(f)
                except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
                    value = None  # a corrupt or stale entry is recomputed
                if value is not None:
                    self.memory[key] = value
                    self.hits += 1
                    return value
        self.misses += 1
        return None

    def put(self, key: str, value) -> None:
        self.memory.pop(key, None)
        self.memory[key] = value
        while len(self.memory) > self.max_entries:
            self.memory.pop(next(iter(self.memory)))  # dicts keep insertion order: drop the oldest
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.directory / f"{key}.pkl")  # atomic: readers never see half a file


DEFAULT_CACHE = ResultCache()
