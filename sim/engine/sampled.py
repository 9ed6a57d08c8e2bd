"""`sampled` fidelity: the step's transaction-level time estimated from a stratified sample of its ops, with a 95 %
confidence interval, so `tile` can be checked where the full `transaction` run takes too long (llama-7b: hours).

Method (docs/engine.md, "The sampled fidelity"):
1. The whole step at `tile` fidelity. Units are blocks of BLOCK_OPS consecutive ops (trace order); a unit's time is
   how far it moves the step's running end: x_i = E(b−1) − E(a−1), E(k) the latest end among ops 0..k. The x_i add up
   to the step exactly, overlap included.
2. Units are stratified by kind (with or without a GEMM) and size class (DRAM bursts, powers of 4); within each
   stratum a simple random sample without replacement (fixed seed). Sizes follow a cost-aware Neyman allocation
   (n_h ∝ N_h·x̄_h/√c̄_h, c: bursts) within a CPU budget converted to bursts at a fixed nominal rate, so the same seed
   and budget give the same sample on any machine.
3. One hybrid replay of the whole step: the sampled units, each with the WARMUP_OPS ops before it, move their data
   through the transaction-level DRAM model, every other op through the bulk model, on one shared bus. y_i is a
   sampled unit's x measured in this replay: its transaction-level time in the step's own context (overlap with
   neighbours, the refresh schedule, the DRAM state its warm-up leaves).
4. Separate ratio estimator against a second hybrid replay with a bulk model in place of the transaction model
   (x'_i: the same units at tile level under the hybrid's own conditions, so the boundary effects common to both
   cancel): T̂ = Σ_h X_h·ȳ_h/x̄'_h (X_h: the stratum's total tile time, known), variance by the delta method on
   d_i = y_i − R̂_h·x'_i with the finite-population correction, Student t with Satterthwaite's degrees of freedom.
5. Model-discrepancy bound, added to the sampling half-width: what the hybrid approximates is measured by how much
   the estimate moves when the approximation changes: |T̂ − T̂_0| (T̂_0: the same sample without warm-up ops, its
   own pair of hybrid replays) + |T̂ − T̂_x| (T̂_x: the ratio taken against the tile run's x_i instead of x'_i, i.e.
   how much the hybrid boundaries move the units at tile level). Every unit sampled: the hybrid replay is the
   transaction run, both terms vanish and the interval closes on it.

Measured coverage (docs/engine.md): 236 of 240 tiny cases, 13 of 15 transformer-iwslt cases. Not covered: a residual
bias of the hybrid (the bulk model's DRAM state does not see the sampled units' traffic, nor the transaction model
the unsampled units', each unit's slowdown shifts the later units in time) beyond what the two terms measure; on
transformer-iwslt the estimate is 0.1–0.3 % low on average.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from sim.engine.units import BulkDramPort, DramPort, TransactionDramPort

# Nominal transaction-level throughput used to turn `sample_budget_s` into a burst budget (the engine's transaction
# path with the compiled core running each DMA batch in one call, on this 2-core machine: ~6-8 M bursts per CPU
# second on the full transformer-iwslt step, ~5 M on small ones; docs/engine.md). A fixed figure, not a timing: the
# sample must not depend on the machine's load.
NOMINAL_BURSTS_PER_CPU_S = 5_000_000
BLOCK_OPS = 4                   # a sampling unit: this many consecutive ops (trace order)
WARMUP_OPS = 2                  # ops before a sampled unit also at transaction level, not measured
MIN_PER_STRATUM = 2             # a stratum's variance needs two units
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SampledEstimate:
    """The sampled fidelity's answer: the step's transaction-level cycles with a nominal 95 % interval (the ratio
    estimator's sampling error plus a model-discrepancy bound), and what was sampled."""

    estimate_cycles: float
    ci_low_cycles: float
    ci_high_cycles: float
    tile_cycles: float          # the whole step at tile fidelity
    ratio: float                # estimated transaction / tile
    samples: int                # units (blocks of BLOCK_OPS ops) measured at transaction level
    population: int             # units in the step
    strata: int
    dof: float                  # Student t degrees of freedom (Satterthwaite)
    sampled_bursts: int         # bursts through the transaction model (sampled units, warm-ups, both replays)
    total_bursts: int
    sample_budget_s: float
    seed: int
    sampling_half_cycles: float = 0.0     # the sampling error's half-width (t x standard error)
    discrepancy_cycles: float = 0.0       # the model-discrepancy bound added to it (step 5 of the method)
    confidence: float = CONFIDENCE

    @property
    def half_width_rel(self) -> float:
        return (self.ci_high_cycles - self.ci_low_cycles) / 2 / self.estimate_cycles if self.estimate_cycles else 0.0

    def covers(self, cycles: float) -> bool:
        slack = 1e-9 * abs(self.estimate_cycles)  # float rounding of a fully sampled step
        return self.ci_low_cycles - slack <= cycles <= self.ci_high_cycles + slack

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["half_width_rel"] = self.half_width_rel
        return d


def t_quantile(p: float, dof: float) -> float:
    """Student t quantile: closed forms for 1 and 2 degrees of freedom, else the Cornish–Fisher expansion around
    the normal quantile (within 0.3 % of tables for dof >= 3)."""
    if dof <= 1:
        return math.tan(math.pi * (p - 0.5))
    if dof <= 2:
        return (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))
    z = _normal_quantile(p)
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / dof + g2 / dof ** 2 + g3 / dof ** 3 + g4 / dof ** 4


