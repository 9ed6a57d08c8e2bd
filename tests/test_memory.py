"""Memory footprint from liveness: a hand-checked toy step, the Korthikanti et al. per-layer stash, invariants over
presets and policies, the largest batch that fits, machine DRAM capacity, and the `dsqsim memory` command."""

from __future__ import annotations

import json
import math

import pytest

from hwmodels.dram import get_dram
from hwmodels.machine import get_machine, list_machines
from hwmodels.machine.loader import machine_from_dict
from sim.cli import main
from sim.counting import access_bytes
from sim.formats import get_format
from sim.memory import CATEGORIES, footprint, live_intervals, max_batch, memory_table, policy_configs
from sim.policy import get_policy
from sim.precision import PrecisionConfig
from sim.storage import resolve
from workloads import build_trace, get_spec
from workloads.trace import Op, Operand, Tensor, Trace

FP32, BF16 = PrecisionConfig.uniform("fp32"), PrecisionConfig.uniform("bf16")


def _toy() -> Trace:
    """y = f(x, W); loss reads y and writes dy; backward reads dy and x, writes dW; Adam updates W and m."""
    t = {n: Tensor(n, shape, role) for n, shape, role in [
        ("W", (10,), "weight"), ("m", (10,), "optimizer_state"), ("x", (5,), "activation"),
        ("y", (7,), "activation"), ("dy", (7,), "activation_grad"), ("dW", (10,), "weight_grad")]}
    q = Operand
    ops = [Op("f", "elementwise", "forward", 0, (q("x"), q("W")), (q("y"),), 0, 1),
           Op("l", "loss", "loss", None, (q("y"),), (q("dy"),), 0, 1),
           Op("b", "elementwise", "backward", 0, (q("dy"), q("x")), (q("dW"),), 0, 1),
           Op("adam", "optimizer", "optimizer", None, (q("W"), q("dW"), q("m")), (q("W"), q("m")), 0, 1)]
    return Trace("toy", {}, 1, 1, t, ops)


def test_toy_step_by_hand():
    trace = _toy()
    assert live_intervals(trace) == {"W": (0, 3), "m": (0, 3), "x": (0, 3), "y": (0, 1), "dy": (1, 2), "dW": (2, 3)}
    f = footprint(trace, FP32)
    # fp32, 4 bytes each: op0 W m x y = 40+40+20+28; op1 + dy; op2 W m x dy dW; op3 W m x dW
    assert list(f.live_bytes) == [128, 156, 168, 140]
    assert (f.peak_bytes, f.peak_op, f.peak_phase) == (168, "b", "backward")
    assert f.at_peak == {"weights": 40, "optimizer": 40, "gradients": 68, "stash": 20, "activations": 0}
    assert (f.stash_bytes, f.weights_bytes, f.optimizer_bytes, f.gradient_bytes) == (20, 40, 40, 68)


def _layer_terms(spec, batch: int, seq: int) -> tuple[int, int]:
    """Korthikanti et al. (2022) without dropout, in elements: (16·s·b·h, a·s²·b); at 16 bits 32sbh + 2as²b bytes."""
    return 16 * seq * batch * spec.d_model, spec.n_heads * seq * seq * batch


@pytest.mark.parametrize("batch, seq", [(2, 128), (3, 64)])
def test_stash_per_layer_matches_korthikanti(batch, seq):
    spec = get_spec("gpt2-small")
    trace = build_trace(spec, batch, seq)
    linear, attention = _layer_terms(spec, batch, seq)
    for config, bytes_per_element in ((BF16, 2), (FP32, 4)):
        f = footprint(trace, config)
        for layer in range(spec.n_layers):
            assert f.stash_by_layer[layer] == bytes_per_element * (linear + attention), (config.label, layer)
        # outside the layers: the token ids (read by the embedding's backward) and the final norm's input and output
        outside = bytes_per_element * (batch * seq + 2 * batch * seq * spec.d_model)
        assert f.stash_by_layer[None] == outside
        assert f.stash_bytes == spec.n_layers * bytes_per_element * (linear + attention) + outside


