"""Model specs and training-step traces: parameter counts, FLOPs, and the structural rules of a training step.

Published parameter counts (independent of this code):
- GPT-2 small 124,439,808 and medium 354,823,168 (Hugging Face `gpt2`, `gpt2-medium`, tied LM head).
- LLaMA-7B 6,738,415,616 (Touvron et al. 2023, "6.7B"; Hugging Face `huggyllama/llama-7b`).
- BERT-base: 109,482,240 with the pooler (Hugging Face `bert-base-uncased`); we train MLM without the pooler/NSP head
  but with the MLM transform (dense 768x768 + LayerNorm) and the decoder bias: 109,482,240 - 590,592 + 590,592
  + 1,536 + 30,522 = 109,514,298.
- Transformer (fairseq, share-all-embeddings, post-LN, sinusoidal positions, biases): iwslt 36,663,296 and base
  63,082,496 counted by hand below; Vaswani et al. report "65M" for base (their count is not itemised).
"""

from __future__ import annotations

import pytest

from workloads import DSQ_POINTS, OP_KINDS, PHASES, ROLES, ModelSpec, build_trace, get_spec, list_specs

PUBLISHED_PARAMS = {
    "gpt2-small": 124_439_808,
    "gpt2-medium": 354_823_168,
    "llama-7b": 6_738_415_616,
    "bert-base": 109_482_240 + 1_536 + 30_522,
}


def _transformer_params(vocab: int, d: int, ff: int, enc: int, dec: int) -> int:
    attn = 4 * (d * d + d)
    ffn = d * ff + ff + ff * d + d
    ln = 2 * d
    return vocab * d + enc * (attn + ffn + 2 * ln) + dec * (2 * attn + ffn + 3 * ln)


@pytest.fixture(scope="module")
def traces():
    return {name: build_trace(name) for name in list_specs()}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_param_counts_match_published(traces, name):
    assert traces[name].param_count == PUBLISHED_PARAMS[name]


def test_bert_about_110m_and_llama_about_6_74b(traces):
    assert abs(traces["bert-base"].param_count / 110e6 - 1) < 0.01
    assert abs(traces["llama-7b"].param_count / 6.74e9 - 1) < 0.001


def test_encoder_decoder_param_counts(traces):
    assert _transformer_params(10_000, 512, 1024, 6, 6) == 36_663_296
    assert traces["transformer-iwslt"].param_count == 36_663_296
    assert traces["transformer-base"].param_count == _transformer_params(37_000, 512, 2048, 6, 6)
    assert abs(traces["transformer-base"].param_count / 65e6 - 1) < 0.04  # Vaswani et al.: "65M"


@pytest.mark.parametrize("name", ["gpt2-small", "gpt2-medium", "llama-7b", "bert-base", "transformer-iwslt",
                                  "transformer-base"])
def test_training_flops_per_token_near_6n_plus_attention(traces, name):
    """FLOPs per token = 6 N + 12 L_att d S (Kaplan et al. 2020, with full S x S attention in both QK^T and PV, no
    causal skipping). N = published parameters minus the embedding tables that no GEMM reads (untied token table,
    learned position and type tables); L_att counts attention blocks (decoder cross-attention counts as one more;
    for encoder-decoder models source and target are both S tokens, so every parameter sees T tokens)."""
    trace = traces[name]
    s = get_spec(name)
    published = PUBLISHED_PARAMS.get(name) or _transformer_params(
        s.vocab_size, s.d_model, s.d_ff, s.n_layers, s.n_decoder_layers)
    lookup_only = (0 if s.tied_embeddings else s.vocab_size * s.d_model) + s.type_vocab_size * s.d_model
    lookup_only += s.max_positions * s.d_model if s.positional == "learned" else 0
    n = published - lookup_only
    attention_blocks = s.n_layers + 2 * s.n_decoder_layers
    tokens = trace.batch * trace.seq_len
    expected = 6 * n + 12 * attention_blocks * s.d_model * trace.seq_len
    assert trace.total_flops / tokens == pytest.approx(expected, rel=0.02)


