"""Benchmark: how long building, validating, saving and loading each preset's training-step trace takes."""

from __future__ import annotations

import os
import statistics
import tempfile
import time


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def run(quick: bool = False) -> str:
    from workloads import Trace, build_trace, list_specs

    repeats = 3 if quick else 7
    names = ["tiny-lm", "gpt2-small", "llama-7b"] if quick else list_specs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.json")
        for name in names:
            trace = build_trace(name)
            build = _median_ms(lambda n=name: build_trace(n), repeats)
            check = _median_ms(trace.validate, repeats)
            save = _median_ms(lambda t=trace: t.save(path), repeats)
            load = _median_ms(lambda: Trace.load(path), repeats)
            rows.append(f"| {name} | {len(trace.ops)} | {len(trace.tensors)} | {trace.param_count / 1e6:,.1f} | "
                        f"{build:.1f} | {check:.1f} | {save:.1f} | {load:.1f} | {os.path.getsize(path) / 1e3:.0f} |")
    return "\n".join([
        "## Workloads: trace build time",
        "",
        f"Median of {repeats} runs per preset at its default batch and sequence length: `build_trace` (forward, loss, "
        "backward, Adam), `Trace.validate`, `Trace.save` (JSON, atomic) and `Trace.load` (parse + validate). "
        "Trace size does not depend on batch or sequence length.",
        "",
        "| preset | ops | tensors | params (M) | build ms | validate ms | save ms | load ms | file kB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])


if __name__ == "__main__":
    print(run(quick=True))
