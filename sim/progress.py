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

# The calibration drives the engine's own DRAM path (TransactionDram.access_batch under SimPy: DMA-sized batches,
# the compiled core when built) with this many bytes of mixed reads and writes (rates vary with load).
CALIBRATION_BYTES = 32 << 20
CALIBRATION_OPS = 40            # ops of the plan replayed to measure the engine's own cost per DMA batch
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
def _plans(trace, machine, config) -> list:
    from sim.engine import EngineOptions
    from sim.engine.machine_view import MachineView
    from sim.engine.plan import plan_trace

    return plan_trace(trace, config, MachineView(machine), EngineOptions().max_steps)


def _bursts(plans, machine) -> int:
    """DRAM bursts of a step's plans: their bytes (re-reads included) / burst size."""
    return -(-sum(a.total_bytes for p in plans for a in p.accesses) // machine.dram.request_bytes)


def transaction_work(trace, machine, config) -> tuple[int, float]:
    """(DRAM bursts, engine CPU seconds besides the DRAM) of one transaction-level step. Bursts: the engine plan's
    bytes (re-reads included) / burst size. Engine seconds: planning (timed here) plus the bookkeeping of each DMA
    batch (SimPy processes, the bus), measured on the plan's first ops over an idealised DRAM."""
    from sim.engine.replay import Replay
    from sim.engine.units import FixedRateDramPort

    t0 = time.process_time()
    plans = _plans(trace, machine, config)
    plan_s = time.process_time() - t0
    batches = sum(bool(s.loads) + bool(s.stores) for p in plans for s in p.steps)
    head = plans[:CALIBRATION_OPS]  # a prefix is self-contained: an op depends on earlier ops only
    head_batches = sum(bool(s.loads) + bool(s.stores) for p in head for s in p.steps)
    t0 = time.process_time()
    Replay(head, lambda env: FixedRateDramPort(env, bytes_per_cycle=1 << 20)).run()
    per_batch_s = (time.process_time() - t0) / max(head_batches, 1)
    return _bursts(plans, machine), plan_s + batches * per_batch_s


def transaction_bursts(trace, machine, config) -> int:
    """DRAM bursts one transaction-level step moves: the engine plan's bytes (re-reads included) / burst size."""
    return _bursts(_plans(trace, machine, config), machine)


@lru_cache(maxsize=8)
def measured_burst_rate(dram) -> float:
    """Bursts per CPU second the engine's transaction level manages here and now: a short run of the engine's DRAM
    path (TransactionDram.access_batch in SimPy, one DMA batch in flight as the engine's bus allows) on 64 KB DMAs,
    alternately reads and writes."""
    import simpy

    from hwmodels.dram import TransactionDram, get_dram

    spec = get_dram(dram) if isinstance(dram, str) else dram
    env = simpy.Environment()
    port = TransactionDram(env, spec)
    chunk = 64 << 10

    def stream():
        for k in range(CALIBRATION_BYTES // chunk):
            is_write = k % 2 == 1
            yield env.all_of(port.access_batch([((1 << 30) * is_write + k * chunk, chunk)], is_write))

    t0 = time.process_time()
    env.process(stream())
    env.run()
    bursts = CALIBRATION_BYTES // spec.request_bytes
    return bursts / max(time.process_time() - t0, 1e-6)


def transaction_estimate(trace, machine, configs) -> tuple[float, int, float]:
    """(seconds, bursts, bursts per second) to simulate each configuration of `configs` at transaction level: the
    bursts at the DRAM path's measured rate plus the engine's own measured costs (transaction_work)."""
    rate = measured_burst_rate(machine.dram)
    seconds, bursts = 0.0, 0
    for c in configs:
        n, engine_s = transaction_work(trace, machine, c)
        seconds += n / rate + engine_s
        bursts += n
    return seconds, bursts, rate


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
