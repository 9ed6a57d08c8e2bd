"""Timeline: recording change points, fractions, frame, JSON/CSV round trips, errors."""

from __future__ import annotations

import pytest

from sim.policy import Timeline, get_policy
from sim.policy.timeline import work_weights
from sim.precision import PrecisionConfig

A, B = PrecisionConfig.uniform("bf16"), PrecisionConfig("bfp8", "bfp4", "bfp8", "bfp16", master="bf16")


def test_record_dedupes_and_fractions_merge_repeats() -> None:
    t = Timeline(100)
    t.record(0, A)
    t.record(10, A)  # same config: no new change point
    t.record(30, B)
    t.record(80, A)  # A again: fractions merge it with the first segment
    assert t.changes == [(0, A), (30, B), (80, A)]
    assert t.segments() == [(0, 30, A), (30, 80, B), (80, 100, A)]
    assert t.fractions() == [(A, 0.5), (B, 0.5)]
    assert list(t) == t.fractions() and len(t) == 2 and t[1] == (B, 0.5)
    assert t.config_at(29) == A and t.config_at(30) == B and t.config_at(99) == A


def test_frame_columns() -> None:
    t = Timeline(100, [(0, A), (40, B)])
    frame = t.to_frame()
    assert list(frame["steps"]) == [40, 60] and list(frame["fraction"]) == [0.4, 0.6]
    assert list(frame["label"]) == ["bf16", B.label] and list(frame["master"]) == ["fp32", "bf16"]


@pytest.mark.parametrize("suffix", [".json", ".csv"])
@pytest.mark.parametrize("policy", ["dsq", "cyclic", "fp16"])
def test_save_load_round_trip(tmp_path, suffix: str, policy: str) -> None:
    t = get_policy(policy).timeline(1234)
    path = t.save(tmp_path / f"t{suffix}")
    assert Timeline.load(path) == t


def test_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="positive"):
        Timeline(0)
    t = Timeline(10)
    with pytest.raises(ValueError, match="starts at step 0"):
        t.record(3, A)
    t.record(0, A)
    with pytest.raises(ValueError, match="must increase"):
        t.record(0, B)
    with pytest.raises(ValueError, match="outside"):
        t.record(10, B)
    with pytest.raises(ValueError, match="empty timeline"):
        Timeline(5).fractions()
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        t.save(tmp_path / "t.txt")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        Timeline.load(bad)
    bad.write_text('{"total_steps": 5}')
    with pytest.raises(ValueError, match="needs 'total_steps' and 'changes'"):
        Timeline.load(bad)
    with pytest.raises(OSError):
        Timeline.load(tmp_path / "missing.json")
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a timeline CSV"):
        Timeline.load(csv)


def test_extra_passes_are_counted_kept_in_json_and_refused_by_csv(tmp_path) -> None:
    t = Timeline(100, [(0, A), (50, B)])
    assert t.overhead() == []
    t.record_extra("shadow gradient", B)
    t.record_extra("shadow gradient", B, 2)
    t.record_extra("rolled back", A, 5)
    assert t.extra_passes == {("shadow gradient", B): 3, ("rolled back", A): 5}
    assert t.overhead() == [(B, 0.03), (A, 0.05)]
    assert t.fractions() == [(A, 0.5), (B, 0.5)]  # the steps themselves are unchanged
    assert work_weights(t) == [(A, 0.55), (B, 0.53)]  # the one weighting cost_timeline and compare use
    assert work_weights([(B, 2.0), (A, 1.0), (B, 1.0)]) == [(B, 0.75), (A, 0.25)]  # plain pairs: normalised, merged
    with pytest.raises(ValueError, match="empty"):
        work_weights([])
    assert Timeline.load(t.save(tmp_path / "t.json")) == t
    with pytest.raises(ValueError, match="extra passes.*save it as .json"):
        t.save(tmp_path / "t.csv")
    with pytest.raises(ValueError, match="count >= 0"):
        t.record_extra("x", A, -1)