def test_tiny_lm_macs_by_hand():
    b, t = 2, 8
    trace = build_trace("tiny-lm", batch=b, seq_len=t)
    s = get_spec("tiny-lm")
    tokens, d, ff = b * t, s.d_model, s.d_ff
    per_layer = tokens * (4 * d * d + 2 * d * ff) + 2 * b * t * t * d
    forward = s.n_layers * per_layer + tokens * d * s.vocab_size
    assert trace.total_macs == 3 * forward
    assert sum(op.macs for op in trace.ops if op.phase == "forward") == forward


def test_every_stash_written_once_in_forward_and_read_in_backward(traces):
    for name, trace in traces.items():
        writes, reads = {}, {}
        for op in trace.ops:
            for o in op.outputs:
                if trace.tensors[o.tensor].role == "stashed_activation":
                    writes.setdefault(o.tensor, []).append(op.phase)
                    assert o.point == "q1", (name, op.name)
            for o in op.inputs:
                if trace.tensors[o.tensor].role == "stashed_activation":
                    reads.setdefault(o.tensor, []).append(op.phase)
                    assert o.point == "q1", (name, op.name)
        stashes = {n for n, t in trace.tensors.items() if t.role == "stashed_activation"}
        assert stashes and set(writes) == stashes == set(reads), name
        assert all(w == ["forward"] for w in writes.values()), name
        assert all(set(r) == {"backward"} for r in reads.values()), name


def test_attention_stashes_q_k_v_and_probabilities(traces):
    trace = traces["gpt2-small"]
    for part in ("q", "k", "v", "probs", "context"):
        assert f"L5.attn.{part}.stash" in trace.tensors
    assert "L5.ffn.fc1.stash" in trace.tensors  # GELU's saved input


def test_every_weight_has_one_gradient_and_one_adam_op(traces):
    for name, trace in traces.items():
        adam = {}
        for op in trace.ops:
            if op.kind == "optimizer":
                (w,) = [o.tensor for o in op.outputs if trace.tensors[o.tensor].role == "weight"]
                (g,) = [o.tensor for o in op.inputs if trace.tensors[o.tensor].role == "weight_grad"]
                roles = sorted(trace.tensors[o.tensor].role for o in op.inputs)
                assert roles == ["optimizer_state", "optimizer_state", "weight", "weight_grad"]
                assert w not in adam
                adam[w] = g
        weights = {n for n, t in trace.tensors.items() if t.role == "weight"}
        grads = {n for n, t in trace.tensors.items() if t.role == "weight_grad"}
        assert set(adam) == weights, name
        assert set(adam.values()) == grads and len(grads) == len(weights), name


def test_tied_lm_head_gradient_accumulates_into_shared_weight(traces):
    trace = traces["gpt2-small"]
    writers = [op for op in trace.ops if any(o.tensor == "d.embed.tokens" for o in op.outputs)]
    assert [op.name for op in writers] == ["lm_head.dW", "embed.bwd"]
    assert any(o.tensor == "d.embed.tokens" for o in writers[1].inputs)  # read-modify-write
    assert "lm_head.W" not in trace.tensors
    assert "lm_head.W" in traces["llama-7b"].tensors  # LLaMA is untied


def test_roles_points_kinds_phases_and_positive_bytes(traces):
    for name, trace in traces.items():
        assert all(t.role in ROLES and t.dsq_point in (*DSQ_POINTS, None) for t in trace.tensors.values()), name
        phases = [PHASES.index(op.phase) for op in trace.ops]
        assert phases == sorted(phases) and set(phases) == set(range(4)), name
        for op in trace.ops:
            assert op.kind in OP_KINDS
            assert all(o.point in (*DSQ_POINTS, None) for o in (*op.inputs, *op.outputs))
            elements = sum(trace.tensors[o.tensor].elements for o in (*op.inputs, *op.outputs))
            assert elements > 0 and op.inputs and op.outputs, (name, op.name)
        trace.validate()


