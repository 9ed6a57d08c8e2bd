"""A GPT-2 in plain PyTorch, for `dsqsim trace --workload examples/torch_gpt2.py:gpt2_small`.

A model file for capture defines FUNCTION(batch, seq_len) -> (model, inputs) where `model(*inputs)` is the scalar
training loss. dsqsim calls it inside `with torch.device("meta")`, so building even a large model allocates nothing.
The sizes come from dsqsim's gpt2-small preset (workloads.get_spec), so the capture can be compared with
`dsqsim trace --workload gpt2-small` (docs/capture.md explains the differences).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, max_positions: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        # True above the diagonal: the future positions a token may not attend to (a buffer, so no op per step)
        future = torch.triu(torch.ones(max_positions, max_positions, dtype=torch.bool), diagonal=1)
        self.register_buffer("future", future.view(1, 1, max_positions, max_positions), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, c // self.n_heads).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // self.n_heads))
        scores = scores.masked_fill(self.future[:, :, :t, :t], float("-inf"))
        ctx = F.softmax(scores, dim=-1) @ v
        return self.c_proj(ctx.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, max_positions: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads, max_positions)
        self.ln_2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, d_ff)
        self.proj = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.proj(F.gelu(self.fc(self.ln_2(x))))


class GPT2(nn.Module):
    """Decoder-only LM with learned positions and an LM head tied to the token embedding; returns the mean loss."""

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, n_heads: int, d_ff: int,
                 max_positions: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.Embedding(max_positions, d_model)
        self.h = nn.ModuleList(Block(d_model, n_heads, d_ff, max_positions) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)

    def forward(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.wte(ids) + self.wpe(positions)
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))


def gpt2_from_preset(name: str, batch: int, seq_len: int) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    from workloads import get_spec

    s = get_spec(name)
    model = GPT2(s.vocab_size, s.d_model, s.n_layers, s.n_heads, s.d_ff, s.max_positions)
    ids = torch.randint(0, s.vocab_size, (batch, seq_len))
    return model, (ids, torch.randint(0, s.vocab_size, (batch, seq_len)))


def gpt2_small(batch: int, seq_len: int):
    return gpt2_from_preset("gpt2-small", batch, seq_len)


def tiny_lm(batch: int, seq_len: int):
    return gpt2_from_preset("tiny-lm", batch, seq_len)
