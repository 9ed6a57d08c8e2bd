"""numwords-hard with several numbers per example ("longer sequences"), to measure where converged fp32 lands.

Issue 15 asks for a numwords setting whose converged fp32 stays clearly below 100 BLEU. This is the measurement for
its third suggestion, longer sequences: each example is K numbers of numwords-hard (up to 12 digits) separated by
commas, the target their words separated by commas, on numwords-hard's small model (d_model 32, one encoder and one
decoder layer; batch 64 examples). Evaluation: the numwords-hard valid/test numbers (630 each) in a fixed shuffle,
K per example; BLEU over whole examples. The result is in docs/policies.md, "Task numwords-hard" (not a built-in
task: it did not become one).

    python examples/numwords_longer_sequences.py --numbers 3 --steps 12000 --seed 0 --out runs/numwords-x3
"""

from __future__ import annotations

import argparse

import numpy as np

from sim.training.config import TransformerConfig
from sim.training.tasks.numwords_hard import MAX_DIGITS, MAX_WORDS, VOCAB, NumWordsHard, number_to_words


class SeveralNumbers(NumWordsHard):
    """numwords-hard with `k` numbers per example; the vocabulary gains ","."""

    vocab = VOCAB + [","]

    def __init__(self, k: int) -> None:
        self.k, self.name = k, f"numwords-hard-x{k}"
        self.max_digits, self.max_words = k * MAX_DIGITS + k - 1, k * MAX_WORDS + k - 1
        super().__init__(eval_size=630)
        self.eval_numbers = {split: np.random.default_rng(7).permutation(v[: len(v) // k * k]).reshape(-1, k)
                             for split, v in self.eval_numbers.items()}  # a fixed shuffle: examples mix lengths

    def source_text(self, numbers: np.ndarray) -> str:
        return ",".join(str(int(n)) for n in numbers)

    def target_text(self, numbers: np.ndarray) -> str:
        return " , ".join(number_to_words(int(n)) for n in numbers)

    def sample_batch(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.encode(self.draw(rng, self.batch_size * self.k, 0).reshape(-1, self.k))

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=len(self.vocab), d_model=32, n_heads=2, d_ff=64, n_encoder_layers=1,
                                 n_decoder_layers=1, max_len=max(self.max_words + 2, self.max_digits), dropout=0.0,
                                 label_smoothing=0.1)


def main(argv: list[str] | None = None) -> int:
    from sim.training.train import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=3, help="numbers per example (K)")
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", default="fp32")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = train(SeveralNumbers(args.numbers), args.policy, steps=args.steps, seed=args.seed, out_dir=args.out,
                   eval_every=max(args.steps // 8, 1), resume=True)
    print({k: round(v, 4) for k, v in result.final.items()}, f"{result.wall_s:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
