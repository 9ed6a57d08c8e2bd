"""Precision policies: fixed, dsq (schedule), dsq-loss (loss-triggered, checkpointable), cyclic; presets and files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sim.policy
from sim.formats import get_format
from sim.policy import (
    CyclicPolicy,
    FixedPolicy,
    LossTriggeredPolicy,
    SchedulePolicy,
    get_policy,
    list_policies,
    load_policy_file,
    policy_from_dict,
)
from sim.precision import DSQ_POINTS, PrecisionConfig

STAGES = [["bfp4", "bfp2", "bfp4", "bfp8"], ["bfp6", "bfp4", "bfp6", "bfp12"], ["bfp8", "bfp6", "bfp8", "bfp16"]]


def bits(name: str) -> tuple[int, float]:
    f = get_format(name)
    return f.mult_bits, f.bits_per_element


def test_any_format_is_a_fixed_policy() -> None:
    for name in ("fp32", "bf16", "fp16", "fixed16", "fixed8", "bfp8", "mxfp8_e4m3", "bfp6_b32"):
        p = get_policy(name)
        assert isinstance(p, FixedPolicy) and p.name == get_format(name).name
        assert p.config_at(0, 10) == p.config_at(9, 10) == PrecisionConfig.uniform(name)
        assert [(c.label, f) for c, f in p.timeline(10)] == [(get_format(name).name, 1.0)]
    with pytest.raises(ValueError, match="step 10 outside"):
        get_policy("bf16").config_at(10, 10)
    with pytest.raises(ValueError, match=r"unknown policy 'nope'; valid: dsq, dsq-loss, cyclic"):
        get_policy("nope")


def test_dsq_preset_shape() -> None:
    """The tuned preset is time-adaptive (several stages, precision rising, some point higher at the end than at the
    start), and dsq-loss and dsq-guard use the same stages (dsq-guard raises q0 on its signal, not on a date)."""
    from sim.policy import check_monotone

    p = get_policy("dsq")
    assert isinstance(p, SchedulePolicy) and len(p.stages) >= 2
    check_monotone(p.stages)
    first, last = p.stages[0], p.stages[-1]
    assert any(bits(getattr(last, q)) > bits(getattr(first, q)) for q in DSQ_POINTS)
    assert get_policy("dsq-loss").stages == p.stages
    assert get_policy("dsq-guard").stages == p.stages
    assert get_policy("dsq") is not p  # fresh objects: no shared state between runs


@pytest.mark.parametrize("total", [1, 2, 3, 7, 10, 99, 1000])
@pytest.mark.parametrize("name", ["dsq", "dsq-loss", "cyclic", "bf16"])
def test_timeline_agrees_with_config_at(name: str, total: int) -> None:
    p = get_policy(name)
    timeline = p.timeline(total)
    if name != "dsq-loss":  # dsq-loss plans with assume_at; its config_at follows observed switches (none yet)
        assert [timeline.config_at(s) for s in range(total)] == [p.config_at(s, total) for s in range(total)]
    assert abs(sum(f for _, f in timeline) - 1.0) < 1e-12
    if name == "dsq":
        assert [c for c, _ in timeline] == p.stages[: len(list(timeline))] or total < 3


def test_schedule_stage_boundaries() -> None:
    p = SchedulePolicy("t", [PrecisionConfig(*s) for s in STAGES], at=[0.25, 0.5])
    labels = [p.config_at(s, 8).q0 for s in range(8)]
    assert labels == ["bfp4", "bfp4", "bfp6", "bfp6", "bfp8", "bfp8", "bfp8", "bfp8"]
    assert [round(f, 3) for _, f in p.timeline(8)] == [0.25, 0.25, 0.5]
    default = SchedulePolicy("t", [PrecisionConfig(*s) for s in STAGES])
    assert default.at == pytest.approx([1 / 3, 2 / 3])


def test_decreasing_precision_and_bad_fractions_rejected() -> None:
    with pytest.raises(ValueError, match="stage 2 lowers q1 from bfp4 to bfp3"):
        SchedulePolicy("t", [PrecisionConfig("bfp4", "bfp4", "bfp4", "bfp8"), PrecisionConfig("bfp8", "bfp3", "bfp8",
                                                                                             "bfp16")])
    with pytest.raises(ValueError, match="lowers q0 from bf16 to fixed8"):
        SchedulePolicy("t", [PrecisionConfig.uniform("bf16"), PrecisionConfig.uniform("fixed8")])
    with pytest.raises(ValueError, match="lowers q0 from bfp8 to bfp8_b32"):  # same mult bits, fewer storage bits
        SchedulePolicy("t", [PrecisionConfig.uniform("bfp8"), PrecisionConfig.uniform("bfp8_b32")])
    SchedulePolicy("t", [PrecisionConfig.uniform("bfp8_b32"), PrecisionConfig.uniform("bfp8")])  # fine
    stages = [PrecisionConfig(*s) for s in STAGES]
    for at in ([0.5], [0.6, 0.3], [0.0, 0.5], [0.5, 1.0]):
        with pytest.raises(ValueError, match="fraction"):
            SchedulePolicy("t", stages, at=at)


def test_loss_triggered_switches_and_resumes_exactly() -> None:
    stages = [PrecisionConfig(*s) for s in STAGES]
    losses = [3.0, 2.5, 2.49, 2.48, 2.0, 1.995, 1.99, 1.5, 1.5, 1.5]  # evaluated every 10 steps
    p = LossTriggeredPolicy("t", stages, patience=2, min_delta=0.05)
    for i, loss in enumerate(losses):
        p.observe(10 * i + 9, loss)
    # no 0.05 improvement at evals 2, 3 -> switch after step 39; again at 5, 6 -> after step 69; last stage stays
    assert p.switch_steps == [40, 70]
    assert p.config_at(39, 100) == stages[0] and p.config_at(40, 100) == stages[1] and p.config_at(99, 100) == stages[2]
    assert [(s, c) for s, c in p.timeline(100).changes] == [(0, stages[0]), (40, stages[1]), (70, stages[2])]
    # checkpoint after 5 evaluations, resume in a fresh object: identical decisions afterwards
    a = LossTriggeredPolicy("t", stages, patience=2, min_delta=0.05)
    for i, loss in enumerate(losses[:5]):
        a.observe(10 * i + 9, loss)
    b = LossTriggeredPolicy("t", stages, patience=2, min_delta=0.05)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    for i, loss in enumerate(losses[5:], start=5):
        b.observe(10 * i + 9, loss)
    assert b.state_dict() == p.state_dict()
    with pytest.raises(ValueError, match="kind"):
        b.load_state_dict({"kind": "dsq"})
    with pytest.raises(ValueError, match="malformed"):
        b.load_state_dict({"kind": "dsq-loss"})


def test_loss_triggered_plan_before_any_evaluation() -> None:
    p = get_policy("dsq-loss")
    assert isinstance(p, LossTriggeredPolicy)
    planned = p.timeline(100)
    assert [s for s, _ in planned.changes] == [round(f * 100) for f in [0.0, *p.assume_at]]
    assert p.config_at(99, 100) == p.stages[0]  # nothing observed: still the first stage
    p.observe(0, float("nan"))  # NaN never counts as an improvement
    assert p.bad_evals == 1 and [s for s, _ in p.timeline(100).changes] == [0]
    with pytest.raises(ValueError, match="patience"):
        LossTriggeredPolicy("t", p.stages, patience=0)


def test_cyclic_policy() -> None:
    base = PrecisionConfig("bfp8", "bfp8", "bfp8", "bfp16")
    p = CyclicPolicy("c", base, family="fixed", low_bits=3, high_bits=8, cycles=4)
    total = 400
    q0_bits = [int(p.config_at(s, total).q0.removeprefix("fixed")) for s in range(total)]
    assert q0_bits[0] == 3 and max(q0_bits) == 8
    assert q0_bits[:100] == q0_bits[100:200] == q0_bits[300:]  # periodic: 4 cycles of 100 steps
    assert q0_bits[:100] == sorted(q0_bits[:100])  # rising within a cycle (half cosine)
    assert all(p.config_at(s, total).q1 == "bfp8" for s in range(total))  # only q0 cycles by default
    fractions = dict((c.q0, f) for c, f in p.timeline(total))
    assert len(fractions) == 6 and abs(sum(fractions.values()) - 1) < 1e-12
    assert fractions["fixed8"] == pytest.approx(q0_bits.count(8) / total)
    with pytest.raises(ValueError, match="low_bits < high_bits"):
        CyclicPolicy("c", base, low_bits=8, high_bits=4)
    with pytest.raises(ValueError, match="family"):
        CyclicPolicy("c", base, family="mx")


def test_list_policies_all_resolve() -> None:
    listed = dict(list_policies())
    for name in ("dsq", "dsq-loss", "cyclic", "bf16", "fp32"):
        assert name in listed and listed[name]
    for name in listed:
        if not name.startswith("<"):
            assert get_policy(name).timeline(50).total_steps == 50


@pytest.mark.parametrize("name", ["dsq", "dsq-loss", "cyclic", "fixed8"])
def test_to_dict_file_round_trip(tmp_path, name: str) -> None:
    p = get_policy(name)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(p.to_dict()))
    q = get_policy(str(path))
    assert type(q) is type(p) and q.name == p.name
    assert q.timeline(97).changes == p.timeline(97).changes


def test_example_policy_file() -> None:
    p = get_policy("examples/policies/dsq_mx.toml")
    assert p.name == "dsq-mx" and len(p.stages) == 2 and p.stages[0].q1 == "mxfp4"
    sr = get_policy("examples/policies/mxint8_sr.toml").config_at(0, 10)
    assert (sr.q2, sr.q3, sr.q0) == ("mxint8_sr", "mxint8_sr", "mxint8")
    old = get_policy("examples/policies/dsq_bf16_backward.toml")  # the dsq preset before stochastic rounding
    assert [c.points for c in old.stages] == [("mxint8",) * 4, ("mxint8", "mxint8", "bf16", "bf16")]
    assert old.timeline(12000).changes[1][0] == 3000
    guard = get_policy("examples/policies/dsq_guard_6bit_stash.toml")  # the dsq-guard preset before dsq's SR stages
    assert [c.q1 for c in guard.stages] == ["mxfp6_e2m3", "mxint8"] and guard.grad_threshold == 0.4


@pytest.mark.parametrize("text, match", [
    ('kind = "dsq"\nstages = [["bfp8","bfp8","bfp8","bfp8"], ["bfp4","bfp4","bfp4","bfp4"]]', "precision must never"),
    ('kind = "warp"', "kind' must be one of fixed, dsq, dsq-loss, cyclic"),
    ('kind = "dsq"\nstages = [["bfp4","bfp4","bfp4","bfp4"]]\nspeed = 3', "unknown key"),
    ('kind = "dsq"\nstages = [["bfp4","bfp4","bfp4"]]', "needs 4 formats"),
    ('kind = "dsq"', "needs 'stages'"),
    ('kind = "fixed"\nformat = "fp7"', "unknown number format"),
    ('kind = "fixed"', "exactly one of"),
    ('kind = "cyclic"\nbase = "bfp8"\ncycles = "many"', "cycles"),
    ('kind = "dsq-loss"\nstages = ["bfp4", "bfp8"]\nmin_delta = -1', "min_delta"),
    ("kind = [", "not valid TOML"),
])
def test_bad_policy_files(tmp_path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        load_policy_file(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_bad_suffix(tmp_path) -> None:
    with pytest.raises(OSError, match="not found"):
        get_policy(str(tmp_path / "none.toml"))
    with pytest.raises(ValueError, match="must be a table"):
        policy_from_dict(["dsq"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        load_policy_file(tmp_path / "p.yaml")


def test_cli_reports_bad_policy_in_one_line(tmp_path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "dsq"\nstages = [["bfp8","bfp8","bfp8","bfp8"], ["bfp4","bfp4","bfp4","bfp4"]]\n')
    for policy, match in ((str(bad), "precision must never decrease"), ("nope", "unknown policy 'nope'")):
        proc = subprocess.run([sys.executable, "-m", "sim.cli", "roofline", "--workload", "transformer-iwslt",
                               "--hw", "edge-npu", "--policy", policy], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and match in lines[0] and "Traceback" not in proc.stderr


def test_activation_format_is_explicit_in_presets_and_policy_files(tmp_path):
    import tomllib

    from sim.policy import describe_configs, list_policies

    dsq = get_policy("dsq")
    raw = tomllib.loads((Path(sim.policy.__file__).parent / "presets.toml").read_text())["dsq"]["stages"]
    assert all("activation" in stage for stage in raw)  # given in presets.toml, not inferred
    assert [s.activation for s in dsq.stages] == [stage["activation"] for stage in raw]
    first = dsq.stages[0]
    listed = dict(list_policies())
    assert f"q0/q1/q2/q3/act: {first.q0}/{first.q1}/{first.q2}/{first.q3}/{first.activation} ->" in listed["dsq"]
    assert describe_configs(get_policy("bf16")) == "q0/q1/q2/q3/act: bf16/bf16/bf16/bf16/bf16"
    f = tmp_path / "p.toml"
    f.write_text('kind = "dsq"\nstages = [{ q0 = "bfp4", q1 = "bfp3", q2 = "bfp4", q3 = "bfp8", activation = "bf16" },'
                 '\n  { q0 = "bfp8", q1 = "bfp6", q2 = "bfp8", q3 = "bfp16", activation = "bf16" }]\n')
    p = get_policy(str(f))
    assert p.config_at(0, 10).activation == "bf16" and p.config_at(0, 10).label.endswith("/act=bf16")


def test_stages_from_takes_another_policys_stages(tmp_path):
    """`stages_from` names a preset or a policy file whose stages a staged policy takes (the shipped dsq-loss and
    dsq-guard take dsq's); the result writes its stages out, so its file stands alone."""
    dsq = get_policy("dsq")
    guard = tmp_path / "guard.toml"
    guard.write_text('kind = "dsq-guard"\nstages_from = "dsq"\nprobe_every = 10\n')
    p = get_policy(str(guard))
    assert p.kind == "dsq-guard" and p.stages == dsq.stages and p.probe_every == 10
    mine = tmp_path / "mine.toml"
    mine.write_text('kind = "dsq"\nstages = ["bfp4", "bfp8"]\nat = [0.5]\n')
    loss = tmp_path / "loss.toml"
    loss.write_text(f'kind = "dsq-loss"\nstages_from = "{mine}"\n')
    assert get_policy(str(loss)).stages == get_policy(str(mine)).stages
    written = tmp_path / "written.json"
    written.write_text(json.dumps(get_policy(str(loss)).to_dict()))
    assert "stages_from" not in get_policy(str(loss)).to_dict()
    assert get_policy(str(written)).stages == get_policy(str(mine)).stages


@pytest.mark.parametrize("body, match", [
    ('stages_from = "dsq"\nstages = ["bfp4"]', "not both"),
    ('stages_from = "fp32"', "fixed policy, which has no stages"),
    ('stages_from = "no-such-policy"', "unknown policy"),
    ('stages_from = "missing.toml"', "not found"),
    ("stages_from = 3", "must name a policy"),
    ('stages_from = "SELF"', "goes round in a circle"),
])
def test_stages_from_errors(tmp_path, body, match):
    f = tmp_path / "p.toml"
    f.write_text('kind = "dsq"\n' + body.replace("SELF", str(f)) + "\n")
    with pytest.raises(ValueError, match=match):
        get_policy(str(f))
