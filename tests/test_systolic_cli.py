"""`dsqsim gemm`: JSON schema, agreement with the Python API, bad input -> one stderr line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwmodels.compute import systolic_gemm

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"compute_cycles", "utilization", "sram_reads", "sram_writes", "dram_read_bytes", "dram_write_bytes", "wall_s"}


def dsqsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim.cli", "gemm", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_json_matches_scalesim_reference_row():
    # first row of tests/data/scalesim_gemm.csv: 128x128 ws, 512^3, 64 kB buffers, 1-byte words
    proc = dsqsim("--rows", "128", "--cols", "128", "--dataflow", "ws", "--m", "512", "--k", "512", "--n", "512",
                  "--bits-a", "8", "--bits-b", "8", "--native-bits", "8", "--sram-kb", "64", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == KEYS
    assert out["compute_cycles"] == 14303 and out["dram_read_bytes"] == 1310720
    assert out["utilization"] * 100 == pytest.approx(57.275, abs=6e-4)
    assert 0 <= out["wall_s"] < 1


def test_bits_change_cycles_and_text_output():
    proc = dsqsim("--rows", "16", "--cols", "16", "--m", "64", "--k", "256", "--n", "64", "--bits-a", "4",
                  "--bits-b", "4", "--json")
    out = json.loads(proc.stdout)
    assert out["compute_cycles"] == systolic_gemm(16, 16, "os", 64, 256 // 16, 64).compute_cycles
    text = dsqsim("--hw", "edge-npu", "--m", "64", "--k", "64", "--n", "64")
    assert text.returncode == 0 and "compute_cycles" in text.stdout and "edge-npu" in text.stdout


@pytest.mark.parametrize("args, needle", [
    (["--rows", "4", "--cols", "4", "--dataflow", "rs", "--m", "5", "--k", "5", "--n", "5"], "unknown dataflow"),
    (["--m", "5", "--k", "5", "--n", "5"], "give --rows and --cols"),
    (["--rows", "4", "--cols", "4", "--m", "0", "--k", "5", "--n", "5"], "positive integer"),
    (["--hw", "nope", "--m", "5", "--k", "5", "--n", "5"], "unknown machine 'nope'"),
    (["--hw", "h100-sxm", "--rows", "4", "--cols", "4", "--m", "5", "--k", "5", "--n", "5"], "no systolic array"),
    (["--hw", "/nonexistent/m.toml", "--m", "5", "--k", "5", "--n", "5"], "not found"),
])
def test_bad_input_exit_2(args, needle):
    proc = dsqsim(*args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert needle in proc.stderr
