"""`run_sweep`: the grid, run in parallel, persisted point by point, resumable."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from sim.sweep.executors import PointFn, WorkerLost, check_executor, run_points
from sim.sweep.grid import AXES, SweepPoint, build_grid
from sim.sweep.store import SweepStore

LEAD_COLUMNS = [*AXES, "fidelity", "batch", "seq_len", "steps"]
_REWRITE_INTERVAL_S = 1.0  # the consolidated Parquet is rewritten at most this often (parts are written at once)


class SweepInterrupted(RuntimeError):
    """The sweep stopped early (a worker died); finished points are saved and `resume=True` continues."""


def run_sweep(
    workloads: str | Sequence[str],
    hws: str | Sequence[str],
    policies: str | Sequence[str],
    dram_bw_scales: Sequence[float] = (1.0,),
    arrays: Sequence[str | None] = (None,),
    sram_kbs: Sequence[float | None] = (None,),
    *,
    out: str | Path | None = None,
    resume: bool = False,
    workers: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    fidelity: str = "tile",
    batch: int | None = None,
    seq_len: int | None = None,
    steps: int = 1000,
    progress: bool = False,
    point_fn: PointFn | None = None,
    on_point: Callable[[SweepPoint, dict], None] | None = None,
) -> pd.DataFrame:
    """Run every point of the grid; one row per point (axis columns, then the simulated figures).

    With `out` (a .parquet or .csv path) each finished point is persisted at once under `<out>.parts/` (or, for a
    fresh run over earlier results, `<out>.parts.new/`, swapped in on success: see `sim.sweep.store`); `out` is
    written atomically when the run finishes (and as points finish when there was no earlier output to lose).
    `resume=True` reuses every finished point of the same grid. Every point is validated before anything is written.
    `point_fn` replaces the engine-backed point evaluation (it must be picklable for process pools and Dask).
    """
    check_executor(executor, workers, scheduler)
    points = build_grid(workloads, hws, policies, dram_bw_scales, arrays, sram_kbs, fidelity, batch, seq_len, steps)
    if point_fn is None:
        from sim.sweep.points import evaluate_point, validate_points

        validate_points(points)  # bad names fail here, in one line, before any worker starts
        point_fn = evaluate_point
        if fidelity == "transaction" and progress:
            from sim.sweep.points import estimate_line

            print(estimate_line(points, workers), file=sys.stderr, flush=True)
    if out is None:
        return _run(points, None, resume, executor, workers, scheduler, progress, point_fn, on_point)
    from sim.lifecycle import RunLock

    store = SweepStore(out)  # checks the path before the lock file is made beside it
    with RunLock(out, "sweep output", directory=False):  # one live owner per output (a second sweep fails)
        return _run(points, store, resume, executor, workers, scheduler, progress, point_fn, on_point)


def _run(points: list[SweepPoint], store: SweepStore | None, resume: bool, executor: str, workers: int,
         scheduler: str | None, progress: bool, point_fn: PointFn,
         on_point: Callable[[SweepPoint, dict], None] | None) -> pd.DataFrame:
    done: dict[str, dict] = {}
    if store is not None:
        store.start(resume)  # the first write: every point was validated above
        if resume:
            saved = store.finished()
            done = {p.key(): saved[p.key()] for p in points if p.key() in saved}
    todo = [p for p in points if p.key() not in done]
    order = {p.key(): i for i, p in enumerate(points)}

    def rows() -> list[dict]:
        return sorted(done.values(), key=lambda r: order[r["point_key"]])

    def partial_table() -> None:
        if store is not None and store.may_write_partial_table:
            store.write_table(rows(), LEAD_COLUMNS)

    bar = _progress(len(points), len(done), progress)
    last_write = 0.0
    results = run_points(point_fn, todo, executor, workers, scheduler)
    try:
        started = time.perf_counter()
        for point, figures in results:
            row = {**point.to_dict(), **figures, "point_key": point.key(), "wall_s": time.perf_counter() - started}
            done[point.key()] = row
            if store is not None:
                store.save_row(point.key(), row)
                if time.monotonic() - last_write > _REWRITE_INTERVAL_S:
                    partial_table()
                    last_write = time.monotonic()
            if on_point is not None:
                on_point(point, row)
            bar.update(1)
    except WorkerLost as exc:
        partial_table()
        raise SweepInterrupted(
            f"{exc}; {len(done)} of {len(points)} points are saved — rerun with resume to finish"
        ) from None
    except BaseException:
        partial_table()  # Ctrl-C or a failing point: keep what finished (earlier results stay as they were)
        raise
    finally:
        results.close()  # stops the pool / cancels Dask futures not yet run
        bar.close()
    if store is not None:
        return store.commit(rows(), LEAD_COLUMNS)
    df = pd.DataFrame(rows())
    return df[[c for c in LEAD_COLUMNS if c in df] + [c for c in df if c not in LEAD_COLUMNS]] if len(df) else df


def _progress(total: int, initial: int, enabled: bool):
    from sim.progress import bar

    return bar(total, "sweep", enabled, "pt", initial)
