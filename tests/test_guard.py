"""dsq-guard: switching on a synthetic error signal, reasons in the timeline, rollback on a loss spike, state
round trip, the probe's measurement, and the closed loop through the real training loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.formats import quantize
from sim.policy import GuardPolicy, Timeline, check_monotone, get_policy
from sim.precision import PrecisionConfig
from sim.training import TransformerConfig
from sim.training.probe import QuantStats, record_quantization
from sim.training.quant import Quantizer
from sim.training.tasks.numwords import VOCAB
from sim.training.train import train

STAGES = [PrecisionConfig("bfp4", "bfp3", "bfp4", "bfp8", activation="bfp4"),
          PrecisionConfig("bfp6", "bfp4", "bfp6", "bfp12", activation="bfp6"),
          PrecisionConfig("bfp8", "bfp6", "bfp8", "bfp16", activation="bfp8")]


def _stats(**errors: float) -> dict[str, dict[str, float]]:
    return {q: {"rel_error": e, "flush_share": 0.0} for q, e in errors.items()}


def test_synthetic_error_signal_raises_each_point_when_it_passes_its_threshold():
    g = GuardPolicy("g", STAGES, thresholds={"q0": 0.1, "q1": 0.2, "q2": 0.1, "q3": 0.05}, patience=2)
    total = 100
    # q3's error rises through its threshold at steps 20 and 30 (patience 2): raise from step 31.
    signal = {0: 0.01, 10: 0.02, 20: 0.06, 30: 0.07, 40: 0.02, 50: 0.09, 60: 0.09}
    timeline = Timeline(total)
    for step in range(total):
        config = g.config_at(step, total)
        timeline.record(step, config, g.change_reason(step, total))
        if step in signal:
            g.observe_quantization(step, _stats(q0=0.05, q1=0.1, q2=0.05, q3=signal[step]))
    assert [s for s, _ in timeline.changes] == [0, 31, 61]
    assert timeline.config_at(31).q3 == "bfp12" and timeline.config_at(61).q3 == "bfp16"
    assert timeline.config_at(99).q0 == "bfp4"  # the other points never passed theirs
    assert "q3 relative error 0.07 > 0.05" in timeline.reasons[31]
    check_monotone([c for _, c in timeline.changes])
    assert g.timeline(total).changes == timeline.changes  # the policy's own record agrees
    g.observe_quantization(70, _stats(q3=0.5))
    g.observe_quantization(80, _stats(q3=0.5))
    assert g.levels["q3"] == 2 and not g.pending  # at the top: nothing left to raise, no reason recorded


def test_flush_threshold_and_activation_follows_q0():
    g = GuardPolicy("g", STAGES, thresholds=1.0, flush_thresholds={"q0": 0.3})
    g.observe_quantization(0, {"q0": {"rel_error": 0.01, "flush_share": 0.4}})
    c = g.config_at(1, 10)
    assert (c.q0, c.activation, c.q1) == ("bfp6", "bfp6", "bfp3")
    assert "q0 flushed share 0.4 > 0.3" in g.change_reason(1, 10)


def test_loss_spike_requests_rollback_and_raises_everything():
    g = GuardPolicy("g", STAGES, spike_factor=2.0, spike_warmup=5, max_rollbacks=1)
    assert not any(g.observe_train_loss(s, 1.0) for s in range(10))
    assert g.observe_train_loss(10, 2.5)  # 2.5 > 2 x 1.0
    assert set(g.levels.values()) == {1} and g.rollbacks == 1
    assert not g.observe_train_loss(11, math.nan)  # rollbacks used up: the loop reports divergence


def test_state_round_trip_and_file_form():
    g = GuardPolicy("g", STAGES, thresholds=0.01)
    g.observe_quantization(0, _stats(q0=0.5))
    g.change_reason(1, 10)
    h = GuardPolicy("g", STAGES, thresholds=0.01)
    h.load_state_dict(g.state_dict())
    assert h.config_at(5, 10) == g.config_at(5, 10) and h.changes == g.changes
    preset = get_policy("dsq-guard")
    assert isinstance(preset, GuardPolicy) and preset.probe_every == 50
    from sim.policy import policy_from_dict

    assert policy_from_dict(preset.to_dict()).to_dict() == preset.to_dict()
    with pytest.raises(ValueError, match="lowers"):
        GuardPolicy("bad", list(reversed(STAGES)))
    with pytest.raises(ValueError, match="thresholds"):
        GuardPolicy("bad", STAGES, thresholds={"q9": 0.1})


def test_probe_measures_the_relative_error_of_what_was_quantized():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 32)).astype(np.float32)
    qz = Quantizer(PrecisionConfig.uniform("bfp4"), training=True)
    with record_quantization() as stats:
        out = qz.q0(x)
    assert np.array_equal(out, quantize(x, "bfp4").astype(np.float32))  # numerics unchanged
    expected = np.linalg.norm(out.astype(np.float64) - x) / np.linalg.norm(x.astype(np.float64))
    assert stats.summary()["q0"]["rel_error"] == pytest.approx(expected)
    assert Quantizer.apply.__name__ == "apply" and "q0" not in QuantStats().summary()


TINY = TransformerConfig(vocab_size=len(VOCAB), d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1,
                         n_decoder_layers=1, max_len=12)


def test_closed_loop_switches_with_reasons_in_the_training_timeline(tmp_path):
    g = GuardPolicy("g", STAGES, thresholds={"q0": 0.01, "q1": 1.0, "q2": 1.0, "q3": 1.0}, probe_every=3)
    r = train("numwords", g, steps=8, seed=1, out_dir=tmp_path / "r", eval_every=4, model_config=TINY,
              progress=False)
    steps = [s for s, _ in r.timeline.changes]
    assert steps == [0, 1, 4]  # probes at 0 and 3 found q0's bfp4/bfp6 error above 1 %
    assert "q0 relative error" in r.timeline.reasons[1]
    assert r.timeline.config_at(7).q0 == "bfp8" and r.timeline.config_at(7).q1 == "bfp3"
    saved = Timeline.load(tmp_path / "r" / "timeline.json")
    assert saved.reasons == r.timeline.reasons


class _SpikeOnce(GuardPolicy):
    """Reports a spike at step 6 once, to exercise the loop's rollback."""

    def observe_train_loss(self, step: int, loss: float) -> bool:
        if step == 6 and not self.rollbacks:
            self._raise(["q0", "q1", "q2", "q3"], "synthetic spike")
            self.rollbacks += 1
            return True
        return False


