"""workloads.capture: PyTorch training steps captured on the meta device, checked against PyTorch's own counters
and against the builder's presets (docs/capture.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from workloads import Trace, build_trace, capture_trace  # noqa: E402
from workloads.capture import capture_from_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "torch_gpt2.py")


def stash_elements(trace: Trace) -> int:
    return sum(t.elements for t in trace.tensors.values() if t.role == "stashed_activation")


def held_elements(trace: Trace) -> int:
    """Values kept from forward to backward: stashes, plus gradients the loss op writes (the builder's fused loss)."""
    loss_written = {o.tensor for op in trace.ops if op.phase == "loss" for o in op.outputs}
    grads = sum(trace.tensors[n].elements for n in loss_written if trace.tensors[n].role == "activation_grad")
    return stash_elements(trace) + grads


def logprob_stash_elements(trace: Trace) -> int:
    return sum(t.elements for t in trace.tensors.values()
               if t.role == "stashed_activation" and "_log_softmax" in t.name)


def reference_step(model: nn.Module, inputs: tuple, hooks=None):
    """The same step run directly on the meta device (optionally under saved-tensor hooks), for PyTorch's counters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if hooks is None:
        loss = model(*inputs)
    else:
        with torch.autograd.graph.saved_tensors_hooks(*hooks):
            loss = model(*inputs)
    torch.autograd.grad(loss, params)


class MLP(nn.Module):
    def __init__(self, vocab: int = 40, width: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, width)
        self.ln = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, vocab)

    def forward(self, ids, labels):
        h = self.ln(self.emb(ids))
        logits = self.fc2(F.gelu(self.fc1(h)))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))


def small_models():
    with torch.device("meta"):
        ids = torch.randint(0, 40, (3, 10))
        yield "mlp", MLP(), (ids, ids)
    sys.path.insert(0, os.path.dirname(EXAMPLE))
    try:
        import torch_gpt2
    finally:
        sys.path.pop(0)
    with torch.device("meta"):
        model, inputs = torch_gpt2.tiny_lm(2, 16)
    yield "tiny_lm", model, inputs


@pytest.mark.parametrize("case", list(small_models()), ids=lambda c: c[0])
def test_counts_match_pytorch(case):
    """Parameters exactly; training MACs within 1 % of FlopCounterMode (FLOPs / 2) on the same step."""
    from torch.utils.flop_counter import FlopCounterMode

    _, model, inputs = case
    trace = capture_trace(model, inputs)
    trace.validate()
    assert trace.param_count == sum(p.numel() for p in model.parameters() if p.requires_grad)
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        reference_step(model, inputs)
    assert trace.total_macs == pytest.approx(counter.get_total_flops() / 2, rel=0.01)
    assert trace.total_macs > 0


@pytest.mark.parametrize("case", list(small_models()), ids=lambda c: c[0])
def test_stash_is_what_autograd_saves(case):
    """The stash holds exactly the values autograd saved: distinct storages, whole; parameters, inputs and
    integer indices (token ids, positions made by arange) are read where they live, not stashed."""
    _, model, inputs = case
    trace = capture_trace(model, inputs)
    kept = {p.untyped_storage()._cdata for p in [*model.parameters(), *model.buffers(), *inputs]}
    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s._cdata not in kept and t.is_floating_point():
            storages[s._cdata] = s.nbytes() // t.element_size()
        return t

    with torch.device("meta"):
        reference_step(model, inputs, hooks=(pack, lambda t: t))
    assert stash_elements(trace) == sum(storages.values())
    assert all(t.dsq_point == "q1" for t in trace.tensors.values() if t.role == "stashed_activation")


def test_trace_round_trips_and_follows_the_conventions(tmp_path):
    trace = capture_from_file(f"{EXAMPLE}:tiny_lm", 2, 16)
    path = tmp_path / "t.json"
    trace.save(str(path))
    loaded = Trace.load(str(path))
    assert loaded.tensors == trace.tensors and loaded.ops == trace.ops
    for op in trace.ops:
        roles = [trace.tensors[o.tensor].role for o in op.inputs]
        if op.gemm and op.phase == "forward":
            assert [o.point for o in op.inputs[:2]] == ["q0", "q0"]
        if op.gemm and op.phase == "backward":
            assert all(o.point == ("q1" if r == "stashed_activation" else "q2")
                       for o, r in zip(op.inputs[:2], roles, strict=True))
        if op.phase == "backward":
            assert all(o.point == "q3" for o in op.outputs)
            assert "stashed_activation" in roles or "activation_grad" in roles or op.name.endswith("ones_like")
    weights = [t for t in trace.tensors.values() if t.role == "weight"]
    assert weights and all(t.dsq_point is None for t in weights)
    adam = [op for op in trace.ops if op.kind == "optimizer"]
    assert len(adam) == len(weights)
    assert sum(t.role == "optimizer_state" for t in trace.tensors.values()) == 2 * len(weights)


def test_views_and_in_place_ops_are_not_traffic_twice():
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            y = self.lin(x)            # addmm + views
            z = y.view(-1).view(4, 8)  # views only: no op
            z.mul_(2.0)                # in place: a new version of y's storage, one op
            return z.t().sum()

    with torch.device("meta"):
        model, x = Model(), torch.randn(4, 8)
    trace = capture_trace(model, (x,))
    fwd = [op for op in trace.ops if op.phase == "forward"]
    assert [op.kind for op in fwd] == ["gemm", "elementwise", "reduction"]
    mul = fwd[1]
    assert [o.tensor for o in mul.inputs] == [fwd[0].outputs[0].tensor]      # reads y
    assert mul.outputs[0].tensor == f"{fwd[0].outputs[0].tensor}.v2"          # writes y's next version
    assert [o.tensor for o in fwd[2].inputs] == [mul.outputs[0].tensor]


def test_unmapped_ops_warn_and_stay_in_the_trace():
    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(4, 4, 3)

        def forward(self, x):
            return self.conv(x).square().mean()

    with torch.device("meta"):
        model, x = Conv(), torch.randn(2, 4, 16)
    with pytest.warns(UserWarning, match=r"no mapping.*convolution x1") as record:
        trace = capture_trace(model, (x,))
    assert "convolution_backward x1" in str(record[0].message)
    conv = [op for op in trace.ops if op.name.endswith("convolution")]
    assert len(conv) == 1 and conv[0].kind == "elementwise"
    assert trace.spec["unmapped_ops"] == {"convolution": 1, "convolution_backward": 1}


def test_broadcast_and_shared_gradients_are_written_out():
    """w.sum()'s gradient is a broadcast of a constant, and two such parameters would share it: each parameter still
    gets a gradient tensor of its own shape, written in backward, for its Adam op."""
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.a = nn.Parameter(torch.zeros(3, 5))
            self.b = nn.Parameter(torch.zeros(7))

        def forward(self, x):
            return self.lin(x).sum() + self.a.sum() + self.b.sum()

    with torch.device("meta"):
        model, x = Model(), torch.randn(2, 4)
    trace = capture_trace(model, (x,))
    grads = {op.inputs[0].tensor: trace.tensors[op.inputs[1].tensor] for op in trace.ops if op.kind == "optimizer"}
    assert grads["a"].shape == (3, 5) and grads["b"].shape == (7,)
    assert trace.param_count == 4 * 4 + 4 + 15 + 7


def test_model_on_cpu_is_left_untouched():
    torch.manual_seed(0)
    model = MLP()
    before = {n: p.clone() for n, p in model.named_parameters()}
    ids = torch.randint(0, 40, (2, 5))
    trace = capture_trace(model, (ids, ids))
    assert trace.batch == 2 and trace.seq_len == 5
    for n, p in model.named_parameters():
        assert p.device.type == "cpu" and p.grad is None and torch.equal(p, before[n])


def test_bad_model_output_is_one_line_error():
    class NotScalar(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x)

    with torch.device("meta"):
        model, x = NotScalar(), torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"must return the scalar loss, got Tensor of shape \(2, 4\)"):
        capture_trace(model, (x,))


# ---- GPT-2 against the gpt2-small preset -------------------------------------------------------------------------
def compare_with_preset(trace: Trace, batch: int, seq_len: int) -> None:
    preset = build_trace("gpt2-small", batch, seq_len)
    assert trace.param_count == preset.param_count
    assert trace.total_macs == pytest.approx(preset.total_macs, rel=0.01)
    # values held from forward to backward: the preset's fused loss writes the logits' gradient (q3) where eager
    # PyTorch stashes the log-probabilities (q1); both are batch x seq x vocab
    assert held_elements(trace) == pytest.approx(held_elements(preset), rel=0.05)
    logprobs = logprob_stash_elements(trace)
    assert logprobs == batch * seq_len * preset.spec["vocab_size"]
    assert stash_elements(trace) - logprobs == pytest.approx(stash_elements(preset), rel=0.05)


def test_plain_torch_gpt2_matches_the_preset():
    batch, seq_len = 2, 256
    compare_with_preset(capture_from_file(f"{EXAMPLE}:gpt2_small", batch, seq_len), batch, seq_len)


def test_hugging_face_gpt2_matches_the_preset():
    pytest.importorskip("transformers")
    from transformers import GPT2Config, GPT2LMHeadModel

    from workloads import get_spec

    s = get_spec("gpt2-small")
    config = GPT2Config(vocab_size=s.vocab_size, n_positions=s.max_positions, n_embd=s.d_model, n_layer=s.n_layers,
                        n_head=s.n_heads, n_inner=s.d_ff, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        use_cache=False, activation_function="gelu")  # one fused GELU, as the preset (not gelu_new)
    config._attn_implementation = "eager"  # the preset's attention: scores, softmax, context as separate GEMMs

    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = GPT2LMHeadModel(config)

        def forward(self, ids, mask):
            return self.lm(input_ids=ids, attention_mask=mask, labels=ids).loss

    batch, seq_len = 2, 256
    with torch.device("meta"):
        model = LM()
        ids, mask = torch.randint(0, s.vocab_size, (batch, seq_len)), torch.ones(batch, seq_len, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every op HF emits has a mapping
        trace = capture_trace(model, (ids, mask))
    compare_with_preset(trace, batch, seq_len)


def hugging_face_models():
    """(model class, config, how its forward is called): the keyword arguments each family needs on the meta
    device (docs/capture.md)."""
    transformers = pytest.importorskip("transformers")
    llama = transformers.LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                     use_cache=False)
    bert = transformers.BertConfig(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=256, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    t5 = transformers.T5Config(vocab_size=512, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                               use_cache=False, dropout_rate=0.0)
    for config in (llama, bert, t5):
        config._attn_implementation = "eager"
    return {
        "llama": (transformers.LlamaForCausalLM, llama, lambda ids: {"attention_mask": torch.ones_like(ids)}),
        "bert": (transformers.BertForMaskedLM, bert, lambda ids: {}),
        "t5": (transformers.T5ForConditionalGeneration, t5, lambda ids: {"decoder_input_ids": ids}),
    }


@pytest.mark.parametrize("arch", ["llama", "bert", "t5"])
def test_hugging_face_models_capture_fully(arch):
    """RMSNorm, SwiGLU, rotary positions, grouped-query attention (LLaMA); post-norm, MLM head (BERT); encoder-
    decoder with relative position bias (T5): every op mapped, parameters exact, MACs equal FlopCounterMode's."""
    from torch.utils.flop_counter import FlopCounterMode

    cls, config, extra = hugging_face_models()[arch]

    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = cls(config)

        def forward(self, ids):
            return self.lm(input_ids=ids, labels=ids, **extra(ids)).loss

    with torch.device("meta"):
        model, inputs = LM(), (torch.randint(0, 512, (2, 32)),)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = capture_trace(model, inputs)
    assert trace.param_count == sum(p.numel() for p in model.parameters())
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        reference_step(model, inputs)
    assert trace.total_macs == pytest.approx(counter.get_total_flops() / 2, rel=0.01)


_BIG = """
import resource, sys, time
sys.path.insert(0, {examples!r})
import torch
from torch_gpt2 import GPT2
from workloads import capture_trace
start = time.process_time()
with torch.device("meta"):
    model = GPT2(vocab_size=50257, d_model=1536, n_layers=28, n_heads=16, d_ff=6144, max_positions=1024)
    ids = torch.randint(0, 50257, (1, 1024))
trace = capture_trace(model, (ids, ids))
print(trace.param_count, time.process_time() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def test_a_large_model_captures_without_its_weights():
    """0.87B parameters (3.5 GB of fp32 weights) capture in seconds in a process that stays far below that."""
    code = _BIG.format(examples=os.path.dirname(EXAMPLE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    params, cpu_s, peak_rss_bytes = out.stdout.split()
    assert int(params) > 800_000_000
    assert float(cpu_s) < 60
    assert int(peak_rss_bytes) < int(params) * 4 / 3  # well under the fp32 weights alone


def test_captured_traces_carry_the_storage_metadata():
    """Weight copies with the blocking each GEMM needs (nn.Linear stores W as [out, in]: the forward GEMM reduces
    along its contiguous axis, dx = dy.W along the other), stashes naming their value, and sim.storage's rules:
    one stored format per tensor, no stash copy under fixed16."""
    from sim.counting import count
    from sim.precision import PrecisionConfig

    with torch.device("meta"):
        ids = torch.randint(0, 40, (3, 10))
        trace = capture_trace(MLP(), (ids, ids))
    trace.validate()
    fc1 = next(n for n in trace.tensors if n.endswith("fc1.weight"))
    assert trace.tensors[f"{fc1}@q0"].block_axis == -1 and trace.tensors[f"{fc1}@q2"].block_axis == -2
    assert all(trace.tensors[c].source == fc1 for c in (f"{fc1}@q0", f"{fc1}@q2"))
    stashes = [t for t in trace.tensors.values() if t.role == "stashed_activation"]
    assert stashes and all(t.source in trace.tensors for t in stashes)
    for cfg in (PrecisionConfig.uniform("fixed16"), PrecisionConfig("bfp8", "bfp4", "bfp8", "bfp16")):
        acc = count(trace, cfg).accesses
        assert (acc.groupby("tensor")["fmt"].nunique() == 1).all()
    fixed16 = count(trace, PrecisionConfig.uniform("fixed16")).accesses
    assert "stashed_activation" not in set(fixed16["role"])
