"""numwords-hard: words up to billions agree with numwords below a million, fixed disjoint evaluation splits,
and encodings fit the model."""

from __future__ import annotations

import numpy as np
import pytest

from sim.training.tasks import get_task
from sim.training.tasks import numwords as nw
from sim.training.tasks import numwords_hard as nh


def test_words_agree_with_numwords_and_cover_billions():
    for n in (0, 7, 19, 40, 105, 1000, 1204, 999_999, 20_017):
        assert nh.number_to_words(n) == nw.number_to_words(n)
    assert nh.number_to_words(1_000_000) == "one million"
    assert nh.number_to_words(2_000_000_005) == "two billion five"
    longest = nh.number_to_words(777_777_777_777)
    assert len(longest.split()) == nh.MAX_WORDS
    with pytest.raises(ValueError):
        nh.number_to_words(10 ** 12)


def test_splits_fixed_disjoint_and_encodable():
    task = get_task("numwords-hard")
    valid, test = task.eval_numbers["valid"], task.eval_numbers["test"]
    assert not set(valid) & set(test)
    assert (nh.split_of(valid) == 1).all() and (nh.split_of(test) == 2).all()
    assert np.array_equal(valid, get_task("numwords-hard").eval_numbers["valid"])
    assert len(str(int(valid.max()))) == nh.MAX_DIGITS
    batch = task.sample_batch(np.random.default_rng(0))
    assert batch["tgt"].shape[1] == task.model_config().max_len and (nh.split_of(_decode(batch)) == 0).all()
    assert batch["tgt"].max() < task.model_config().vocab_size


def _decode(batch):
    digits = [[nh.VOCAB[t] for t in row if t] for row in batch["src"]]
    return np.array([int("".join(d)) for d in digits])