def test_gemm_access_points_follow_the_contract(traces):
    trace = traces["llama-7b"]
    roles = {n: t.role for n, t in trace.tensors.items()}
    for op in trace.ops:
        if op.kind not in ("gemm", "bmm"):
            continue
        a, b = op.inputs[:2]
        if op.phase == "forward":
            assert (a.point, b.point) == ("q0", "q0"), op.name
        elif op.name.endswith((".dx", ".dA")):  # dy at q2 with W (q2) or a stash (q1)
            assert a.point == "q2" and b.point == ("q2" if roles[b.tensor] == "weight_copy" else "q1"), op.name
        else:  # weight gradient / dB: the stash at q1, dy at q2
            assert (a.point, b.point) == ("q1", "q2"), op.name
        if op.phase == "backward":
            assert all(o.point == "q3" for o in op.outputs), op.name
        if op.kind == "gemm" and op.phase == "forward":
            assert roles[a.tensor] == "activation" and roles[b.tensor] == "weight_copy"
        # every GEMM reads weights through the copy of its point, blocked along its own reduction axis
        for o in op.inputs[:2]:
            t = trace.tensors[o.tensor]
            if t.role == "weight_copy":
                assert t.dsq_point == o.point and t.name == f"{t.source}@{o.point}", op.name
                assert t.block_axis == (-2 if o.point == "q0" else -1), op.name  # llama: untied [K, N] weights


def test_attention_ops_and_shapes(traces):
    trace = traces["gpt2-small"]
    s = get_spec("gpt2-small")
    forward = [op for op in trace.ops if op.phase == "forward"]
    assert sum(op.kind == "softmax" for op in forward) == s.n_layers
    scores = next(op for op in forward if op.name == "L0.attn.scores")
    assert scores.kind == "bmm"
    assert (scores.gemm.batch, scores.gemm.m, scores.gemm.k, scores.gemm.n) == (8 * 12, 1024, 64, 1024)
    mt = traces["transformer-iwslt"]
    softmaxes = [op for op in mt.ops if op.kind == "softmax" and op.phase == "forward"]
    assert len(softmaxes) == 6 + 2 * 6
    assert all(any(o.tensor == "src_mask" for o in op.inputs) != (".attn." in op.name and op.name.startswith("dec"))
               for op in softmaxes)  # padding mask everywhere except the causal decoder self-attention
    xk = next(op for op in mt.ops if op.name == "dec3.xattn.k")
    assert xk.inputs[0].tensor == "enc5.ffn.norm"  # cross-attention keys from the encoder output


def test_llama_structure_and_grouped_query_attention(traces):
    trace = traces["llama-7b"]
    names = {op.name for op in trace.ops}
    assert {"L0.attn.rope", "L0.ffn.swiglu", "L0.ffn.gate", "L0.ffn.up", "L0.ffn.down"} <= names
    assert "L0.attn.norm.beta" not in trace.tensors  # RMSNorm has no shift
    gqa = ModelSpec("gqa", "decoder", n_layers=1, d_model=64, n_heads=8, n_kv_heads=2, d_ff=128, vocab_size=100,
                    default_batch=2, default_seq_len=8, norm="rmsnorm", activation="swiglu", positional="rotary",
                    bias=False, tied_embeddings=False)
    t = build_trace(gqa)
    assert t.tensors["L0.attn.k"].shape == (16, 16)  # 2 kv heads x 8 dims
    scores = next(op for op in t.ops if op.name == "L0.attn.scores")
    assert (scores.gemm.batch, scores.gemm.m, scores.gemm.k, scores.gemm.n) == (16, 8, 8, 8)
    t.validate()


