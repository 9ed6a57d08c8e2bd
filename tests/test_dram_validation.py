"""The transaction-level model against every DRAMSim3 reference row (tests/data/dramsim3_runs.csv).

`-m slow` runs every row at its full request count and holds the README's claims with a little room: bandwidth
within 1 % and average read latency within 6 % of DRAMSim3 (measured: 0.34 % and 5.0 %), plus command counts, row-hit
rates and activations.

The default suite runs the loaded rows at half their requests (100k of 200k) and the 5000-request dependent
(1-outstanding) rows in full. Bandwidth must be within 1.25 % on every row, so any change that moves a row's
bandwidth by 3 % either way fails it (a passing row is at most 1.25 % off; 3 % more or less is then >= 1.75 % off);
`test_three_percent_slower_timing_fails` shows it on a real run. At half the requests the queue-filling start weighs
twice as much in the average read latency (HBM2 random rows sit 7-10 % low), so the reduced loaded rows check
latency within 12 %; rows run in full are held to the slow suite's 6 %.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hwmodels.dram import get_dram, run_bench

ROWS = list(csv.DictReader((Path(__file__).parent / "data" / "dramsim3_runs.csv").open()))
FULL_BW_TOL, FULL_LAT_TOL = 0.01, 0.06        # full request count (slow suite, and rows run in full by default)
REDUCED_BW_TOL, REDUCED_LAT_TOL = 0.0125, 0.12  # loaded rows at REDUCED_FRACTION of their requests
REDUCED_FRACTION = 0.5


def _row_id(row: dict) -> str:
    return f"{row['config']}-{row['pattern']}-W{row['issue_per_cycle']}"


def _run(row: dict, requests: int, tck_scale: float = 1.0):
    pattern, outstanding = row["pattern"], None
    if pattern.endswith("_1outstanding"):
        pattern, outstanding = pattern.removesuffix("_1outstanding"), 1
    spec = get_dram(row["config"])
    if tck_scale != 1.0:
        spec = spec.with_overrides(tCK_ns=spec.tCK_ns * tck_scale)
    return run_bench(spec, pattern, requests=requests, stride_bytes=int(row["req_stride_B"]),
                     issue_width=int(row["issue_per_cycle"]), outstanding=outstanding)


def _reduced_requests(row: dict) -> int:
    requests = int(row["requests"])
    return requests if "outstanding" in row["pattern"] else int(requests * REDUCED_FRACTION)


def _check(row: dict, result, bw_tol: float, lat_tol: float) -> None:
    ref_bw = float(row["achieved_GBps"])
    assert result.achieved_gbps == pytest.approx(ref_bw, rel=bw_tol), (result.achieved_gbps, ref_bw)
    if row["avg_read_latency_ns"]:
        ref_lat = float(row["avg_read_latency_ns"])
        assert result.avg_read_latency_ns == pytest.approx(ref_lat, rel=lat_tol), (result.avg_read_latency_ns, ref_lat)


def _check_reduced(row: dict, result) -> None:
    if result.requests == int(row["requests"]):
        _check(row, result, FULL_BW_TOL, FULL_LAT_TOL)
    else:
        _check(row, result, REDUCED_BW_TOL, REDUCED_LAT_TOL)


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_matches_dramsim3_reduced_run(row: dict) -> None:
    _check_reduced(row, _run(row, _reduced_requests(row)))


@pytest.mark.parametrize("scale", [1.03, 1 / 1.03])
@pytest.mark.parametrize("row", [r for r in ROWS if r["issue_per_cycle"] == "16" and r["pattern"] == "mix"],
                         ids=_row_id)
def test_three_percent_slower_timing_fails(row: dict, scale: float) -> None:
    """A clock 3 % slower (or faster): every figure in ns moves by 3 %, and the default check must catch it."""
    with pytest.raises(AssertionError):
        _check_reduced(row, _run(row, _reduced_requests(row), tck_scale=scale))


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_matches_dramsim3_full_run(row: dict) -> None:
    result = _run(row, int(row["requests"]))
    _check(row, result, FULL_BW_TOL, FULL_LAT_TOL)
    rw = result.read_cmds + result.write_cmds
    assert rw == pytest.approx(int(row["dram_rd_cmds"]) + int(row["dram_wr_cmds"]), rel=0.005)
    assert result.row_hit_rate == pytest.approx(float(row["row_hit_rate"]), abs=0.02)
    assert result.act_cmds == pytest.approx(int(row["act_cmds"]), rel=0.10)
