"""Smaller newcomer-path problems: help defaults from the code, error messages that say what is valid and name the
user's paths, `gemm` saying which precision law it used, `report DIR --out F` with the study's roofline plots."""

from __future__ import annotations

import argparse
import re

import pytest

from sim.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_defaults_come_from_the_code():
    """A help text quoting a default quotes the parser's own default (%(default)s), never a typed-in copy."""
    for name, sub in _subparsers().items():
        for action in sub._actions:
            text = action.help or ""
            if action.default in (None, False, argparse.SUPPRESS) or "%(default)s" in text:
                continue
            assert not re.search(rf"default:? {re.escape(str(action.default))}\b", text), (name, action.dest, text)


def test_simulate_help_quotes_the_engine_max_steps(capsys):
    from sim.engine import EngineOptions

    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {EngineOptions().max_steps})" in text.split("--max-steps MAX_STEPS cap", 1)[1][:200]


@pytest.mark.parametrize("policy, words", [("bfp1", "bfpM with M = 2..24"), ("fixed99", "2..32 bits"),
                                           ("zork", "fixedN with N = 2..32")])
def test_unknown_policy_gives_the_valid_range(policy, words, capsys):
    code = main(["roofline", "--workload", "tiny-mt", "--hw", "edge-npu", "--policy", policy])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0] and policy in err[0]


def _gemm(capsys, *args: str) -> tuple[dict, str]:
    """(the --json figures, the text output) of one GEMM."""
    import json

    argv = ["gemm", "--m", "256", "--k", "256", "--n", "256", *args]
    assert main([*argv, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    return figures, capsys.readouterr().out


def test_gemm_applies_array_flags_with_a_machine(capsys):
    from hwmodels.machine import get_machine

    own, _ = _gemm(capsys, "--hw", "edge-npu")
    small, text = _gemm(capsys, "--hw", "edge-npu", "--rows", "8", "--cols", "8")
    expected = get_machine("edge-npu").with_overrides(array=(8, 8)).gemm(256, 256, 256, 16, 16)
    assert small["compute_cycles"] == expected.compute_cycles != own["compute_cycles"]
    assert "8x8" in text.splitlines()[0]


def test_gemm_says_which_law_and_how_to_get_scale_sims(capsys):
    from hwmodels.compute import systolic_gemm

    scalable, text = _gemm(capsys, "--rows", "32", "--cols", "32", "--bits-a", "8", "--bits-b", "8")
    fixed, fixed_text = _gemm(capsys, "--rows", "32", "--cols", "32", "--bits-a", "8", "--bits-b", "8",
                              "--fixed-precision")
    scale_sim = systolic_gemm(32, 32, "os", 256, 256, 256, 8, 8, law=None)  # one product per MAC per cycle
    assert fixed["compute_cycles"] == scale_sim.compute_cycles > scalable["compute_cycles"]
    assert "precision-scalable" in text and "--fixed-precision" in text and "4x the MAC rate" in text
    assert "SCALE-Sim's fixed-precision array" in fixed_text


@pytest.mark.parametrize("argv", [
    ["trace", "--workload", "tiny-mt", "--out", "{bad}/t.json"],
    ["roofline", "--workload", "tiny-mt", "--hw", "edge-npu", "--policy", "fp32", "--plot", "{bad}/r.png"],
    ["sweep", "--workload", "tiny-mt", "--policies", "fp32", "--dram-bw-scale", "1", "--fidelity", "roofline",
     "--no-progress", "--out", "{bad}/s.parquet"],
])
def test_write_errors_name_the_users_path(argv, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    argv = [a.replace("{bad}", str(blocker)) for a in argv]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(blocker) in err[0] and ".tmp" not in err[0] and "/." not in err[0], err[0]


def test_report_elsewhere_redraws_the_study_rooflines(tiny_study_dir, tmp_path, capsys):
    out = tmp_path / "elsewhere" / "r.html"
    out.parent.mkdir()
    assert main(["report", str(tiny_study_dir), "--out", str(out)]) == 0
    for policy in ("fp32", "dsq"):
        assert (tmp_path / "elsewhere" / "r_plots" / f"roofline_{policy}.png").stat().st_size > 5000
    html = out.read_text()
    own = (tiny_study_dir / "report.html").read_text()
    assert html.count("<figcaption>Roofline of policy") == own.count("<figcaption>Roofline of policy") == 2
