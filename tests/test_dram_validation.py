"""The transaction-level model against every DRAMSim3 reference row (tests/data/dramsim3_runs.csv).

Bandwidth within 10 % and average read latency within 25 %, as the issue asks. The default suite runs each loaded
row with enough requests to cover 2.5 refresh intervals and 4x the time the front end needs to fill the
transaction queues, both at the reference's own rate (the two slowest transients), and the 5000-request dependent
rows in full; `-m slow` runs every row at its full 200k requests.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hwmodels.dram import get_dram, run_bench

ROWS = list(csv.DictReader((Path(__file__).parent / "data" / "dramsim3_runs.csv").open()))
BW_TOL, LAT_TOL = 0.10, 0.25


def _row_id(row: dict) -> str:
    return f"{row['config']}-{row['pattern']}-W{row['issue_per_cycle']}"


def _run(row: dict, requests: int):
    pattern, outstanding = row["pattern"], None
    if pattern.endswith("_1outstanding"):
        pattern, outstanding = pattern.removesuffix("_1outstanding"), 1
    return run_bench(row["config"], pattern, requests=requests, stride_bytes=int(row["req_stride_B"]),
                     issue_width=int(row["issue_per_cycle"]), outstanding=outstanding)


def _check(row: dict, result) -> None:
    ref_bw = float(row["achieved_GBps"])
    assert result.achieved_gbps == pytest.approx(ref_bw, rel=BW_TOL), (result.achieved_gbps, ref_bw)
    if row["avg_read_latency_ns"]:
        ref_lat = float(row["avg_read_latency_ns"])
        assert result.avg_read_latency_ns == pytest.approx(ref_lat, rel=LAT_TOL), (result.avg_read_latency_ns, ref_lat)


def _short_requests(row: dict) -> int:
    requests = int(row["requests"])
    if "outstanding" in row["pattern"]:
        return requests
    spec = get_dram(row["config"])
    service = requests / int(row["end_cycle"])  # requests per clock at the reference's rate
    needed = int(2.5 * spec.tREFI * service)
    offered = int(row["issue_per_cycle"])
    if offered > service + 0.01:  # queues fill at the surplus rate: run 4x the fill time past it
        fill_cycles = spec.channels * spec.trans_queue_size / (offered - service)
        needed = max(needed, int(4 * fill_cycles * service))
    return min(requests, max(10_000, needed))


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_matches_dramsim3_steady_state(row: dict) -> None:
    _check(row, _run(row, _short_requests(row)))


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_matches_dramsim3_full_run(row: dict) -> None:
    result = _run(row, int(row["requests"]))
    _check(row, result)
    rw = result.read_cmds + result.write_cmds
    assert rw == pytest.approx(int(row["dram_rd_cmds"]) + int(row["dram_wr_cmds"]), rel=0.005)
    assert result.row_hit_rate == pytest.approx(float(row["row_hit_rate"]), abs=0.02)
    assert result.act_cmds == pytest.approx(int(row["act_cmds"]), rel=0.10)
