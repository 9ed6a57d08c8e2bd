"""examples/accuracy_table.py, which makes the README's accuracy table: per-task lengths, seeds aggregated with the
project's Student-t interval, one row per task and policy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import accuracy_table  # noqa: E402


def test_steps_per_task() -> None:
    assert accuracy_table.parse_steps("1500", ["a", "b"]) == {"a": 1500, "b": 1500}
    assert accuracy_table.parse_steps("a=10,b=20", ["a", "b"]) == {"a": 10, "b": 20}
    with pytest.raises(SystemExit, match="no length for b"):
        accuracy_table.parse_steps("a=10", ["a", "b"])


def test_tiny_table_over_two_seeds(tmp_path, capsys) -> None:
    rc = accuracy_table.main(["--tasks", "numwords", "--steps", "numwords=2", "--seeds", "0,1", "--workers", "1",
                              "--out", str(tmp_path), "--workload", "tiny-mt"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "steps: numwords 2; seeds 0,1" in out
    rows = [line for line in out.splitlines() if line.startswith("| numwords |")]
    assert [r.split("|")[2].strip() for r in rows] == list(accuracy_table.POLICIES)
    assert all(r.split("|")[4].strip() == "2" for r in rows)  # two seeds per row
    assert all("±" in r.split("|")[5] for r in rows)  # the seeds differ: an interval
    assert sorted(p.name for p in tmp_path.iterdir())[0] == "numwords-dsq-guard-n2-s0"
    speedup = {r.split("|")[2].strip(): r.split("|")[8].strip() for r in rows}
    assert speedup["fp32"] == "1.00 ± 0.00" and float(speedup["dsq"].split()[0]) > 1


def test_precision_column_names_each_seeds_switch_when_they_differ() -> None:
    same = [{"configs": ["a", "b"], "switches": [5]}, {"configs": ["a", "b"], "switches": [5]}]
    assert accuracy_table._precision(same) == "a → b (step 5)"
    apart = [{"configs": ["a", "b"], "switches": [5]}, {"configs": ["a", "b"], "switches": [9]}]
    assert accuracy_table._precision(apart) == "a → b (step 5 / 9 by seed)"
    assert accuracy_table._precision([{"configs": ["a"], "switches": []}]) == "a"


def test_default_lengths_are_the_tasks_full_lengths() -> None:
    from sim.training.tasks import get_task

    steps = accuracy_table.parse_steps(None, ["numwords-hard", "shakespeare"])
    assert steps == {t: get_task(t).default_steps for t in ("numwords-hard", "shakespeare")}


def test_the_readme_table_is_the_full_table_without_its_detail_columns() -> None:
    rows = [{"task": "t", "policy": p, "configs": ["a"], "switches": [], "final_valid_loss": 0.5 + i, "bleu": 90.0 + i,
             "exact_match": 0.9, "speedup": 1.0 + i} for i, p in enumerate(("fp32", "dsq")) for _ in range(2)]
    full, compact = accuracy_table.table(rows), accuracy_table.table(rows, compact=True)
    assert compact.splitlines()[0] == "| task | policy | BLEU (test) / bpc (valid) | speedup |"
    for f, c in zip(full.splitlines(), compact.splitlines(), strict=True):
        cells = f.split("|")
        assert c.split("|") == ["", cells[1], cells[2], cells[6], cells[8], ""]
    assert compact.splitlines()[3] == "| t | dsq | 91.0 ± 0.0 | 2.00 ± 0.00 |"
