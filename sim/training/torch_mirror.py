"""The same Transformer written with PyTorch's own ops, on the same parameter dict: the autograd oracle for the
hand-written backward and the baseline of the step-time benchmark. Needs the optional `torch` extra; fp32 only, no
quantization, dropout off (PyTorch draws different masks)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import TransformerConfig


class TorchMirror:
    def __init__(self, config: TransformerConfig, params: dict[str, np.ndarray]) -> None:
        import torch

        self.torch, self.cfg = torch, config
        dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self.p = {k: torch.tensor(np.array(v), dtype=dtype, requires_grad=True) for k, v in params.items()}
        self.dtype = dtype
        from .layers import sinusoidal_positions

        self.pos = torch.tensor(sinusoidal_positions(config.max_len, config.d_model, config.dtype))

    def _ln(self, x: Any, name: str) -> Any:
        return self.torch.nn.functional.layer_norm(x, (x.shape[-1],), self.p[f"{name}.g"], self.p[f"{name}.b"], 1e-5)

    def _lin(self, x: Any, name: str) -> Any:
        return x @ self.p[f"{name}.w"] + self.p[f"{name}.b"]

    def _attn(self, x: Any, mask: Any, name: str, memory: Any = None) -> Any:
        torch, d, h = self.torch, self.cfg.d_model, self.cfg.n_heads
        if memory is None:
            q, k, v = self._lin(x, f"{name}.qkv").split(d, dim=-1)
        else:
            q = self._lin(x, f"{name}.q")
            k, v = self._lin(memory, f"{name}.kv").split(d, dim=-1)

        def heads(t: Any) -> Any:
            return t.reshape(t.shape[0], t.shape[1], h, d // h).transpose(1, 2)

        s = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(d // h) + mask
        ctx = torch.softmax(s, dim=-1) @ heads(v)
        return self._lin(ctx.transpose(1, 2).reshape(x.shape[0], x.shape[1], d), f"{name}.o")

    def _ffn(self, x: Any, name: str) -> Any:
        f = self.torch.nn.functional
        hid = self._lin(x, f"{name}.fc1")
        hid = f.relu(hid) if self.cfg.activation == "relu" else f.gelu(hid, approximate="tanh")
        return self._lin(hid, f"{name}.fc2")

    def _mask(self, ids: Any) -> Any:
        return ((ids == self.cfg.pad_id).to(self.dtype) * -1e9)[:, None, None, :]

    def _embed(self, ids: Any, name: str) -> Any:
        return self.p[f"{name}.e"][ids] * math.sqrt(self.cfg.d_model) + self.pos[: ids.shape[1]].to(self.dtype)

    def loss(self, batch: dict[str, np.ndarray]) -> Any:
        torch, cfg = self.torch, self.cfg
        tgt = torch.as_tensor(np.asarray(batch["tgt"]), dtype=torch.long)
        tgt_in, labels = tgt[:, :-1], tgt[:, 1:]
        memory = src_mask = None
        if not cfg.decoder_only:
            src = torch.as_tensor(np.asarray(batch["src"]), dtype=torch.long)
            src_mask, x = self._mask(src), self._embed(src, "src_emb")
            for i in range(cfg.n_encoder_layers):
                x = x + self._attn(self._ln(x, f"enc.{i}.ln_self"), src_mask, f"enc.{i}.self")
                x = x + self._ffn(self._ln(x, f"enc.{i}.ln_ffn"), f"enc.{i}.ffn")
            memory = self._ln(x, "enc_ln")
        t = tgt_in.shape[1]
        causal = torch.triu(torch.full((t, t), -1e9, dtype=self.dtype), diagonal=1)[None, None]
        self_mask = causal + self._mask(tgt_in)
        x = self._embed(tgt_in, "tgt_emb")
        for i in range(cfg.n_decoder_layers):
            x = x + self._attn(self._ln(x, f"dec.{i}.ln_self"), self_mask, f"dec.{i}.self")
            if memory is not None:
                x = x + self._attn(self._ln(x, f"dec.{i}.ln_cross"), src_mask, f"dec.{i}.cross", memory)
            x = x + self._ffn(self._ln(x, f"dec.{i}.ln_ffn"), f"dec.{i}.ffn")
        logits = self._lin(self._ln(x, "dec_ln"), "out")
        return torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), labels.reshape(-1),
                                                 ignore_index=cfg.pad_id, label_smoothing=cfg.label_smoothing)

    def loss_and_grads(self, batch: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        for t in self.p.values():
            t.grad = None
        loss = self.loss(batch)
        loss.backward()
        return float(loss.detach()), {k: t.grad.numpy() for k, t in self.p.items()}
