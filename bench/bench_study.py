"""The README's main command (`dsqsim study` on built-in defaults) in whole-process CPU seconds, children included;
sweep throughput: points per second, in process vs a local process pool vs Dask, and the resume overhead."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _study_cpu_s(env: dict[str, str]) -> tuple[float, float]:
    """(CPU s of `dsqsim study` and every worker it waited for, wall s), fresh process, fresh output and cache."""
    import resource
    import subprocess
    import sys

    tmp = Path(tempfile.mkdtemp(prefix="dsqsim-bench-study-"))
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sim.cli", "study", "--out", str(tmp / "out"), "--no-progress"],
                       check=True, capture_output=True, env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main_command() -> str:
    """`dsqsim study` as the README installs it (no extras: numpy quantizer) and with the `fast` extra (numba)."""
    import importlib.util
    import os

    rows = [("`pip install -e .` (numpy quantizer)", _study_cpu_s({**os.environ, "DSQSIM_NO_NUMBA": "1"}))]
    if importlib.util.find_spec("numba") is not None:
        env = {k: v for k, v in os.environ.items() if k != "DSQSIM_NO_NUMBA"}
        rows.append(("`pip install -e \".[fast]\"` (numba quantizer)", _study_cpu_s(env)))
    table = "\n".join(f"| {name} | {cpu:.1f} | {wall:.1f} |" for name, (cpu, wall) in rows)
    return (
        "## The README's main command\n\n"
        "`dsqsim study` on its built-in defaults (numwords, 100 steps, fp32/fixed16/dsq trained in worker processes; "
        "each policy's timeline costed on transformer-iwslt / edge-npu at tile fidelity and re-costed at 5 DRAM "
        "bandwidth scales; tables, plots, HTML report), from a fresh process with an empty cache, as the README "
        "installs it and with the `fast` extra. CPU seconds are the whole process tree's (user + system, workers "
        "included). Target: <= 60 CPU-s.\n\n"
        "| install | CPU s (process tree) | wall s |\n|---|---|---|\n" + table + "\n"
    )


def run(quick: bool = False) -> str:
    import os

    head = main_command() + "\n"

    from sim.engine import DEFAULT_CACHE
    from sim.sweep import run_sweep

    scales = [0.25, 0.5, 1, 2, 4] if quick else [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]
    arrays = ["16x16", "32x32"]
    grid = dict(workloads="tiny-mt", hws="edge-npu", policies="fp32,fixed16,dsq", dram_bw_scales=scales,
                arrays=arrays)
    n = 3 * len(scales) * len(arrays)
    tmp = Path(tempfile.mkdtemp(prefix="dsqsim-bench-sweep-"))
    rows = []
    try:
        for label, kwargs in (("in process (workers=1)", {"workers": 1}),
                              (f"process pool (workers={os.cpu_count()})", {"workers": os.cpu_count() or 1}),
                              ("Dask LocalCluster (2 workers)", {"workers": 2, "executor": "dask"})):
            DEFAULT_CACHE.memory.clear()  # every configuration simulated afresh
            out = tmp / f"{len(rows)}.parquet"
            try:
                wall = _timed(lambda kw=kwargs, o=out: run_sweep(**grid, out=o, **kw))
            except ValueError as exc:  # dask not installed
                rows.append((label, "-", str(exc)))
                continue
            rows.append((label, f"{wall:.1f}", f"{n / wall:.2f}"))
            if len(rows) == 1:
                resume_wall = _timed(lambda o=out: run_sweep(**grid, out=o, resume=True, workers=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return head + (
        "## Sweeps\n\n"
        f"A grid of {n} points (tiny-mt on edge-npu, fp32/fixed16/dsq x {len(scales)} DRAM bandwidth scales x "
        f"{len(arrays)} array sizes, tile fidelity), each point persisted as it finishes. Wall seconds include "
        "process or cluster start-up.\n\n"
        "| executor | wall s | points/s |\n|---|---|---|\n" + table + "\n\n"
        f"Resuming the finished sweep (all {n} points saved) took {resume_wall:.2f} s: no point is recomputed.\n"
    )


if __name__ == "__main__":
    print(run(quick=True))
