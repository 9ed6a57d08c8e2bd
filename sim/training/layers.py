"""Layers of the reference Transformer, each with its forward and hand-written backward side by side.

A layer owns the *names* of its parameters; the arrays live in the model's `params` dict, so the optimizer's in-place
updates are seen at once. `forward` keeps what `backward` needs (quantized at q1 when it is an activation: the backward
pass uses exactly that stash); `backward(dy, ...)` adds parameter gradients into `grads` and returns dx.
"""

from __future__ import annotations

import numpy as np

from .quant import Quantizer

Params = dict[str, np.ndarray]


def _acc(grads: Params, name: str, g: np.ndarray) -> None:
    if name in grads:
        grads[name] = grads[name] + g
    else:
        grads[name] = g


class Linear:
    """y = x·W + b. Every GEMM operand is blocked along that GEMM's K: y = q0(x)·q0(W) along d_in; the stash of x at
    q1 along the token axis (dW = xᵀ·dy reduces over tokens); dx = q2(dy)·q2(W)ᵀ along d_out; dW with dy at q2 along
    the token axis. dx and dW are written at q3."""

    def __init__(self, name: str, params: Params, d_in: int, d_out: int, rng: np.random.Generator, dtype: str,
                 init_std: float | None = None) -> None:
        self.w, self.b = f"{name}.w", f"{name}.b"
        std = d_in ** -0.5 if init_std is None else init_std
        params[self.w] = (rng.standard_normal((d_in, d_out)) * std).astype(dtype)
        params[self.b] = np.zeros(d_out, dtype=dtype)
        self.x_stash: np.ndarray | None = None

    def forward(self, x: np.ndarray, params: Params, qz: Quantizer) -> np.ndarray:
        w = params[self.w]
        # One 2-D GEMM: numpy would run [B, T, d] @ W as B separate small GEMMs.
        x2 = x.reshape(-1, w.shape[0])
        y = qz.gemm(x2, w, "q0", "q0").reshape(*x.shape[:-1], w.shape[1])
        y += params[self.b]
        if qz.training:
            self.x_stash = qz.stash(x2, axis=0)  # [tokens, d_in], blocked along tokens
        return y

    def backward(self, dy: np.ndarray, params: Params, qz: Quantizer, grads: Params) -> np.ndarray:
        x = self.x_stash
        assert x is not None, "backward before a training forward"
        w = params[self.w]
        d_in, d_out = w.shape
        dy2 = dy.reshape(-1, d_out)  # the stored (q3) gradient; each GEMM re-quantizes it at q2 along its own K
        _acc(grads, self.w, qz.q3(qz.gemm(x.T, dy2, "q1", "q2")))
        # The bias gradient is a reduction over tokens, no GEMM: a GEMV beats sum(axis=0) 2x.
        _acc(grads, self.b, qz.q3(np.ones(dy2.shape[0], dtype=dy.dtype) @ dy2))
        self.x_stash = None
        return qz.q3(qz.gemm(dy2, w.T, "q2", "q2").reshape(*dy.shape[:-1], d_in))


class LayerNorm:
    """y = (x - mean) / sqrt(var + eps) · g + b over the last axis. Stashes x̂ at q1 and 1/σ per row (a statistic)."""

    def __init__(self, name: str, params: Params, d: int, dtype: str, eps: float = 1e-5) -> None:
        self.g, self.b, self.eps = f"{name}.g", f"{name}.b", eps
        params[self.g] = np.ones(d, dtype=dtype)
        params[self.b] = np.zeros(d, dtype=dtype)
        self.cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray, params: Params, qz: Quantizer) -> np.ndarray:
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        rstd = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)
        xhat = xc * rstd
        if qz.training:
            self.cache = (qz.stash(xhat), rstd)
        return xhat * params[self.g] + params[self.b]  # always read by a GEMM next: stored at q0 by that GEMM

    def backward(self, dy: np.ndarray, params: Params, qz: Quantizer, grads: Params) -> np.ndarray:
        assert self.cache is not None
        xhat, rstd = self.cache
        d = xhat.shape[-1]
        _acc(grads, self.g, qz.q3((dy * xhat).reshape(-1, d).sum(axis=0)))
        _acc(grads, self.b, qz.q3(dy.reshape(-1, d).sum(axis=0)))
        dxhat = dy * params[self.g]
        dx = dxhat - dxhat.mean(axis=-1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)
        self.cache = None
        return qz.q3(dx * rstd)


class Dropout:
    """Inverted dropout with masks drawn from the model's seeded generator (so a resumed run draws the same masks)."""

    def __init__(self, p: float) -> None:
        self.p = p
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, rng: np.random.Generator, qz: Quantizer) -> np.ndarray:
        if not qz.training or self.p == 0.0:
            self.mask = None
            return x
        keep = rng.random(x.shape, dtype=np.float32) >= self.p  # 1 bit per element: not a quantized stash
        self.mask = keep
        return x * (keep / np.asarray(1.0 - self.p, dtype=x.dtype))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return dy
        out = dy * (self.mask / np.asarray(1.0 - self.p, dtype=dy.dtype))
        self.mask = None
        return out


