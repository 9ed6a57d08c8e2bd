"""The bulk DRAM model reports energy too: its row activations and bursts, the refreshes of its duration and
estimated rank states (hwmodels.dram.energy.counters_from_bulk), against the transaction level's counted energy on
the same sequential streams."""

import pytest

from hwmodels.dram import BulkDram, get_dram, run_bench
from hwmodels.dram.energy import bench_energy, bulk_energy, counters_from_bulk


@pytest.mark.parametrize("dram", ["ddr4", "hbm2"])
@pytest.mark.parametrize("pattern,is_write", [("seq_read", False), ("seq_write", True)])
def test_bulk_energy_tracks_the_transaction_level(dram, pattern, is_write):
    spec, n = get_dram(dram), 50_000
    ref = bench_energy(run_bench(spec, pattern, requests=n, stride_bytes=64, issue_width=16), spec)
    result = BulkDram(spec, replay=False).transfer(0, n * 64, is_write)
    bulk = bulk_energy(spec, result, is_write)
    assert counters_from_bulk(spec, result, is_write).background_estimated
    assert bulk.total_pj == pytest.approx(ref.total_pj, rel=0.05)
    rw = "write_pj" if is_write else "read_pj"
    assert getattr(bulk, rw) == pytest.approx(getattr(ref, rw), rel=0.01)
    assert bulk.act_pj == pytest.approx(ref.act_pj, rel=0.10)  # refreshes re-open rows the bulk model counts once
    assert bulk.refresh_pj == pytest.approx(ref.refresh_pj, rel=0.05)
    assert bulk.background_pj == pytest.approx(ref.background_pj, rel=0.06)
