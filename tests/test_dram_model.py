"""Mechanisms of the transaction-level DRAM model: exactness of event skipping, generalisation beyond the
reference rows (address maps, channels, timing parameters), conservation, and the SimPy adapter."""

from __future__ import annotations

import pytest
import simpy

import hwmodels.dram.system as system_mod
from hwmodels.dram import DramSystem, TransactionDram, get_dram, run_bench
from hwmodels.dram.bench import pattern_addresses
from hwmodels.dram.channel import ChannelController


class _EveryCycle(ChannelController):
    """Ticks every clock, as DRAMSim3 does: the reference for the event-skipping controller."""

    def tick(self, clk: int) -> None:
        super().tick(clk)
        self.next_due = clk + 1


def _completions(spec, pattern: str, n: int, width: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    system = DramSystem(spec, issue_width=width, on_done=lambda tok, added, done, w: out.append((tok, done)))
    addrs, writes = pattern_addresses(pattern, n, spec.request_bytes)
    for k, (a, w) in enumerate(zip(addrs.tolist(), writes.tolist(), strict=True)):
        system.submit(a, w, k, 0)
    system.run_until_idle()
    system.advance(system.clk + 3 * max(spec.tREFI, spec.tRFC))  # let buffered writes drain through a refresh
    return sorted(out)


@pytest.mark.parametrize("dram", ["ddr4", "hbm2", "lpddr4", "gddr6"])
@pytest.mark.parametrize("pattern", ["seq_read", "mix", "rand_read"])
def test_event_skipping_gives_the_every_cycle_trace(dram: str, pattern: str, monkeypatch) -> None:
    spec = get_dram(dram).with_overrides(tREFI=1500)  # several refreshes inside a short run
    n = 1500
    fast = _completions(spec, pattern, n, 4)
    monkeypatch.setattr(system_mod, "ChannelController", _EveryCycle)
    slow = _completions(spec, pattern, n, 4)
    assert len(fast) == n and fast == slow


def test_bank_group_interleaved_map_removes_the_tccd_l_bound() -> None:
    base = run_bench("ddr4", "seq_read", 8000, 64, 1)
    remapped = run_bench("ddr4", "seq_read", 8000, 64, 1, address_mapping="rochrabacobg")
    assert base.efficiency < 0.70  # tCCD_L = 8 vs a 4-cycle burst within one bank group
    assert remapped.efficiency > 0.90 > base.efficiency + 0.2


def test_bytes_served_equal_bytes_requested() -> None:
    for dram, stride in (("ddr4", 64), ("ddr4", 256), ("hbm2", 64), ("lpddr4", 128)):
        spec = get_dram(dram)
        r = run_bench(spec, "seq_read", 3000, stride, 4)
        bursts = 3000 * max(stride // spec.request_bytes, 1)
        assert r.read_cmds == bursts
        w = run_bench(spec, "mix", 3000, stride, 4)
        assert w.read_cmds == bursts // 2
        assert w.write_cmds <= bursts // 2  # a few may stay buffered, as in DRAMSim3


def test_more_channels_never_less_bandwidth() -> None:
    hbm = get_dram("hbm2")
    for pattern in ("seq_read", "rand_read"):
        eight = run_bench(hbm, pattern, 8000, 64, 32)
        sixteen = run_bench(hbm.with_overrides(channels=16), pattern, 8000, 64, 32)
        assert sixteen.achieved_gbps >= 0.98 * eight.achieved_gbps
    ddr = get_dram("ddr4").with_overrides(address_mapping="rorabachbgco")
    one = run_bench(ddr, "rand_read", 6000, 64, 4)
    two = run_bench(ddr.with_overrides(channels=2), "rand_read", 6000, 64, 4)
    assert two.achieved_gbps > 1.5 * one.achieved_gbps


def test_random_reads_are_bound_by_tfaw() -> None:
    spec = get_dram("ddr4")
    base = run_bench(spec, "rand_read", 6000, 64, 4)
    ceiling = spec.ranks * 4 * 64 / (spec.tFAW * spec.tCK_ns)  # 4 ACTs per tFAW per rank
    assert base.achieved_gbps <= ceiling
    slower = run_bench(spec.with_overrides(tFAW=2 * spec.tFAW), "rand_read", 6000, 64, 4)
    assert 0.85 * ceiling / 2 <= slower.achieved_gbps <= ceiling / 2  # tracks the halved ceiling


def test_write_to_read_turnaround_costs_mixed_traffic_only() -> None:
    spec = get_dram("hbm2")  # writes drain in batches of a write buffer, so the turnaround is paid per batch
    mixes = [run_bench(spec.with_overrides(tWTR_S=k * spec.tWTR_S, tWTR_L=k * spec.tWTR_L), "mix", 8000, 64, 16)
             for k in (1, 3, 6)]
    assert mixes[0].achieved_gbps > mixes[1].achieved_gbps > mixes[2].achieved_gbps
    assert mixes[2].achieved_gbps < 0.95 * mixes[0].achieved_gbps
    slow_wtr = spec.with_overrides(tWTR_S=6 * spec.tWTR_S, tWTR_L=6 * spec.tWTR_L)
    reads_only = [run_bench(s, "seq_read", 6000, 64, 16).end_cycle for s in (spec, slow_wtr)]
    assert reads_only[0] == reads_only[1]


def test_refresh_costs_bandwidth_and_happens_every_trefi() -> None:
    spec = get_dram("ddr4")
    with_ref = run_bench(spec, "seq_read", 20000, 64, 1)
    no_ref = run_bench(spec.with_overrides(refresh_policy="NONE"), "seq_read", 20000, 64, 1)
    assert no_ref.ref_cmds == 0
    assert with_ref.ref_cmds == pytest.approx(with_ref.end_cycle / (spec.tREFI / spec.ranks), abs=1.5)
    assert 1.02 < no_ref.achieved_gbps / with_ref.achieved_gbps < 1.10


def test_scaled_spec_scales_bandwidth_not_cycles() -> None:
    spec = get_dram("ddr4")
    a = run_bench(spec, "seq_read", 4000, 64, 1)
    b = run_bench(spec.scaled(2.0), "seq_read", 4000, 64, 1)
    assert b.end_cycle == a.end_cycle
    assert b.achieved_gbps == pytest.approx(2 * a.achieved_gbps)


def test_front_end_width_bounds_bandwidth() -> None:
    r = run_bench("hbm2", "seq_read", 8000, 64, 1)
    assert r.achieved_gbps <= 64.0  # one 64 B transaction per 1 ns clock
    assert run_bench("hbm2", "seq_read", 8000, 64, 16).achieved_gbps > 3 * r.achieved_gbps


def test_unloaded_latencies_follow_the_timing_parameters() -> None:
    spec = get_dram("ddr4")
    hit = run_bench(spec, "seq_read", 2000, 64, 1, outstanding=1)
    miss = run_bench(spec, "rand_read", 2000, 64, 1, outstanding=1)
    read_ns = spec.read_delay * spec.tCK_ns
    assert read_ns <= hit.avg_read_latency_ns <= read_ns + 4 * spec.tCK_ns * 1.5
    conflict_ns = (spec.tRP + spec.tRCD_rd + spec.read_delay) * spec.tCK_ns
    assert conflict_ns * 0.9 <= miss.avg_read_latency_ns <= conflict_ns * 1.15


def test_read_after_write_is_served_from_the_write_buffer() -> None:
    done: dict[object, int] = {}
    system = DramSystem(get_dram("ddr4"), on_done=lambda tok, added, d, w: done.__setitem__(tok, d - added))
    system.submit(4096, True, "w", 0)
    system.submit(4096, False, "r", 0)
    system.run_until_idle()
    assert done == {"w": 1, "r": 1}


def test_simpy_adapter_matches_the_bench_and_scales_time() -> None:
    ref = run_bench("ddr4", "seq_read", 3000, 64, 1)
    env = simpy.Environment()
    dram = TransactionDram(env, "ddr4", ns_per_env_unit=0.5, issue_width=1)  # env time in 2 GHz compute cycles
    finished = {}

    def proc(env):
        values = yield simpy.AllOf(env, [dram.access(i * 64, 64, False) for i in range(3000)])
        finished["t"] = env.now
        finished["max_value"] = max(values.values())

    env.process(proc(env))
    env.run()
    expected = ref.end_cycle * get_dram("ddr4").tCK_ns / 0.5
    assert finished["t"] == pytest.approx(expected)
    assert finished["max_value"] == pytest.approx(expected)
    stats = dram.stats()
    assert stats["total"]["bytes_read"] == stats["requested"]["bytes_read"] == 3000 * 64
    assert stats["total"]["busy_ns"] == pytest.approx(3000 * 4 * 0.63)


def test_simpy_accesses_from_concurrent_processes_complete_in_causal_order() -> None:
    env = simpy.Environment()
    dram = TransactionDram(env, "hbm2", ns_per_env_unit=1.0)
    log = []

    def dma(env, base, delay):
        yield env.timeout(delay)
        start = env.now
        t = yield dram.access(base, 64 << 10, False)
        log.append((start, t, env.now))

    for k in range(4):
        env.process(dma(env, k << 24, 100 * k))
    env.run()
    assert len(log) == 4
    for start, t, now in log:
        assert now == pytest.approx(t) and t > start + get_dram("hbm2").read_delay
    with pytest.raises(ValueError, match="nbytes"):
        dram.access(0, 0, False)


def _reference_scan(bc, b: int, clk: int) -> tuple[int, int]:
    """DRAMSim3's GetFirstReadyInQueue walked entry by entry: (index ready now, or -1 and the earliest cycle)."""
    from hwmodels.dram.timing import PRE, RD, WR

    q = bc.queues[b]
    if not q:
        return -1, 1 << 62
    orow, g, r = bc.open_row[b], bc.bank_group[b], bc.bank_rank[b]
    if orow < 0:
        t = bc._act_time(b)
        return (0, t) if t <= clk else (-1, t)
    best = 1 << 62
    for i, (row, is_write, addr) in enumerate(q):
        if row == orow:
            if is_write and i and any(not e[1] and e[2] == addr for e in q[:i]):
                continue  # read-after-write dependency
            y = WR if is_write else RD
            t = max(bc.t_bank[y][b], bc.t_group[y][g], bc.t_rank[y][r])
        else:
            if i or (bc.hits[b] < bc.hit_limit and any(e[0] == orow for e in q)):
                continue
            t = max(bc.t_bank[PRE][b], bc.t_rank[PRE][r])
        if t <= clk:
            return i, t
        best = min(best, t)
    return -1, best


@pytest.mark.parametrize("dram", ["ddr4", "hbm2"])
def test_fast_bank_scan_matches_the_entry_by_entry_walk(dram: str) -> None:
    """`_scan` answers common queue shapes without walking the queue; on random bank states it must pick the same
    command as the plain FR-FCFS walk, and leave a bound no later than the walk's earliest cycle (and no earlier
    than the clock: a bound is a promise that nothing issues before it)."""
    import random

    ch = ChannelController(get_dram(dram), 0, lambda *a: None)
    rng = random.Random(5)
    nb = len(ch.queues)
    for _ in range(4000):
        b = rng.randrange(nb)
        clk = rng.randrange(50, 150)
        for arr in (*ch.t_bank, *ch.t_group, *ch.t_rank):
            for k in range(len(arr)):
                arr[k] = rng.randrange(0, 200)
        ch.four_aw = [[] for _ in ch.four_aw]
        ch.open_row[b] = rng.choice([-1, 1, 2])
        ch.hits[b] = rng.randrange(0, 6)
        q = [(rng.choice([1, 2, 3]), rng.random() < 0.5, rng.randrange(4) * 64) for _ in range(rng.randrange(0, 9))]
        ch.queues[b], ch.qrows[b], ch.q_writes[b] = q, [e[0] for e in q], sum(e[1] for e in q)
        ch.bound[b] = 0
        expected, earliest = _reference_scan(ch, b, clk)
        got = ch._scan(b, clk)
        assert got == expected, (q, ch.open_row[b], ch.hits[b], clk)
        if got < 0:
            assert clk < ch.bound[b] <= earliest
