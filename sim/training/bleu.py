"""Corpus BLEU as sacrebleu computes it by default (4-grams, brevity penalty, 'exp' smoothing), for text that is
already whitespace-tokenized lowercase words (as the numwords task's is; sacrebleu's 13a tokenizer leaves such text
unchanged). Verified against sacrebleu in tests/test_tasks.py."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

MAX_ORDER = 4


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """BLEU in [0, 100] of hypotheses against one reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    sys_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        h, r = hyp.split(), ref.split()
        sys_len, ref_len = sys_len + len(h), ref_len + len(r)
        for n in range(1, MAX_ORDER + 1):
            hn, rn = _ngrams(h, n), _ngrams(r, n)
            correct[n - 1] += sum(min(c, rn[g]) for g, c in hn.items())
            total[n - 1] += max(0, len(h) - n + 1)
    if not any(correct):
        return 0.0
    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0)
    precisions, smooth = [0.0] * MAX_ORDER, 1.0
    for n in range(MAX_ORDER):
        if total[n] == 0:
            break
        if correct[n] == 0:  # NIST-style 'exp' smoothing, sacrebleu's default for corpus BLEU
            smooth *= 2
            precisions[n] = 100.0 / (smooth * total[n])
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    return bp * math.exp(sum(math.log(p) if p > 0 else -9999999999 for p in precisions) / MAX_ORDER)
