"""Several training seeds per policy: parse the seed list, and a mean with a Student-t 95 % confidence interval.

The interval is mean ± t(0.975, n-1) · s / sqrt(n), s the sample standard deviation (ddof 1) over the n seeds; one
seed has no interval (NaN). The t quantile is computed here (no SciPy): Simpson integration of the t density and
bisection, accurate to ~1e-9 (tests check it against tabulated values).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

CONFIDENCE = 0.95


def parse_seeds(seeds: str | Sequence[int] | None, repeats: int | None, seed: int = 0) -> tuple[int, ...]:
    """The seeds to run: `--seeds 0,1,2`, or `--repeats N` (seed, seed+1, ..., seed+N-1), or just `seed`."""
    if seeds is not None and repeats is not None:
        raise ValueError("give either --seeds or --repeats, not both")
    if repeats is not None:
        if int(repeats) < 1:
            raise ValueError(f"--repeats must be a positive integer, got {repeats}")
        return tuple(seed + i for i in range(int(repeats)))
    if seeds is None:
        return (int(seed),)
    if isinstance(seeds, str):
        try:
            out = tuple(int(s) for s in seeds.split(",") if s.strip())
        except ValueError:
            raise ValueError(f"--seeds: expected comma-separated integers, got {seeds!r}") from None
    else:
        out = tuple(int(s) for s in seeds)
    if not out:
        raise ValueError("--seeds: no seed given")
    if len(set(out)) != len(out):
        raise ValueError(f"--seeds: seeds must be distinct, got {','.join(map(str, out))}")
    return out


def _t_pdf(x: float, df: int) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def _t_cdf_above_zero(t: float, df: int, intervals: int = 2000) -> float:
    """P(0 < T < t) by composite Simpson's rule."""
    h = t / intervals
    total = _t_pdf(0.0, df) + _t_pdf(t, df)
    total += sum((4 if i % 2 else 2) * _t_pdf(i * h, df) for i in range(1, intervals))
    return total * h / 3


def t_quantile(p: float, df: int) -> float:
    """The p-quantile (p in (0.5, 1)) of Student's t with `df` degrees of freedom."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    target, lo, hi = p - 0.5, 0.0, 1.0
    while _t_cdf_above_zero(hi, df) < target:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf_above_zero(mid, df) < target else (lo, mid)
    return (lo + hi) / 2


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(mean, half-width of the two-sided `confidence` interval); half-width NaN with fewer than two values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    return mean, t_quantile(0.5 + confidence / 2, len(xs) - 1) * sd / math.sqrt(len(xs))


def aggregate_seeds(frame: pd.DataFrame, by: str, columns: Sequence[str]) -> pd.DataFrame:
    """One row per `by` value: `n_seeds`, and `<col>_mean`, `<col>_ci95` (half-width) for each column present."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        row = {by: key, "n_seeds": len(group)}
        for col in columns:
            if col in group:
                row[f"{col}_mean"], row[f"{col}_ci95"] = mean_ci(group[col])
        rows.append(row)
    return pd.DataFrame(rows)


def format_mean_ci(mean: float, half: float, digits: int = 3) -> str:
    """'12.345 ± 0.678' (just the mean when there is no interval)."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"
