"""The tape that turns forward ops into a full training step (forward, loss, backward, optimizer).

Each forward primitive emits its op and records how to emit its backward; `finish()` replays that record in reverse,
then adds one Adam op per parameter tensor. Conventions (also in docs/counting.md):
- GEMM with a weight: inputs[0] = A[M,K] activation, inputs[1] = B[K,N] weight, optional inputs[2] = bias (forward)
  or the partial gradient being accumulated into (backward). `bmm` (attention) has batch = batch x heads.
- GEMMs read weights through low-precision copies (role weight_copy, source = the fp32 master): `W@q0` blocked along
  the forward GEMM's reduction axis, `W@q2` along the input-gradient GEMM's. The Adam op that updates the master
  writes them, as mixed-precision frameworks do; where a configuration stores a copy exactly as its source it is the
  source (no write; `sim.storage`).
- A value the backward pass needs is stashed (role stashed_activation, point q1, source = the value) by the op that
  *produces* it, blocked along the reduction axis of the backward GEMM that reads it (elementwise readers take any
  blocking); a value already stashed with that blocking is not written again.
- Forward GEMM operands are read at q0, backward GEMM dy and W at q2, stashes at q1, gradients written at q3.
  A tensor is stored in one format (its own point's, or its role's); an operand's point is the precision the op
  computes at, e.g. a backward GEMM reads the gradient as stored at q3 and quantizes it to q2 on chip.
- A gradient reaching a tensor a second time is accumulated by the backward op that produces it (it reads the partial
  gradient and writes a new one); the residual add's backward is free (both inputs take the output's gradient).
- FLOPs: 2 per MAC; other ops use the nominal per-element counts in FLOPS_PER_ELEMENT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from workloads.trace import GemmShape, Op, Operand, Tensor, Trace

# Nominal FLOPs per element (forward, backward). Only the GEMMs dominate; these keep the vector ops non-zero.
FLOPS_PER_ELEMENT = {
    "add": (1, 0), "gelu": (8, 12), "relu": (1, 1), "swiglu": (6, 10), "rope": (3, 3),
    "softmax": (6, 4), "layernorm": (8, 14), "rmsnorm": (5, 10), "embedding": (1, 1),
    "cross_entropy": (6, 0), "adam": (12, 0), "bias_grad": (1, 0),
}


def _q(name: str, point: str | None = None) -> Operand:
    return Operand(name, point)


class TraceBuilder:
    """Accumulates tensors and ops; forward helpers return the name of the tensor they produce."""

    def __init__(self, workload: str, spec: dict, batch: int, seq_len: int) -> None:
        self.trace = Trace(workload=workload, spec=spec, batch=batch, seq_len=seq_len)
        self.phase = "forward"
        self.layer: int | None = None
        self.weights: list[str] = []
        self._tape: list[tuple[int | None, Callable[[], None]]] = []
        self._stash: dict[str, str] = {}                 # value -> its stash
        self._stash_axis_free: set[str] = set()          # stashes no GEMM has fixed the blocking of yet
        self._producer: dict[str, int] = {}              # forward tensor -> index of the op that wrote it
        self._copies: dict[str, list[str]] = {}          # master weight -> its low-precision copies
        self._grad: dict[str, str] = {}
        self._grad_versions: dict[str, int] = {}
        self._q0_reads: set[str] = set()

    # ---- tensors and ops -------------------------------------------------------------------------------------
    def tensor(self, name: str, shape: tuple[int, ...], role: str, point: str | None = None, block_axis: int = -1,
               source: str | None = None) -> str:
        assert name not in self.trace.tensors, f"duplicate tensor {name}"
        self.trace.tensors[name] = Tensor(name, tuple(int(s) for s in shape), role, point, block_axis, source)
        return name

    def _set_axis(self, name: str, block_axis: int) -> None:
        self.trace.tensors[name] = replace(self.trace.tensors[name], block_axis=block_axis)

    def weight_copy(self, w: str, point: str, block_axis: int) -> str:
        """The low-precision copy of master weight `w` that GEMMs read at `point`, written by w's optimizer op."""
        name = f"{w}@{point}"
        if name not in self.trace.tensors:
            self.tensor(name, self.shape(w), "weight_copy", point, block_axis, source=w)
            self._copies.setdefault(w, []).append(name)
        return name

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        self.weights.append(self.tensor(name, shape, "weight"))
        return name

    def shape(self, name: str) -> tuple[int, ...]:
        return self.trace.tensors[name].shape

    def op(self, name: str, kind: str, inputs: list[Operand], outputs: list[Operand], flops: int,
           gemm: GemmShape | None = None) -> None:
        macs = gemm.macs if gemm else 0
        if self.phase == "forward" and kind in ("gemm", "bmm"):
            self._q0_reads.update(o.tensor for o in inputs[:2] if self.trace.tensors[o.tensor].role == "activation")
        if self.phase == "forward":
            for o in outputs:
                self._producer.setdefault(o.tensor, len(self.trace.ops))
        self.trace.ops.append(Op(name, kind, self.phase, self.layer, tuple(inputs), tuple(outputs), macs,
                                 flops + 2 * macs, gemm))

    def on_backward(self, fn: Callable[[], None]) -> None:
        self._tape.append((self.layer, fn))

    # ---- stashes and gradients -------------------------------------------------------------------------------
    def stash(self, x: str, block_axis: int | None = None) -> list[Operand]:
        """Save `x` for the backward pass, blocked along `block_axis` (the reduction axis of the backward GEMM that
        reads it; None: an elementwise reader, any blocking). The op that produced `x` writes the stash (it holds
        x at full precision); returns the extra output for the calling op only when x has no producer yet."""
        if x in self._stash:
            s = self._stash[x]
            if block_axis is not None and s in self._stash_axis_free:
                self._set_axis(s, block_axis)
                self._stash_axis_free.discard(s)
            elif block_axis is not None and self.trace.tensors[s].block_axis != block_axis:
                raise AssertionError(f"{x} is stashed blocked along two axes; no model here needs that")
            return []
        s = self._stash[x] = self.tensor(f"{x}.stash", self.shape(x), "stashed_activation", "q1",
                                         -1 if block_axis is None else block_axis, source=x)
        if block_axis is None:
            self._stash_axis_free.add(s)
        producer = self._producer.get(x)
        if producer is None:
            return [_q(s, "q1")]
        op = self.trace.ops[producer]
        self.trace.ops[producer] = replace(op, outputs=(*op.outputs, _q(s, "q1")))
        return []

    def stashed(self, x: str) -> Operand:
        return _q(self._stash[x], "q1")

    def grad(self, x: str) -> str | None:
        return self._grad.get(x)

    def grad_out(self, x: str) -> tuple[Operand, list[Operand]]:
        """(output operand for x's gradient, extra inputs): a fresh tensor, or accumulate into the partial one."""
        prev = self._grad.get(x)
        role = "weight_grad" if self.trace.tensors[x].role == "weight" else "activation_grad"
        if prev is None:
            self._grad[x] = self.tensor(f"d.{x}", self.shape(x), role, "q3")
            return _q(self._grad[x], "q3"), []
        if role == "weight_grad":  # one gradient tensor per weight, accumulated in place (tied embeddings)
            return _q(prev, "q3"), [_q(prev, "q3")]
        version = self._grad_versions.get(x, 0) + 1
        self._grad_versions[x] = version
        self._grad[x] = self.tensor(f"d.{x}#{version}", self.shape(x), role, "q3")
        return _q(self._grad[x], "q3"), [_q(prev, "q3")]

    def alias_grad(self, x: str, g: str) -> None:
        """x's gradient is (also) g: free if x has none yet, else an explicit add."""
        if x not in self._grad:
            self._grad[x] = g
            return
        out, acc = self.grad_out(x)
        self.op(f"{x}.grad_add", "elementwise", [_q(g, "q3"), *acc], [out], self.trace.tensors[g].elements)

    # ---- forward primitives ----------------------------------------------------------------------------------
    def linear(self, name: str, x: str, w: str, out_features: int, bias: str | None = None,
               w_transposed: bool = False) -> str:
        """y[M,N] = x[M,K] . W[K,N] (+ b). `w_transposed`: w is a tied table stored as [N,K], read as B[K,N]."""
        rows, in_features = self.shape(x)
        y = self.tensor(name, (rows, out_features), "activation")
        extra = [_q(bias)] if bias else []
        # forward reduces over K, dx = dy.W^T over N: the axis each copy is blocked along, in W's stored shape
        w_q0 = self.weight_copy(w, "q0", -1 if w_transposed else -2)
        w_q2 = self.weight_copy(w, "q2", -2 if w_transposed else -1)
        self.op(name, "gemm", [_q(x, "q0"), _q(w_q0, "q0"), *extra], [_q(y), *self.stash(x, -2)],
                rows * out_features if bias else 0, GemmShape(1, rows, in_features, out_features))

        def backward() -> None:
            dy = self.grad(y)
            if dy is None:
                return
            dx, acc = self.grad_out(x)
            self.op(f"{name}.dx", "gemm", [_q(dy, "q2"), _q(w_q2, "q2"), *acc], [dx], 0,
                    GemmShape(1, rows, out_features, in_features))
            dw, acc = self.grad_out(w)
            self.op(f"{name}.dW", "gemm", [self.stashed(x), _q(dy, "q2"), *acc], [dw], 0,
                    GemmShape(1, in_features, rows, out_features))
            if bias:
                db, acc = self.grad_out(bias)
                self.op(f"{name}.db", "reduction", [_q(dy, "q3"), *acc], [db], rows * out_features)

        self.on_backward(backward)
        return y

    def bmm(self, name: str, a: str, b: str, g: GemmShape, out_shape: tuple[int, ...], b_transposed: bool) -> str:
        """Batched C = A . B (attention); both operands are stashed for the backward pass. A is stored [.., m, k];
        B as [.., n, k] when `b_transposed` (K in S = Q.K^T), else [.., k, n] (V in O = P.V)."""
        y = self.tensor(name, out_shape, "activation")
        if not b_transposed:  # B's producer stores it blocked along k, the reduction axis here
            self._set_axis(b, -2)
        # dB = A^T.dC reduces over m (A's axis -2); dA = dC.B^T over n
        stashes = [*self.stash(a, -2), *self.stash(b, -2 if b_transposed else -1)]
        self.op(name, "bmm", [_q(a, "q0"), _q(b, "q0")], [_q(y), *stashes], 0, g)

        def backward() -> None:
            dy = self.grad(y)
            if dy is None:
                return
            da, acc = self.grad_out(a)  # dA = dC . B^T
            self.op(f"{name}.dA", "bmm", [_q(dy, "q2"), self.stashed(b), *acc], [da], 0,
                    GemmShape(g.batch, g.m, g.n, g.k))
            db, acc = self.grad_out(b)  # dB = A^T . dC
            self.op(f"{name}.dB", "bmm", [self.stashed(a), _q(dy, "q2"), *acc], [db], 0,
                    GemmShape(g.batch, g.k, g.m, g.n))

        self.on_backward(backward)
        return y

    def elementwise(self, name: str, fn: str, xs: list[str], out_shapes: list[tuple[int, ...]],
                    save: Sequence[str] = (), reads: Sequence[str] = ()) -> list[str]:
        """A pointwise op over xs; `save` are inputs its backward needs (stashed), `reads` inputs without a gradient
        (e.g. a mask). Backward reads the outputs' gradients and the stashes, writes the inputs' gradients."""
        fwd, bwd = FLOPS_PER_ELEMENT[fn]
        outs = [self.tensor(name if len(out_shapes) == 1 else f"{name}.{i}", s, "activation")
                for i, s in enumerate(out_shapes)]
        elements = sum(self.trace.tensors[o].elements for o in outs)
        stash_ops = [o for x in save for o in self.stash(x, None)]
        self.op(name, "elementwise", [_q(x) for x in [*xs, *reads]], [*(_q(o) for o in outs), *stash_ops],
                fwd * elements)

        def backward() -> None:
            dys = [self.grad(o) for o in outs]
            if all(d is None for d in dys):
                return
            ins = [_q(d, "q3") for d in dys if d is not None] + [self.stashed(x) for x in save]
            outs_grad, acc_all = [], []
            for x in xs:
                dx, acc = self.grad_out(x)
                outs_grad.append(dx)
                acc_all += acc
            self.op(f"{name}.bwd", "elementwise", [*ins, *acc_all], outs_grad, bwd * elements)

        self.on_backward(backward)
        return outs

    def residual_add(self, name: str, a: str, b: str) -> str:
        y = self.tensor(name, self.shape(a), "activation")
        self.op(name, "elementwise", [_q(a), _q(b)], [_q(y)], self.trace.tensors[y].elements)

        def backward() -> None:
            dy = self.grad(y)
            if dy is not None:
                self.alias_grad(a, dy)
                self.alias_grad(b, dy)

        self.on_backward(backward)
        return y

    def softmax(self, name: str, s: str, mask: str | None = None) -> str:
        """Softmax over the last axis with the scale and mask folded in; it saves its output for backward."""
        fwd, bwd = FLOPS_PER_ELEMENT["softmax"]
        p = self.tensor(name, self.shape(s), "activation")
        n = self.trace.tensors[p].elements
        extra = [_q(mask)] if mask else []
        self.op(name, "softmax", [_q(s), *extra], [_q(p), *self.stash(p, None)], fwd * n + (n if mask else 0))

        def backward() -> None:
            dp = self.grad(p)
            if dp is None:
                return
            ds, acc = self.grad_out(s)
            self.op(f"{name}.bwd", "softmax", [_q(dp, "q3"), self.stashed(p), *acc], [ds], bwd * n)

        self.on_backward(backward)
        return p

    def norm(self, name: str, x: str, kind: str, bias: bool) -> str:
        """LayerNorm (gamma, beta) or RMSNorm (gamma); it saves its input for backward."""
        fwd, bwd = FLOPS_PER_ELEMENT[kind]
        width = self.shape(x)[-1]
        params = [self.weight(f"{name}.gamma", (width,))]
        if bias and kind == "layernorm":
            params.append(self.weight(f"{name}.beta", (width,)))
        y = self.tensor(name, self.shape(x), "activation")
        n = self.trace.tensors[y].elements
        self.op(name, "layernorm", [_q(x), *(_q(p) for p in params)], [_q(y), *self.stash(x, None)], fwd * n)

        def backward() -> None:
            dy = self.grad(y)
            if dy is None:
                return
            dx, acc = self.grad_out(x)
            pgrads = []
            for p in params:
                dp, pacc = self.grad_out(p)
                pgrads.append(dp)
                acc += pacc
            self.op(f"{name}.bwd", "layernorm", [_q(dy, "q3"), self.stashed(x), *(_q(p) for p in params), *acc],
                    [dx, *pgrads], bwd * n)

        self.on_backward(backward)
        return y

    def embedding(self, name: str, ids: str, tables: list[str], width: int, extra_ids: Sequence[str] = (),
                  flops_per_element: int = 0, distinct_rows: Sequence[int] | None = None) -> str:
        """Sum of table lookups (token, position, type). A lookup gathers the rows its ids name, at most one per
        token and at most `distinct_rows[i]` from table i, so it reads those rows, not the whole table; the
        gradient is a dense table, as frameworks keep it."""
        rows = self.shape(ids)[0]
        y = self.tensor(name, (rows, width), "activation")
        n = rows * width
        limits = distinct_rows or [rows] * len(tables)
        gathers = [Operand(t, None, min(rows, lim, self.shape(t)[0]) * width) for t, lim in zip(tables, limits,
                                                                                                   strict=True)]
        self.op(name, "embedding", [_q(ids), *(_q(i) for i in extra_ids), *gathers], [_q(y)],
                n * (max(len(tables) - 1, 0) + flops_per_element))

        def backward() -> None:
            dy = self.grad(y)
            if dy is None:
                return
            outs, acc = [], []
            for t in tables:
                dt, tacc = self.grad_out(t)
                outs.append(dt)
                acc += tacc
            self.op(f"{name}.bwd", "embedding", [_q(dy, "q3"), _q(ids), *(_q(i) for i in extra_ids), *acc], outs,
                    n * len(tables) * FLOPS_PER_ELEMENT["embedding"][1])

        self.on_backward(backward)
        return y

    # ---- loss, backward, optimizer ---------------------------------------------------------------------------
    def cross_entropy(self, logits: str, labels: str) -> None:
        """Fused softmax + cross-entropy: writes the loss and the logits' gradient in one pass."""
        self.phase, self.layer = "loss", None
        loss = self.tensor("loss", (1,), "activation")
        dlogits, _ = self.grad_out(logits)
        self.op("cross_entropy", "loss", [_q(logits), _q(labels)], [_q(loss), dlogits],
                FLOPS_PER_ELEMENT["cross_entropy"][0] * self.trace.tensors[logits].elements)

    def finish(self) -> Trace:
        self.phase = "backward"
        for layer, fn in reversed(self._tape):
            self.layer = layer
            fn()
        self.phase, self.layer = "optimizer", None
        for w in self.weights:
            m = self.tensor(f"{w}.adam_m", self.shape(w), "optimizer_state")
            v = self.tensor(f"{w}.adam_v", self.shape(w), "optimizer_state")
            g = self._grad[w]
            copies = [_q(c, self.trace.tensors[c].dsq_point) for c in self._copies.get(w, ())]
            self.op(f"{w}.adam", "optimizer", [_q(w), _q(g, "q3"), _q(m), _q(v)], [_q(w), _q(m), _q(v), *copies],
                    FLOPS_PER_ELEMENT["adam"][0] * self.trace.tensors[w].elements)
        self._mark_q0()
        return self.trace

    def _mark_q0(self) -> None:
        """Activations that feed a forward GEMM are stored at q0: their writes and other reads use q0 too."""
        q0 = self._q0_reads
        t = self.trace
        for name in q0:
            t.tensors[name] = replace(t.tensors[name], dsq_point="q0")

        def fix(ops: tuple[Operand, ...]) -> tuple[Operand, ...]:
            return tuple(Operand(o.tensor, "q0") if o.point is None and o.tensor in q0 else o for o in ops)

        t.ops = [op if not any(o.tensor in q0 for o in (*op.inputs, *op.outputs))
                 else replace(op, inputs=fix(op.inputs), outputs=fix(op.outputs))
                 for op in t.ops]
