"""The longer-sequences measurement (examples/numwords_longer_sequences.py): its examples encode K numbers and
their words exactly, and a two-step run trains and evaluates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sim.training.tasks.numwords import decode_words

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import numwords_longer_sequences as longer  # noqa: E402


def test_examples_hold_k_numbers_and_their_words() -> None:
    task = longer.SeveralNumbers(3)
    example = np.array([[7, 120_000_000_001, 45]])
    batch = task.encode(example)
    digits = "".join(task.vocab[t] for t in batch["src"][0] if t)
    assert digits == "7,120000000001,45"
    words = decode_words(batch["tgt"][0][1:], task.vocab)
    assert words == "seven , one hundred twenty billion one , forty five"
    single = longer.NumWordsHard().eval_numbers["test"]
    assert task.eval_numbers["test"].shape == (len(single) // 3, 3)
    assert sorted(task.eval_numbers["test"].reshape(-1)) == sorted(single[: len(single) // 3 * 3])
    sampled = task.sample_batch(np.random.default_rng(0))
    assert sampled["src"].shape == (64, 38) and sampled["tgt"].shape == (64, 61)


def test_a_short_run_trains_and_evaluates(tmp_path, capsys) -> None:
    assert longer.main(["--numbers", "2", "--steps", "2", "--out", str(tmp_path / "r")]) == 0
    assert "bleu" in capsys.readouterr().out and (tmp_path / "r" / "metrics.csv").is_file()