_GELU_C = np.sqrt(2.0 / np.pi)


class Activation:
    """ReLU or GELU (tanh form); the input is stashed at q1 (as in the trace). The output feeds a GEMM (q0 there)."""

    def __init__(self, kind: str) -> None:
        if kind not in ("relu", "gelu"):
            raise ValueError(f"unknown activation {kind!r}; choose relu or gelu")
        self.kind = kind
        self.stash: np.ndarray | None = None

    def forward(self, h: np.ndarray, qz: Quantizer) -> np.ndarray:
        if qz.training:
            self.stash = qz.stash(h)
        if self.kind == "relu":
            return np.maximum(h, 0)
        return 0.5 * h * (1.0 + np.tanh(_GELU_C * (h + 0.044715 * h ** 3)))

    def backward(self, dy: np.ndarray, qz: Quantizer) -> np.ndarray:
        s = self.stash
        assert s is not None
        self.stash = None
        if self.kind == "relu":
            return qz.q3(dy * (s > 0))
        t = np.tanh(_GELU_C * (s + 0.044715 * s ** 3))
        dt = (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * s * s)
        return qz.q3(dy * (0.5 * (1.0 + t) + 0.5 * s * dt))


class FeedForward:
    """Linear → ReLU/GELU → Linear."""

    def __init__(self, name: str, params: Params, d: int, d_ff: int, kind: str, rng: np.random.Generator,
                 dtype: str, out_std: float | None = None) -> None:
        self.fc1 = Linear(f"{name}.fc1", params, d, d_ff, rng, dtype)
        self.act = Activation(kind)
        self.fc2 = Linear(f"{name}.fc2", params, d_ff, d, rng, dtype, init_std=out_std)

    def forward(self, x: np.ndarray, params: Params, qz: Quantizer) -> np.ndarray:
        h = qz.act(self.fc1.forward(x, params, qz))
        return qz.act(self.fc2.forward(self.act.forward(h, qz), params, qz))

    def backward(self, dy: np.ndarray, params: Params, qz: Quantizer, grads: Params) -> np.ndarray:
        dh = self.act.backward(self.fc2.backward(dy, params, qz, grads), qz)
        return self.fc1.backward(dh, params, qz, grads)


class Embedding:
    """Token lookup scaled by √d. The ids are the stash (integers); dE scatters rows at q3."""

    def __init__(self, name: str, params: Params, vocab: int, d: int, rng: np.random.Generator, dtype: str) -> None:
        self.e, self.scale = f"{name}.e", float(np.sqrt(d))
        params[self.e] = (rng.standard_normal((vocab, d)) * d ** -0.5).astype(dtype)
        self.ids: np.ndarray | None = None

    def forward(self, ids: np.ndarray, params: Params, qz: Quantizer) -> np.ndarray:
        if qz.training:
            self.ids = ids
        return params[self.e][ids] * np.asarray(self.scale, dtype=params[self.e].dtype)

    def backward(self, dy: np.ndarray, params: Params, qz: Quantizer, grads: Params) -> None:
        assert self.ids is not None
        table = params[self.e]
        ids, rows = self.ids.ravel(), dy.reshape(-1, table.shape[1]) * np.asarray(self.scale, dtype=table.dtype)
        if ids.size * table.shape[0] <= 1 << 24:  # small vocabulary: one-hot GEMM, ~4x faster than np.add.at
            de = (ids[:, None] == np.arange(table.shape[0])).astype(table.dtype).T @ rows
        else:
            de = np.zeros_like(table)
            np.add.at(de, ids, rows)
        _acc(grads, self.e, qz.q3(de))
        self.ids = None


def sinusoidal_positions(max_len: int, d: int, dtype: str) -> np.ndarray:
    """The fixed sin/cos position table of Vaswani et al. (2017), [max_len, d]."""
    pos = np.arange(max_len)[:, None]
    i = np.arange(0, d, 2)[None, :]
    angle = pos / np.power(10000.0, i / d)
    table = np.zeros((max_len, d))
    table[:, 0::2] = np.sin(angle)
    table[:, 1::2] = np.cos(angle[:, : d // 2])
    return table.astype(dtype)


def cross_entropy(logits: np.ndarray, labels: np.ndarray, pad_id: int, smoothing: float) -> tuple[float, np.ndarray]:
    """Mean label-smoothed cross-entropy over non-pad labels (PyTorch's definition) and d loss / d logits."""
    v = logits.shape[-1]
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    mask = labels != pad_id
    n = max(int(mask.sum()), 1)
    nll = -np.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    smooth = -logp.mean(axis=-1)
    loss = float((((1.0 - smoothing) * nll + smoothing * smooth) * mask).sum() / n)
    target = np.full_like(logp, smoothing / v)
    np.put_along_axis(target, labels[..., None], 1.0 - smoothing + smoothing / v, axis=-1)
    dlogits = (np.exp(logp) - target) * (mask[..., None] / np.asarray(n, dtype=logits.dtype))
    return loss, dlogits.astype(logits.dtype, copy=False)
