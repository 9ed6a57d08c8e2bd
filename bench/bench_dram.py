"""Benchmark: speed of the transaction-level DRAM model on the reference patterns, and of the bulk model.

The transaction-level rows are the loaded rows of tests/data/dramsim3_runs.csv (200k requests each; --quick: 20k).
DRAMSim3 (C++) needed 0.6-7 s for each of those runs on this project's kind of machine (reference README).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "tests" / "data" / "dramsim3_runs.csv"


def run(quick: bool = False) -> str:
    from hwmodels.dram import BulkDram, run_bench

    rows = [r for r in csv.DictReader(ROWS.open()) if "outstanding" not in r["pattern"]]
    requests = 20_000 if quick else 200_000
    lines = [
        "## DRAM: transaction-level and bulk models",
        "",
        f"Transaction level: {requests} requests of each loaded DRAMSim3 reference pattern through "
        "`hwmodels.dram.run_bench` (cycle-level controllers, every burst through the bank state machines); wall "
        "and CPU seconds, requests per wall second, and the achieved bandwidth next to DRAMSim3's. DRAMSim3 "
        "itself needed 0.6-7 s per 200k-request run on this kind of machine.",
        "",
        "| DRAM | pattern | W | wall s | CPU s | requests / wall s | GB/s (ours) | GB/s (DRAMSim3) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu0 = time.process_time()
        res = run_bench(r["config"], r["pattern"], requests, int(r["req_stride_B"]), int(r["issue_per_cycle"]))
        cpu = time.process_time() - cpu0
        lines.append(f"| {r['config']} | {r['pattern']} | {r['issue_per_cycle']} | {res.wall_s:.2f} | {cpu:.2f} | "
                     f"{requests / res.wall_s:,.0f} | {res.achieved_gbps:.2f} | {float(r['achieved_GBps']):.2f} |")
    lines += [
        "",
        "Bulk model: `BulkDram.transfer` of one contiguous read (best of 5), against the transaction-level model "
        "(`TransactionDram.access`, one run) on the same transfer.",
        "",
        "| DRAM | transfer | bulk ms | transaction-level s | speed-up | bulk / transaction-level time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    sizes = [64 << 10, 1 << 20] if quick else [64 << 10, 1 << 20, 16 << 20]
    for dram in ("ddr4", "hbm2", "HBM3_H100"):
        for nbytes in sizes:
            bulk = BulkDram(dram)
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                b = bulk.transfer(0, nbytes, False)
                best = min(best, time.perf_counter() - t0)
            t0 = time.perf_counter()
            ref_ns = _transaction_ns(dram, nbytes)
            tl = time.perf_counter() - t0
            lines.append(f"| {dram} | {nbytes >> 10} KB | {1e3 * best:.2f} | {tl:.2f} | {tl / best:,.0f}x | "
                         f"{b.ns / ref_ns:.3f} |")
    return "\n".join(lines) + "\n"


def _transaction_ns(dram: str, nbytes: int) -> float:
    import simpy

    from hwmodels.dram import TransactionDram

    env = simpy.Environment()
    model = TransactionDram(env, dram)
    out = {}

    def dma(env):
        out["t"] = yield model.access(0, nbytes, False)

    env.process(dma(env))
    env.run()
    return out["t"]


if __name__ == "__main__":
    print(run(quick=True))
