"""`sampled` fidelity: the step's transaction-level time estimated from a stratified sample of its ops, with a 95 %
confidence interval, so `tile` can be checked on workloads whose full `transaction` run would take hours.

Method (docs/engine.md, "The sampled fidelity"):
1. The whole step at `tile` fidelity (T_tile), and every op replayed alone at `tile` (x_i: fresh DRAM state, its own
   double-buffered pipeline, no dependencies), which is cheap.
2. Ops are stratified by compute unit and size class (DRAM bursts, powers of 4). Within each stratum a simple random
   sample without replacement (fixed seed) is replayed alone at `transaction` fidelity (y_i) under the same
   starting conditions. Sample sizes follow a cost-aware Neyman allocation (n_h ∝ N_h·x̄_h/√c_h, c_h: bursts) within
   a CPU budget converted to bursts at a fixed nominal rate, so the same seed and budget give the same sample on any
   machine.
3. Separate ratio estimator: Ŷ = Σ_h X_h·ȳ_h/x̄_h (X_h: the stratum's total isolated tile time, known), and the
   step estimate T_tile·Ŷ/X. Its variance by the delta method, residuals d_i = y_i − R̂_h·x_i, with-replacement
   form (no finite-population correction, see below); Student t with Satterthwaite's degrees of freedom.

The interval covers the sampling error of the ratio. What it cannot cover: how the transaction-level DRAM differs
when an op runs in the context of the step (DRAM state left by the previous op, a vector op overlapping a GEMM)
rather than alone. Omitting the finite-population correction treats the step's ops as draws from the population of
op behaviours: the interval keeps a width set by the spread of per-op ratios even when every op is sampled.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

# Nominal transaction-level throughput used to turn `sample_budget_s` into a burst budget (edge-npu, this 2-core
# machine, SimPy + compiled core, ~250k bursts per CPU second; cloud/h100 run ~1M/s, so they finish well within).
# A fixed figure, not a timing: the sample must not depend on the machine's load.
NOMINAL_BURSTS_PER_CPU_S = 250_000
OP_OVERHEAD_BURSTS = 500        # a replay's fixed cost (environment, ports, op process) in burst-equivalents
BLOCK_OPS = 8                   # a sampling unit: this many consecutive ops (trace order)
WARMUP_OPS = 4                  # replayed before a unit, not counted
MIN_PER_STRATUM = 2             # a stratum's variance needs two units
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SampledEstimate:
    """The sampled fidelity's answer: the step's transaction-level cycles with a 95 % interval (sampling error of
    the ratio estimator only), and what was sampled."""

    estimate_cycles: float
    ci_low_cycles: float
    ci_high_cycles: float
    tile_cycles: float          # the whole step at tile fidelity
    ratio: float                # estimated transaction / tile
    samples: int                # units (blocks of BLOCK_OPS ops) replayed at transaction level
    population: int             # units in the step
    strata: int
    dof: float                  # Student t degrees of freedom (Satterthwaite)
    sampled_bursts: int
    total_bursts: int
    sample_budget_s: float
    seed: int
    confidence: float = CONFIDENCE

    @property
    def half_width_rel(self) -> float:
        return (self.ci_high_cycles - self.ci_low_cycles) / 2 / self.estimate_cycles if self.estimate_cycles else 0.0

    def covers(self, cycles: float) -> bool:
        return self.ci_low_cycles <= cycles <= self.ci_high_cycles

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["half_width_rel"] = self.half_width_rel
        return d


def t_quantile(p: float, dof: float) -> float:
    """Student t quantile (Cornish–Fisher expansion around the normal; within 0.3 % for dof >= 3, conservative
    Cauchy/2-dof closed forms below)."""
    if dof <= 1:
        return math.tan(math.pi * (p - 0.5))
    if dof <= 2:
        a = 4 * p * (1 - p)
        return (2 * p - 1) * math.sqrt(2 / a)
    z = _normal_quantile(p)
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / dof + g2 / dof ** 2 + g3 / dof ** 3 + g4 / dof ** 4


def _normal_quantile(p: float) -> float:
    """Inverse normal CDF by bisection on erf (only a handful of calls per run)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _replay_cycles(plans, make_port, options, start_cycle: float) -> float:
    """Consecutive ops from a fresh environment and DRAM state, with the dependencies among them (ops outside are
    taken as done); the makespan."""
    from sim.engine.replay import Replay

    if not plans:
        return 0.0
    pos = {p.index: j for j, p in enumerate(plans)}
    sub = [dataclasses.replace(p, index=j, deps=tuple(pos[d] for d in p.deps if d in pos))
           for j, p in enumerate(plans)]
    return Replay(sub, make_port, options, start_cycle).run() - start_cycle


def unit_cycles(plans, block: tuple[int, int], make_port, options, starts) -> float:
    """A block's time in context: the makespan of the WARMUP_OPS ops before it followed by the block, less the
    warm-up's own makespan (so the block starts on the DRAM state and unit occupancy the preceding work leaves).
    The replay starts at the warm-up's start in the tile step (`starts`), so refreshes fall where they would."""
    a, b = block
    w = max(0, a - WARMUP_OPS)
    t0 = float(starts[w])
    return _replay_cycles(plans[w:b], make_port, options, t0) - _replay_cycles(plans[w:a], make_port, options, t0)


