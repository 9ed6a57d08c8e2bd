"""PrecisionConfig: canonical names, format_at by point and role, labels, dict round trip, hashing."""

from __future__ import annotations

import pytest

from sim.formats import get_format
from sim.precision import DSQ_POINTS, PrecisionConfig


def test_uniform_label_and_canonical_equality() -> None:
    a = PrecisionConfig.uniform("bfloat16")
    assert (a.q0, a.q1, a.q2, a.q3, a.activation) == ("bf16",) * 5
    assert a.label == "bf16"
    b = PrecisionConfig("bf16", "bf16", "bf16", "bf16")  # activation None -> q0
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert PrecisionConfig("fp8", "e4m3", "fp8_e4m3", "FP8_E4M3").label == "fp8_e4m3"


def test_mixed_label_lists_points_and_non_defaults() -> None:
    c = PrecisionConfig("bfp8", "bfp4", "bfp8", "bfp16")
    assert c.label == "q0=bfp8/q1=bfp4/q2=bfp8/q3=bfp16/act=bfp8"  # activations: q0's format unless given
    d = PrecisionConfig("bfp8", "bfp4", "bfp8", "bfp16", activation="bf16", master="bf16", optimizer="fp16")
    assert d.label == "q0=bfp8/q1=bfp4/q2=bfp8/q3=bfp16/act=bf16/master=bf16/opt=fp16"
    u = PrecisionConfig.uniform("bfp8")
    assert PrecisionConfig("bfp8", "bfp8", "bfp8", "bfp8", activation="fp32").label != u.label


def test_format_at_points_and_roles() -> None:
    c = PrecisionConfig("bfp8", "bfp4", "bfp6", "bfp16", activation="bf16", master="fp32", optimizer="fp16")
    assert [c.format_at(p, "activation").name for p in DSQ_POINTS] == ["bfp8", "bfp4", "bfp6", "bfp16"]
    expected = {"weight": "fp32", "optimizer_state": "fp16", "weight_grad": "bfp16", "activation_grad": "bfp16",
                "activation": "bf16", "stashed_activation": "bf16"}
    for role, name in expected.items():
        assert c.format_at(None, role) is get_format(name)
    assert PrecisionConfig("bfp8", "bfp4", "bfp6", "bfp16").format_at(None, "activation").name == "bfp8"
    with pytest.raises(ValueError, match="DSQ point"):
        c.format_at("q4", "activation")
    with pytest.raises(ValueError, match="role"):
        c.format_at(None, "gradient")


def test_dict_round_trip_and_errors() -> None:
    c = PrecisionConfig("mxfp8_e4m3", "mxfp4", "mxfp8_e4m3", "mxint8", master="bf16")
    assert PrecisionConfig.from_dict(c.to_dict()) == c
    assert c.to_dict()["activation"] == "mxfp8_e4m3"
    with pytest.raises(ValueError, match="missing q3"):
        PrecisionConfig.from_dict({"q0": "bf16", "q1": "bf16", "q2": "bf16"})
    with pytest.raises(ValueError, match="unknown precision config key"):
        PrecisionConfig.from_dict({"q0": "bf16", "q1": "bf16", "q2": "bf16", "q3": "bf16", "q5": "x"})
    with pytest.raises(ValueError, match="q1: unknown number format 'bfp99x'"):
        PrecisionConfig("bf16", "bfp99x", "bf16", "bf16")


def test_frozen() -> None:
    c = PrecisionConfig.uniform("fp16")
    with pytest.raises(AttributeError):
        c.q0 = "bf16"  # type: ignore[misc]


def test_stochastic_rounding_variants_are_configs_like_any_format() -> None:
    """A policy names `mxint8_sr` as it names mxint8: canonical, labelled, the same precision for monotonicity."""
    from sim.policy import check_monotone

    c = PrecisionConfig("mxint8", "mxint8", "MXINT8_SR", "mxint8_sr")
    assert c.q2 == c.q3 == "mxint8_sr" and c.label == "q0=mxint8/q1=mxint8/q2=mxint8_sr/q3=mxint8_sr/act=mxint8"
    assert PrecisionConfig.from_dict(c.to_dict()) == c
    assert c.format_at("q2", "activation_grad").bits_per_element == get_format("mxint8").bits_per_element
    check_monotone([PrecisionConfig("mxint8_sr", "mxint8", "mxint8", "mxint8"), PrecisionConfig(*["mxint8"] * 4)])
