"""Transformer model specifications and the built-in presets.

Default batch and sequence length are per-step (per-device micro-batch) sizes; both can be overridden everywhere.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any

ARCHS = ("decoder", "encoder", "encoder_decoder")
NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "relu", "swiglu")
POSITIONALS = ("learned", "sinusoidal", "rotary")


@dataclass(frozen=True)
class ModelSpec:
    """A Transformer for one training step.

    arch: "decoder" (causal LM, e.g. GPT-2, LLaMA), "encoder" (bidirectional, MLM head, e.g. BERT) or
    "encoder_decoder" (translation; source and target both `seq_len` tokens long).
    """

    name: str
    arch: str
    n_layers: int                     # decoder-only / encoder-only: layers; encoder-decoder: encoder layers
    d_model: int
    n_heads: int
    d_ff: int                         # FFN hidden width (SwiGLU: width of gate and up projections)
    vocab_size: int
    default_batch: int
    default_seq_len: int
    n_decoder_layers: int = 0         # encoder-decoder only
    n_kv_heads: int | None = None     # grouped-query attention; None = n_heads
    norm: str = "layernorm"
    pre_norm: bool = True             # pre-LN (GPT-2, LLaMA) vs post-LN (BERT, original Transformer)
    final_norm: bool = True           # a norm after the last layer (pre-LN models)
    activation: str = "gelu"
    positional: str = "learned"
    max_positions: int | None = None  # table size for learned positions; also the longest allowed sequence
    type_vocab_size: int = 0          # BERT token-type (segment) embeddings
    bias: bool = True                 # biases on linear layers and norms
    tied_embeddings: bool = True      # LM head shares the token embedding (all three tables for enc-dec)
    mlm_head: bool = False            # BERT: dense + GELU + LayerNorm transform before the tied decoder

    def __post_init__(self) -> None:
        choices = {"arch": ARCHS, "norm": NORMS, "activation": ACTIVATIONS, "positional": POSITIONALS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"model spec {self.name!r}: {key} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, key)!r}")
        for key in ("n_layers", "d_model", "n_heads", "d_ff", "vocab_size", "default_batch", "default_seq_len"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"model spec {self.name!r}: {key} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"model spec {self.name!r}: d_model {self.d_model} is not divisible by "
                             f"n_heads {self.n_heads}")
        if self.n_kv_heads is not None and (self.n_kv_heads <= 0 or self.n_heads % self.n_kv_heads):
            raise ValueError(f"model spec {self.name!r}: n_kv_heads {self.n_kv_heads} must divide "
                             f"n_heads {self.n_heads}")
        if self.arch == "encoder_decoder" and self.n_decoder_layers <= 0:
            raise ValueError(f"model spec {self.name!r}: an encoder_decoder needs n_decoder_layers > 0")
        if self.positional == "learned" and not self.max_positions:
            raise ValueError(f"model spec {self.name!r}: learned positions need max_positions")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "spec") -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown model spec field {unknown[0]!r}; "
                             f"valid fields: {', '.join(sorted(known))}")
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"{source}: missing model spec field {missing[0]!r}")
        return cls(**data)

    def with_name(self, name: str) -> ModelSpec:
        return replace(self, name=name)


_PRESETS: dict[str, ModelSpec] = {}


def _add(spec: ModelSpec, description: str) -> None:
    _PRESETS[spec.name] = spec
    _DESCRIPTIONS[spec.name] = description


_DESCRIPTIONS: dict[str, str] = {}

# fairseq transformer_iwslt_de_en with --share-all-embeddings; 4096 tokens per batch = 32 x 128.
_add(ModelSpec("transformer-iwslt", "encoder_decoder", n_layers=6, n_decoder_layers=6, d_model=512, n_heads=4,
               d_ff=1024, vocab_size=10_000, default_batch=32, default_seq_len=128, pre_norm=False, final_norm=False,
               activation="relu", positional="sinusoidal"),
     "IWSLT14 De-En Transformer: 6+6 layers, d 512, 4 heads, FFN 1024, shared vocab 10k, 4096 tokens/batch")
# Vaswani et al. 2017 base model, WMT14 En-De with a shared 37k BPE vocabulary; ~25k tokens per batch = 96 x 256.
_add(ModelSpec("transformer-base", "encoder_decoder", n_layers=6, n_decoder_layers=6, d_model=512, n_heads=8,
               d_ff=2048, vocab_size=37_000, default_batch=96, default_seq_len=256, pre_norm=False, final_norm=False,
               activation="relu", positional="sinusoidal"),
     "WMT14 En-De Transformer base: 6+6 layers, d 512, 8 heads, FFN 2048, shared vocab 37k, 24,576 tokens/batch")
# BERT pre-training phase 1: batch 256 x 128 tokens; MLM on every position (see README).
_add(ModelSpec("bert-base", "encoder", n_layers=12, d_model=768, n_heads=12, d_ff=3072, vocab_size=30_522,
               default_batch=256, default_seq_len=128, pre_norm=False, final_norm=False, max_positions=512,
               type_vocab_size=2, mlm_head=True),
     "BERT-base (uncased): 12 layers, d 768, 12 heads, FFN 3072, vocab 30,522, MLM head, seq 128")
_add(ModelSpec("gpt2-small", "decoder", n_layers=12, d_model=768, n_heads=12, d_ff=3072, vocab_size=50_257,
               default_batch=8, default_seq_len=1024, max_positions=1024),
     "GPT-2 small: 12 layers, d 768, 12 heads, FFN 3072, vocab 50,257, tied LM head, seq 1024")
_add(ModelSpec("gpt2-medium", "decoder", n_layers=24, d_model=1024, n_heads=16, d_ff=4096, vocab_size=50_257,
               default_batch=8, default_seq_len=1024, max_positions=1024),
     "GPT-2 medium: 24 layers, d 1024, 16 heads, FFN 4096, vocab 50,257, tied LM head, seq 1024")
_add(ModelSpec("llama-7b", "decoder", n_layers=32, d_model=4096, n_heads=32, d_ff=11_008, vocab_size=32_000,
               default_batch=4, default_seq_len=2048, norm="rmsnorm", activation="swiglu", positional="rotary",
               max_positions=2048, bias=False, tied_embeddings=False),
     "LLaMA-7B: 32 layers, d 4096, 32 heads, SwiGLU 11,008, vocab 32,000, RMSNorm, RoPE, seq 2048")
# Small enough for the transaction-level engine to replay in seconds.
_add(ModelSpec("tiny-lm", "decoder", n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab_size=512,
               default_batch=4, default_seq_len=32, max_positions=128),
     "tiny GPT-style LM for fast tests: 2 layers, d 64, 4 heads, FFN 256, vocab 512, seq 32")
_add(ModelSpec("tiny-mt", "encoder_decoder", n_layers=1, n_decoder_layers=1, d_model=64, n_heads=4, d_ff=128,
               vocab_size=512, default_batch=4, default_seq_len=16, pre_norm=False, final_norm=False,
               activation="relu", positional="sinusoidal"),
     "tiny encoder-decoder for fast tests: 1+1 layers, d 64, 4 heads, FFN 128, vocab 512, seq 16")


def get_spec(name: str) -> ModelSpec:
    """A built-in preset by name; ValueError listing the presets otherwise."""
    try:
        return _PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown workload {name!r}; presets: {', '.join(_PRESETS)}") from None


def list_specs() -> list[str]:
    return list(_PRESETS)


def describe_spec(name: str) -> str:
    """One-line description of a preset (for `dsqsim presets`)."""
    get_spec(name)
    return _DESCRIPTIONS[name]
