"""DRAM energy: DRAMSim3's formulas on its own counters, and the transaction model's energy end to end."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import pytest

from hwmodels.dram import get_dram, list_drams, run_bench
from hwmodels.dram.compiled import compiled_available
from hwmodels.dram.energy import (
    DramCounters,
    RankStateProbe,
    bench_energy,
    counters_from_bench,
    dram_energy,
    estimate_rank_cycles,
    power_rates,
)

DATA = Path(__file__).parent / "data" / "dramsim3_energy.csv"
ROWS = list(csv.DictReader(DATA.open()))
COMPONENTS = ("act_energy", "read_energy", "write_energy", "ref_energy", "refb_energy", "act_stb_energy",
              "pre_stb_energy", "sref_energy", "total_energy")


def _counters(row: dict) -> DramCounters:
    f = {k: float(row[k]) for k in row if k not in ("dram", "pattern", "address_map")}
    return DramCounters(end_cycle=f["end_cycle"], read_cmds=f["read_cmds"], write_cmds=f["write_cmds"],
                        act_cmds=f["act_cmds"], ref_cmds=f["ref_cmds"], refb_cmds=f["refb_cmds"],
                        rank_active_cycles=f["rank_active_cycles"], all_bank_idle_cycles=f["all_bank_idle_cycles"],
                        sref_cycles=f["sref_cycles"])


def _id(row: dict) -> str:
    return f"{row['dram']}-{row['pattern']}-W{row['W']}"


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_formulas_reproduce_dramsim3_counters(row):
    """From DRAMSim3's own command and state counters, every energy counter it printed (mW·clock), to rounding."""
    spec = get_dram(row["dram"])
    energy = dram_energy(spec, _counters(row))
    got = energy.dramsim3_units()
    for key in COMPONENTS:
        assert got[key] == pytest.approx(float(row[key]), rel=1e-6, abs=1e-3), key
    # physical pJ = counter x tCK; per byte requested
    assert energy.total_pj == pytest.approx(float(row["total_energy_pJ_tck"]), rel=1e-6)
    nbytes = int(row["requests"]) * int(row["stride_B"])
    assert energy.total_pj / nbytes == pytest.approx(float(row["energy_pJ_per_B_tck"]), rel=1e-4)
    # average power (mW) = total / cycles, summed over channels as DRAMSim3 reports it
    assert got["total_energy"] / float(row["end_cycle"]) == pytest.approx(float(row["average_power_mW"]), rel=1e-4)


def test_rank_state_counters_cover_the_run():
    for row in ROWS:
        spec = get_dram(row["dram"])
        c = _counters(row)
        assert c.rank_active_cycles + c.all_bank_idle_cycles + c.sref_cycles == \
            c.end_cycle * spec.ranks * spec.channels


def _run(row: dict, compiled: bool | None = None):
    """run_bench on a row, on the default path (the compiled core when built) unless `compiled` says otherwise."""
    spec = get_dram(row["dram"])
    result = run_bench(spec, row["pattern"], int(row["requests"]), int(row["stride_B"]), int(row["W"]),
                       compiled=compiled)
    return spec, result


def _check_end_to_end(row: dict, tolerance: float = 0.05) -> None:
    spec, result = _run(row)
    energy = bench_energy(result, spec)
    assert not energy.background_estimated, "run_bench did not count rank states"
    got = energy.dramsim3_units()
    ref = {k: float(row[k]) for k in COMPONENTS}
    pairs = {"act": (got["act_energy"], ref["act_energy"]), "read": (got["read_energy"], ref["read_energy"]),
             "write": (got["write_energy"], ref["write_energy"]),
             "refresh": (got["ref_energy"] + got["refb_energy"], ref["ref_energy"] + ref["refb_energy"]),
             "background": (got["act_stb_energy"] + got["pre_stb_energy"] + got["sref_energy"],
                            ref["act_stb_energy"] + ref["pre_stb_energy"] + ref["sref_energy"]),
             "total": (got["total_energy"], ref["total_energy"])}
    for name, (a, b) in pairs.items():
        if b == 0:
            assert a == pytest.approx(0.0, abs=1e-9 + 0.001 * ref["total_energy"]), name
        else:
            assert abs(a / b - 1) <= tolerance, f"{name}: model {a:.6g} vs DRAMSim3 {b:.6g}"


QUICK = [r for r in ROWS if (r["dram"], r["pattern"], r["W"]) in
         {("DDR4_8Gb_x8_3200", "mix", "1"), ("HBM2_8Gb_x128", "rand_read", "16")}]


@pytest.mark.parametrize("row", QUICK, ids=_id)
def test_model_energy_end_to_end_quick(row):
    _check_end_to_end(row)


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_model_energy_end_to_end_all_rows(row):
    _check_end_to_end(row)


