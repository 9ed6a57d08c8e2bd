"""Synthetic traffic through the transaction-level model, as the DRAMSim3 reference runs were made.

Patterns (requests of `stride_bytes` each; a request larger than one burst is several burst transactions):
  seq_read / seq_write  address i * stride
  mix                   alternating read, write; reads walk up from 0, writes from 512 MiB
  rand_read             uniformly random stride-aligned addresses over 1 GiB (fixed seed)
Figures: achieved GB/s = requests x stride / (end_cycle x tCK), end_cycle being when every read has returned and
every write has been accepted; average read latency from the controller accepting a read to its data returning.
The model is run over clocks 0..end_cycle-1 exactly, as DRAMSim3 stops there: command counts are of commands issued
before end_cycle (writes still buffered then are not counted), and the rank-state counters (`rank_active_cycles`,
`all_bank_idle_cycles`, rank x memory clocks summed over ranks and channels) add up to end_cycle x ranks x channels;
`hwmodels.dram.energy.counters_from_bench` turns them into DRAMSim3's energy.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import asdict, dataclass

import numpy as np

from hwmodels.dram.compiled import make_system
from hwmodels.dram.spec import DramSpec, get_dram

PATTERNS = ("seq_read", "seq_write", "mix", "rand_read")
MIX_WRITE_BASE = 512 << 20
RAND_SPAN = 1 << 30


@dataclass
class BenchResult:
    dram: str
    pattern: str
    requests: int
    stride_bytes: int
    issue_width: int
    outstanding: int | None
    address_mapping: str
    achieved_gbps: float
    peak_gbps: float
    efficiency: float
    avg_read_latency_ns: float | None
    row_hit_rate: float
    end_cycle: int
    read_cmds: int
    write_cmds: int
    act_cmds: int
    ref_cmds: int
    wall_s: float
    rank_active_cycles: int | None = None    # rank-clocks with a row open (see the module docstring)
    all_bank_idle_cycles: int | None = None  # rank-clocks with every bank precharged (None: not counted)

    def to_dict(self) -> dict:
        return asdict(self)


def pattern_addresses(pattern: str, requests: int, stride_bytes: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(byte addresses, is_write flags) of a pattern's requests."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; valid: {', '.join(PATTERNS)}")
    if requests <= 0 or stride_bytes <= 0:
        raise ValueError(f"requests and stride must be positive, got {requests} and {stride_bytes}")
    i = np.arange(requests, dtype=np.int64)
    if pattern in ("seq_read", "seq_write"):
        return i * stride_bytes, np.full(requests, pattern == "seq_write")
    if pattern == "mix":
        is_write = (i % 2) == 1
        addr = (i // 2) * stride_bytes + np.where(is_write, MIX_WRITE_BASE, 0)
        return addr, is_write
    slots = max(RAND_SPAN // stride_bytes, 1)
    rng = np.random.default_rng(seed)
    return rng.integers(0, slots, size=requests, dtype=np.int64) * stride_bytes, np.zeros(requests, dtype=bool)


def run_bench(dram: str | DramSpec, pattern: str = "seq_read", requests: int = 200_000, stride_bytes: int = 64,
              issue_width: int = 1, address_mapping: str | None = None, outstanding: int | None = None,
              seed: int = 1, compiled: bool | None = None) -> BenchResult:
    """Drive `requests` requests of a pattern through the transaction-level model and measure it.

    compiled: None -> the compiled core if built, else the pure-Python model; True / False to choose (same results).
    """
    spec = get_dram(dram)
    if address_mapping:
        spec = spec.with_overrides(address_mapping=address_mapping)
    if issue_width <= 0:
        raise ValueError(f"issue width must be a positive integer, got {issue_width}")
    if outstanding is not None and outstanding <= 0:
        raise ValueError(f"outstanding must be a positive integer, got {outstanding}")
    addrs, writes = pattern_addresses(pattern, requests, stride_bytes, seed)
    rb = spec.request_bytes
    bursts = max(-(-stride_bytes // rb), 1)  # a request larger than one burst is several transactions
    remaining = [bursts] * requests
    done_heap: list[int] = []

    def on_done(token: object, added: int, done: int, is_write: bool) -> None:
        k = token  # request index
        remaining[k] -= 1
        if remaining[k] == 0:
            heapq.heappush(done_heap, done)

    # without an outstanding limit nobody waits for a completion: the counters say everything
    system = make_system(spec, issue_width=issue_width, on_done=None if outstanding is None else on_done,
                         compiled=compiled)
    t0 = time.perf_counter()
    a_list, w_list = addrs.tolist(), writes.tolist()
    if outstanding is None:
        if bursts > 1:  # burst addresses of each request, in order
            a_list = [a - a % rb + j * rb for a in a_list for j in range(bursts)]
            w_list = [w for w in w_list for _ in range(bursts)]
        submit_many = getattr(system, "submit_many", None)
        if submit_many is not None:
            submit_many(a_list, w_list, [0] * len(a_list), 0)
        else:
            for a, w in zip(a_list, w_list, strict=True):
                system.submit(a, w, 0, 0)
        system.run_until_idle(stop_at_idle=True)
    else:
        inflight, now = 0, 0
        for k in range(requests):
            while inflight >= outstanding:
                if done_heap:
                    now = max(now, heapq.heappop(done_heap))
                    inflight -= 1
                else:
                    system.advance(system.next_cycle())
            base = a_list[k] - a_list[k] % rb if bursts > 1 else a_list[k]
            for j in range(bursts):
                system.submit(base + j * rb, w_list[k], k, now)
            inflight += 1
        system.run_until_idle(stop_at_idle=True)
    # nothing completes after the idle point: end_cycle is known; run the model to it and no further
    end_cycle = max(system.last_done_cycle(), 1)
    if system.clk < end_cycle - 1:
        system.advance(end_cycle - 1)
    wall = time.perf_counter() - t0
    tot = system.stats()["total"]
    achieved = requests * stride_bytes / (end_cycle * spec.tCK_ns)
    n_rd = tot["reads_done"]
    lat = tot["read_latency_sum_cycles"] / n_rd * spec.tCK_ns if n_rd else None
    rw = tot["read_cmds"] + tot["write_cmds"]
    return BenchResult(
        dram=spec.name, pattern=pattern if outstanding is None else f"{pattern}_{outstanding}outstanding",
        requests=requests, stride_bytes=stride_bytes, issue_width=issue_width, outstanding=outstanding,
        address_mapping=spec.address_mapping, achieved_gbps=achieved, peak_gbps=spec.peak_gbps,
        efficiency=achieved / spec.peak_gbps, avg_read_latency_ns=lat,
        row_hit_rate=tot["row_hits"] / rw if rw else 0.0, end_cycle=end_cycle, read_cmds=tot["read_cmds"],
        write_cmds=tot["write_cmds"], act_cmds=tot["activations"], ref_cmds=tot["refreshes"], wall_s=wall,
        rank_active_cycles=tot["rank_active_cycles"], all_bank_idle_cycles=tot["all_bank_idle_cycles"])
