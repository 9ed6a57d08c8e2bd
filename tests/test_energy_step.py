"""A training step's energy (sim.energy) at the roofline and from an engine result; CLI and plot plumbing."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from hwmodels.dram.energy import power_rates
from hwmodels.machine import get_machine
from sim.energy import COMPONENTS, SIMRESULT_DRAM_FIELDS, dram_time_energy_j, step_energy
from sim.precision import PrecisionConfig
from sim.roofline import roofline
from workloads import resolve_workload

WORKLOAD = "tiny-lm"


@pytest.fixture(scope="module")
def trace():
    return resolve_workload(WORKLOAD)


@pytest.fixture(scope="module")
def edge():
    return get_machine("edge-npu")


def _roof(trace, machine, fmt):
    return roofline(trace, machine, PrecisionConfig.uniform(fmt))


@pytest.mark.parametrize("hw", ["edge-npu", "cloud-npu", "h100-sxm"])
def test_components_add_up_and_are_positive(trace, hw):
    r = _roof(trace, get_machine(hw), "bf16")
    assert list(r.energy_by_component) == list(COMPONENTS)
    assert all(v > 0 for v in r.energy_by_component.values())
    assert r.energy_j == pytest.approx(sum(r.energy_by_component.values()))
    dynamic = sum(r.energy_by_component[k] for k in COMPONENTS[:5])
    assert r.ops["energy_j"].sum() == pytest.approx(dynamic)  # per op: the dynamic part


def test_narrower_formats_cost_less_arithmetic_and_dram_energy(trace, edge):
    rs = [_roof(trace, edge, f) for f in ("fp32", "bf16", "bfp4")]
    for key in ("array", "dram_rw"):
        values = [r.energy_by_component[key] for r in rs]
        assert values[0] > values[1] > values[2], key
    assert rs[0].energy_j > rs[1].energy_j > rs[2].energy_j


def test_dram_rw_energy_follows_bytes_and_per_command_energy(trace, edge):
    """Commands are whole bursts per access: at least bytes / request size, at most one more per access."""
    r = _roof(trace, edge, "bf16")
    d = edge.dram
    rates = power_rates(d)
    c = r.counts
    low = (c.read_bytes * rates.read + c.write_bytes * rates.write) / d.request_bytes * d.tCK_ns * 1e-12
    high = low + len(c.accesses) * max(rates.read, rates.write) * d.tCK_ns * 1e-12
    assert low <= r.energy_by_component["dram_rw"] <= high


def test_time_dependent_dram_energy_is_linear_in_time(edge):
    one = dram_time_energy_j(edge.dram, 1e-3)
    two = dram_time_energy_j(edge.dram, 2e-3)
    assert one[2] and two[0] == pytest.approx(2 * one[0]) and two[1] == pytest.approx(2 * one[1])
    # one REF per rank every tREFI
    d = edge.dram
    refs = 1e-3 * 1e9 / d.tCK_ns / d.tREFI * d.ranks * d.channels
    assert one[0] == pytest.approx(refs * power_rates(d).ref * d.tCK_ns * 1e-12)


def test_dram_without_power_parameters_gives_nan_dram_energy_only(trace, edge):
    m = get_machine("edge-npu")
    import dataclasses

    m = dataclasses.replace(m, dram=m.dram.with_overrides(VDD=None))
    r = _roof(trace, m, "bf16")
    assert math.isnan(r.energy_j) and math.isnan(r.energy_by_component["dram_rw"])
    assert r.energy_by_component["array"] == pytest.approx(_roof(trace, edge, "bf16").energy_by_component["array"])


def test_engine_step_energy(trace, edge):
    from sim.engine import simulate

    config = PrecisionConfig.uniform("bf16")
    res = simulate(trace, edge, config, "tile")
    e = step_energy(res, edge, config, trace)
    r = roofline(trace, edge, config)
    assert e.energy_j == pytest.approx(sum(e.energy_by_component.values()))
    assert e.energy_by_component["array"] == pytest.approx(r.energy_by_component["array"])  # same MACs
    assert e.energy_by_component["vector"] == pytest.approx(r.energy_by_component["vector"])
    assert e.energy_by_component["dram_rw"] >= r.energy_by_component["dram_rw"] * (1 - 1e-9)  # tiled >= minimal
    # background grows with the simulated time, which is never below the lower bound
    assert res.time_s >= r.time_lower_bound_s
    assert e.energy_by_component["dram_background"] >= r.energy_by_component["dram_background"]
    assert e.dram_background_estimated


def test_engine_counters_are_used_when_the_result_has_them(trace, edge):
    from sim.engine import simulate

    config = PrecisionConfig.uniform("bf16")
    res = simulate(trace, edge, config, "tile")
    d = edge.dram
    end = res.time_s * 1e9 / d.tCK_ns
    fields = {"dram_act_cmds": 10, "dram_read_cmds": 1000, "dram_write_cmds": 500, "dram_ref_cmds": 3,
              "dram_rank_active_cycles": end * d.ranks * d.channels / 2,
              "dram_all_bank_idle_cycles": end * d.ranks * d.channels / 2}
    assert set(fields) == set(SIMRESULT_DRAM_FIELDS)
    fake = SimpleNamespace(**{k: getattr(res, k) for k in ("time_s", "ops")}, **fields)
    e = step_energy(fake, edge, config, trace)
    rates = power_rates(d)
    assert not e.dram_background_estimated
    assert e.energy_by_component["dram_act"] == pytest.approx(10 * rates.act * d.tCK_ns * 1e-12)
    assert e.energy_by_component["dram_rw"] == pytest.approx((1000 * rates.read + 500 * rates.write) * d.tCK_ns
                                                             * 1e-12)
    assert e.energy_by_component["dram_refresh"] == pytest.approx(3 * rates.ref * d.tCK_ns * 1e-12)


def _cli(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "sim.cli", *args, "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_dram_bench_json_energy():
    out = _cli("dram-bench", "--dram", "hbm2", "--pattern", "mix", "--requests", "3000")
    e = out["energy_pj"]
    assert list(e) == ["act", "read", "write", "refresh", "background", "total"]
    assert e["total"] == pytest.approx(sum(v for k, v in e.items() if k != "total"))
    assert out["pj_per_byte"] == pytest.approx(e["total"] / (3000 * 64))
    assert out["background_estimated"] is False and min(e.values()) >= 0 and e["read"] > 0 and e["write"] > 0


def test_compare_and_simulate_json_energy():
    out = _cli("compare", "--workload", WORKLOAD, "--hw", "edge-npu", "--policies", "bf16,bfp4", "--no-tiled")
    rows = out["rows"]
    assert rows[0]["energy_ratio"] == 1.0
    assert rows[1]["energy_ratio"] == pytest.approx(rows[1]["energy_j"] / rows[0]["energy_j"]) and \
        rows[1]["energy_ratio"] < 1
    assert rows[1]["energy_j"] == pytest.approx(sum(rows[1]["energy_by_component"].values()))
    sim = _cli("simulate", "--workload", WORKLOAD, "--hw", "edge-npu", "--policy", "dsq")
    assert sim["energy_j"] == pytest.approx(sum(sim["energy_by_component"].values()))
    assert sim["energy_j"] == pytest.approx(sum(c["fraction"] * c["energy_j"] for c in sim["configs"]))


def test_energy_breakdown_plot():
    import pandas as pd

    from reports.plots import energy_breakdown

    df = pd.DataFrame({"policy": ["fp32", "bf16"],
                       "energy_by_component": [dict.fromkeys(COMPONENTS, 1e-3), dict.fromkeys(COMPONENTS, 5e-4)]})
    fig = energy_breakdown(df)
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * len(COMPONENTS)
    assert "mJ" in ax.get_ylabel() and [t.get_text() for t in ax.get_legend().get_texts()] == list(COMPONENTS)
    with pytest.raises(ValueError, match="energy_breakdown"):
        energy_breakdown(pd.DataFrame({"policy": ["x"]}))
