"""Trace files, workload resolution, Hugging Face config.json files and the `dsqsim trace` command.

tests/data/hf_{gpt2,bert,llama,tinyllama}/config.json are the published Hugging Face configs of `gpt2`,
`bert-base-uncased`, `huggyllama/llama-7b` and `TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T`, written out by
hand with their published field names (a few cosmetic fields such as transformers_version left out). TinyLlama's
published size is 1,100,048,384 parameters (grouped-query attention, 4 KV heads).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workloads import ModelSpec, Trace, build_trace, get_spec, resolve_workload, spec_from_hf_config
from workloads.api import spec_from_file
from workloads.trace_io import SCHEMA_VERSION, trace_to_dict

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("name", ["tiny-lm", "tiny-mt", "bert-base", "llama-7b"])
def test_save_load_round_trip_is_equal(tmp_path, name):
    trace = build_trace(name)
    path = tmp_path / "t.json"
    trace.save(str(path))
    loaded = Trace.load(str(path))
    loaded.validate()
    assert loaded == trace
    assert loaded.to_frame().equals(trace.to_frame())
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no temporary file left behind


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "t.json"
    trace = build_trace("tiny-lm")

    def broken_dump(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("workloads.trace_io.json.dump", broken_dump)
    with pytest.raises(RuntimeError):
        trace.save(str(path))
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_directory_raises_oserror(tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        build_trace("tiny-lm").save(str(tmp_path / "missing" / "t.json"))


def _write(tmp_path: Path, data) -> str:
    path = tmp_path / "bad.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _mutated(fn):
    data = trace_to_dict(build_trace("tiny-lm", batch=1, seq_len=4))
    fn(data)
    return data


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.pop("schema_version"), "missing schema_version"),
    (lambda d: d.update(schema_version=99), "schema_version 99 is not supported"),
    (lambda d: d.pop("ops"), "missing field 'ops'"),
    (lambda d: d.update(batch="8"), "batch must be int"),
    (lambda d: d.update(batch=0), "batch must be a positive integer"),
    (lambda d: d["ops"][3].pop(), "each op must be a list of 9 fields"),
    (lambda d: d["ops"][3][4].append(["no.such.tensor", None]), "unknown tensor 'no.such.tensor'"),
    (lambda d: d["tensors"][0].__setitem__(2, "bias"), "role 'bias'; valid roles"),
    (lambda d: d["ops"][3][4][0].__setitem__(1, "q7"), "DSQ point 'q7'"),
    (lambda d: d["ops"][3].__setitem__(1, "conv"), "kind 'conv'; valid kinds"),
    (lambda d: d["tensors"][5][1].append(-1), "dimensions must be positive"),
    (lambda d: d["ops"].reverse(), "program order"),
    (lambda d: d["ops"].pop(), "optimizer ops"),
])
def test_malformed_trace_files_raise_one_line_value_errors(tmp_path, mutate, match):
    path = _write(tmp_path, _mutated(mutate))
    with pytest.raises(ValueError, match=match) as info:
        Trace.load(path)
    assert "\n" not in str(info.value) and path in str(info.value)


@pytest.mark.parametrize("text, match", [("{", "not valid JSON"), ("[1, 2]", "JSON object"), ("", "not valid JSON")])
def test_unparseable_trace_files(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        Trace.load(_write(tmp_path, text))


def test_resolve_workload_sources(tmp_path):
    assert resolve_workload("tiny-lm").workload == "tiny-lm"
    trace = build_trace("tiny-mt", batch=3, seq_len=5)
    trace.save(str(tmp_path / "t.json"))
    assert resolve_workload(str(tmp_path / "t.json")) == trace
    assert resolve_workload(str(tmp_path / "t.json"), batch=3) == trace
    with pytest.raises(ValueError, match="fixed at batch 3, seq_len 5"):
        resolve_workload(str(tmp_path / "t.json"), batch=4)
    assert resolve_workload(str(DATA / "hf_gpt2"), batch=1, seq_len=16).param_count == 124_439_808
    with pytest.raises(OSError, match="not found"):
        resolve_workload(str(tmp_path / "missing.json"))
    with pytest.raises(OSError, match="no config.json"):
        resolve_workload(str(tmp_path))
    for bad in (0, -1):
        with pytest.raises(ValueError, match="batch must be a positive integer"):
            resolve_workload("tiny-lm", batch=bad)
        with pytest.raises(ValueError, match="seq_len must be a positive integer"):
            resolve_workload("tiny-lm", seq_len=bad)


def test_model_spec_files(tmp_path):
    toml = tmp_path / "m.toml"
    toml.write_text('name = "mine"\narch = "decoder"\nn_layers = 3\nd_model = 96\nn_heads = 4\nd_ff = 384\n'
                    'vocab_size = 1000\ndefault_batch = 2\ndefault_seq_len = 16\nmax_positions = 64\n')
    trace = resolve_workload(str(toml))
    assert trace.workload == "mine" and trace.batch == 2 and trace.seq_len == 16
    assert ModelSpec.from_dict(trace.spec) == spec_from_file(str(toml))  # a trace carries its full spec
    as_json = tmp_path / "m.json"
    as_json.write_text(json.dumps(spec_from_file(str(toml)).to_dict()))
    assert resolve_workload(str(as_json)) == trace
    as_json.write_text(json.dumps({**spec_from_file(str(toml)).to_dict(), "depth": 3}))
    with pytest.raises(ValueError, match="unknown model spec field 'depth'"):
        resolve_workload(str(as_json))
    toml.write_text('name = "x"\narch = "decoder"\n')
    with pytest.raises(ValueError, match="missing model spec field 'n_layers'"):
        resolve_workload(str(toml))


@pytest.mark.parametrize("folder, preset", [("hf_gpt2", "gpt2-small"), ("hf_bert", "bert-base"),
                                            ("hf_llama", "llama-7b")])
def test_hf_configs_match_presets(folder, preset):
    spec = spec_from_hf_config(str(DATA / folder / "config.json"))
    ours = build_trace(spec)
    theirs = build_trace(preset)
    assert ours.param_count == theirs.param_count
    assert ours.total_macs == theirs.total_macs
    assert spec.default_seq_len == get_spec(preset).default_seq_len


def test_hf_grouped_query_attention_config():
    assert build_trace(spec_from_hf_config(str(DATA / "hf_tinyllama")), 1, 16).param_count == 1_100_048_384


@pytest.mark.parametrize("folder, field", [("hf_gpt2", "n_embd"), ("hf_bert", "num_hidden_layers"),
                                           ("hf_llama", "intermediate_size")])
def test_hf_config_missing_field_names_field_and_file(tmp_path, folder, field):
    cfg = json.loads((DATA / folder / "config.json").read_text())
    del cfg[field]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=f"{path}: missing field '{field}'"):
        spec_from_hf_config(str(path))


def test_hf_config_unsupported_values(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ValueError, match="model_type 't5' is not supported; supported: gpt2, bert, llama"):
        resolve_workload(str(path))
    path.write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(ValueError, match="missing field 'model_type'"):
        resolve_workload(str(path))
    cfg = json.loads((DATA / "hf_bert" / "config.json").read_text())
    path.write_text(json.dumps({**cfg, "hidden_act": "tanh"}))
    with pytest.raises(ValueError, match="'hidden_act' = 'tanh' is not supported"):
        spec_from_hf_config(str(path))
    path.write_text(json.dumps({**cfg, "hidden_size": -768}))
    with pytest.raises(ValueError, match="'hidden_size' must be a positive integer"):
        spec_from_hf_config(str(path))


# ---- CLI -----------------------------------------------------------------------------------------------------------
def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim.cli", "trace", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_cli_trace_writes_file_and_summary(tmp_path):
    out = tmp_path / "trace.json"
    proc = _cli("--workload", "tiny-lm", "--batch", "2", "--seq-len", "8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1
    assert "ops" in proc.stdout and "params" in proc.stdout and "GMACs" in proc.stdout
    assert Trace.load(str(out)) == build_trace("tiny-lm", batch=2, seq_len=8)
    proc = _cli("--workload", str(out), "--json")
    assert proc.returncode == 0
    summary = json.loads(proc.stdout)
    assert summary["params"] == build_trace("tiny-lm").param_count and summary["batch"] == 2


@pytest.mark.parametrize("args", [
    ["--workload", "no-such-model"],
    ["--workload", "tiny-lm", "--batch", "0"],
    ["--workload", "tiny-lm", "--seq-len", "-4"],
    ["--workload", "gpt2-small", "--seq-len", "5000"],
    ["--workload", "missing/config.json"],
    ["--workload", "tiny-lm", "--out", "/no/such/dir/t.json"],
    ["--workload", str(DATA / "hf_gpt2" / "config.json"), "--batch", "x"],
])
def test_cli_bad_input_exits_2_with_one_line(args):
    proc = _cli(*args)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "error" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_bad_trace_file_leaves_nothing_written(tmp_path):
    bad = _write(tmp_path, _mutated(lambda d: d.update(schema_version=0)))
    out = tmp_path / "out.json"
    proc = _cli("--workload", bad, "--out", str(out))
    assert proc.returncode == 2 and "schema_version 0" in proc.stderr
    assert not out.exists()