def test_rollback_restores_the_checkpoint_and_replays_at_higher_precision(tmp_path):
    g = _SpikeOnce("s", STAGES, thresholds=1.0, probe_every=100)
    r = train("numwords", g, steps=8, seed=1, out_dir=tmp_path / "r", eval_every=4, model_config=TINY,
              progress=False)
    assert [s for s, _ in r.timeline.changes] == [0, 4]  # rolled back to the step-4 checkpoint
    assert r.timeline.reasons[4] == "synthetic spike"
    assert list(r.metrics.step) == [4, 8] and r.steps == 8
    # steps 4, 5 and 6 were computed at stage 0 and discarded: they stay in the cost
    assert r.timeline.extra_passes == {("rolled back", STAGES[0]): 3}
    assert Timeline.load(tmp_path / "r" / "timeline.json").extra_passes == r.timeline.extra_passes


def test_gradient_error_is_the_relative_difference_and_cosine_over_all_parameters():
    from sim.training.probe import gradient_error

    ref = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0, 4.0]])}
    assert gradient_error(ref, ref) == {"rel_error": 0.0, "cosine": pytest.approx(1.0)}
    off = {"a": np.array([3.0, 1.0]), "b": np.array([[0.0, 4.0]])}
    e = gradient_error(off, ref)
    assert e["rel_error"] == pytest.approx(1 / 5) and e["cosine"] == pytest.approx(25 / (5 * math.sqrt(26)))


DSQ_LIKE = [PrecisionConfig("bfp8", "bfp4", "bfp8", "bfp8", activation="bfp8"),
            PrecisionConfig("bfp8", "bfp8", "bfp8", "bfp8", activation="bfp8")]


def test_grad_threshold_raises_the_points_that_differ_at_the_next_level_after_patience():
    g = GuardPolicy("g", DSQ_LIKE, thresholds=1.0, grad_threshold=0.1, patience=2)
    assert g.shadow_config() == DSQ_LIKE[1]  # every point one level up
    g.observe_quantization(0, {"grad": {"rel_error": 0.2, "cosine": 0.98}})
    g.observe_quantization(50, {"grad": {"rel_error": 0.05, "cosine": 0.99}})  # resets the count
    g.observe_quantization(100, {"grad": {"rel_error": 0.2, "cosine": 0.98}})
    assert g.levels == {"q0": 0, "q1": 0, "q2": 0, "q3": 0}
    g.observe_quantization(150, {"grad": {"rel_error": 0.3, "cosine": 0.95}})
    assert g.levels == {"q0": 0, "q1": 1, "q2": 0, "q3": 0}  # only q1 differs between the stages
    assert "gradient error 0.3 against the next level > 0.1" in g.change_reason(151, 1000)
    assert g.config_at(151, 1000) == DSQ_LIKE[1] and g.shadow_config() is None  # nothing above: no shadow pass
    assert [p["rel_error"] for p in g.probes if p["point"] == "grad"] == [0.2, 0.05, 0.2, 0.3]
    assert GuardPolicy("g", STAGES, thresholds=1.0).shadow_config() is None  # no grad_threshold: no shadow
    from sim.policy import policy_from_dict

    assert policy_from_dict(g.to_dict()).grad_threshold == 0.1
    for bad in (0, -1.0, math.inf, "x"):
        with pytest.raises(ValueError, match="grad_threshold"):
            GuardPolicy("bad", STAGES, grad_threshold=bad)


