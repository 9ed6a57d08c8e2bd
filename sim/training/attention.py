"""Multi-head attention (self or cross) with its hand-written backward.

Forward: the two batched GEMMs S = Q·Kᵀ and O = P·V take q0 operands; Q, K, V and P are stashed at q1 (quantized once,
in their stored layout). Backward: the incoming gradient is a q2 operand against the q1 stashes, dS is written at q3
and re-read at q2, and dQ, dK, dV are written at q3.
"""

from __future__ import annotations

import numpy as np

from .layers import Linear, Params
from .quant import Quantizer


def _split(x: np.ndarray, h: int) -> np.ndarray:
    b, t, d = x.shape
    return x.reshape(b, t, h, d // h).transpose(0, 2, 1, 3)


def _merge(x: np.ndarray) -> np.ndarray:
    b, h, t, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * dh)


class Attention:
    def __init__(self, name: str, params: Params, d: int, n_heads: int, cross: bool, rng: np.random.Generator,
                 dtype: str, out_std: float | None = None) -> None:
        if d % n_heads:
            raise ValueError(f"d_model {d} is not divisible by n_heads {n_heads}")
        self.h, self.d, self.cross = n_heads, d, cross
        self.scale = 1.0 / np.sqrt(d // n_heads)
        if cross:
            self.wq = Linear(f"{name}.q", params, d, d, rng, dtype)
            self.wkv = Linear(f"{name}.kv", params, d, 2 * d, rng, dtype)
        else:
            self.wqkv = Linear(f"{name}.qkv", params, d, 3 * d, rng, dtype)
        self.wo = Linear(f"{name}.o", params, d, d, rng, dtype, init_std=out_std)
        self.cache: tuple[np.ndarray, ...] | None = None

    def forward(self, x: np.ndarray, mask: np.ndarray, params: Params, qz: Quantizer,
                memory: np.ndarray | None = None) -> np.ndarray:
        """x [B, T, d]; `mask` additive, broadcastable to [B, h, T, S]; `memory` [B, S, d] for cross-attention."""
        d = self.d
        if self.cross:
            assert memory is not None
            q = self.wq.forward(x, params, qz)
            kv = self.wkv.forward(memory, params, qz)
            q0_q, q0_kv = qz.q0(q), qz.q0(kv)
            qh, kh, vh = _split(q0_q, self.h), _split(q0_kv[..., :d], self.h), _split(q0_kv[..., d:], self.h)
        else:
            qkv = self.wqkv.forward(x, params, qz)
            q0_qkv = qz.q0(qkv)
            qh, kh, vh = (_split(q0_qkv[..., i * d:(i + 1) * d], self.h) for i in range(3))
        s = qz.act(qh @ kh.transpose(0, 1, 3, 2))  # scores: a GEMM output read by the softmax
        s *= np.asarray(self.scale, dtype=s.dtype)
        s += mask
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        p = s  # probabilities: read by the next GEMM (q0) and stashed (q1)
        ctx = _merge(qz.q0(p) @ vh)
        if qz.training:
            if self.cross:
                st_q, st_kv = qz.stash(q), qz.stash(kv)
                stashes = (_split(st_q, self.h), _split(st_kv[..., :d], self.h), _split(st_kv[..., d:], self.h))
            else:
                st = qz.stash(qkv)
                stashes = tuple(_split(st[..., i * d:(i + 1) * d], self.h) for i in range(3))
            self.cache = (*stashes, qz.stash(p))
        return qz.act(self.wo.forward(ctx, params, qz))

    def backward(self, dy: np.ndarray, params: Params, qz: Quantizer,
                 grads: Params) -> tuple[np.ndarray, np.ndarray | None]:
        """Returns (dx, d memory); d memory is None for self-attention."""
        assert self.cache is not None
        qh, kh, vh, p = self.cache
        self.cache = None
        dctx = _split(qz.q2(self.wo.backward(dy, params, qz, grads)), self.h)
        dp = qz.q3(dctx @ vh.transpose(0, 1, 3, 2))
        dv = p.transpose(0, 1, 3, 2) @ dctx
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        ds *= np.asarray(self.scale, dtype=ds.dtype)
        dsq = qz.q2(qz.q3(ds))
        dq = dsq @ kh
        dk = dsq.transpose(0, 1, 3, 2) @ qh
        if self.cross:
            dx = self.wq.backward(qz.q3(_merge(dq)), params, qz, grads)
            dmem = self.wkv.backward(qz.q3(np.concatenate([_merge(dk), _merge(dv)], axis=-1)), params, qz, grads)
            return dx, dmem
        dqkv = qz.q3(np.concatenate([_merge(dq), _merge(dk), _merge(dv)], axis=-1))
        return self.wqkv.backward(dqkv, params, qz, grads), None
