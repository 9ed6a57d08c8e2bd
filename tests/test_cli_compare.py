"""`dsqsim compare`, `dsqsim roofline` and `dsqsim presets` end to end, in subprocesses, on the tiny-lm preset."""

import json
import subprocess
import sys

import pytest

from sim.compare import COMPARE_COLUMNS

WORKLOAD = "tiny-lm"


def _reject(token: str):
    raise AssertionError(f"non-standard JSON constant {token}")


def dsqsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def hw() -> str:
    from hwmodels.machine import list_machines

    first = list_machines()[0]
    return first if isinstance(first, str) else first.name


def test_compare_json_schema(hw):
    proc = dsqsim("compare", "--workload", WORKLOAD, "--hw", hw, "--policies", "fp32,bf16,bfp8,dsq", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout, parse_constant=_reject)
    assert set(out) == {"workload", "hw", "rows", "breakdown"}
    assert out["workload"] == WORKLOAD and out["hw"] == hw
    assert [r["policy"] for r in out["rows"]][:3] == ["fp32", "bf16", "bfp8"]
    assert len(out["rows"]) == 4
    t0 = out["rows"][0]["time_lower_bound_s"]
    for row in out["rows"]:
        assert list(row) == [*COMPARE_COLUMNS, "energy_by_component"]
        assert all(isinstance(row[k], int | float) and row[k] > 0 for k in COMPARE_COLUMNS[1:])
        assert row["speedup"] == pytest.approx(t0 / row["time_lower_bound_s"])
    assert out["rows"][0]["speedup"] == 1.0
    # Same MACs whatever the precision; fewer bytes for narrower formats.
    assert len({r["macs"] for r in out["rows"]}) == 1
    assert out["rows"][0]["dram_bytes"] > out["rows"][1]["dram_bytes"] > out["rows"][2]["dram_bytes"]
    # both traffic views: the engine never moves less than the minimal traffic; the q0..q3 scope is part of it
    for row in out["rows"]:
        assert row["dram_bytes_tiled"] >= row["dram_bytes"] and row["reread_factor"] >= 1.0
        assert row["reread_factor"] == pytest.approx(row["dram_bytes_tiled"] / row["dram_bytes"])
        assert 0 < row["dram_bytes_dsq"] < row["dram_bytes"]
        assert row["dram_bytes_dsq_tiled"] >= row["dram_bytes_dsq"]
        assert row["traffic_reduction_dsq"] == pytest.approx(out["rows"][0]["dram_bytes_dsq"] / row["dram_bytes_dsq"])
    # the breakdown adds up to the row totals in each view
    for row in out["rows"]:
        points = [b for b in out["breakdown"] if b["policy"] == row["policy"] and b["by"] == "point"]
        assert sum(b["minimal_bytes"] for b in points) == pytest.approx(row["dram_bytes"], abs=1)
        assert sum(b["tiled_bytes"] for b in points) == pytest.approx(row["dram_bytes_tiled"], abs=1)


def test_compare_matches_python_api(hw):
    from hwmodels.machine import get_machine
    from sim.compare import compare
    from workloads import resolve_workload

    proc = dsqsim("compare", "--workload", WORKLOAD, "--hw", hw, "--policies", "bf16,fixed16", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    df = compare(resolve_workload(WORKLOAD), get_machine(hw), ["bf16", "fixed16"])
    for row, (_, expected) in zip(rows, df.iterrows(), strict=True):
        for k in COMPARE_COLUMNS[1:]:
            assert row[k] == pytest.approx(expected[k])


def test_compare_table(hw):
    proc = dsqsim("compare", "--workload", WORKLOAD, "--hw", hw, "--policies", "fp32,bfp4")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "speedup" in lines[1] and "re-read" in lines[1] and "whole step" in lines[0]
    assert lines[2].startswith("fp32") and lines[3].startswith("bfp4")
    proc = dsqsim("compare", "--workload", WORKLOAD, "--hw", hw, "--policies", "fp32,bfp4", "--scope", "dsq",
                  "--no-tiled")
    assert proc.returncode == 0, proc.stderr
    assert "q0..q3 traffic only" in proc.stdout.splitlines()[0]


def test_roofline_json_and_plot(hw, tmp_path):
    proc = dsqsim("roofline", "--workload", WORKLOAD, "--hw", hw, "--policy", "bfp8", "--json",
                  "--plot", str(tmp_path / "roof.png"))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout, parse_constant=_reject)  # strict JSON: no NaN or Infinity
    parts = ("critical_path_s", "array_time_s", "vector_time_s", "memory_time_s")
    assert out["time_lower_bound_s"] == pytest.approx(max(out[k] for k in parts))
    assert sum(op["time_s"] for op in out["ops"]) == pytest.approx(out["serial_time_s"])
    assert out["serial_time_s"] >= out["time_lower_bound_s"] * (1 - 1e-12)
    assert sum(op["dram_bytes"] for op in out["ops"]) == pytest.approx(out["dram_bytes"])
    assert out["plots"] == [str(tmp_path / "roof.png")]
    assert (tmp_path / "roof.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["roof.png"]


def test_roofline_text(hw):
    proc = dsqsim("roofline", "--workload", WORKLOAD, "--hw", hw, "--policy", "dsq", "--top", "5")
    assert proc.returncode == 0, proc.stderr
    assert "step lower bound" in proc.stdout and "critical path" in proc.stdout


def test_presets_lists_every_registry():
    from sim.formats import list_formats
    from sim.policy import list_policies
    from workloads import list_specs

    proc = dsqsim("presets", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"workloads", "machines", "drams", "formats", "policies"}
    assert [e["name"] for e in out["workloads"]] == list(list_specs())
    assert [e["name"] for e in out["formats"]] == [f.name for f in list_formats()]
    assert [e["name"] for e in out["policies"]] == [n for n, _ in list_policies()]
    assert all(e["description"] for entries in out.values() for e in entries)
    text = dsqsim("presets")
    assert text.returncode == 0, text.stderr
    n_entries = sum(len(v) for v in out.values())
    assert len(text.stdout.splitlines()) == n_entries + len(out)  # one line each plus one heading per kind


def test_compare_recorded_timeline(hw, tmp_path):
    """--timeline replaces the schedule by the recorded fractions: 25% of steps at bfp4, 75% at bf16."""
    from hwmodels.machine import get_machine
    from sim.policy import Timeline
    from sim.precision import PrecisionConfig
    from sim.roofline import roofline
    from workloads import resolve_workload

    lo, hi = PrecisionConfig.uniform("bfp4"), PrecisionConfig.uniform("bf16")
    path = tmp_path / "timeline.json"
    Timeline(400, [(0, lo), (100, hi)]).save(path)
    proc = dsqsim("compare", "--workload", WORKLOAD, "--hw", hw, "--policies", "fp32,dsq", "--timeline", str(path),
                  "--json")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)["rows"][1]
    trace, machine = resolve_workload(WORKLOAD), get_machine(hw)
    t_lo, t_hi = (roofline(trace, machine, c) for c in (lo, hi))
    assert row["policy"] == "dsq"
    assert row["time_lower_bound_s"] == pytest.approx(0.25 * t_lo.time_lower_bound_s + 0.75 * t_hi.time_lower_bound_s)
    assert row["dram_bytes"] == pytest.approx(0.25 * t_lo.counts.dram_bytes + 0.75 * t_hi.counts.dram_bytes, abs=1)