def _bursts(plans, request_bytes: int) -> int:
    return sum(-(-a.total_bytes // request_bytes) for p in plans for a in p.accesses)


def _stratum(plans, bursts: int) -> tuple[str, int]:
    """Blocks with GEMMs apart from vector-only blocks, by size class."""
    kind = "array" if any(p.unit == "array" for p in plans) else "vector"
    return kind, int(math.log(max(bursts, 1), 4))


def allocate(strata: dict, x: np.ndarray, cost: np.ndarray, budget: float) -> dict:
    """Sample sizes per stratum: n_h ∝ N_h·x̄_h/√c̄_h scaled to the budget (in bursts), at least
    min(MIN_PER_STRATUM, N_h) and at most N_h; budget left by strata capped at N_h goes to the others."""
    n = {h: min(MIN_PER_STRATUM, len(ix)) for h, ix in strata.items()}
    for _ in range(len(strata) + 1):
        free = [h for h, ix in strata.items() if n[h] < len(ix)]
        fixed = sum(n[h] * cost[strata[h]].mean() for h in strata if h not in free)
        left = budget - fixed
        weight = {h: len(strata[h]) * x[strata[h]].mean() / math.sqrt(cost[strata[h]].mean()) for h in free}
        spend = sum(weight[h] * math.sqrt(cost[strata[h]].mean()) for h in free)  # Σ w_h c̄_h per unit scale
        if not free or spend <= 0:
            break
        k = max(left, 0.0) / spend
        capped = False
        for h in free:
            want = k * weight[h] / math.sqrt(cost[strata[h]].mean())
            want = max(min(MIN_PER_STRATUM, len(strata[h])), int(want))
            if want >= len(strata[h]):
                n[h], capped = len(strata[h]), True
            else:
                n[h] = want
        if not capped:
            break
    return n


def estimate(plans, tile_cycles: float, starts, make_tile_port, make_txn_port, options, request_bytes: int
             ) -> SampledEstimate:
    """The step's transaction-level cycles from a stratified sample of `plans` (see the module docstring)."""
    budget_s, seed = options.sample_budget_s, options.seed
    blocks = [(a, min(a + BLOCK_OPS, len(plans))) for a in range(0, len(plans), BLOCK_OPS)]
    bursts = np.array([_bursts(plans[a:b], request_bytes) for a, b in blocks], dtype=float)
    x = np.array([unit_cycles(plans, blk, make_tile_port, options, starts) for blk in blocks])
    warm = np.array([_bursts(plans[max(0, a - WARMUP_OPS):a], request_bytes) for a, _ in blocks], dtype=float)
    cost = bursts + warm + OP_OVERHEAD_BURSTS * (BLOCK_OPS + 2 * WARMUP_OPS)
    strata: dict = defaultdict(list)
    for i, (a, b) in enumerate(blocks):
        strata[_stratum(plans[a:b], int(bursts[i]))].append(i)
    strata = {h: np.array(ix) for h, ix in sorted(strata.items())}
    n = allocate(strata, x, cost, budget_s * NOMINAL_BURSTS_PER_CPU_S)
    rng = np.random.default_rng(seed)
    total_y, var, dof_num, dof_den, samples, sampled_bursts = 0.0, 0.0, 0.0, 0.0, 0, 0
    for h, ix in strata.items():
        pick = np.sort(rng.choice(ix, size=n[h], replace=False))
        ys = np.array([unit_cycles(plans, blocks[i], make_txn_port, options, starts) for i in pick])
        xs = x[pick]
        samples += len(pick)
        sampled_bursts += int(bursts[pick].sum() + warm[pick].sum())
        big_x = float(x[ix].sum())
        r_h = float(ys.sum() / xs.sum()) if xs.sum() > 0 else 1.0
        total_y += big_x * r_h
        if len(pick) >= 2:
            d = ys - r_h * xs
            v_h = len(ix) ** 2 * float(d.var(ddof=1)) / len(pick)
            var += v_h
            dof_num += v_h
            dof_den += v_h ** 2 / (len(pick) - 1)
    big_x = float(x.sum())
    ratio = total_y / big_x if big_x > 0 else 1.0
    dof = dof_num ** 2 / dof_den if dof_den > 0 else float("inf")
    t = t_quantile(0.5 + CONFIDENCE / 2, dof) if math.isfinite(dof) else _normal_quantile(0.5 + CONFIDENCE / 2)
    half = t * math.sqrt(var) / big_x if big_x > 0 else 0.0
    est = tile_cycles * ratio
    return SampledEstimate(
        estimate_cycles=est, ci_low_cycles=tile_cycles * (ratio - half), ci_high_cycles=tile_cycles * (ratio + half),
        tile_cycles=tile_cycles, ratio=ratio, samples=samples, population=len(blocks), strata=len(strata),
        dof=dof, sampled_bursts=sampled_bursts, total_bursts=int(bursts.sum()), sample_budget_s=budget_s, seed=seed)


def run_sampled(trace, machine_view, config, plans, options, dram_spec, counts):
    """A SimResult at `sampled` fidelity: the tile result with `cycles`/`time_s` replaced by the estimate and the
    interval in `.sampled` (the op table, busy and stall figures are tile's)."""
    from sim.engine.replay import dram_port_factory, run_replay

    wall0 = time.perf_counter()
    tile = run_replay(trace, machine_view, config, plans, "tile", options, dram_spec, counts)
    clock = machine_view.clock_ghz
    starts = tile.ops.sort_values("index")["start_cycle"].to_numpy()
    s = estimate(plans, tile.cycles, starts, dram_port_factory("tile", dram_spec, clock),
                 dram_port_factory("transaction", dram_spec, clock), options, dram_spec.request_bytes)
    return dataclasses.replace(tile, fidelity="sampled", cycles=s.estimate_cycles,
                               time_s=s.estimate_cycles / (clock * 1e9), sampled=s,
                               wall_s=time.perf_counter() - wall0)
