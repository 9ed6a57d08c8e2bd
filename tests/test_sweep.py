"""A tiny real sweep through the engine and the `dsqsim sweep` command (errors, resume)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.sweep import run_sweep
from sim.sweep.grid import FIDELITIES


def test_fidelities_agree_with_the_engine():
    from sim.engine import FIDELITIES as ENGINE_FIDELITIES

    assert tuple(FIDELITIES) == tuple(ENGINE_FIDELITIES)


def test_tiny_sweep_through_the_engine(tmp_path):
    df = run_sweep("tiny-mt", "edge-npu", "fp32,dsq", [0.25, 1.0, 4.0], out=tmp_path / "r.parquet", workers=2)
    assert len(df) == 6
    for col in ("workload", "hw", "policy", "dram_bw_scale", "array", "sram_kb", "cycles", "time_s", "dram_bytes",
                "arith_bitops", "compute_busy", "dram_busy", "bytes_point_q1", "dram_bw_gbps"):
        assert col in df.columns, col
    t = df.pivot(index="dram_bw_scale", columns="policy", values="time_s")
    assert (t.diff().dropna() <= 0).all().all()  # more bandwidth never slows a step
    assert (t["dsq"] < t["fp32"]).all()
    # Where both are memory-bound (DRAM busy nearly all the time), the speedup is the traffic reduction.
    low = df[df.dram_bw_scale == 0.25].set_index("policy")
    assert (low.dram_busy > 0.9).all()
    assert t.loc[0.25, "fp32"] / t.loc[0.25, "dsq"] == pytest.approx(
        low.loc["fp32", "dram_bytes"] / low.loc["dsq", "dram_bytes"], rel=0.1)
    gbps = df.groupby("dram_bw_scale").dram_bw_gbps.first()
    assert gbps.loc[4.0] == pytest.approx(16 * gbps.loc[0.25])
    bytes_by_policy = df.groupby("policy").dram_bytes.nunique()
    assert (bytes_by_policy == 1).all()  # traffic does not depend on bandwidth


def test_sweep_array_and_sram_axes(tmp_path):
    df = run_sweep("tiny-mt", "edge-npu", "fixed16", arrays=["8x8", "32x32"], sram_kbs=[64, 512], workers=1)
    assert len(df) == 4 and set(df.array) == {"8x8", "32x32"} and set(df.sram_kb) == {64.0, 512.0}
    assert (df.array_size == df.array).all() and np.allclose(df.sram_total_kb, df.sram_kb)  # applied
    t = df.groupby("array").time_s.min()
    assert t["8x8"] > t["32x32"]


def _run(*args: str) -> tuple[int, str]:
    try:
        return main(list(args)), ""
    except SystemExit as exc:
        return int(exc.code), ""


def test_sweep_cli_writes_and_resumes(tmp_path, capsys):
    out = tmp_path / "s.parquet"
    args = ["sweep", "--workload", "tiny-mt", "--hw", "edge-npu", "--policies", "fp32,dsq", "--dram-bw-scale",
            "0.5,1", "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    first = pd.read_parquet(out)
    assert len(first) == 4 and "report" in capsys.readouterr().out
    parts = sorted((tmp_path / "s.parquet.parts").glob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    assert main([*args[:8], "0.5,1,2", *args[9:], "--resume"]) == 0
    assert len(pd.read_parquet(out)) == 6
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # finished points not recomputed
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert "data:image/png;base64," in (tmp_path / "r.html").read_text()


BAD_SWEEP = [
    (["--dram-bw-scale", "0,1"], "dram_bw_scale"),
    (["--array", "3by3"], "ROWSxCOLS"),
    (["--sram-kb", "lots"], "sram-kb"),
    (["--executor", "ray"], "local, dask"),
    (["--hw", "edge-npu,nope"], "nope"),
    (["--policies", "zzz"], "zzz"),
    (["--fidelity", "exact"], "tile"),
    (["--out", "x.txt"], ".parquet"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
]


def test_sweep_bad_input_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "sweep", "--workload", "tiny-mt", "--hw", "nope",
                           "--out", str(tmp_path / "x.parquet")], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "nope" in proc.stderr
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("args, words", BAD_SWEEP)
def test_sweep_bad_input(tmp_path, capsys, args, words, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _ = _run("sweep", "--workload", "tiny-mt", "--no-progress", "--out", str(tmp_path / "x.parquet"), *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0]
    assert not (tmp_path / "x.parquet").exists()


def test_sweep_json_is_strict(tmp_path, capsys):
    import json

    def no_nan(c):
        raise ValueError(c)

    assert main(["sweep", "--workload", "tiny-mt", "--policies", "fp32", "--dram-bw-scale", "1", "--fidelity",
                 "roofline", "--out", str(tmp_path / "j.parquet"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out, parse_constant=no_nan)["rows"]
    assert len(rows) == 1 and rows[0]["array"] is None and rows[0]["time_s"] > 0
