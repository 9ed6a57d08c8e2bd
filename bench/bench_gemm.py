"""Benchmark: the fold-level systolic model against SCALE-Sim 3.0.0's wall time on the same GEMMs.

SCALE-Sim's wall times are the `wall_s` column of tests/data/scalesim_gemm*.csv (measured when those reference rows
were produced, on this project's kind of machine); ours are measured here, best of several repeats.
"""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool = False) -> str:
    import pandas as pd

    from hwmodels.compute import systolic_gemm
    from hwmodels.machine import get_machine

    frames = [pd.read_csv(DATA / name) for name in ("scalesim_gemm.csv", "scalesim_gemm_extra.csv")
              if (DATA / name).exists()]
    ref = pd.concat(frames, ignore_index=True).sort_values("wall_s", ascending=False)
    ref = ref.head(6 if quick else 12)
    repeats = 3 if quick else 20
    lines = [
        "## GEMM: fold-level systolic model vs SCALE-Sim",
        "",
        "Wall time per GEMM of `hwmodels.compute.systolic_gemm` (best of "
        f"{repeats}) against SCALE-Sim 3.0.0 on the same GEMM (its `wall_s` in the reference CSVs; 1-byte words, "
        "CALC bandwidth; measured when the rows were made, on a shared, loaded 2-core machine, so ratios are orders "
        "of magnitude, not precise figures). The slowest reference rows are shown. Compute cycles agree exactly on "
        "every row.",
        "",
        "| array | dataflow | M x K x N | SRAM kB | cycles | SCALE-Sim s | ours ms | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for r in ref.itertuples():
        kb = int(str(r.sram_sizes_kb).split("/")[0].removeprefix("ifmap"))

        def call(r=r, kb=kb):
            return systolic_gemm(int(r.array_rows), int(r.array_cols), r.dataflow, int(r.M), int(r.K), int(r.N),
                                 8, 8, kb)

        assert call().compute_cycles == r.compute_cycles
        ours = _best_of(call, repeats)
        ratios.append(r.wall_s / ours)
        lines.append(f"| {r.array_rows}x{r.array_cols} | {r.dataflow} | {r.M}x{r.K}x{r.N} | {kb} | "
                     f"{r.compute_cycles:,} | {r.wall_s:.2f} | {ours * 1e3:.3f} | {r.wall_s / ours:,.0f}x |")
    lines += ["", f"Median speed-up {sorted(ratios)[len(ratios) // 2]:,.0f}x.", ""]

    # Transformer-sized GEMMs on the NPU presets (no SCALE-Sim time: it would take hours to days)
    lines += [
        "Transformer-sized GEMMs on the machine presets (`Machine.gemm`, bf16 = 8-bit significands):",
        "",
        "| machine | M x K x N | folds | cycles | ours ms |",
        "|---|---|---|---|---|",
    ]
    shapes = [(2048, 768, 768), (2048, 768, 3072), (4096, 4096, 4096)][: 2 if quick else 3]
    for name in ("edge-npu", "cloud-npu"):
        machine = get_machine(name)
        for m, k, n in shapes:
            res = machine.gemm(m, k, n, 8, 8)
            ours = _best_of(lambda mc=machine, m=m, k=k, n=n: mc.gemm(m, k, n, 8, 8), max(1, repeats // 4))
            lines.append(f"| {name} | {m}x{k}x{n} | {res.folds:,} | {res.compute_cycles:,} | {ours * 1e3:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