def test_producers_and_dependencies_point_backwards(traces):
    trace = traces["tiny-mt"]
    producers, deps = trace.producers(), trace.dependencies()
    for i, (p, d) in enumerate(zip(producers, deps, strict=True)):
        assert all(j < i for j in d) and set(p) <= set(d)
    # the optimizer must wait for every reader of the weight it overwrites
    i = next(i for i, op in enumerate(trace.ops) if op.name == "embed.tokens.adam")
    table = ("embed.tokens", "embed.tokens@q0", "embed.tokens@q2")  # the master and the copies it writes
    readers = [j for j, op in enumerate(trace.ops[:i]) if any(o.tensor in table for o in op.inputs)]
    assert len(readers) == 4 and set(readers) <= set(deps[i])  # 2 embeddings + lm_head fwd + lm_head.dx


def test_to_frame(traces):
    trace = traces["bert-base"]
    frame = trace.to_frame()
    assert len(frame) == len(trace.ops)
    assert {"name", "kind", "phase", "layer", "macs", "flops", "input_elements", "output_elements", "gemm_m",
            "gemm_k", "gemm_n", "gemm_batch"} <= set(frame.columns)
    assert frame["macs"].sum() == trace.total_macs
    gemms = frame[frame.kind.isin(["gemm", "bmm"])]
    assert (gemms.gemm_batch * gemms.gemm_m * gemms.gemm_k * gemms.gemm_n == gemms.macs).all()
    assert frame["gemm_m"].isna().sum() == (~frame.kind.isin(["gemm", "bmm"])).sum()


def test_batch_and_seq_len_overrides_scale_activations_not_params():
    small = build_trace("gpt2-small", batch=1, seq_len=128)
    big = build_trace("gpt2-small", batch=2, seq_len=128)
    assert small.param_count == big.param_count
    assert big.tensors["L0.ffn.fc1"].elements == 2 * small.tensors["L0.ffn.fc1"].elements
    assert len(small.ops) == len(big.ops)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch": 0}, "batch"), ({"batch": -3}, "batch"), ({"seq_len": 0}, "seq_len"),
    ({"seq_len": 2048}, "exceeds the 1024 learned positions"), ({"batch": 1.5}, "batch"),
])
def test_bad_sizes_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_trace("gpt2-small", **kwargs)


def test_bad_specs_raise():
    with pytest.raises(ValueError, match="unknown workload 'gpt3'; presets: .*gpt2-small"):
        get_spec("gpt3")
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        ModelSpec("x", "decoder", 1, 65, 4, 8, 10, 1, 1, max_positions=8)
    with pytest.raises(ValueError, match="activation must be one of gelu, relu, swiglu"):
        ModelSpec("x", "decoder", 1, 64, 4, 8, 10, 1, 1, max_positions=8, activation="tanh")
    with pytest.raises(ValueError, match="n_decoder_layers"):
        ModelSpec("x", "encoder_decoder", 1, 64, 4, 8, 10, 1, 1, positional="sinusoidal")


def test_embedding_lookups_read_gathered_rows_not_whole_tables():
    trace = build_trace(get_spec("gpt2-small"), batch=2, seq_len=64)
    op = next(o for o in trace.ops if o.kind == "embedding" and o.phase == "forward")
    reads = {o.tensor: trace.access_elements(o) for o in op.inputs}
    d = trace.spec["d_model"]
    assert reads["embed.tokens"] == 2 * 64 * d  # 128 tokens gather at most 128 of the 50,257 rows
    assert reads["embed.pos"] == 64 * d  # positions 0..63 of 1024
    # The gradient and the optimizer still move whole tables.
    adam = next(o for o in trace.ops if o.kind == "optimizer" and any(i.tensor == "embed.tokens" for i in o.inputs))
    assert all(trace.access_elements(i) == trace.tensors[i.tensor].elements for i in adam.inputs)
    # Tiny vocabulary: a gather can never touch more rows than the table has.
    tiny = build_trace(get_spec("tiny-lm"), batch=64, seq_len=64)
    op = next(o for o in tiny.ops if o.kind == "embedding" and o.phase == "forward")
    table = next(i for i in op.inputs if i.tensor == "embed.tokens")
    assert tiny.access_elements(table) == tiny.tensors["embed.tokens"].elements
