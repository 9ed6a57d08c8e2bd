"""Bad input: every command answers with one `dsqsim: error: ...` line on stderr, exit code 2, no traceback, and
leaves no half-written file behind."""

import json
import subprocess
import sys

import pytest

from sim.cli import build_parser


def dsqsim(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def assert_bad(proc: subprocess.CompletedProcess, *mentions: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dsqsim"), lines[0]
    for m in mentions:
        assert m.lower() in lines[0].lower(), lines[0]


@pytest.fixture(scope="module")
def hw() -> str:
    from hwmodels.machine import list_machines

    first = list_machines()[0]
    return first if isinstance(first, str) else first.name


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory) -> str:
    from workloads import resolve_workload

    path = tmp_path_factory.mktemp("trace") / "tiny.json"
    resolve_workload("tiny-lm").save(str(path))
    return str(path)


def roofline_args(hw: str, **over: str) -> list[str]:
    opts = {"--workload": "tiny-lm", "--hw": hw, "--policy": "bf16", **over}
    return ["roofline", *(x for kv in opts.items() for x in kv)]


def test_unknown_workload(hw):
    assert_bad(dsqsim(*roofline_args(hw, **{"--workload": "no-such-model"})), "no-such-model", "tiny-lm")


def test_unknown_machine():
    assert_bad(dsqsim(*roofline_args("no-such-hw")), "no-such-hw")


def test_unknown_format_in_policies(hw):
    assert_bad(dsqsim("compare", "--workload", "tiny-lm", "--hw", hw, "--policies", "fp32,fp7"), "fp7", "bf16")


def test_unknown_policy(hw):
    assert_bad(dsqsim(*roofline_args(hw, **{"--policy": "warp-drive"})), "warp-drive")


def test_empty_policy_list(hw):
    assert_bad(dsqsim("compare", "--workload", "tiny-lm", "--hw", hw, "--policies", ","), "comma-separated")


def test_malformed_trace_file(hw, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"schema_version": 1, "ops": [')
    assert_bad(dsqsim(*roofline_args(hw, **{"--workload": str(bad)})), "broken.json")


def test_wrong_version_trace_file(hw, trace_file, tmp_path):
    data = json.loads(open(trace_file).read())
    assert "schema_version" in data
    data["schema_version"] = 999
    bad = tmp_path / "future.json"
    bad.write_text(json.dumps(data))
    assert_bad(dsqsim(*roofline_args(hw, **{"--workload": str(bad)})), "999")


def test_missing_trace_file(hw, tmp_path):
    assert_bad(dsqsim(*roofline_args(hw, **{"--workload": str(tmp_path / "absent.json")})), "absent.json")


def test_valid_trace_file_is_accepted(hw, trace_file):
    # The control for the trace-file cases above: the same path with an intact file succeeds.
    proc = dsqsim(*roofline_args(hw, **{"--workload": trace_file}))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("flag,value", [("--batch", "0"), ("--seq-len", "-1"), ("--batch", "two")])
def test_non_positive_sizes(hw, flag, value):
    assert_bad(dsqsim(*roofline_args(hw, **{flag: value})), flag, "positive")


def test_config_json_missing_fields(hw, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))  # no width, heads, vocabulary
    assert_bad(dsqsim(*roofline_args(hw, **{"--workload": str(cfg)})), "config.json")


def test_step_out_of_range(hw):
    assert_bad(dsqsim(*roofline_args(hw, **{"--step": "1000", "--total-steps": "1000"})), "--step")


def test_plot_bad_suffix_writes_nothing(hw, tmp_path):
    assert_bad(dsqsim(*roofline_args(hw, **{"--plot": str(tmp_path / "roof.jpg")})), ".jpg")
    assert list(tmp_path.iterdir()) == []


def test_plot_missing_folder(hw, tmp_path):
    assert_bad(dsqsim(*roofline_args(hw, **{"--plot": str(tmp_path / "nowhere" / "roof.png")})), "nowhere")
    assert list(tmp_path.iterdir()) == []


def test_missing_timeline_file(hw, tmp_path):
    assert_bad(dsqsim("compare", "--workload", "tiny-lm", "--hw", hw, "--policies", "bf16,dsq",
                      "--timeline", str(tmp_path / "absent_timeline.json")), "absent_timeline.json")


def test_presets_unknown_kind():
    assert_bad(dsqsim("presets", "--kind", "spaceships"), "spaceships")


# ---- every command that takes a workload, machine or batch rejects bad values the same way ---------------------
# In-process through sim.cli.main (the same code path as the console script, minus interpreter start-up), so that
# commands added later are covered without slowing the suite by a subprocess each.

def dsqsim_in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    from sim.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse errors
        code = exc.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


def _commands_with(option: str) -> list[str]:
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(name for name, p in sub.choices.items()
                  if any(option in a.option_strings for a in p._actions))


def _filled_args(command: str, hw: str, out_dir=None, **over: str) -> list[str] | None:
    """The command with its required options filled with valid values (then overridden), or None if unknown."""
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    valid = {"--workload": "tiny-lm", "--hw": hw, "--policy": "bf16", "--policies": "bf16", "--m": "16",
             "--k": "16", "--n": "16", "--task": "numwords", "--trials": "1", "--steps": "1",
             "--out": str(out_dir or "unused-out-dir")}
    args = [command]
    for action in sub.choices[command]._actions:
        if not action.required:
            continue
        if not action.option_strings:
            return None  # positional arguments: no generic valid value
        opt = action.option_strings[-1]
        if opt not in valid:
            return None
        args += [opt, over.pop(opt, valid[opt])]
    for opt, value in over.items():
        args += [opt, value]
    return args


@pytest.mark.parametrize("command", _commands_with("--workload"))
def test_every_command_rejects_unknown_workload(command, hw, capsys):
    args = _filled_args(command, hw, **{"--workload": "no-such-model"})
    if args is None:
        pytest.skip(f"{command} has required arguments with no generic valid value")
    assert_bad(dsqsim_in_process(capsys, *args), "no-such-model")


@pytest.mark.parametrize("command", _commands_with("--hw"))
def test_every_command_rejects_unknown_machine(command, hw, capsys):
    args = _filled_args(command, hw, **{"--hw": "no-such-hw"})
    if args is None:
        pytest.skip(f"{command} has required arguments with no generic valid value")
    assert_bad(dsqsim_in_process(capsys, *args), "no-such-hw")


@pytest.mark.parametrize("command", _commands_with("--batch"))
def test_every_command_rejects_zero_batch(command, hw, capsys):
    args = _filled_args(command, hw, **{"--batch": "0"})
    if args is None:
        pytest.skip(f"{command} has required arguments with no generic valid value")
    assert_bad(dsqsim_in_process(capsys, *args), "--batch")


def test_timeline_needs_a_policy_when_ambiguous(hw, tmp_path):
    from sim.policy import Timeline
    from sim.precision import PrecisionConfig

    path = tmp_path / "tl.json"
    Timeline.constant(PrecisionConfig.uniform("bf16"), 10).save(path)
    assert_bad(dsqsim("compare", "--workload", "tiny-lm", "--hw", hw, "--policies", "dsq,cyclic",
                      "--timeline", str(path)), "POLICY=FILE")


@pytest.mark.parametrize("command", _commands_with("--policy"))
def test_every_command_rejects_unknown_policy(command, hw, capsys, tmp_path):
    args = _filled_args(command, hw, out_dir=tmp_path / "out", **{"--policy": "warp-drive"})
    if args is None:
        pytest.skip(f"{command} has required arguments with no generic valid value")
    assert_bad(dsqsim_in_process(capsys, *args), "warp-drive")
    assert not (tmp_path / "out").exists()  # rejected before anything is written