def test_dsq_stash_is_written_at_q1():
    """Under dsq every stash is a copy at q1 (its format or blocking differs from the source's): per layer, the
    eleven saved tensors (eight of s·b·h, two of 4·s·b·h, the softmax output) at q1's bytes, each rounded up."""
    spec, batch, seq = get_spec("gpt2-small"), 2, 64
    trace = build_trace(spec, batch, seq)
    config = policy_configs(get_policy("dsq"))[0]
    q1 = get_format(config.q1)
    sbh = seq * batch * spec.d_model
    sizes = [sbh] * 8 + [4 * sbh] * 2 + [spec.n_heads * seq * seq * batch]
    f = footprint(trace, config)
    assert f.stash_by_layer[3] == sum(access_bytes(n, q1) for n in sizes)
    assert f.stash_bytes < footprint(trace, BF16).stash_bytes * q1.bits_per_element / 16 * 1.01


CASES = [("tiny-lm", None), ("tiny-mt", None), ("transformer-iwslt", 4), ("gpt2-small", 1)]


@pytest.mark.parametrize("workload, batch", CASES)
def test_invariants_over_policies(workload, batch):
    trace = build_trace(workload, batch, 64 if batch else None)
    params = trace.param_count
    configs = [c for p in ("fp32", "bf16", "fixed16", "dsq", "cyclic") for c in policy_configs(get_policy(p))]
    for config in configs:
        f = footprint(trace, config)
        assert sum(f.at_peak.values()) == f.peak_bytes == max(f.live_bytes)
        assert set(f.at_peak) == set(CATEGORIES)
        assert f.peak_bytes >= f.weights_bytes + f.optimizer_bytes + f.stash_bytes
        assert sum(f.stash_by_layer.values()) == f.stash_bytes
        st = resolve(trace, config)
        weights = sum(access_bytes(t.elements, st.formats[n]) for n, t in st.trace.tensors.items()
                      if t.role in ("weight", "weight_copy"))
        assert f.weights_bytes == weights and f.optimizer_bytes == 8 * params  # two fp32 Adam moments
    fp32, bf16 = footprint(trace, FP32), footprint(trace, BF16)
    gemm_params = sum(trace.tensors[t.source].elements for t in trace.tensors.values() if t.name.endswith("@q0"))
    assert 0 < gemm_params < params  # norms and biases are read as masters
    assert fp32.weights_bytes == 4 * params  # no copies: GEMMs read the masters
    assert bf16.weights_bytes == 4 * params + 2 * gemm_params  # one bf16 copy (serving q0 and q2) per GEMM weight
    assert fp32.stash_bytes == 2 * bf16.stash_bytes  # same tensors saved (no stash copies), 4 vs 2 bytes


def _machine(capacity_gb: float):
    return machine_from_dict({"name": "tiny-dram", "clock_ghz": 1.0, "dram_capacity_gb": capacity_gb,
                              "array": {"rows": 8, "cols": 8}, "sram": {"total_kb": 96}, "vector": {"lanes": 8},
                              "dram": {"preset": "lpddr4-2400"}}, "test")


def test_max_batch_is_the_largest_that_fits():
    machine = _machine(0.05)
    df = memory_table("tiny-lm", machine, ["fp32", "dsq"])
    assert df.attrs["capacity_bytes"] == 50_000_000 and df.attrs["max_batch_note"] is None
    for row in df.to_dict("records"):
        configs = policy_configs(get_policy(row["policy"]))
        best = int(row["max_batch"])
        assert best > 1
        assert all(footprint(build_trace("tiny-lm", best), c).peak_bytes <= 50_000_000 for c in configs)
        assert any(footprint(build_trace("tiny-lm", best + 1), c).peak_bytes > 50_000_000 for c in configs)
    s = df.set_index("policy")
    assert s.loc["dsq", "max_batch"] > s.loc["fp32", "max_batch"]
    weights_only = footprint(build_trace("tiny-lm", 1), FP32).peak_bytes
    assert max_batch(lambda b: build_trace("tiny-lm", b), [FP32], weights_only - 1) == 0


