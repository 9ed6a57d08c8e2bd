"""Refresh in bounded work (hwmodels.dram.refresh) against the per-interval loop it replaced (tests/bulk_reference.py),
and the work it does: independent of the number of cycles.

Measured bounds (random transfers and batches on the two-rank DRAMs, the engine's own calls): one rank is exact;
with two ranks every transfer of up to EXACT_REFRESHES refreshes is exact, and longer ones stay within 1 % of the
loop (99 % of them within 0.5 %): beyond the walked refreshes the phase flow averages the refreshes' lock onto the
rank pattern, and resonances where several rank cycles make up one pattern period are not followed exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from bulk_reference import reference_with_refresh

from hwmodels.dram import BulkDram, get_dram
from hwmodels.dram.refresh import EXACT_REFRESHES, RankCounter, RankRuns, RunPattern, with_refresh

TWO_RANKS = ("lpddr4", "ddr4")
ONE_RANK = ("hbm2", "hbm3-h100", "gddr6", "lpddr5")


def _random_runs(rng) -> RankRuns:
    segs = []
    for _ in range(rng.integers(1, 4)):
        size = rng.integers(1, 6)
        segs.append((RunPattern(rng.integers(0, 2, size), rng.integers(1, 30, size)), int(rng.integers(1, 5))))
    return RankRuns(tuple(segs))


def test_rank_runs_encode_concatenate_and_repeat() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        pattern = rng.integers(0, 2, rng.integers(1, 40))
        ranks = np.concatenate([rng.integers(0, 2, rng.integers(0, 30)), np.tile(pattern, rng.integers(1, 9)),
                                rng.integers(0, 2, rng.integers(0, 30))])
        if len(ranks) == 0:
            continue
        runs = RankRuns.of(ranks)
        assert (runs.expand() == ranks).all()
        assert runs.bursts == len(ranks)
        assert (runs.repeated(3).expand() == np.tile(ranks, 3)).all()
        assert ((runs + runs.repeated(2)).expand() == np.tile(ranks, 3)).all()
    # a long periodic stream is a few runs, not one entry per burst
    stream = np.tile(np.repeat([0, 1], 512), 1000)
    assert sum(len(p.ranks) for p, _ in RankRuns.of(stream).segments) <= 4


def test_rank_counter_counts_like_a_cumulative_sum() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        runs = _random_runs(rng)
        ranks, counter = runs.expand(), RankCounter(runs, 2)
        xs = np.arange(len(ranks) + 1)
        for r in (0, 1):
            want = np.concatenate(([0], np.cumsum(ranks == r)))
            assert [counter.count(r, int(x)) for x in xs] == want.tolist()
            assert (counter.counts(r, xs) == want).all()
            # a window is the difference of two counts, whether it stays inside one run or crosses runs and segments
            for lo in range(len(ranks)):
                for hi in (lo + 1, lo + 3, lo + 40, len(ranks)):
                    if hi <= len(ranks):
                        assert counter.window(r, lo, hi) == want[hi] - want[lo]
    runs = _random_runs(rng)
    assert runs.counter(2) is runs.counter(2) and runs.counter(2).n == runs.bursts  # built once per rank count


def _cases(dram: str, count: int, seed: int):
    """(spec, cycles, ranks, start_ns) of random transfers and two-transfer batches, timed by the bulk model."""
    bulk = BulkDram(dram, replay=False)
    spec, rng = bulk.spec, np.random.default_rng(seed)
    for _ in range(count):
        nbytes, addr = int(2 ** rng.uniform(14, 26)), int(rng.integers(0, 1 << 28)) // 64 * 64
        stride = None if rng.random() < 0.7 else spec.request_bytes * int(rng.integers(2, 9))
        work = bulk.work(addr, min(nbytes, 1 << 22) if stride else nbytes, bool(rng.integers(2)), stride)
        if rng.random() < 0.3:
            work = work + bulk.work(int(rng.integers(0, 1 << 28)) // 64 * 64, int(2 ** rng.uniform(14, 24)), False)
        start_ns = float(rng.uniform(0, 1e7))
        cycles = float(rng.uniform(0.9, 1.6)) * bulk.time(work, False, start_ns).per_channel_ns[0] / spec.tCK_ns
        yield spec, cycles, work.ranks, start_ns


@pytest.mark.parametrize("dram", ONE_RANK)
def test_one_rank_is_the_loop_exactly_in_one_step(dram: str) -> None:
    spec, rng = get_dram(dram), np.random.default_rng(11)
    for _ in range(200):
        cycles, start_ns = float(2 ** rng.uniform(3, 24)), float(rng.uniform(0, 1e8))
        got, work = with_refresh(spec, cycles, RankRuns(), start_ns)
        want, _ = reference_with_refresh(spec, cycles, np.zeros(0, dtype=np.int64), start_ns)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-6)
        assert work == 1


@pytest.mark.parametrize("dram", TWO_RANKS)
def test_two_ranks_walked_refreshes_are_the_loop_exactly(dram: str) -> None:
    for spec, cycles, runs, start_ns in _cases(dram, 60, 1):
        want, refreshes = reference_with_refresh(spec, cycles, runs.expand(), start_ns)
        got, work = with_refresh(spec, cycles, runs, start_ns, exact=10**9)
        assert got == pytest.approx(want, rel=1e-12) and work == refreshes
        if refreshes <= EXACT_REFRESHES:
            assert with_refresh(spec, cycles, runs, start_ns) == (got, work)


@pytest.mark.parametrize("dram", TWO_RANKS)
@pytest.mark.parametrize("seed", [1, 2])
def test_two_ranks_within_1_percent_of_the_loop(dram: str, seed: int) -> None:
    devs = []
    for spec, cycles, runs, start_ns in _cases(dram, 150, seed):
        want, _ = reference_with_refresh(spec, cycles, runs.expand(), start_ns)
        devs.append(abs(with_refresh(spec, cycles, runs, start_ns)[0] / want - 1))
    assert max(devs) < 0.01
    assert np.quantile(devs, 0.99) < 0.006


@pytest.mark.parametrize("dram", (*TWO_RANKS, *ONE_RANK))
@pytest.mark.parametrize("is_write", [False, True], ids=["read", "write"])
def test_work_does_not_grow_with_cycles(dram: str, is_write: bool) -> None:
    """The same transfer at 1/100 and 1/10,000 of the data rate: 100x the cycles and refreshes, the same work
    (and no more than the walked refreshes plus the flow's epochs)."""
    base = get_dram(dram)
    results = [BulkDram(base.scaled(scale), replay=False).transfer(4096, 8 << 20, is_write)
               for scale in (1e-2, 1e-4)]
    slow, slower = results
    assert slower.ns > 50 * slow.ns
    assert slower.events == slow.events
    visits = BulkDram(base, replay=False).work(4096, 8 << 20, is_write).visits
    assert slow.events - visits <= EXACT_REFRESHES + 2 * 64


def test_refresh_longer_than_its_interval_is_a_value_error() -> None:
    spec = get_dram("hbm2").with_overrides(tRFC=10_000)
    with pytest.raises(ValueError, match="refresh"):
        with_refresh(spec, 1e6, RankRuns(), 0.0)


@pytest.mark.parametrize("dram", TWO_RANKS)
def test_simultaneous_refresh_against_the_loop(dram: str) -> None:
    """RANK_LEVEL_SIMULTANEOUS (no preset uses it): the walk is the loop exactly; the flow (the busiest rank's share)
    stays within 0.5 % (measured 0.21 %)."""
    devs = []
    for spec, cycles, runs, start_ns in _cases(dram, 60, 3):
        spec = spec.with_overrides(refresh_policy="RANK_LEVEL_SIMULTANEOUS")
        want, refreshes = reference_with_refresh(spec, cycles, runs.expand(), start_ns)
        walked = with_refresh(spec, cycles, runs, start_ns, exact=10**9)
        assert walked[0] == pytest.approx(want, rel=1e-12) and walked[1] == refreshes
        devs.append(abs(with_refresh(spec, cycles, runs, start_ns)[0] / want - 1))
    assert max(devs) < 0.005
