"""Progress for long commands: one aggregated bar per phase on stderr (fed by pool workers through a queue), and
a time estimate before a slow fidelity starts.

Bars are tqdm bars on stderr, off when `enabled` is False (--no-progress, --json) and, by tqdm's own rule
(`disable=None`), when stderr is not a terminal. Workers report `(key, value)` pairs, e.g. (policy, steps done); the
bar shows the sum of the latest value of every key, so a resumed run that starts at its checkpoint step counts right.
"""

from __future__ import annotations

import queue as queue_mod
import sys
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

_worker_queue: Any = None  # set in pool workers by `set_worker_queue` (the pool initializer)

# The calibration drives the engine's own DRAM port (TransactionDram under SimPy: DMA-sized accesses, the compiled
# core when built) with this many bytes of mixed reads and writes (rates vary with load).
CALIBRATION_BYTES = 4 << 20
SLOW_ESTIMATE_S = 10.0          # estimates above this also suggest the tile fidelity


def set_worker_queue(q) -> None:
    global _worker_queue
    _worker_queue = q


def report(key: str, value: float) -> None:
    """From a pool worker: the latest progress value of `key` (no-op outside a progress-reporting pool)."""
    if _worker_queue is not None:
        try:
            _worker_queue.put_nowait((key, value))
        except Exception:  # progress must never break the work (a full or closed queue)
            pass


def bar(total: float, desc: str, enabled: bool, unit: str = "it", initial: float = 0):
    """A tqdm bar on stderr (a no-op object when disabled)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=None if enabled else True, leave=True)


class QueueBar:
    """A bar fed from a multiprocessing queue of (key, value) by a reader thread; use as a context manager."""

    def __init__(self, q, total: float, desc: str, enabled: bool, unit: str = "it"):
        self.q, self.bar = q, bar(total, desc, enabled, unit)
        self.latest: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="dsqsim-progress", daemon=True)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                key, value = self.q.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            except (EOFError, OSError):
                return
            self.latest[key] = value
            self.bar.n = min(sum(self.latest.values()), self.bar.total or float("inf"))
            self.bar.refresh()

    def set(self, key: str, value: float) -> None:
        """Progress made in this process (e.g. a finished run reused from disk)."""
        self.q.put((key, value))

    def __enter__(self) -> QueueBar:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.bar.close()


def accepts(fn: Callable, name: str) -> bool:
    """Whether `fn` takes a keyword argument `name` (stand-in training functions in tests may not)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# --- time estimates ---------------------------------------------------------------------------------------------
def transaction_bursts(trace, machine, config) -> int:
    """DRAM bursts one transaction-level step moves: the engine plan's bytes (re-reads included) / burst size."""
    from sim.engine import EngineOptions
    from sim.engine.machine_view import MachineView
    from sim.engine.plan import plan_trace

    plans = plan_trace(trace, config, MachineView(machine), EngineOptions().max_steps)
    total_bytes = sum(a.total_bytes for p in plans for a in p.accesses)
    return -(-total_bytes // machine.dram.request_bytes)


@lru_cache(maxsize=8)
def measured_burst_rate(dram) -> float:
    """Bursts per CPU second the engine's transaction level manages here and now: a short run of the engine's DRAM
    port (TransactionDram in SimPy) on 64 KB DMAs, half reads, half writes, two in flight."""
    import simpy

    from hwmodels.dram import TransactionDram, get_dram

    spec = get_dram(dram) if isinstance(dram, str) else dram
    env = simpy.Environment()
    port = TransactionDram(env, spec)
    chunk = 64 << 10

    def stream(offset: int, is_write: bool):
        for k in range(CALIBRATION_BYTES // chunk // 2):
            yield port.access(offset + k * chunk, chunk, is_write)

    t0 = time.process_time()
    env.process(stream(0, False))
    env.process(stream(1 << 30, True))
    env.run()
    bursts = CALIBRATION_BYTES // spec.request_bytes
    return bursts / max(time.process_time() - t0, 1e-6)


def transaction_estimate(trace, machine, configs) -> tuple[float, int, float]:
    """(seconds, bursts, bursts per second) to simulate each configuration of `configs` at transaction level."""
    bursts = sum(transaction_bursts(trace, machine, c) for c in configs)
    rate = measured_burst_rate(machine.dram)
    return bursts / rate, bursts, rate


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_line(trace, machine, configs, workers: int = 1) -> str:
    """One line for stderr: how long the transaction level will take, and the fast alternative when it is long."""
    configs = list(configs)
    seconds, bursts, rate = transaction_estimate(trace, machine, configs)
    seconds /= max(1, min(workers, len(configs)))
    line = (f"transaction fidelity: {bursts:.3g} DRAM bursts at ~{rate:.3g} bursts/s measured here: about "
            f"{duration(seconds)}")
    if seconds > SLOW_ESTIMATE_S:
        line += " (--fidelity tile, the bulk DRAM model, takes seconds)"
    return line
