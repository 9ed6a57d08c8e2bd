"""Quantizer throughput: elements per second of `sim.formats.quantize` per format, nearest and stochastic rounding,
on a float32 tensor (the reference training loop quantizes every GEMM operand every step)."""

from __future__ import annotations

import time

import numpy as np

FORMATS = ["bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "fixed8", "fixed16", "bfp4", "bfp8", "bfp8_b32", "mxint8",
           "mxfp8_e4m3", "mxfp6_e2m3", "mxfp4"]


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool = False) -> str:
    from sim.formats import quantize

    n = 1 << (18 if quick else 20)
    repeats = 3 if quick else 7
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n // 1024, 1024)).astype(np.float32)
    rows = []
    for name in FORMATS:
        times = {r: _best_seconds(lambda r=r, name=name: quantize(x, name, rounding=r, rng=rng), repeats)
                 for r in ("nearest", "stochastic")}
        rows.append(f"| {name} | {times['nearest'] * 1e3:.2f} | {n / times['nearest'] / 1e6:.0f} | "
                    f"{times['stochastic'] * 1e3:.2f} | {n / times['stochastic'] / 1e6:.0f} |")
    return "\n".join([
        "## Number formats: quantizer throughput",
        "",
        f"`sim.formats.quantize` (quantize-dequantize, float32 in and out) on a {n // 1024}x1024 float32 standard "
        f"normal tensor, blocks along the last axis; best of {repeats} runs, single thread.",
        "",
        "| format | nearest ms | nearest M elem/s | stochastic ms | stochastic M elem/s |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
    ])


if __name__ == "__main__":
    print(run(quick=False))
