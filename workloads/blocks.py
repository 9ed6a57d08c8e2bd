"""Transformer structure on top of TraceBuilder: attention, FFN, layers, and the three model families.

Dropout is not modelled. Causal masks are generated on the fly (no tensor); padding masks are a [batch, seq]
input read by every softmax that uses them.
"""

from __future__ import annotations

from workloads.builder import TraceBuilder
from workloads.spec import ModelSpec
from workloads.trace import GemmShape


class ModelBuilder(TraceBuilder):
    def __init__(self, spec: ModelSpec, batch: int, seq_len: int) -> None:
        super().__init__(spec.name, spec.to_dict(), batch, seq_len)
        self.s = spec

    # ---- sublayers -------------------------------------------------------------------------------------------
    def dense(self, name: str, x: str, out_features: int) -> str:
        in_features = self.shape(x)[1]
        w = self.weight(f"{name}.W", (in_features, out_features))
        b = self.weight(f"{name}.bias", (out_features,)) if self.s.bias else None
        return self.linear(name, x, w, out_features, b)

    def attention(self, p: str, x_q: str, x_kv: str, seq_q: int, seq_kv: int, mask: str | None) -> str:
        s, b = self.s, self.trace.batch
        kv_width = s.kv_heads * s.d_head
        q = self.dense(f"{p}.q", x_q, s.d_model)
        k = self.dense(f"{p}.k", x_kv, kv_width)
        v = self.dense(f"{p}.v", x_kv, kv_width)
        if s.positional == "rotary":
            q, k = self.elementwise(f"{p}.rope", "rope", [q, k], [self.shape(q), self.shape(k)])
        heads = b * s.n_heads
        scores = self.bmm(f"{p}.scores", q, k, GemmShape(heads, seq_q, s.d_head, seq_kv), (heads, seq_q, seq_kv),
                          b_transposed=True)
        probs = self.softmax(f"{p}.probs", scores, mask)
        ctx = self.bmm(f"{p}.context", probs, v, GemmShape(heads, seq_q, seq_kv, s.d_head), self.shape(q),
                       b_transposed=False)
        return self.dense(f"{p}.out", ctx, s.d_model)

    def ffn(self, p: str, x: str) -> str:
        s = self.s
        if s.activation == "swiglu":
            gate = self.dense(f"{p}.gate", x, s.d_ff)
            up = self.dense(f"{p}.up", x, s.d_ff)
            (h,) = self.elementwise(f"{p}.swiglu", "swiglu", [gate, up], [self.shape(up)], save=[gate, up])
            return self.dense(f"{p}.down", h, s.d_model)
        u = self.dense(f"{p}.fc1", x, s.d_ff)
        (h,) = self.elementwise(f"{p}.{s.activation}", s.activation, [u], [self.shape(u)], save=[u])
        return self.dense(f"{p}.fc2", h, s.d_model)

    def norm_layer(self, name: str, x: str) -> str:
        return self.norm(name, x, self.s.norm, self.s.bias)

    def sublayer(self, p: str, h: str, body) -> str:
        """Residual sublayer: pre-norm h + body(norm(h)), or post-norm norm(h + body(h))."""
        if self.s.pre_norm:
            return self.residual_add(f"{p}.residual", h, body(self.norm_layer(f"{p}.norm", h)))
        return self.norm_layer(f"{p}.norm", self.residual_add(f"{p}.residual", h, body(h)))

    def transformer_layer(self, p: str, h: str, seq: int, mask: str | None, memory: str | None = None,
              memory_mask: str | None = None) -> str:
        h = self.sublayer(f"{p}.attn", h, lambda x: self.attention(f"{p}.attn", x, x, seq, seq, mask))
        if memory is not None:  # encoder-decoder cross-attention: queries from the decoder, keys/values from memory
            src = self.shape(memory)[0] // self.trace.batch
            h = self.sublayer(f"{p}.xattn", h,
                              lambda x: self.attention(f"{p}.xattn", x, memory, seq, src, memory_mask))
        return self.sublayer(f"{p}.ffn", h, lambda x: self.ffn(f"{p}.ffn", x))

    # ---- embeddings and heads --------------------------------------------------------------------------------
    def embed(self, p: str, ids: str, table: str, type_ids: str | None = None) -> str:
        s = self.s
        tables, distinct = [table], [self.trace.batch * self.trace.seq_len]
        if s.positional == "learned":  # positions 0..seq_len-1
            tables.append(self.weight(f"{p}.pos", (s.max_positions, s.d_model)))
            distinct.append(self.trace.seq_len)
        if type_ids is not None:
            tables.append(self.weight(f"{p}.type", (s.type_vocab_size, s.d_model)))
            distinct.append(s.type_vocab_size)
        # sinusoidal: positions computed and added (2 FLOPs/element incl. the sqrt(d) scale); rotary: in attention
        extra = 2 if s.positional == "sinusoidal" else 0
        return self.embedding(p, ids, tables, s.d_model, [type_ids] if type_ids else [], extra, distinct)

    def lm_head(self, h: str, table: str) -> str:
        s = self.s
        if s.tied_embeddings:
            bias = self.weight("lm_head.bias", (s.vocab_size,)) if s.mlm_head else None
            return self.linear("lm_head", h, table, s.vocab_size, bias, w_transposed=True)
        w = self.weight("lm_head.W", (s.d_model, s.vocab_size))
        return self.linear("lm_head", h, w, s.vocab_size)

    # ---- model families ---------------------------------------------------------------------------------------
    def build(self) -> None:
        s, b, t = self.s, self.trace.batch, self.trace.seq_len
        tokens = b * t
        table = self.weight("embed.tokens", (s.vocab_size, s.d_model))
        if s.arch == "encoder_decoder":
            src_ids = self.tensor("src_ids", (tokens,), "activation")
            src_mask = self.tensor("src_mask", (b, t), "activation")
            h = self.embed("enc.embed", src_ids, table)
            for i in range(s.n_layers):
                self.layer = i
                h = self.transformer_layer(f"enc{i}", h, t, src_mask)
            memory = self.final(h, "enc.norm")
            self.layer = None
            h = self.embed("dec.embed", self.tensor("tgt_ids", (tokens,), "activation"), table)
            for i in range(s.n_decoder_layers):
                self.layer = s.n_layers + i  # decoder layers are numbered after the encoder's
                h = self.transformer_layer(f"dec{i}", h, t, None, memory, src_mask)
        else:
            ids = self.tensor("input_ids", (tokens,), "activation")
            mask = self.tensor("attention_mask", (b, t), "activation") if s.arch == "encoder" else None
            type_ids = self.tensor("token_type_ids", (tokens,), "activation") if s.type_vocab_size else None
            h = self.embed("embed", ids, table, type_ids)
            if not s.pre_norm:  # BERT normalises the embeddings
                h = self.norm_layer("embed.norm", h)
            for i in range(s.n_layers):
                self.layer = i
                h = self.transformer_layer(f"L{i}", h, t, mask)
        self.layer = None
        h = self.final(h, "final.norm")
        if s.mlm_head:
            h = self.dense("mlm.transform", h, s.d_model)
            (h,) = self.elementwise("mlm.gelu", "gelu", [h], [self.shape(h)], save=[h])
            h = self.norm_layer("mlm.norm", h)
        logits = self.lm_head(h, table)
        self.cross_entropy(logits, self.tensor("labels", (tokens,), "activation"))

    def final(self, h: str, name: str) -> str:
        return self.norm_layer(name, h) if self.s.final_norm else h
