"""Extreme values of every subcommand's numeric options: each run exits 0 with sane numbers (non-negative, finite
bytes, times, cycles) or exits 2 with one line, never a traceback (in-process `main` calls, property-based)."""

from __future__ import annotations

import json
import math
import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sim.cli import main

# Small (fast to run) or far beyond any sensible size (must be rejected fast); the sizes between are legitimate and
# slow, so they are not drawn.
HUGE_INTS = [2**31, 2**53, 2**62, 2**63, 2**64, 10**12, 10**14, 10**18, 10**30, 10**100]
HUGE_FLOATS = [1e-300, 5e-324, 1e-30, 1e30, 1e300, 1.7976931348623157e308, 1e-7, 1e7]
small_int = st.integers(1, 64)
any_int = st.one_of(small_int, st.sampled_from(HUGE_INTS), st.integers(-3, 0))
any_float = st.one_of(st.floats(0.01, 100.0), st.sampled_from(HUGE_FLOATS), st.sampled_from([0.0, -1.0]))

# Sizes of the workload itself: only huge ones are drawn (a moderately large tiny-mt still takes seconds).
workload_size = st.one_of(st.just(None), st.sampled_from([1, 2, *HUGE_INTS]))

FIGURE_WORDS = ("bytes", "cycles", "time", "_s", "_ns", "macs", "bitops", "gbps", "busy", "utilization", "reads",
                "writes")

# A quick fixed sample by default; DSQSIM_EXTREME_EXAMPLES=500 explores (randomised) before a release.
_EXAMPLES = int(os.environ.get("DSQSIM_EXTREME_EXAMPLES", "12"))
SETTINGS = settings(max_examples=_EXAMPLES, deadline=timedelta(seconds=60),  # per run: a hang fails, a slow CPU not
                    derandomize="DSQSIM_EXTREME_EXAMPLES" not in os.environ,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # "explain" traces: slow
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _opt(name: str, value) -> list[str]:
    return [] if value is None else [name, str(value)]


def _check(argv: list[str], capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejecting a value
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "error" in lines[0], (argv, err)
        return
    assert code == 0, (argv, code, err)
    _sane(json.loads(out), argv)


def _sane(obj, argv, key: str = "") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _sane(v, argv, str(k))
    elif isinstance(obj, list):
        for v in obj:
            _sane(v, argv, key)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and any(w in key for w in FIGURE_WORDS):
        assert math.isfinite(obj) and obj >= 0, (argv, key, obj)


@SETTINGS
@given(batch=workload_size, seq_len=workload_size)
def test_trace_extremes(batch, seq_len, capsys):
    _check(["trace", "--workload", "tiny-mt", *_opt("--batch", batch), *_opt("--seq-len", seq_len), "--json"], capsys)


@SETTINGS
@given(batch=workload_size, seq_len=workload_size, step=any_int, total=any_int, top=any_int)
def test_roofline_extremes(batch, seq_len, step, total, top, capsys):
    _check(["roofline", "--workload", "tiny-mt", "--hw", "edge-npu", "--policy", "dsq", *_opt("--batch", batch),
            *_opt("--seq-len", seq_len), "--step", str(step), "--total-steps", str(total), "--top", str(top),
            "--json"], capsys)


@SETTINGS
@given(batch=workload_size, seq_len=workload_size, total=any_int)
def test_compare_extremes(batch, seq_len, total, capsys):
    _check(["compare", "--workload", "tiny-mt", "--hw", "edge-npu", "--policies", "fp32,dsq",
            *_opt("--batch", batch), *_opt("--seq-len", seq_len), "--total-steps", str(total), "--json"], capsys)


@SETTINGS
@given(batch=workload_size, seq_len=workload_size, total=any_int, bw=st.one_of(st.none(), any_float),
       rows=st.one_of(st.none(), any_int), cols=small_int, sram=st.one_of(st.none(), any_float),
       channels=st.one_of(st.none(), any_int), max_steps=st.one_of(st.none(), any_int),
       fidelity=st.sampled_from(["tile", "roofline"]))
def test_simulate_extremes(batch, seq_len, total, bw, rows, cols, sram, channels, max_steps, fidelity, capsys):
    _check(["simulate", "--workload", "tiny-mt", "--hw", "edge-npu", "--policy", "dsq", "--fidelity", fidelity,
            *_opt("--batch", batch), *_opt("--seq-len", seq_len), "--total-steps", str(total),
            *_opt("--dram-bw-scale", bw), *([] if rows is None else ["--array", f"{rows}x{cols}"]),
            *_opt("--sram-kb", sram), *_opt("--dram-channels", channels), *_opt("--max-steps", max_steps),
            "--json"], capsys)


@SETTINGS
@given(m=any_int, k=any_int, n=any_int, rows=any_int, cols=any_int, bits_a=any_int, bits_b=any_int,
       sram=st.one_of(st.none(), any_float), native=any_int, hw=st.sampled_from([None, "edge-npu", "h100-sxm"]))
def test_gemm_extremes(m, k, n, rows, cols, bits_a, bits_b, sram, native, hw, capsys):
    array = [] if hw else ["--rows", str(rows), "--cols", str(cols), "--native-bits", str(native)]
    _check(["gemm", *_opt("--hw", hw), *array, "--m", str(m), "--k", str(k), "--n", str(n), "--bits-a", str(bits_a),
            "--bits-b", str(bits_b), *_opt("--sram-kb", sram), "--json"], capsys)


@SETTINGS
@given(requests=st.one_of(st.integers(1, 300), st.sampled_from(HUGE_INTS), st.integers(-1, 0)),
       stride=st.one_of(st.sampled_from([32, 64, 128, 4096]), st.sampled_from(HUGE_INTS)),
       width=st.one_of(st.integers(1, 8), st.sampled_from(HUGE_INTS)),
       outstanding=st.one_of(st.none(), st.integers(1, 8), st.sampled_from(HUGE_INTS)),
       pattern=st.sampled_from(["seq_read", "mix", "rand_read"]))
def test_dram_bench_extremes(requests, stride, width, outstanding, pattern, capsys):
    _check(["dram-bench", "--requests", str(requests), "--stride", str(stride), "--issue-width", str(width),
            *_opt("--outstanding", outstanding), "--pattern", pattern, "--json"], capsys)


@SETTINGS
@given(batch=workload_size, seq_len=workload_size, bw=any_float, sram=st.one_of(st.none(), any_float),
       rows=st.one_of(st.none(), any_int), steps=any_int)
def test_sweep_extremes(batch, seq_len, bw, sram, rows, steps, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("sweep") / "s.parquet"
    _check(["sweep", "--workload", "tiny-mt", "--policies", "dsq", "--fidelity", "roofline", "--workers", "1",
            *_opt("--batch", batch), *_opt("--seq-len", seq_len), "--dram-bw-scale", str(bw),
            *_opt("--sram-kb", sram), *([] if rows is None else ["--array", f"{rows}x{rows}"]), "--steps", str(steps),
            "--out", str(out), "--json"], capsys)


@pytest.mark.parametrize("option", ["--batch", "--seq-len"])
@pytest.mark.parametrize("value", [10**12, 2**63])
def test_study_rejects_huge_workloads_before_training(option, value, tmp_path, capsys):
    code = main(["study", "--workload", "llama-7b", option, str(value), "--out", str(tmp_path / "s"), "--steps", "1",
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "too large" in err[0]
    assert not (tmp_path / "s" / "policies").exists()