def test_time_adaptive_policy_reports_its_worst_configuration():
    trace = build_trace("tiny-mt")
    df = memory_table(trace, "edge-npu", ["dsq", "cyclic"])
    assert df.attrs["max_batch_note"] and df["max_batch"].isna().all()  # a Trace without rebuild(batch)
    for row in df.to_dict("records"):
        prints = [footprint(trace, c) for c in policy_configs(get_policy(row["policy"]))]
        assert len(prints) > 1
        worst = max(prints, key=lambda f: f.peak_bytes)
        assert (row["peak_bytes"], row["config"], row["stash_bytes"]) == (worst.peak_bytes, worst.config,
                                                                          worst.stash_bytes)


def test_machine_dram_capacity():
    for name in list_machines():
        d = get_machine(name).dram
        device_bits = d.banks * d.rows * d.columns * d.device_width
        assert get_machine(name).dram_capacity_bytes == d.channels * d.ranks * d.devices_per_rank * device_bits // 8
    assert get_machine("h100-sxm").dram_capacity_bytes == 80 * 2**30  # 5 HBM3 stacks of 16 GiB
    assert get_machine("edge-npu").dram_capacity_bytes == get_dram("lpddr4-2400").capacity_bytes == 8 * 2**30
    assert _machine(2.5).dram_capacity_bytes == 2_500_000_000
    for bad in (0, -1, "8", math.inf):
        with pytest.raises(ValueError, match="dram_capacity_gb"):
            _machine(bad)


def test_cli_json_and_table(capsys, tmp_path):
    assert main(["memory", "--workload", "tiny-lm", "--hw", "edge-npu", "--policies", "fp32,dsq", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"workload", "hw", "rows"} <= set(out) and [r["policy"] for r in out["rows"]] == ["fp32", "dsq"]
    keys = {"policy", "peak_bytes", "stash_bytes", "weights_bytes", "optimizer_bytes", "gradient_bytes", "max_batch"}
    assert all(keys <= set(r) for r in out["rows"])
    f = footprint(build_trace("tiny-lm"), FP32)
    assert out["rows"][0]["peak_bytes"] == f.peak_bytes and out["rows"][0]["stash_bytes"] == f.stash_bytes
    assert all(isinstance(r["max_batch"], int) and r["max_batch"] > 1000 for r in out["rows"])  # 8 GiB
    assert main(["memory", "--workload", "tiny-lm", "--hw", "edge-npu", "--policies", "fp32,dsq"]) == 0
    text = capsys.readouterr().out
    assert "max batch" in text and "dsq" in text
    path = tmp_path / "trace.json"
    build_trace("tiny-lm", 2).save(str(path))
    assert main(["memory", "--workload", str(path), "--hw", "edge-npu", "--policies", "bf16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["max_batch"] is None and "trace file" in out["max_batch_note"]


@pytest.mark.parametrize("args, words", [
    (["--policies", "nope"], "nope"), (["--hw", "zz"], "zz"), (["--workload", "nowhere"], "nowhere"),
    (["--batch", "0"], "positive"), (["--seq-len", "-3"], "positive"), (["--total-steps", "0"], "positive"),
])
def test_cli_bad_input_is_one_line_exit_2(capsys, args, words):
    base = {"--workload": "tiny-lm", "--hw": "edge-npu", "--policies": "fp32"}
    argv = ["memory"]
    for key, value in base.items():
        if key not in args:
            argv += [key, value]
    try:
        code = main(argv + args)
    except SystemExit as exc:  # argparse type errors exit from the parser
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0]
