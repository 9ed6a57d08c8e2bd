"""Model specs from Hugging Face `config.json` files (GPT-2, BERT and Llama families), read from a local path."""

from __future__ import annotations

import json
import os
from typing import Any

from workloads.spec import ModelSpec

FAMILIES = ("gpt2", "bert", "llama")
# Default step sizes per family, the same as the matching presets (capped by the model's position table).
_DEFAULTS = {"gpt2": (8, 1024), "bert": (256, 128), "llama": (4, 2048)}


def spec_from_hf_config(path: str) -> ModelSpec:
    """A ModelSpec from a config.json (or a directory holding one). Missing fields raise ValueError naming the field
    and the file; unsupported families or activations name the supported ones."""
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object")
    family = cfg.get("model_type")
    if family is None:
        raise ValueError(f"{path}: missing field 'model_type' (supported: {', '.join(FAMILIES)})")
    if family not in FAMILIES:
        raise ValueError(f"{path}: model_type {family!r} is not supported; supported: {', '.join(FAMILIES)}")
    name = os.path.basename(os.path.dirname(os.path.abspath(path))) or family
    return {"gpt2": _gpt2, "bert": _bert, "llama": _llama}[family](_Fields(cfg, path), f"hf:{name}")


class _Fields:
    """Field access that names the field and file when something is missing or malformed."""

    def __init__(self, cfg: dict[str, Any], path: str) -> None:
        self.cfg, self.path = cfg, path

    def int(self, key: str, default: Any = ...) -> Any:
        if key not in self.cfg or self.cfg[key] is None:
            if default is ...:
                raise ValueError(f"{self.path}: missing field {key!r}")
            return default
        value = self.cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{self.path}: field {key!r} must be a positive integer, got {value!r}")
        return value

    def get(self, key: str, default: Any) -> Any:
        return self.cfg.get(key, default)


def _defaults(family: str, max_positions: int) -> dict[str, int]:
    batch, seq = _DEFAULTS[family]
    return {"default_batch": batch, "default_seq_len": min(seq, max_positions)}


def _gelu_or_relu(f: _Fields, key: str, default: str) -> str:
    act = str(f.get(key, default))
    if act.startswith("gelu"):
        return "gelu"
    if act == "relu":
        return "relu"
    raise ValueError(f"{f.path}: field {key!r} = {act!r} is not supported; supported: gelu*, relu")


def _gpt2(f: _Fields, name: str) -> ModelSpec:
    d = f.int("n_embd")
    positions = f.int("n_positions")
    return ModelSpec(
        name, "decoder", n_layers=f.int("n_layer"), d_model=d, n_heads=f.int("n_head"), d_ff=f.int("n_inner", 4 * d),
        vocab_size=f.int("vocab_size"), max_positions=positions,
        activation=_gelu_or_relu(f, "activation_function", "gelu_new"),
        tied_embeddings=bool(f.get("tie_word_embeddings", True)), **_defaults("gpt2", positions),
    )


def _bert(f: _Fields, name: str) -> ModelSpec:
    positions = f.int("max_position_embeddings")
    return ModelSpec(
        name, "encoder", n_layers=f.int("num_hidden_layers"), d_model=f.int("hidden_size"),
        n_heads=f.int("num_attention_heads"), d_ff=f.int("intermediate_size"), vocab_size=f.int("vocab_size"),
        max_positions=positions, type_vocab_size=f.int("type_vocab_size", 2), pre_norm=False, final_norm=False,
        activation=_gelu_or_relu(f, "hidden_act", "gelu"), mlm_head=True, **_defaults("bert", positions),
    )


def _llama(f: _Fields, name: str) -> ModelSpec:
    act = f.get("hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"{f.path}: field 'hidden_act' = {act!r} is not supported for llama; supported: silu")
    if f.get("attention_bias", False) or f.get("mlp_bias", False):
        raise ValueError(f"{f.path}: attention_bias / mlp_bias are not supported for llama (expected false)")
    heads = f.int("num_attention_heads")
    positions = f.int("max_position_embeddings")
    return ModelSpec(
        name, "decoder", n_layers=f.int("num_hidden_layers"), d_model=f.int("hidden_size"), n_heads=heads,
        n_kv_heads=f.int("num_key_value_heads", heads), d_ff=f.int("intermediate_size"),
        vocab_size=f.int("vocab_size"), max_positions=positions, norm="rmsnorm", activation="swiglu",
        positional="rotary", bias=False, tied_embeddings=bool(f.get("tie_word_embeddings", False)),
        **_defaults("llama", positions),
    )