def _normal_quantile(p: float) -> float:
    """Inverse normal CDF by bisection on erf (a handful of calls per run)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


class HybridDramPort(DramPort):
    """Batches of the ops named in `sampled_ops` through their own DRAM model (`level`: "transaction", or "tile" for
    a second bulk model with its own state), all others through the bulk model; one shared data bus, so the
    transfer schedule is the one either fidelity would see. The two models do not see each other's traffic (open
    rows, posted writes still draining): the tile-level hybrid has the same blind spot, so the ratio cancels it to
    first order."""

    def __init__(self, env, spec, clock_ghz: float, sampled_ops: frozenset, level: str) -> None:
        super().__init__(env)
        self.tile = BulkDramPort(env, spec, clock_ghz)
        self.txn = TransactionDramPort(env, spec, clock_ghz) if level == "transaction" else BulkDramPort(
            env, spec, clock_ghz)
        self.tile.bus = self.txn.bus = self.bus
        self.txn_ops = sampled_ops

    def transfer(self, transfers, is_write: bool, label: str):
        port = self.txn if label in self.txn_ops else self.tile
        return (yield from port.transfer(transfers, is_write, label))

    def finish(self) -> None:
        for port in (self.tile, self.txn):
            port.finish()
            self.intervals += port.intervals
            for ch, iv in port.channel_intervals.items():
                self.channel_intervals[ch] += iv
            for ch, b in port.channel_bytes.items():
                self.channel_bytes[ch] += b
            self.bytes_read += port.bytes_read
            self.bytes_written += port.bytes_written
            self.model_events += port.model_events


def running_end(ends: np.ndarray) -> np.ndarray:
    """E(k) = the latest end among ops 0..k, with E(−1) = 0 at index 0 (so unit [a, b) spans E[b] − E[a])."""
    return np.concatenate([[0.0], np.maximum.accumulate(ends)])


def _bursts(plans, request_bytes: int) -> int:
    return sum(-(-a.total_bytes // request_bytes) for p in plans for a in p.accesses)


def _stratum(plans, bursts: int) -> tuple[str, int]:
    """Blocks with a GEMM apart from vector-only blocks, by size class."""
    kind = "array" if any(p.unit == "array" for p in plans) else "vector"
    return kind, int(math.log(max(bursts, 1), 4))


def allocate(strata: dict, x: np.ndarray, cost: np.ndarray, budget: float) -> dict:
    """Sample sizes per stratum: n_h ∝ N_h·x̄_h/√c̄_h scaled to the budget (in bursts), at least
    min(MIN_PER_STRATUM, N_h) and at most N_h; budget left by strata capped at N_h goes to the others."""
    n = {h: min(MIN_PER_STRATUM, len(ix)) for h, ix in strata.items()}
    done: set = set()  # strata taken whole
    for _ in range(len(strata) + 1):
        free = [h for h in strata if h not in done]
        left = budget - sum(len(strata[h]) * cost[strata[h]].mean() for h in done)
        c = {h: cost[strata[h]].mean() for h in free}
        w = {h: len(strata[h]) * max(x[strata[h]].mean(), 1e-9) / math.sqrt(c[h]) for h in free}
        spend = sum(w[h] * c[h] for h in free)
        if not free or spend <= 0:
            break
        k = max(left, 0.0) / spend
        newly = [h for h in free if k * w[h] >= len(strata[h])]
        for h in free:
            n[h] = max(min(MIN_PER_STRATUM, len(strata[h])), min(len(strata[h]), int(k * w[h])))
        if not newly:
            break
        done.update(newly)
        for h in newly:
            n[h] = len(strata[h])
    return n


def ratio_estimate(strata: dict, picks: dict, x: np.ndarray, y: np.ndarray, x_ref: np.ndarray
                   ) -> tuple[float, float, float]:
    """(T̂, variance, Satterthwaite dof) of the separate ratio estimator: per stratum, the known total of `x` times
    the sampled units' Σy / Σx_ref (the stratum mean of y where Σx_ref is 0); variance by the delta method with the
    finite-population correction."""
    total, var, dof_num, dof_den = 0.0, 0.0, 0.0, 0.0
    for h, ix in strata.items():
        pick = picks[h]
        ys, xs, big_n, m = y[pick], x_ref[pick], len(ix), len(pick)
        r_h = ys.sum() / xs.sum() if xs.sum() > 0 else None
        total += float(x[ix].sum()) * r_h if r_h is not None else big_n * float(ys.mean())
        if m >= 2:
            d = ys - r_h * xs if r_h is not None else ys - ys.mean()
            v_h = big_n ** 2 * (1 - m / big_n) * float(d.var(ddof=1)) / m
            var += v_h
            dof_num += v_h
            dof_den += v_h ** 2 / (m - 1)
    return total, var, (dof_num ** 2 / dof_den if dof_den > 0 else math.inf)


def run_sampled(trace, machine_view, config, plans, options, dram_spec, counts):
    """A SimResult at `sampled` fidelity: the tile result with `cycles`/`time_s` replaced by the estimate and the
    interval in `.sampled` (the op table, busy and stall figures are the tile run's)."""
    from sim.engine.replay import Replay, run_replay

    wall0 = time.perf_counter()
    tile = run_replay(trace, machine_view, config, plans, "tile", options, dram_spec, counts)
    ends = tile.ops.sort_values("index")["end_cycle"].to_numpy(dtype=float)
    e_tile = running_end(ends)
    blocks = [(a, min(a + BLOCK_OPS, len(plans))) for a in range(0, len(plans), BLOCK_OPS)]
    x = np.array([e_tile[b] - e_tile[a] for a, b in blocks])
    rb = dram_spec.request_bytes
    bursts = np.array([_bursts(plans[a:b], rb) for a, b in blocks], dtype=float)
    warm = np.array([_bursts(plans[max(0, a - WARMUP_OPS):a], rb) for a, _ in blocks], dtype=float)
    strata: dict = defaultdict(list)
    for i, (a, b) in enumerate(blocks):
        strata[_stratum(plans[a:b], int(bursts[i]))].append(i)
    strata = {h: np.array(ix) for h, ix in sorted(strata.items())}
    # a sampled unit's transaction-level work: its bursts twice (with and without warm-up, step 5) and its warm-up
    n = allocate(strata, x, 2 * bursts + warm, options.sample_budget_s * NOMINAL_BURSTS_PER_CPU_S)
    rng = np.random.default_rng(options.seed)
    picks = {h: np.sort(rng.choice(ix, size=n[h], replace=False)) for h, ix in strata.items()}
    chosen = sorted(int(i) for p in picks.values() for i in p)

    def op_names(warmup: int) -> tuple[frozenset, list[int]]:
        ops: set[int] = set()
        for i in chosen:
            a, b = blocks[i]
            ops.update(range(max(0, a - warmup), b))
        return frozenset(plans[j].name for j in ops), sorted(ops)  # batches are labelled with their op's name

    clock = machine_view.clock_ghz
    events = 0

    def hybrid_units(level: str, names: frozenset) -> np.ndarray:
        nonlocal events
        rep = Replay(plans, lambda env: HybridDramPort(env, dram_spec, clock, names, level), options)
        rep.run()
        events += rep.env.events_scheduled
        e = running_end(np.array([r["end_cycle"] for r in sorted(rep.records, key=lambda r: r["index"])], dtype=float))
        return np.array([e[b] - e[a] for a, b in blocks])

    names, txn_ops = op_names(WARMUP_OPS)
    y = hybrid_units("transaction", names)
    x_same = hybrid_units("tile", names)  # the sampled units at tile level under the hybrid's own conditions
    total, var, dof = ratio_estimate(strata, picks, x, y, x_same)
    discrepancy, txn_bursts = 0.0, _bursts([plans[j] for j in txn_ops], rb)
    if len(chosen) < len(blocks):  # fully sampled: the hybrid is the transaction run, nothing to bound
        names_0, ops_0 = op_names(0)
        y_0 = hybrid_units("transaction", names_0) if names_0 != names else y
        txn_bursts += _bursts([plans[j] for j in ops_0], rb) if names_0 != names else 0
        x_0 = hybrid_units("tile", names_0) if names_0 != names else x_same
        discrepancy = abs(total - ratio_estimate(strata, picks, x, y_0, x_0)[0]) + abs(
            total - ratio_estimate(strata, picks, x, y, x)[0])
    q = 0.5 + CONFIDENCE / 2
    sampling = (t_quantile(q, dof) if math.isfinite(dof) else _normal_quantile(q)) * math.sqrt(var)
    half = sampling + discrepancy
    s = SampledEstimate(
        estimate_cycles=total, ci_low_cycles=total - half, ci_high_cycles=total + half, tile_cycles=tile.cycles,
        ratio=total / tile.cycles if tile.cycles else 1.0, samples=len(chosen), population=len(blocks),
        strata=len(strata), dof=dof, sampled_bursts=txn_bursts,
        total_bursts=int(bursts.sum()), sample_budget_s=options.sample_budget_s, seed=options.seed,
        sampling_half_cycles=sampling, discrepancy_cycles=discrepancy)
    return dataclasses.replace(tile, fidelity="sampled", cycles=s.estimate_cycles,
                               time_s=s.estimate_cycles / (clock * 1e9), sampled=s,
                               events=tile.events + events, wall_s=time.perf_counter() - wall0)
