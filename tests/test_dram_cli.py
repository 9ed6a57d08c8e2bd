"""`dsqsim dram-bench`: JSON fields, the table, and bad input (one stderr line, exit code 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwmodels.dram import run_bench


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim.cli", "dram-bench", *args], capture_output=True, text=True,
                          timeout=300)


def test_json_output_reproduces_the_python_api() -> None:
    proc = _cli("--dram", "hbm2", "--pattern", "mix", "--requests", "3000", "--issue-width", "16", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in ("dram", "pattern", "requests", "achieved_gbps", "peak_gbps", "efficiency", "avg_read_latency_ns",
                "row_hit_rate", "end_cycle", "wall_s"):
        assert key in out
    api = run_bench("hbm2", "mix", 3000, 64, 16)
    assert out["dram"] == "HBM2_8Gb_x128" and out["requests"] == 3000
    assert out["end_cycle"] == api.end_cycle
    assert out["achieved_gbps"] == pytest.approx(api.achieved_gbps)
    assert out["efficiency"] == pytest.approx(out["achieved_gbps"] / out["peak_gbps"])


def test_outstanding_and_address_map_options() -> None:
    proc = _cli("--dram", "ddr4-3200", "--requests", "500", "--outstanding", "1", "--address-map", "rochrabacobg",
                "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["pattern"] == "seq_read_1outstanding" and out["address_mapping"] == "rochrabacobg"
    assert out["avg_read_latency_ns"] > 0


def test_table_output() -> None:
    proc = _cli("--dram", "lpddr4", "--pattern", "seq_write", "--requests", "2000", "--stride", "128")
    assert proc.returncode == 0, proc.stderr
    assert "LPDDR4_8Gb_x16_2400" in proc.stdout and "GB/s" in proc.stdout and "avg read latency  -" in proc.stdout


@pytest.mark.parametrize("args, fragment", [
    (("--dram", "ddr9"), "unknown DRAM 'ddr9'"),
    (("--pattern", "zigzag"), "invalid choice"),
    (("--requests", "0"), "positive integer"),
    (("--stride", "-64"), "positive integer"),
    (("--address-map", "rochrababg"), "address mapping"),
    (("--dram", "/nonexistent/dram.toml"), "No such file"),
])
def test_bad_input_is_one_line_and_exit_code_2(args: tuple[str, ...], fragment: str) -> None:
    proc = _cli(*args, "--requests", "10") if "--requests" not in args else _cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in proc.stderr