@pytest.mark.parametrize("row", [("DDR4_8Gb_x8_3200", "mix", 1, "3000"), ("DDR4_8Gb_x8_3200", "seq_write", 16, "6000"),
                                 ("HBM2_8Gb_x128", "rand_read", 16, "3000"), ("HBM2_8Gb_x128", "mix", 16, "6000")])
def test_native_counters_equal_the_probe_on_both_paths(row):
    """The counters run_bench reports (counted inside the model) against `RankStateProbe`, which derives them from
    every command the pure-Python controller issues; and the compiled core's against the pure-Python model's."""
    from hwmodels.dram.channel import ChannelController

    dram, pattern, width, requests = row
    r = {"dram": dram, "pattern": pattern, "requests": requests, "stride_B": "64", "W": str(width)}
    original = ChannelController._issue
    with RankStateProbe.attach() as probe:
        spec, result = _run(r, compiled=False)
    assert ChannelController._issue is original
    seen = probe.counters(spec, result.end_cycle)
    native = counters_from_bench(result, spec)
    assert not native.background_estimated
    assert dataclasses.asdict(native) == dataclasses.asdict(seen)
    assert native.rank_active_cycles + native.all_bank_idle_cycles == result.end_cycle * spec.ranks * spec.channels
    assert 0 < native.rank_active_cycles < result.end_cycle * spec.ranks * spec.channels
    if compiled_available():
        assert dataclasses.asdict(counters_from_bench(_run(r, compiled=True)[1], spec)) == dataclasses.asdict(native)


def test_dram_bench_json_energy_is_counted_on_the_default_path():
    """`dsqsim dram-bench --json` (compiled core when built): energy from the model's own counters, not estimated."""
    import json
    import subprocess
    import sys

    args = ["--dram", "ddr4-3200", "--pattern", "mix", "--requests", "4000", "--issue-width", "16", "--json"]
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "dram-bench", *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    spec = get_dram("ddr4-3200")
    assert out["background_estimated"] is False
    assert out["rank_active_cycles"] + out["all_bank_idle_cycles"] == out["end_cycle"] * spec.ranks * spec.channels
    result = run_bench(spec, "mix", 4000, 64, 16)
    assert out["rank_active_cycles"] == result.rank_active_cycles
    assert out["energy_pj"] == pytest.approx(dram_energy(spec, counters_from_bench(result, spec)).energy_pj())


def test_estimate_is_labelled_and_errs_towards_active_standby():
    row = {"dram": "DDR4_8Gb_x8_3200", "pattern": "seq_read", "requests": "20000", "stride_B": "64", "W": "1"}
    spec, result = _run(row)
    exact = bench_energy(result, spec)
    # a result without rank-state counters (as from a model that does not count them) gets the labelled estimate
    uncounted = dataclasses.replace(result, rank_active_cycles=None, all_bank_idle_cycles=None)
    estimated = dram_energy(spec, counters_from_bench(uncounted, spec))
    assert estimated.background_estimated and not exact.background_estimated
    assert estimated.background_pj >= exact.background_pj
    assert (estimated.act_pj, estimated.read_pj, estimated.refresh_pj) == (exact.act_pj, exact.read_pj,
                                                                           exact.refresh_pj)
    active, idle = estimate_rank_cycles(spec, 1000, 10**6)  # more refresh than time: all idle, never negative
    assert (active, idle) == (0, 1000 * spec.ranks)


def test_every_preset_has_power_parameters_and_positive_energies():
    for spec in list_drams():
        r = power_rates(spec)
        assert min(r.act, r.read, r.write, r.ref, r.act_stb, r.pre_stb, r.sref) > 0, spec.name
        assert r.act_stb >= r.pre_stb >= r.sref, spec.name  # IDD3N >= IDD2N >= IDD6x
        assert spec.power_source, spec.name


def test_power_parameters_are_validated():
    spec = get_dram("ddr4")
    with pytest.raises(ValueError, match="IDD4R"):
        spec.with_overrides(IDD4R=-1.0)
    with pytest.raises(ValueError, match="VDD"):
        spec.with_overrides(VDD=0.0)
    with pytest.raises(ValueError, match="no power parameters"):
        power_rates(spec.with_overrides(VDD=None))


def test_scaled_spec_keeps_energy_per_command_in_physical_units():
    """A faster clock (tCK / 2) with the same currents and cycle counts halves each command's physical energy."""
    spec = get_dram("hbm2")
    c = DramCounters(end_cycle=1000, read_cmds=10, write_cmds=5, act_cmds=3, ref_cmds=1, rank_active_cycles=6000,
                     all_bank_idle_cycles=2000)
    assert dram_energy(spec.scaled(2.0), c).total_pj == pytest.approx(dram_energy(spec, c).total_pj / 2)
    assert math.isclose(dram_energy(spec, c).dramsim3_units()["total_energy"] * spec.tCK_ns,
                        dram_energy(spec, c).total_pj)
