"""Tasks: vendored data, numwords generation and splits, BLEU against sacrebleu, evaluation plumbing."""

from __future__ import annotations

import gzip
import hashlib
import math

import numpy as np
import pytest

from sim.training.bleu import corpus_bleu
from sim.training.tasks import get_task
from sim.training.tasks.numwords import BOS, EOS, TOKEN_ID, NumWords, encode, number_to_words, split_of
from sim.training.tasks.shakespeare import DATA_PATH, SHA256


def test_vendored_shakespeare_matches_its_recorded_sha256() -> None:
    with gzip.open(DATA_PATH, "rb") as f:
        raw = f.read()
    assert len(raw) == 1_115_394
    assert hashlib.sha256(raw).hexdigest() == SHA256


def test_package_data_globs_ship_the_vendored_gzip() -> None:
    """The wheel carries the data file: a package-data glob of pyproject.toml matches it, for its package."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = ".".join(DATA_PATH.parent.relative_to(root).parts)
    assert package == "sim.training.data" and (DATA_PATH.parent / "__init__.py").exists()
    assert any(fnmatch.fnmatch(DATA_PATH.name, g) for key in ("*", package) for g in globs.get(key, []))


@pytest.mark.parametrize(("n", "words"), [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (45, "forty five"), (100, "one hundred"),
    (110, "one hundred ten"), (1000, "one thousand"), (1204, "one thousand two hundred four"),
    (120003, "one hundred twenty thousand three"),
    (999999, "nine hundred ninety nine thousand nine hundred ninety nine"),
])
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_number_to_words_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="0..999999"):
        number_to_words(1_000_000)


def test_numwords_splits_are_disjoint_fixed_and_sized() -> None:
    n = np.arange(1_000_000)
    counts = np.bincount(split_of(n), minlength=3) / n.size
    assert counts == pytest.approx([0.9, 0.05, 0.05], abs=0.005)
    task = NumWords()
    valid, test = task.eval_numbers["valid"], task.eval_numbers["test"]
    assert (split_of(valid) == 1).all() and (split_of(test) == 2).all()
    assert len(set(valid.tolist())) == len(valid) > 300
    np.testing.assert_array_equal(valid, NumWords().eval_numbers["valid"])  # independent of any training seed
    batch = task.sample_batch(np.random.default_rng(0))
    assert batch["src"].shape == (64, 6) and batch["tgt"].shape == (64, 12)
    assert (batch["tgt"][:, 0] == BOS).all() and ((batch["tgt"] == EOS).sum(axis=1) == 1).all()


def test_encode_round_trip() -> None:
    batch = encode(np.array([1204]))
    assert batch["src"][0, :4].tolist() == [TOKEN_ID[c] for c in "1204"] and batch["src"][0, 4:].sum() == 0
    words = [TOKEN_ID[w] for w in "one thousand two hundred four".split()]
    assert batch["tgt"][0, :7].tolist() == [BOS, *words, EOS]


def test_bleu_matches_sacrebleu() -> None:
    sacrebleu = pytest.importorskip("sacrebleu")
    rng = np.random.default_rng(3)
    words = ["one", "two", "three", "hundred", "thousand", "twenty", "five"]
    for trial in range(30):
        refs = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(20)]
        hyps = []
        for r in refs:
            toks = r.split()
            if rng.random() < 0.5:
                toks = toks[: rng.integers(0, len(toks) + 1)] + list(rng.choice(words, rng.integers(0, 3)))
            hyps.append(" ".join(toks))
        expected = sacrebleu.corpus_bleu(hyps, [refs]).score
        assert corpus_bleu(hyps, refs) == pytest.approx(expected, abs=1e-9), trial
    assert corpus_bleu(["a b c d"], ["a b c d"]) == pytest.approx(100.0)
    assert corpus_bleu(["x"], ["a b"]) == 0.0


class _OracleModel:
    """Decodes the right answer (or a wrong one) and reports a fixed loss: checks the evaluation plumbing."""

    def __init__(self, numbers: np.ndarray, wrong_every: int = 0) -> None:
        self.targets = encode(numbers)["tgt"][:, 1:]
        if wrong_every:
            self.targets[::wrong_every, 0] = TOKEN_ID["nine"]

    def loss(self, batch: dict, precision: object = None) -> tuple[float, int]:
        return 0.25, 1

    def greedy_decode(self, src: np.ndarray, bos: int, eos: int, max_new: int, precision: object = None) -> np.ndarray:
        return self.targets


def test_numwords_evaluation_scores_exact_and_wrong_answers() -> None:
    task = NumWords()
    numbers = task.eval_numbers["valid"]
    perfect = task.evaluate(_OracleModel(numbers))
    assert perfect == {"valid_loss": 0.25, "bleu": pytest.approx(100.0), "exact_match": 1.0}
    partly = task.evaluate(_OracleModel(numbers, wrong_every=4))
    changed = np.mean([not number_to_words(int(n)).startswith("nine ") and number_to_words(int(n)) != "nine"
                       for n in numbers[::4]])
    assert partly["exact_match"] == pytest.approx(1 - changed * len(numbers[::4]) / len(numbers))
    assert 50 < partly["bleu"] < 100


def test_shakespeare_task_shapes_and_bpc() -> None:
    task = get_task("shakespeare")
    assert len(task.chars) == 65 and task.model_config().vocab_size == 66
    assert len(task.train_ids) + len(task.valid_ids) == 1_115_394
    batch = task.sample_batch(np.random.default_rng(0))
    assert batch["tgt"].shape == (32, 65) and batch["tgt"].min() >= 1

    class _Uniform:  # a model predicting every character with probability 1/65 scores log2(65) bits per char
        def loss(self, batch: dict, precision: object = None) -> tuple[float, int]:
            return math.log(65), batch["tgt"][:, 1:].size

    ev = task.evaluate(_Uniform())
    assert ev["bpc"] == pytest.approx(math.log2(65))


def test_unknown_task_names_the_choices() -> None:
    with pytest.raises(ValueError, match="numwords, shakespeare"):
        get_task("nosuch")
