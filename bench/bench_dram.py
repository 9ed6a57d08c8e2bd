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
    from hwmodels.dram import BulkDram, get_dram, queues, run_bench

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
        "Bulk model: `BulkDram.transfer` of one transfer strided by 2 bursts, first call (the queue replay's cache "
        "cleared), with the queue replay (default) and without it (`replay=False`, the engine's choice), against "
        "the transaction-level model (`TransactionDram`, one run) on the same transfer. Transfers replayable in "
        "8,192 steps are replayed whole (an interleaved stream's channels share one pattern); longer writes replay "
        "their tail.",
        "",
        "| DRAM | transfer | bulk ms | bulk ms, no replay | transaction-level s | speed-up | bulk / transaction "
        "| no replay / transaction |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    sizes = [64 << 10, 1 << 20] if quick else [64 << 10, 1 << 20, 16 << 20]
    for dram in ("ddr4", "hbm2", "HBM3_H100"):
        for nbytes in sizes:
            for is_write in (False, True):
                stride = 2 * get_dram(dram).request_bytes
                times, results = [], []
                for replay in (True, False):
                    queues._replay_alone.cache_clear()
                    queues._replay_together.cache_clear()
                    bulk = BulkDram(dram, replay=replay)
                    t0 = time.perf_counter()
                    results.append(bulk.transfer(0, nbytes, is_write, stride))
                    times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                ref_ns = _transaction_ns(dram, nbytes, is_write, stride)
                tl = time.perf_counter() - t0
                kind = "write" if is_write else "read"
                lines.append(f"| {dram} | {nbytes >> 10} KB {kind} | {1e3 * times[0]:.1f} | {1e3 * times[1]:.1f} | "
                             f"{tl:.2f} | {tl / times[0]:,.0f}x | {results[0].ns / ref_ns:.3f} | "
                             f"{results[1].ns / ref_ns:.3f} |")
    return "\n".join(lines) + "\n"


def _transaction_ns(dram: str, nbytes: int, is_write: bool, stride_bytes: int) -> float:
    """Completion of one strided transfer at the transaction level: every burst offered at once."""
    import simpy

    from hwmodels.dram import TransactionDram

    env = simpy.Environment()
    model = TransactionDram(env, dram)
    rb = model.spec.request_bytes
    out = {}

    def dma(env):
        done = yield simpy.AllOf(env, [model.access(k * stride_bytes, rb, is_write) for k in range(nbytes // rb)])
        out["t"] = max(done.values())

    env.process(dma(env))
    env.run()
    return out["t"]


if __name__ == "__main__":
    print(run(quick=True))
