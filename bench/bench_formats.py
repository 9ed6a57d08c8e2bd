"""Quantizer throughput: elements per second of `sim.formats.quantize` per format, nearest and stochastic rounding,
on a float32 tensor (the reference training loop quantizes every GEMM operand every step, along its reduction axis:
the last axis or axis 0). Nearest bfp/mxint8 runs the compiled kernel when numba is installed; "numpy only" is the
same without it."""

from __future__ import annotations

import time

import numpy as np

FORMATS = ["bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "fixed8", "fixed16", "bfp4", "bfp8", "bfp8_b32", "mxint8",
           "mxfp8_e4m3", "mxfp6_e2m3", "mxfp4"]


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()  # CPU time: the machine may be shared
        fn()
        best = min(best, time.process_time() - t0)
    return best


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.2f}"


def run(quick: bool = False) -> str:
    import sim._blockkernel as blockkernel
    from sim.formats import get_format, quantize

    n = 1 << (18 if quick else 20)
    repeats = 3 if quick else 7
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n // 1024, 1024)).astype(np.float32)
    compiled = blockkernel.available()
    rows = []
    for name in FORMATS:
        blocked = get_format(name).block_size is not None
        times = {r: _best_seconds(lambda r=r, name=name: quantize(x, name, rounding=r, rng=rng), repeats)
                 for r in ("nearest", "stochastic")}
        axis0 = _best_seconds(lambda name=name: quantize(x, name, axis=0), repeats) if blocked else None
        numpy_only = None
        if blocked and compiled:
            blockkernel_available, blockkernel.available = blockkernel.available, lambda: False
            try:
                numpy_only = _best_seconds(lambda name=name: quantize(x, name), repeats)
            finally:
                blockkernel.available = blockkernel_available
        rows.append(f"| {name} | {times['nearest'] * 1e3:.2f} | {n / times['nearest'] / 1e6:.0f} | {_ms(axis0)} | "
                    f"{_ms(numpy_only)} | {times['stochastic'] * 1e3:.2f} | {n / times['stochastic'] / 1e6:.0f} |")
    backend = "numba installed: nearest bfp/mxint8 use the compiled kernel" if compiled else "numba not installed"
    return "\n".join([
        "## Number formats: quantizer throughput",
        "",
        f"`sim.formats.quantize` (quantize-dequantize, float32 in and out) on a {n // 1024}x1024 float32 standard "
        f"normal tensor, blocks along the last axis unless stated; best of {repeats} runs (CPU time), single "
        f"thread; {backend}. \"axis 0\": blocks along the first axis (the weight-gradient GEMM's operands); "
        "\"numpy only\": nearest along the last axis without the compiled kernel.",
        "",
        "| format | nearest ms | nearest M elem/s | nearest axis 0 ms | nearest numpy only ms | stochastic ms "
        "| stochastic M elem/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ])


if __name__ == "__main__":
    print(run(quick=False))
