"""Run a point function over sweep points: in process, in a local process pool, or on a Dask cluster.

Each executor is a generator yielding `(point, figures)` as points finish (completion order), so the caller can
persist every result at once. Closing the generator (Ctrl-C, an error) cancels what has not started.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool

from sim.sweep.grid import SweepPoint

EXECUTORS = ("local", "dask")
PointFn = Callable[[SweepPoint], dict]


class WorkerLost(RuntimeError):
    """A worker process died (killed, out of memory) before finishing its point."""


def run_serial(fn: PointFn, points: Sequence[SweepPoint]) -> Iterator[tuple[SweepPoint, dict]]:
    for point in points:
        yield point, fn(point)


def process_context():
    """fork when no other Python threads run (fast, and scripts need no `__main__` guard), else forkserver: forking
    a process whose threads may hold locks (a Dask client, say) can deadlock the child. tqdm's monitor thread only
    sleeps and is ignored."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context()
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and type(t).__name__ != "TMonitor"]
    return multiprocessing.get_context("forkserver" if others else "fork")


def run_process_pool(fn: PointFn, points: Sequence[SweepPoint], workers: int) -> Iterator[tuple[SweepPoint, dict]]:
    from sim.lifecycle import worker_pool

    pool = worker_pool(workers, process_context())  # workers die with this process
    try:
        pending = {pool.submit(fn, p): p for p in points}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                point = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise WorkerLost(f"a worker process died while computing {point.key()}") from None
                yield point, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_dask(
    fn: PointFn, points: Sequence[SweepPoint], workers: int, scheduler: str | None
) -> Iterator[tuple[SweepPoint, dict]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("--executor dask needs dask[distributed]: pip install 'dsqsim[dask]'") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise OSError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    futures = []
    try:
        futures = [client.submit(fn, p, pure=False) for p in points]
        by_future = dict(zip(futures, points, strict=True))
        for fut in as_completed(futures):
            point = by_future[fut]
            try:
                result = fut.result()
            except Exception as exc:
                if type(exc).__name__ == "KilledWorker":
                    raise WorkerLost(f"Dask lost the worker computing {point.key()}: {exc}") from None
                raise
            yield point, result
    finally:
        for fut in futures:
            fut.cancel()
        client.close()
        if cluster is not None:
            cluster.close()


def check_executor(executor: str, workers: int, scheduler: str | None) -> None:
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if workers <= 0:
        raise ValueError(f"workers must be a positive integer, got {workers}")
    if scheduler and executor != "dask":
        raise ValueError("--scheduler is only used with --executor dask")


def run_points(
    fn: PointFn, points: Sequence[SweepPoint], executor: str = "local", workers: int = 1, scheduler: str | None = None
) -> Iterator[tuple[SweepPoint, dict]]:
    check_executor(executor, workers, scheduler)
    if executor == "dask":
        return run_dask(fn, points, workers, scheduler)
    if workers == 1 or len(points) <= 1:
        return run_serial(fn, points)
    return run_process_pool(fn, points, workers)
