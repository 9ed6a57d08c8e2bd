"""`--workload path/to/file.py:FUNCTION`: captures through the CLI, and one-line errors (exit 2) for bad files,
bad functions and a missing torch."""

from __future__ import annotations

import os
import sys

import pytest

from sim.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "torch_gpt2.py")


def run_bad(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dsqsim: error: "), err
    return err[0]


def test_missing_file_is_one_line(capsys, tmp_path):
    line = run_bad(capsys, "trace", "--workload", f"{tmp_path}/nope.py:make")
    assert "model file not found" in line and "nope.py" in line


def test_without_torch_says_how_to_install(capsys, monkeypatch, tmp_path):
    model = tmp_path / "m.py"
    model.write_text("def make(batch, seq_len):\n    raise AssertionError('not reached')\n")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    line = run_bad(capsys, "trace", "--workload", f"{model}:make")
    assert 'pip install "dsqsim[torch]"' in line


@pytest.fixture
def model_file(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "models.py"
    path.write_text(
        "import torch\n"
        "from torch import nn\n\n"
        "def make(batch, seq_len):\n"
        "    lin = nn.Linear(seq_len, 3)\n"
        "    return nn.Sequential(lin, nn.Flatten(0), nn.Softmax(0)), (torch.randn(batch, seq_len),)\n\n"
        "def fails(batch, seq_len):\n"
        "    raise RuntimeError('no GPU here\\nsecond line')\n\n"
        "def not_a_pair(batch, seq_len):\n"
        "    return 3\n"
    )
    return str(path)


def test_function_missing_lists_the_functions(capsys, model_file):
    line = run_bad(capsys, "trace", "--workload", f"{model_file}:nope")
    assert "has no function 'nope'" in line and "fails, make, not_a_pair" in line


def test_function_raising_is_one_line(capsys, model_file):
    line = run_bad(capsys, "trace", "--workload", f"{model_file}:fails", "--batch", "2")
    assert "fails(2, 128) raised RuntimeError: no GPU here" in line


def test_bad_return_and_non_scalar_output(capsys, model_file):
    assert "must return (model, inputs), got int" in run_bad(capsys, "trace", "--workload", f"{model_file}:not_a_pair")
    line = run_bad(capsys, "trace", "--workload", f"{model_file}:make", "--batch", "2", "--seq-len", "4")
    assert "must return the scalar loss, got Tensor of shape (6,)" in line


def test_trace_saves_the_capture(capsys, tmp_path):
    pytest.importorskip("torch")
    import json

    from workloads import Trace

    out = tmp_path / "t.json"
    assert main(["trace", "--workload", f"{EXAMPLE}:tiny_lm", "--seq-len", "32", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    trace = Trace.load(str(out))
    trace.validate()
    assert (trace.batch, trace.seq_len) == (4, 32)  # the documented default batch
    assert summary["params"] == trace.param_count and summary["macs"] == trace.total_macs > 0


def test_other_commands_take_a_capture(capsys):
    pytest.importorskip("torch")
    from hwmodels.machine import list_machines

    assert main(["roofline", "--workload", f"{EXAMPLE}:tiny_lm", "--batch", "2", "--seq-len", "16",
                 "--hw", list_machines()[0], "--policy", "bf16", "--json"]) == 0
    assert '"time_lower_bound_s"' in capsys.readouterr().out
