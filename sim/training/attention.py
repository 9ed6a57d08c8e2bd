"""Multi-head attention (self or cross) with its hand-written backward.

Every GEMM operand is blocked along that GEMM's reduction axis K (docs/training.md). Forward: S = Q·Kᵀ with Q and K
at q0 along d_head; O = P·V with P at q0 along the key axis and V at q0 along the key-token axis. Stashes (q1), each
blocked along the K of the backward GEMM that reads it: Q along the query tokens (dK = dSᵀ·Q), K along the key tokens
(dQ = dS·K), V along d_head (dP = dO·Vᵀ), P along the query axis (dV = Pᵀ·dO; the softmax backward, elementwise,
reads the same stash). Backward: dO and dS are stored at q3 and re-quantized at q2 along each GEMM's own K.
"""

from __future__ import annotations

import numpy as np

from .layers import Linear, Params
from .quant import Quantizer


def _split(x: np.ndarray, h: int) -> np.ndarray:
    b, t, d = x.shape
    return x.reshape(b, t, h, d // h).transpose(0, 2, 1, 3)


def _parts(x: np.ndarray, n: int, h: int) -> np.ndarray:
    """A fused projection [B, T, n·d] as [B, T, n, h, d_head] (a view): part, head, then the head's features."""
    b, t, d = x.shape
    return x.reshape(b, t, n, h, d // (n * h))


def _heads(x5: np.ndarray, i: int) -> np.ndarray:
    """Part i of a [B, T, n, h, d_head] tensor as [B, h, T, d_head]."""
    return x5[:, :, i].transpose(0, 2, 1, 3)


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
        # Q, K, V as [B, T, part, h, d_head]: token axis 1, d_head axis -1. A fused projection is quantized at once
        # (per part along its own K), so a fixed-point format keeps one scale for the stored tensor.
        if self.cross:
            assert memory is not None
            fused = [_parts(self.wq.forward(x, params, qz), 1, self.h),
                     _parts(self.wkv.forward(memory, params, qz), 2, self.h)]
            q0_axes, stash_axes = [(-1,), (-1, 1)], [(1,), (1, -1)]  # [q], [k, v]
        else:
            fused = [_parts(self.wqkv.forward(x, params, qz), 3, self.h)]
            q0_axes, stash_axes = [(-1, -1, 1)], [(1, 1, -1)]  # [q, k, v]
        q0_parts = [qz.apply_parts("q0", f, 2, ax) for f, ax in zip(fused, q0_axes, strict=True)]
        qh, kh, vh = (_heads(t, i) for t in q0_parts for i in range(t.shape[2]))
        # scores: a GEMM output read by the softmax
        s = qz.act(qz.gemm(qh, kh.transpose(0, 1, 3, 2), "q0", "q0", ready=(True, True)))
        s *= np.asarray(self.scale, dtype=s.dtype)
        s += mask
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        p = s  # probabilities: read by the next GEMM (q0 along keys) and stashed (q1 along queries)
        ctx = _merge(qz.gemm(p, vh, "q0", "q0", ready=(False, True)))
        if qz.training:
            st_parts = [qz.apply_parts("q1", f, 2, ax) for f, ax in zip(fused, stash_axes, strict=True)]
            stashes = tuple(_heads(t, i) for t in st_parts for i in range(t.shape[2]))
            self.cache = (*stashes, qz.stash(p, axis=-2))
        return qz.act(self.wo.forward(ctx, params, qz))

    def backward(self, dy: np.ndarray, params: Params, qz: Quantizer,
                 grads: Params) -> tuple[np.ndarray, np.ndarray | None]:
        """Returns (dx, d memory); d memory is None for self-attention."""
        assert self.cache is not None
        qh, kh, vh, p = self.cache
        self.cache = None
        do = _split(self.wo.backward(dy, params, qz, grads), self.h)  # stored at q3
        dp = qz.q3(qz.gemm(do, vh.transpose(0, 1, 3, 2), "q2", "q1"))
        dv = qz.gemm(p.transpose(0, 1, 3, 2), do, "q1", "q2")
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        ds *= np.asarray(self.scale, dtype=ds.dtype)
        ds = qz.q3(ds)  # stored; each GEMM below re-quantizes it at q2 along its own K
        dq = qz.gemm(ds, kh, "q2", "q1")
        dk = qz.gemm(ds.transpose(0, 1, 3, 2), qh, "q2", "q1")
        if self.cross:
            dx = self.wq.backward(qz.q3(_merge(dq)), params, qz, grads)
            dmem = self.wkv.backward(qz.q3(np.concatenate([_merge(dk), _merge(dv)], axis=-1)), params, qz, grads)
            return dx, dmem
        dqkv = qz.q3(np.concatenate([_merge(dq), _merge(dk), _merge(dv)], axis=-1))
        return self.wqkv.backward(dqkv, params, qz, grads), None
