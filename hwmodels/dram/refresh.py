"""Refresh delay of a bulk transfer (hwmodels.dram.bulk) in work bounded per transfer, whatever its cycles.

The model is the one the per-interval loop computed (the tests keep that loop as the reference): every refresh
falling inside a transfer delays it by (tRP + tRFC) x the share of the bursts in flight at that moment (the
controllers' queues around the burst position reached by then, from the transfer's running end) on the refreshed
rank. How that is computed:

- one rank: the share is 1, and the count of refreshes has a closed form (exact);
- several ranks: the first `EXACT_REFRESHES` refreshes are walked one by one as the loop did, each an O(log runs)
  lookup in the run-length encoded rank sequence (`RankRuns`: a transfer's ranks repeat with the address map, so
  they are a few runs repeated, not one entry per burst); the rest follows the phase of the refreshes in the rank
  pattern as a flow (`_flow`), epoch by epoch (at most about `MAX_EPOCHS`): each refresh's share lengthens the
  running end, which pulls the next refresh's position back, so the refreshes either sweep the pattern or lock
  onto it at the share that keeps them in step (docs/engine.md). Transfers of up to EXACT_REFRESHES refreshes are
  exact; longer ones within 1 % of the loop, 99 % of them within 0.6 % (tests/test_dram_refresh.py).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

EXACT_REFRESHES = 64   # refreshes walked one by one per transfer before the phase flow takes over
EPOCH_GROWTH = 0.1     # an epoch of the flow spans at most this fraction of the time elapsed (its coefficients
MAX_EPOCHS = 32        # change with it), and at least 1 / MAX_EPOCHS of the refreshes left
FLOW_GRID = 64        # phases sampled per pattern period
MAX_PERIOD_RUNS = 8    # longest repeating run pattern RankRuns.of looks for


class RunPattern:
    """Runs of ranks (ranks[i] repeated lengths[i] times), with the prefix counts the lookups need, computed once
    per pattern (the engine's memoised transfers share their patterns)."""

    __slots__ = ("ranks", "lengths", "_info", "_shares", "_period")

    def __init__(self, ranks: np.ndarray, lengths: np.ndarray) -> None:
        self.ranks = ranks
        self.lengths = lengths
        self._info: dict[int, tuple] = {}
        self._shares: dict[tuple[int, int], tuple[float, np.ndarray]] = {}
        self._period: int | None = None

    @property
    def shortest_period(self) -> int:
        """Bursts after which the pattern, repeated, repeats itself (a repeated 256 KB chunk of four 512-burst runs
        alternating ranks: 1024)."""
        if self._period is None:
            self._period = _shortest_period(self.expand())
        return self._period

    def window_shares(self, nranks: int, half_window: int) -> tuple[float, np.ndarray]:
        """(shortest period P of the pattern repeated, [rank, FLOW_GRID] share of each rank in the window around
        phases i P / FLOW_GRID of it)."""
        key = (nranks, half_window)
        hit = self._shares.get(key)
        if hit is None:
            period = self.shortest_period
            phases = np.arange(0.0, period, max(1.0, period / FLOW_GRID)).astype(np.int64)
            ends, starts, mine, per_rank = self.info(nranks)[4]
            total = int(ends[-1])
            shares = np.zeros((nranks, len(phases)))
            for r in range(nranks):
                shares[r] = (_periodic_counts(ends, starts, mine[r], per_rank[r], total, phases + half_window + 1)
                             - _periodic_counts(ends, starts, mine[r], per_rank[r], total, phases - half_window))
            hit = self._shares[key] = (float(period), shares / (2 * half_window + 1))
        return hit

    @property
    def bursts(self) -> int:
        return int(self.lengths.sum())

    def info(self, nranks: int) -> tuple:
        """(period, run ends, run ranks, per-rank prefixes [rank][runs before], numpy arrays for `counts`)."""
        hit = self._info.get(nranks)
        if hit is None:
            r, n = self.ranks, self.lengths
            ends = np.cumsum(n)
            per_rank = np.zeros((nranks, len(n) + 1), dtype=np.int64)  # rank-q bursts in the first i runs
            for q in range(nranks):
                per_rank[q, 1:] = np.cumsum(np.where(r == q, n, 0))
            arrays = (ends, ends - n, r[None, :] == np.arange(nranks)[:, None], per_rank)
            # tuples, not lists: the garbage collector stops tracking tuples of ints (a study memoises many patterns)
            hit = self._info[nranks] = (int(ends[-1]), tuple(ends.tolist()), tuple(r.tolist()),
                                        tuple(map(tuple, per_rank.tolist())), arrays)
        return hit

    def expand(self) -> np.ndarray:
        return np.repeat(self.ranks, self.lengths)


@dataclass(frozen=True, slots=True)
class RankRuns:
    """The rank of each burst in issue order, run-length encoded: segments, each a pattern of runs repeated
    `reps` times. Concatenation and repetition cost O(segments), not O(bursts)."""

    segments: tuple[tuple[RunPattern, int], ...] = ()
    # its RankCounter, built on first use (the engine's memoised batches are timed many times)
    _counter: RankCounter | None = field(default=None, init=False, compare=False, repr=False)

    @classmethod
    def of(cls, rank: np.ndarray) -> RankRuns:
        """From one rank per burst; a periodic middle (runs repeating with a period of up to `MAX_PERIOD_RUNS`
        runs) becomes one repeated segment between the first run and the leftover runs."""
        if len(rank) == 0:
            return cls()
        change = np.flatnonzero(rank[1:] != rank[:-1]) + 1
        starts = np.concatenate(([0], change))
        lengths = np.diff(np.concatenate((starts, [len(rank)]))).astype(np.int64)
        ranks = rank[starts].astype(np.int64)
        mid_r, mid_n = ranks[1:], lengths[1:]
        for p in range(1, min(MAX_PERIOD_RUNS, len(mid_n) // 2) + 1):
            differ = np.flatnonzero((mid_r[p:] != mid_r[:-p]) | (mid_n[p:] != mid_n[:-p]))
            whole = ((int(differ[0]) + p if len(differ) else len(mid_n)) // p) * p  # the periodic prefix
            if whole >= 2 * p:
                segs = [(RunPattern(ranks[:1], lengths[:1]), 1), (RunPattern(mid_r[:p], mid_n[:p]), whole // p)]
                if whole < len(mid_n):
                    segs.append((RunPattern(mid_r[whole:], mid_n[whole:]), 1))
                return cls(tuple(segs))
        return cls(((RunPattern(ranks, lengths), 1),))

    @property
    def bursts(self) -> int:
        return sum(p.bursts * reps for p, reps in self.segments)

    def counter(self, ranks: int) -> RankCounter:
        hit = self._counter
        if hit is None or hit.ranks != ranks:
            hit = RankCounter(self, ranks)
            object.__setattr__(self, "_counter", hit)  # a cache, not a field: frozen for everything else
        return hit

    def __add__(self, other: RankRuns) -> RankRuns:
        return RankRuns(self.segments + other.segments)

    def repeated(self, k: int) -> RankRuns:
        """k copies back to back."""
        if k <= 0 or not self.segments:
            return RankRuns()
        if len(self.segments) == 1:
            p, reps = self.segments[0]
            return RankRuns(((p, reps * k),))
        ranks = np.concatenate([np.tile(p.ranks, reps) for p, reps in self.segments])
        lengths = np.concatenate([np.tile(p.lengths, reps) for p, reps in self.segments])
        return RankRuns(((RunPattern(ranks, lengths), k),))

    def expand(self) -> np.ndarray:
        """One rank per burst (for tests and small cases)."""
        if not self.segments:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.tile(p.expand(), reps) for p, reps in self.segments])


class RankCounter:
    """Bursts of each rank among the first x bursts of a RankRuns, in O(log runs) per query. Its fields are tuples
    (memoised batches keep their counters: few objects for the garbage collector to track)."""

    __slots__ = ("ranks", "seg_start", "seg", "before", "arrays", "patterns", "n", "totals")

    def __init__(self, runs: RankRuns, ranks: int) -> None:
        self.ranks = ranks
        seg_start: list[int] = []
        seg: list[tuple] = []           # per segment: period, reps, run ends, run ranks, per-rank prefixes
        before: list[tuple] = []        # per segment, bursts of each rank in the earlier segments
        arrays: list[tuple] = []        # numpy arrays of the same, for vectorised counts
        total = 0
        acc = [0] * ranks
        for pattern, reps in runs.segments:
            period, ends, r, per_rank, arr = pattern.info(ranks)
            seg_start.append(total)
            before.append(tuple(acc))
            seg.append((period, reps, ends, r, per_rank))
            arrays.append(arr)
            for q in range(ranks):
                acc[q] += per_rank[q][-1] * reps
            total += period * reps
        self.seg_start, self.seg, self.before, self.arrays = tuple(seg_start), tuple(seg), tuple(before), tuple(arrays)
        self.patterns = tuple(p for p, _ in runs.segments)
        self.n = total
        self.totals = tuple(acc)

    def window(self, rank: int, lo: int, hi: int) -> int:
        """Bursts of `rank` among bursts [lo, hi) (0 <= lo < hi <= n): `count(rank, hi) - count(rank, lo)`, in one
        lookup when the window lies inside one run (the common case: refresh windows are far shorter than runs)."""
        i = bisect_right(self.seg_start, lo) - 1
        seg_start = self.seg_start[i]
        period, _, ends, r, _ = self.seg[i]
        full, rem = divmod(lo - seg_start, period)
        j = bisect_right(ends, rem)  # the run holding burst lo
        if hi <= seg_start + full * period + ends[j]:
            return hi - lo if r[j] == rank else 0
        return self.count(rank, hi) - self.count(rank, lo)

    def count(self, rank: int, x: int) -> int:
        """Bursts of `rank` among the first x (0 <= x <= n)."""
        if x <= 0:
            return 0
        if x >= self.n:
            return self.totals[rank]
        i = bisect_right(self.seg_start, x) - 1
        period, _, ends, r, per_rank = self.seg[i]
        full, rem = divmod(x - self.seg_start[i], period)
        c = self.before[i][rank] + full * per_rank[rank][-1]
        j = bisect_right(ends, rem)  # runs wholly before rem
        c += per_rank[rank][j]
        if j < len(ends) and r[j] == rank:
            c += rem - (ends[j - 1] if j else 0)
        return c

    def counts(self, rank: int, x: np.ndarray) -> np.ndarray:
        """`count`, vectorised over positions 0 <= x <= n."""
        seg = np.maximum(np.searchsorted(self.seg_start, x, side="right") - 1, 0)
        out = np.full(len(x), self.totals[rank], dtype=np.int64)
        for i in np.unique(seg):
            pick = (seg == i) & (x < self.n)
            ends, starts, mine, per_rank = self.arrays[i]
            out[pick] = self.before[i][rank] + _periodic_counts(ends, starts, mine[rank], per_rank[rank],
                                                                int(ends[-1]), x[pick] - self.seg_start[i])
        return out

    def local_period(self, x: int) -> float:
        """Bursts after which the rank pattern around x repeats: its segment's pattern (or the shortest run
        pattern that repeats within it) when that repeats, else the mean length of `ranks` runs (runs that differ
        by a burst, as a stride makes them)."""
        i = max(bisect_right(self.seg_start, x) - 1, 0)
        period, reps, ends, r, _ = self.seg[i]
        if reps > 1:
            return float(self.patterns[i].shortest_period)
        if len(ends) < 2 * self.ranks + 2:
            return float(period)
        return self.ranks * (ends[-2] - ends[0]) / (len(ends) - 2)


def _periodic_counts(ends: np.ndarray, starts: np.ndarray, mine: np.ndarray, prefix: np.ndarray, period: int,
                     z: np.ndarray) -> np.ndarray:
    """Bursts of one rank among offsets [0, z) of a run pattern repeated forever both ways (z any integers)."""
    q, rem = np.divmod(z, period)
    j = np.searchsorted(ends, rem, side="right")
    jj = np.minimum(j, len(ends) - 1)
    return q * prefix[-1] + prefix[j] + np.where((j < len(ends)) & mine[jj], rem - starts[jj], 0)


def _shortest_period(pattern: np.ndarray) -> int:
    """The shortest p dividing len(pattern) with the pattern p-periodic (as a cycle)."""
    size = len(pattern)
    for p in range(1, size):
        if size % p == 0 and (pattern == np.roll(pattern, -p)).all():
            return p
    return size


def refresh_interval(spec) -> int:
    """Cycles between refreshes (of the next rank, when staggered)."""
    if spec.refresh_policy == "RANK_LEVEL_SIMULTANEOUS":
        return int(spec.tREFI)
    return max(int(spec.tREFI) // spec.ranks, 1)


def with_refresh(spec, cycles: float, runs: RankRuns | None, start_ns: float,
                 exact: int | None = None) -> tuple[float, int]:
    """(cycles including the refreshes falling inside the transfer, model work spent): see the module docstring.
    `runs` is the rank of each burst (ignored with one rank); `exact` overrides EXACT_REFRESHES."""
    s = spec
    if s.refresh_policy == "NONE":
        return cycles, 0
    exact = EXACT_REFRESHES if exact is None else exact
    simultaneous = s.refresh_policy == "RANK_LEVEL_SIMULTANEOUS"
    interval = refresh_interval(s)
    stall = s.tRP + s.tRFC
    if stall >= interval:
        raise ValueError(f"DRAM {s.name!r}: refresh stall tRP + tRFC = {stall} cycles is not shorter than the "
                         f"refresh interval {interval}")
    start = start_ns / s.tCK_ns
    k0 = math.floor(start / interval) + 1
    if s.ranks == 1:  # every refresh stalls the transfer: refresh k0 + j falls inside iff (k0 + j) I < end + j stall
        count = _count_below(start + cycles - k0 * interval, interval - stall)
        return cycles + count * stall, 1
    counter = (runs or RankRuns()).counter(s.ranks)
    n = counter.n
    half_window = (s.trans_queue_size + s.cmd_queue_size) * s.channels
    k, end, work = k0, start + cycles, 0
    while k * interval < end and work < exact:
        pos = int((k * interval - start) / (end - start) * n)
        lo, hi = max(pos - half_window, 0), min(pos + half_window + 1, n)
        if hi <= lo:
            share = 0.0
        elif simultaneous:
            share = max(counter.window(r, lo, hi) for r in range(s.ranks)) / (hi - lo)
        else:
            share = counter.window((k - 1) % s.ranks, lo, hi) / (hi - lo)
        end += stall * share
        k += 1
        work += 1
    if k * interval < end and n > 0:
        end, more = _flow(s, counter, start, end, k, interval, stall, half_window)
        work += more
    return end - start, work


def _flow(spec, counter: RankCounter, start: float, end: float, k: int, interval: int, stall: float,
          half_window: int) -> tuple[float, int]:
    """(end, work) of the refreshes from k on, epoch by epoch. In a rank cycle (each rank's refresh once; one
    refresh when they are simultaneous) the refreshes sample the rank pattern about delta = n I / u bursts apart
    (n bursts, refresh interval I, u the running length). The next cycle lands `cycle` = ranks x delta further,
    which moves its phase in the pattern (local period P) by v0 = cycle - P round(cycle / P), less the pull of the
    cycle's own shares on u: kappa G, with G(phase) the cycle's mean share and kappa = ranks n tau stall / u^2
    (tau: the refresh's time). The phase flows at v0 - kappa G(phase): it sweeps the pattern (the shares average G
    weighted by the time spent at each phase, 1 / |velocity|) or stops where the velocity vanishes (locked: the
    share is v0 / kappa, the one that keeps the refreshes in step with the pattern)."""
    s = spec
    per_cycle = 1 if s.refresh_policy == "RANK_LEVEL_SIMULTANEOUS" else s.ranks
    n, h, work = counter.n, half_window, 0
    shapes: dict[int, tuple[float, np.ndarray]] = {}  # per segment: period, G over one period (from where first met)
    first = True
    while k * interval < end:
        tau, u = k * interval - start, end - start
        left = _count_below(end - k * interval, interval - stall * 0.5)
        m = max(min(EPOCH_GROWTH * tau / interval, left), left / MAX_EPOCHS)
        m = per_cycle * max(1, math.ceil(m / per_cycle))
        pos = min(int(tau / u * n), n - 1)
        delta = n * interval / u
        seg = max(bisect_right(counter.seg_start, pos) - 1, 0)
        if seg not in shapes:
            shapes[seg] = _cycle_share(counter, s, pos, delta, k, per_cycle, h)
            work += 1
        period, g = shapes[seg]
        cycle = per_cycle * delta
        v0 = cycle - period * round(cycle / period)
        kappa = per_cycle * n * tau * stall / (u * u)
        if first:  # from the phase the walk left: the way to a lock, if any
            rate = _phase_flow(g, period / len(g), v0, kappa, m // per_cycle)
        elif g.min() < v0 / kappa < g.max():
            rate = v0 / kappa  # locked
        else:  # sweeping: each phase weighted by the time spent there
            w = 1.0 / np.abs(v0 - kappa * g)
            rate = float((g * w).sum() / w.sum())
        first = False
        work += 1
        if (k + m - 1) * interval < end + stall * rate * (m - 1):  # the whole epoch falls inside the transfer
            end += stall * rate * m
            k += m
            continue
        end += stall * rate * _count_below(end - k * interval, interval - stall * rate)
        break
    return end, work


def _cycle_share(counter: RankCounter, s, pos: int, delta: float, k: int, per_cycle: int,
                 h: int) -> tuple[float, np.ndarray]:
    """(local period, the mean share of a rank cycle starting at each of FLOW_GRID phases from pos)."""
    n = counter.n
    i = max(bisect_right(counter.seg_start, pos) - 1, 0)
    if counter.seg[i][1] > 1:  # a repeated pattern: its window shares, shifted to pos and each refresh's offset
        period, shares = counter.patterns[i].window_shares(s.ranks, h)
        spacing = period / shares.shape[1]
        off = (pos - counter.seg_start[i]) % period
        if per_cycle == 1:
            return period, np.roll(shares.max(axis=0), -round(off / spacing))
        g = sum(np.roll(shares[(k - 1 + t) % s.ranks], -round((off + t * delta) / spacing)) for t in range(per_cycle))
        return period, g / per_cycle
    period = counter.local_period(pos)
    phases = np.arange(0.0, period, max(1.0, period / FLOW_GRID))
    g = np.zeros(len(phases))
    for t in range(per_cycle):
        z = np.minimum(pos + phases + t * delta, n - 1).astype(np.int64)
        lo, hi = np.maximum(z - h, 0), np.minimum(z + h + 1, n)
        if per_cycle == 1 and s.ranks > 1:  # simultaneous: the busiest rank
            g += np.max([counter.counts(r, hi) - counter.counts(r, lo) for r in range(s.ranks)], axis=0) / (hi - lo)
        else:
            r = (k - 1 + t) % s.ranks
            g += (counter.counts(r, hi) - counter.counts(r, lo)) / (hi - lo)
    return period, g / per_cycle


def _phase_flow(g: np.ndarray, spacing: float, v0: float, kappa: float, cycles: int) -> float:
    """Mean share per refresh over `cycles` rank cycles of the flow dphase/dcycle = v0 - kappa G(phase) from
    phase 0 (G sampled every `spacing` bursts over one period)."""
    v = v0 - kappa * g
    if v[0] == 0.0:
        return float(g[0])
    forward = v[0] > 0
    order = np.arange(len(g)) if forward else (-np.arange(len(g))) % len(g)
    dt = spacing / np.maximum(np.abs(v[order]), 1e-12)  # cycles to cross each phase step
    stop = np.flatnonzero((v[order] > 0) != forward)
    reach = int(stop[0]) if len(stop) else len(g)
    t = np.cumsum(dt[:reach])
    shares = np.cumsum(g[order][:reach] * dt[:reach])
    if len(stop):  # it locks where the velocity changes sign: the way there, then the locking share
        if t[-1] >= cycles:
            i = int(np.searchsorted(t, cycles))
            return float(shares[i] / t[i])
        return float((shares[-1] + min(max(v0 / kappa, 0.0), 1.0) * (cycles - t[-1])) / cycles)
    whole, rest = divmod(cycles, t[-1])  # sweeps: whole periods, then part of one
    i = min(int(np.searchsorted(t, rest)), reach - 1)
    return float((whole * shares[-1] + shares[i]) / (whole * t[-1] + t[i]))


def _count_below(slack: float, period: float) -> int:
    """How many c >= 0 have c x period < slack."""
    if slack <= 0:
        return 0
    c = math.ceil(slack / period)
    while c > 0 and (c - 1) * period >= slack:  # guard the float ceil both ways
        c -= 1
    while c * period < slack:
        c += 1
    return c
