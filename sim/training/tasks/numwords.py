"""numwords: translate a number's digits to English words, "1204" -> "one thousand two hundred four".

Examples are the integers 0..999,999, generated on the fly. A fixed multiplicative hash puts 5 % of them in
validation, 5 % in test and the rest in train, so the splits never overlap and never depend on a seed. Training
draws a digit count uniformly (1..6), then a train number of that length, so short numbers are seen as often as
long ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bleu import corpus_bleu
from ..config import TransformerConfig
from ..optim import AdamConfig
from .base import Task

MAX_DIGITS = 6
_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SPECIALS = ["<pad>", "<bos>", "<eos>"]
VOCAB = SPECIALS + [str(d) for d in range(10)] + _ONES + _TENS[2:] + ["hundred", "thousand"]
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
PAD, BOS, EOS = 0, 1, 2
MAX_WORDS = 10  # e.g. "seven hundred seventy seven thousand seven hundred seventy seven"


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n or not words:
        words.append(_ONES[n])
    return words


def number_to_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000 (no "and", no hyphens)."""
    if not 0 <= n < 10 ** MAX_DIGITS:
        raise ValueError(f"numwords covers 0..{10 ** MAX_DIGITS - 1}, got {n}")
    if n < 1000:
        return " ".join(_below_thousand(n))
    words = _below_thousand(n // 1000) + ["thousand"]
    if n % 1000:
        words += _below_thousand(n % 1000)
    return " ".join(words)


def split_of(n: np.ndarray | int) -> np.ndarray:
    """0 train, 1 valid, 2 test, from Knuth's multiplicative hash of n."""
    h = (np.asarray(n, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2 ** 32)
    bucket = (h >> np.uint64(8)) % np.uint64(20)
    return np.where(bucket == 0, 1, np.where(bucket == 1, 2, 0))


def _sample_numbers(rng: np.random.Generator, count: int, split: int, max_digits: int = MAX_DIGITS) -> np.ndarray:
    """`count` numbers of `split`, the digit length uniform in 1..max_digits, then the value uniform in it."""
    out = np.empty(0, dtype=np.int64)
    while out.size < count:
        digits = rng.integers(1, max_digits + 1, size=2 * count)
        lo = np.where(digits == 1, 0, 10 ** (digits - 1))
        n = lo + (rng.random(2 * count) * (10 ** digits - lo)).astype(np.int64)
        out = np.concatenate([out, n[split_of(n) == split]])
    return out[:count]


def eval_numbers(seed: int, count: int, split: int) -> np.ndarray:
    """Distinct numbers of `split`, about count/6 of each digit length (all of them where fewer exist)."""
    rng, parts = np.random.default_rng(seed), []
    for digits in range(1, MAX_DIGITS + 1):
        lo = 0 if digits == 1 else 10 ** (digits - 1)
        pool = np.arange(lo, 10 ** digits)
        pool = pool[split_of(pool) == split]
        parts.append(rng.choice(pool, size=min(len(pool), count // MAX_DIGITS), replace=False))
    return np.concatenate(parts)


def encode(numbers: np.ndarray, max_digits: int = MAX_DIGITS, max_words: int = MAX_WORDS,
           token_id: dict[str, int] | None = None, words=None, digits=None) -> dict[str, np.ndarray]:
    """{"src": [B, max_digits] digit ids, "tgt": [B, max_words + 2] <bos> words <eos>}, padded with 0 (defaults:
    this task's; numwords-hard passes its own). `words(n)` / `digits(n)`: an item's target words and source
    characters (default: the number's words and decimal digits)."""
    token_id = token_id or TOKEN_ID
    words = words or (lambda n: number_to_words(int(n)))
    digits = digits or (lambda n: str(int(n)))
    src = np.zeros((len(numbers), max_digits), dtype=np.int64)
    tgt = np.zeros((len(numbers), max_words + 2), dtype=np.int64)
    for i, n in enumerate(numbers):
        source = [token_id[c] for c in digits(n)]
        target = [BOS] + [token_id[w] for w in words(n).split()] + [EOS]
        src[i, : len(source)] = source
        tgt[i, : len(target)] = target
    return {"src": src, "tgt": tgt}


def decode_words(ids: np.ndarray, vocab: list[str] = VOCAB) -> str:
    words = []
    for t in ids:
        if t == EOS or t == PAD:
            break
        words.append(vocab[int(t)])
    return " ".join(words)


class NumWords(Task):
    """Digits to English words. Subclasses (numwords-hard) change the number range and vocabulary through the class
    attributes below; encoding, sampling and evaluation are shared."""

    name, metric = "numwords", "bleu"
    batch_size, default_steps, eval_every = 64, 1500, 250
    vocab, max_digits, max_words = VOCAB, MAX_DIGITS, MAX_WORDS
    eval_seeds = (1001, 1002)  # fixed evaluation sets: constant seeds, independent of the training seed
    words = staticmethod(number_to_words)
    draw = staticmethod(_sample_numbers)
    eval_draw = staticmethod(eval_numbers)

    def __init__(self, eval_size: int = 600) -> None:
        self.token_id = {t: i for i, t in enumerate(self.vocab)}
        self.eval_numbers = {"valid": self.eval_draw(self.eval_seeds[0], eval_size, 1),
                             "test": self.eval_draw(self.eval_seeds[1], eval_size, 2)}

    def source_text(self, item: Any) -> str:
        """An example's source characters (its decimal digits); variants with other examples override both."""
        return str(int(item))

    def target_text(self, item: Any) -> str:
        """An example's reference words."""
        return self.words(int(item))

    def encode(self, numbers: np.ndarray) -> dict[str, np.ndarray]:
        return encode(numbers, self.max_digits, self.max_words, self.token_id, self.target_text, self.source_text)

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=len(self.vocab), d_model=64, n_heads=4, d_ff=256, n_encoder_layers=2,
                                 n_decoder_layers=2, max_len=self.max_words + 2, dropout=0.0, label_smoothing=0.1)

    def adam_config(self) -> AdamConfig:
        return AdamConfig(lr=2e-3, warmup_steps=100)

    def sample_batch(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.encode(self.draw(rng, self.batch_size, 0))

    def evaluate(self, model: Any, split: str = "valid", precision: Any = None) -> dict[str, float]:
        if split not in self.eval_numbers:
            raise ValueError(f"unknown split {split!r}; choose valid or test")
        numbers = self.eval_numbers[split]
        batch = self.encode(numbers)
        loss, _ = model.loss(batch, precision)
        out = model.greedy_decode(batch["src"], BOS, EOS, self.max_words + 1, precision)
        hyps = [decode_words(row, self.vocab) for row in out]
        refs = [self.target_text(n) for n in numbers]
        exact = float(np.mean([h == r for h, r in zip(hyps, refs, strict=True)]))
        return {f"{split}_loss": loss, "bleu": corpus_bleu(hyps, refs), "exact_match": exact}
