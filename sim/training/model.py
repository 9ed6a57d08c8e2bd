"""The reference Transformer: encoder–decoder or decoder-only, pre-LayerNorm, forward and backward by hand."""

from __future__ import annotations

from typing import Any

import numpy as np

from .attention import Attention
from .config import TransformerConfig
from .layers import Dropout, Embedding, FeedForward, LayerNorm, Linear, Params, cross_entropy, sinusoidal_positions
from .quant import Quantizer

_NEG = -1e9  # additive mask: exp underflows to exactly 0, and no all-masked row gives NaN


class _Block:
    """x + Dropout(sublayer(LayerNorm(x))) for each sublayer: self-attention, [cross-attention], FFN."""

    def __init__(self, name: str, params: Params, cfg: TransformerConfig, cross: bool, rng: np.random.Generator,
                 out_std: float) -> None:
        d, dt = cfg.d_model, cfg.dtype
        self.subs: list[tuple[str, Any, LayerNorm, Dropout]] = [
            ("self", Attention(f"{name}.self", params, d, cfg.n_heads, False, rng, dt, out_std),
             LayerNorm(f"{name}.ln_self", params, d, dt), Dropout(cfg.dropout))]
        if cross:
            self.subs.append(("cross", Attention(f"{name}.cross", params, d, cfg.n_heads, True, rng, dt, out_std),
                              LayerNorm(f"{name}.ln_cross", params, d, dt), Dropout(cfg.dropout)))
        self.subs.append(("ffn", FeedForward(f"{name}.ffn", params, d, cfg.d_ff, cfg.activation, rng, dt, out_std),
                          LayerNorm(f"{name}.ln_ffn", params, d, dt), Dropout(cfg.dropout)))

    def forward(self, x: np.ndarray, masks: dict[str, np.ndarray], memory: np.ndarray | None, params: Params,
                qz: Quantizer, rng: np.random.Generator) -> np.ndarray:
        for kind, layer, ln, drop in self.subs:
            h = ln.forward(x, params, qz)
            if kind == "ffn":
                h = layer.forward(h, params, qz)
            else:
                h = layer.forward(h, masks[kind], params, qz, memory if kind == "cross" else None)
            x = qz.act(x + drop.forward(h, rng, qz))
        return x

    def backward(self, dx: np.ndarray, params: Params, qz: Quantizer, grads: Params) -> tuple[np.ndarray, Any]:
        """Returns (d input, d memory or None)."""
        dmem = None
        for kind, layer, ln, drop in reversed(self.subs):
            dh = drop.backward(dx)
            if kind == "ffn":
                dh = layer.backward(dh, params, qz, grads)
            else:
                dh, dm = layer.backward(dh, params, qz, grads)
                if dm is not None:
                    dmem = dm
            dx = qz.q3(dx + ln.backward(dh, params, qz, grads))
        return dx, dmem


