"""`dsqsim simulate` end to end in a subprocess: JSON output, policy averaging, timeline file, bad input."""

import json
import subprocess
import sys

import pytest

KEYS = {"workload", "hw", "policy", "fidelity", "cycles", "time_s", "dram_bytes", "arith_bitops", "compute_busy",
        "dram_busy", "events", "wall_s", "configs"}


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sim.cli", "simulate", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_json_tile_fixed_policy(tmp_path):
    timeline = tmp_path / "step.json"
    p = _cli("--workload", "tiny-lm", "--hw", "edge-npu", "--policy", "bf16", "--json", "--timeline", str(timeline))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert KEYS <= set(out)
    assert out["fidelity"] == "tile" and out["hw"] == "edge-npu" and out["cycles"] > 0 and out["events"] > 0
    assert 0 < out["compute_busy"] <= 1 and 0 < out["dram_busy"] <= 1
    assert len(out["configs"]) == 1 and out["configs"][0]["fraction"] == 1.0
    assert json.loads(timeline.read_text())["traceEvents"]


def test_json_dsq_policy_averages_its_configs():
    p = _cli("--workload", "tiny-lm", "--hw", "edge-npu", "--policy", "dsq", "--fidelity", "roofline", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert len(out["configs"]) > 1
    assert out["cycles"] == pytest.approx(sum(c["fraction"] * c["cycles"] for c in out["configs"]))


def test_table_output_and_overrides():
    p = _cli("--workload", "tiny-lm", "--hw", "edge-npu", "--policy", "bf16", "--array", "16x16", "--sram-kb", "96",
             "--dram-bw-scale", "2")
    assert p.returncode == 0, p.stderr
    assert "cycles" in p.stdout and "waiting on DRAM" in p.stdout


@pytest.mark.parametrize("args,needle", [
    (["--fidelity", "cycle"], "fidelity"),
    (["--array", "3y4"], "--array"),
    (["--hw", "no-such-machine"], "machine"),
    (["--policy", "no-such-policy"], "polic"),
    (["--timeline", "/no/such/dir/t.json"], "timeline"),
    (["--dram-bw-scale", "-1"], "positive"),
    (["--sram-kb", "1"], "SRAM"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    base = {"--workload": "tiny-lm", "--hw": "edge-npu", "--policy": "bf16"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    p = _cli(*[x for kv in base.items() for x in kv])
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert needle.lower() in lines[0].lower()