def test_the_shadow_pass_leaves_the_run_bit_identical_and_its_error_can_switch(tmp_path):
    cfg = TransformerConfig(**{**TINY.to_dict(), "dropout": 0.1})  # dropout: the shadow must replay the same masks
    plain = GuardPolicy("g", STAGES, thresholds=1.0, probe_every=2)
    watched = GuardPolicy("g", STAGES, thresholds=1.0, probe_every=2, grad_threshold=1e9)
    a = train("numwords", plain, steps=8, seed=1, out_dir=tmp_path / "a", eval_every=4, model_config=cfg,
              progress=False)
    b = train("numwords", watched, steps=8, seed=1, out_dir=tmp_path / "b", eval_every=4, model_config=cfg,
              progress=False)
    assert a.metrics.drop(columns="wall_s").equals(b.metrics.drop(columns="wall_s"))
    grad = [p for p in watched.probes if p["point"] == "grad"]
    assert [p["step"] for p in grad] == [0, 2, 4, 6] and all(0 < p["rel_error"] < 1 for p in grad)
    assert all(0.5 < p["cosine"] <= 1 for p in grad)
    switching = GuardPolicy("g", STAGES, thresholds=1.0, probe_every=3, grad_threshold=1e-6)
    r = train("numwords", switching, steps=8, seed=1, out_dir=tmp_path / "c", eval_every=4, model_config=cfg,
              progress=False)
    assert [s for s, _ in r.timeline.changes] == [0, 1, 4]
    assert "gradient error" in r.timeline.reasons[1] and r.timeline.config_at(7) == STAGES[2]


def test_shadow_passes_are_recorded_and_costed_as_extra_training_passes(tmp_path):
    from hwmodels.machine import get_machine
    from sim.compare import compare
    from sim.engine import simulate
    from sim.study.costing import cost_timeline
    from workloads import resolve_workload

    g = GuardPolicy("g", STAGES, thresholds=1.0, probe_every=2, grad_threshold=1e9)
    r = train("numwords", g, steps=8, seed=1, out_dir=tmp_path / "r", eval_every=4, model_config=TINY,
              progress=False)
    assert r.timeline.extra_passes == {("shadow gradient", STAGES[1]): 4}  # probes at steps 0, 2, 4, 6
    import pandas as pd

    probes = pd.read_csv(tmp_path / "r" / "probes.csv")  # the measurements, as the policy saw them
    assert list(probes[probes.point == "grad"].step) == [0, 2, 4, 6]
    assert set(probes.point) == {"q0", "q1", "q2", "q3", "grad"} and (probes.rel_error > 0).all()
    assert Timeline.load(tmp_path / "r" / "timeline.json").extra_passes == r.timeline.extra_passes
    trace, machine = resolve_workload("tiny-mt"), get_machine("edge-npu")
    base, shadow = (simulate(trace, machine, c, "roofline") for c in STAGES[:2])
    cost = cost_timeline(trace, machine, r.timeline, "roofline")
    assert cost.figures["time_s"] == pytest.approx(base.time_s + 4 / 8 * shadow.time_s, rel=1e-12)
    assert cost.figures["dram_bytes"] == pytest.approx(base.dram_bytes + 4 / 8 * shadow.dram_bytes, rel=1e-12)
    plain = Timeline(8, r.timeline.changes)
    assert cost_timeline(trace, machine, plain, "roofline").figures["time_s"] == pytest.approx(base.time_s)
    rows = compare(trace, machine, [g, "fp32"], total_steps=8, timelines={"g": r.timeline}, tiled=False)
    alone = compare(trace, machine, [g, "fp32"], total_steps=8, timelines={"g": plain}, tiled=False)
    assert rows.loc[0, "macs"] == pytest.approx(alone.loc[0, "macs"] * 1.5, rel=1e-6)  # 4 extra passes in 8 steps