class Transformer:
    """`params` maps names to arrays (updated in place by the optimizer); `rng` draws dropout masks."""

    def __init__(self, config: TransformerConfig, seed: int = 0) -> None:
        self.config = cfg = config
        self.params: Params = {}
        init = np.random.default_rng(seed)
        self.rng = np.random.default_rng([seed, 1])  # dropout stream, separate from initialisation
        self.rounding_rng = np.random.default_rng([seed, 3])  # stochastic-rounding (`_sr` formats) stream
        d, dt = cfg.d_model, cfg.dtype
        out_std = d ** -0.5 / np.sqrt(2 * (cfg.n_encoder_layers + cfg.n_decoder_layers))
        self.pos = sinusoidal_positions(cfg.max_len, d, dt)
        self.enc_emb = None if cfg.decoder_only else Embedding("src_emb", self.params, cfg.vocab_size, d, init, dt)
        self.enc = [_Block(f"enc.{i}", self.params, cfg, False, init, out_std) for i in range(cfg.n_encoder_layers)]
        self.enc_ln = None if cfg.decoder_only else LayerNorm("enc_ln", self.params, d, dt)
        self.dec_emb = Embedding("tgt_emb", self.params, cfg.vocab_size, d, init, dt)
        self.dec = [_Block(f"dec.{i}", self.params, cfg, not cfg.decoder_only, init, out_std)
                    for i in range(cfg.n_decoder_layers)]
        self.dec_ln = LayerNorm("dec_ln", self.params, d, dt)
        self.out = Linear("out", self.params, d, cfg.vocab_size, init, dt)
        self.emb_drop = [Dropout(cfg.dropout), Dropout(cfg.dropout)]

    # ---- forward -------------------------------------------------------------------------------------------------
    def _embed(self, emb: Embedding, drop: Dropout, ids: np.ndarray, qz: Quantizer) -> np.ndarray:
        if ids.shape[1] > self.config.max_len:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds max_len {self.config.max_len}")
        x = emb.forward(ids, self.params, qz) + self.pos[: ids.shape[1]]
        return qz.act(drop.forward(x, self.rng, qz))

    def _pad_mask(self, ids: np.ndarray) -> np.ndarray:
        return np.where(ids == self.config.pad_id, _NEG, 0.0).astype(self.config.dtype)[:, None, None, :]

    def encode(self, src: np.ndarray, qz: Quantizer) -> np.ndarray:
        assert self.enc_emb is not None and self.enc_ln is not None
        x = self._embed(self.enc_emb, self.emb_drop[0], src, qz)
        masks = {"self": self._pad_mask(src)}
        for block in self.enc:
            x = block.forward(x, masks, None, self.params, qz, self.rng)
        return self.enc_ln.forward(x, self.params, qz)

    def decode_logits(self, tgt_in: np.ndarray, memory: np.ndarray | None, src: np.ndarray | None,
                      qz: Quantizer) -> np.ndarray:
        t = tgt_in.shape[1]
        causal = np.triu(np.full((t, t), _NEG, dtype=self.config.dtype), k=1)[None, None]
        masks = {"self": causal + self._pad_mask(tgt_in)}
        if memory is not None:
            masks["cross"] = self._pad_mask(src)
        x = self._embed(self.dec_emb, self.emb_drop[1], tgt_in, qz)
        for block in self.dec:
            x = block.forward(x, masks, memory, self.params, qz, self.rng)
        h = self.dec_ln.forward(x, self.params, qz)
        return qz.act(self.out.forward(h, self.params, qz))

    def _forward(self, batch: dict[str, np.ndarray], qz: Quantizer) -> tuple[np.ndarray, np.ndarray]:
        tgt = np.asarray(batch["tgt"])
        src = None if self.config.decoder_only else np.asarray(batch["src"])
        memory = None if src is None else self.encode(src, qz)
        return self.decode_logits(tgt[:, :-1], memory, src, qz), tgt[:, 1:]

    # ---- public API ----------------------------------------------------------------------------------------------
    def loss(self, batch: dict[str, np.ndarray], precision: Any = None) -> tuple[float, int]:
        """Evaluation loss (no dropout, no label smoothing) and the number of non-pad target tokens."""
        logits, labels = self._forward(batch, Quantizer(precision, training=False))
        loss, _ = cross_entropy(logits, labels, self.config.pad_id, 0.0)
        return loss, int((labels != self.config.pad_id).sum())

    def loss_and_grads(self, batch: dict[str, np.ndarray], precision: Any = None) -> tuple[float, Params]:
        """Training loss (dropout, label smoothing) and the gradient of every parameter, quantized per `precision`."""
        qz = Quantizer(precision, training=True, rng=self.rounding_rng)
        logits, labels = self._forward(batch, qz)
        loss, dlogits = cross_entropy(logits, labels, self.config.pad_id, self.config.label_smoothing)
        grads: Params = {}
        dx = self.dec_ln.backward(self.out.backward(qz.q3(dlogits), self.params, qz, grads), self.params, qz, grads)
        dmem = None
        for block in reversed(self.dec):
            dx, dm = block.backward(dx, self.params, qz, grads)
            if dm is not None:
                dmem = dm if dmem is None else qz.q3(dmem + dm)
        self.dec_emb.backward(self.emb_drop[1].backward(dx), self.params, qz, grads)
        if dmem is not None:
            assert self.enc_ln is not None and self.enc_emb is not None
            dx = self.enc_ln.backward(dmem, self.params, qz, grads)
            for block in reversed(self.enc):
                dx, _ = block.backward(dx, self.params, qz, grads)
            self.enc_emb.backward(self.emb_drop[0].backward(dx), self.params, qz, grads)
        return loss, grads

    def greedy_decode(self, src: np.ndarray, bos_id: int, eos_id: int, max_new: int,
                      precision: Any = None) -> np.ndarray:
        """Greedy decoding for an encoder–decoder model: [B, ≤max_new] token ids, pad after EOS."""
        qz = Quantizer(precision, training=False)
        src = np.asarray(src)
        memory = self.encode(src, qz)
        out = np.full((src.shape[0], 1), bos_id, dtype=np.int64)
        done = np.zeros(src.shape[0], dtype=bool)
        for _ in range(min(max_new, self.config.max_len - 1)):
            logits = self.decode_logits(out, memory, src, qz)[:, -1]
            nxt = np.where(done, self.config.pad_id, logits.argmax(axis=-1))
            out = np.concatenate([out, nxt[:, None]], axis=1)
            done |= nxt == eos_id
            if done.all():
                break
        return out[:, 1:]

    def rng_state(self) -> dict[str, Any]:
        """The dropout and stochastic-rounding streams' states (what a checkpoint or a shadow pass restores)."""
        return {"dropout": self.rng.bit_generator.state, "rounding": self.rounding_rng.bit_generator.state}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        if "dropout" not in state:  # a checkpoint from before the rounding stream: the dropout state alone
            self.rng.bit_generator.state = state
            return
        self.rng.bit_generator.state = state["dropout"]
        self.rounding_rng.bit_generator.state = state["rounding"]
