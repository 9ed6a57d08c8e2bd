"""The trace's stash against what PyTorch autograd actually saves for a GPT layer (saved_tensors_hooks).

A pre-norm GPT layer written in plain PyTorch ops, as the trace models it (biases, GELU, no dropout, causal mask
added as a constant so it saves nothing), in float32. Its saved tensors are collected per layer, deduplicated by
storage, parameters excluded. PyTorch saves what the trace stashes plus LayerNorm's two per-token statistics (mean
and rstd, float32) per norm, which the trace does not model: that is the only difference, checked term by term.
Skipped without the optional `torch` extra.
"""

from __future__ import annotations

import math

import pytest

from sim.memory import footprint
from sim.precision import PrecisionConfig
from workloads import build_trace, get_spec

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _layer_params(h: int, ff: int, gen) -> dict:
    def w(*shape):
        return (torch.randn(*shape, generator=gen) * 0.02).requires_grad_()

    return {"ln1_w": w(h), "ln1_b": w(h), "q_w": w(h, h), "q_b": w(h), "k_w": w(h, h), "k_b": w(h),
            "v_w": w(h, h), "v_b": w(h), "o_w": w(h, h), "o_b": w(h), "ln2_w": w(h), "ln2_b": w(h),
            "fc1_w": w(ff, h), "fc1_b": w(ff), "fc2_w": w(h, ff), "fc2_b": w(h)}


def _layer(x, p: dict, heads: int, causal):
    b, s, h = x.shape
    d = h // heads
    n1 = F.layer_norm(x, (h,), p["ln1_w"], p["ln1_b"])
    q, k, v = (F.linear(n1, p[f"{n}_w"], p[f"{n}_b"]).view(b, s, heads, d).transpose(1, 2) for n in "qkv")
    probs = torch.softmax((q @ k.transpose(-1, -2)) * (1 / math.sqrt(d)) + causal, dim=-1)
    ctx = (probs @ v).transpose(1, 2).reshape(b, s, h)
    x = x + F.linear(ctx, p["o_w"], p["o_b"])
    n2 = F.layer_norm(x, (h,), p["ln2_w"], p["ln2_b"])
    return x + F.linear(F.gelu(F.linear(n2, p["fc1_w"], p["fc1_b"])), p["fc2_w"], p["fc2_b"])


def torch_saved_bytes_per_layer(spec, batch: int, seq: int) -> list[int]:
    """Bytes autograd saves in each layer's forward (each storage once, in the first layer that saves it)."""
    gen = torch.Generator().manual_seed(0)
    layers = [_layer_params(spec.d_model, spec.d_ff, gen) for _ in range(spec.n_layers)]
    param_storages = {t.untyped_storage().data_ptr() for p in layers for t in p.values()}
    causal = torch.full((seq, seq), float("-inf")).triu(1)
    x = torch.randn(batch, seq, spec.d_model, generator=gen, requires_grad=True)
    seen: set[int] = set()
    keep = []  # hold every saved tensor, so no storage is freed and reused while we count
    per_layer = []
    for p in layers:
        saved = [0]

        def pack(t, saved=saved):
            keep.append(t)
            ptr = t.untyped_storage().data_ptr()
            if ptr not in param_storages and ptr not in seen:
                seen.add(ptr)
                saved[0] += t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            x = _layer(x, p, spec.n_heads, causal)
        per_layer.append(saved[0])
    x.sum().backward()  # the graph is a real training graph
    return per_layer


@pytest.mark.parametrize("batch, seq", [(2, 16), (3, 8)])
def test_trace_stash_equals_pytorch_saved_tensors(batch, seq):
    spec = get_spec("tiny-lm")
    assert spec.pre_norm and spec.bias and spec.activation == "gelu" and spec.norm == "layernorm"
    stash = footprint(build_trace(spec, batch, seq), PrecisionConfig.uniform("fp32")).stash_by_layer
    layer_norm_stats = 2 * 2 * batch * seq * 4  # two norms x (mean, rstd) x one float32 per token
    saved = torch_saved_bytes_per_layer(spec, batch, seq)
    assert len(saved) == spec.n_layers
    for layer, nbytes in enumerate(saved):
        assert nbytes == stash[layer] + layer_norm_stats, layer
