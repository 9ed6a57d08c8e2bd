"""How a captured aten op maps onto the trace schema: its kind, its GEMM shape, its nominal FLOPs.

Only names are matched here (no torch import), so the table can be read and tested without PyTorch. `classify`
returns None for an op with no mapping: the capture then records it as a generic vector op (kind elementwise) and
warns with its name.
"""

from __future__ import annotations

from workloads.trace import GemmShape

# GEMMs: aten name -> positions of (A, B) among the op's tensor arguments and of an accumulated input C (or None).
GEMM_OPERANDS: dict[str, tuple[int, int, int | None]] = {
    "mm": (0, 1, None), "addmm": (1, 2, 0), "bmm": (0, 1, None), "baddbmm": (1, 2, 0),
}

# Ops that create a tensor from sizes or metadata only: their output is a source tensor (a step input or a constant
# made on the fly, like the builder's causal mask), with no op and no traffic.
FACTORY_OPS = frozenset({
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like", "new_zeros",
    "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "arange", "linspace", "logspace", "eye",
    "scalar_tensor", "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm",
    "tril_indices", "triu_indices", "lift_fresh", "lift_fresh_copy", "zero", "fill", "zero_", "fill_",
    "normal_", "uniform_", "bernoulli_", "random_", "_local_scalar_dense",
})

# Named kinds beyond the tags. FLOPs per output element follow workloads.builder.FLOPS_PER_ELEMENT where it has one.
_NAMED: dict[str, tuple[str, int]] = {
    "_softmax": ("softmax", 6), "_safe_softmax": ("softmax", 6), "_softmax_backward_data": ("softmax", 4),
    "_log_softmax": ("softmax", 6), "_log_softmax_backward_data": ("softmax", 4),
    "native_layer_norm": ("layernorm", 8), "native_layer_norm_backward": ("layernorm", 14),
    "_fused_rms_norm": ("layernorm", 5), "_fused_rms_norm_backward": ("layernorm", 10),
    "native_group_norm": ("layernorm", 8), "native_group_norm_backward": ("layernorm", 14),
    "native_batch_norm": ("layernorm", 8), "native_batch_norm_backward": ("layernorm", 14),
    "_native_batch_norm_legit": ("layernorm", 8), "_native_batch_norm_legit_no_training": ("layernorm", 8),
    "embedding": ("embedding", 1), "embedding_dense_backward": ("embedding", 1),
    "nll_loss_forward": ("loss", 6), "nll_loss_backward": ("loss", 1), "nll_loss2d_forward": ("loss", 6),
    "nll_loss2d_backward": ("loss", 1), "mse_loss": ("loss", 3), "mse_loss_backward": ("loss", 3),
    "binary_cross_entropy": ("loss", 6), "binary_cross_entropy_backward": ("loss", 3),
    "binary_cross_entropy_with_logits": ("loss", 8),
    "gelu": ("elementwise", 8), "gelu_backward": ("elementwise", 12), "silu": ("elementwise", 4),
    "silu_backward": ("elementwise", 6),
    # memory movement: reads and writes, no arithmetic to speak of
    "clone": ("elementwise", 0), "_to_copy": ("elementwise", 0), "copy": ("elementwise", 0),
    "copy_": ("elementwise", 0), "cat": ("elementwise", 0), "stack": ("elementwise", 0),
    "index_select": ("elementwise", 0), "gather": ("elementwise", 0), "scatter": ("elementwise", 0),
    "scatter_add": ("elementwise", 1), "scatter_add_": ("elementwise", 1), "index": ("elementwise", 0),
    "index_put": ("elementwise", 0), "index_put_": ("elementwise", 0), "index_add": ("elementwise", 1),
    "index_add_": ("elementwise", 1), "_index_put_impl_": ("elementwise", 0), "tril": ("elementwise", 0),
    "triu": ("elementwise", 0), "constant_pad_nd": ("elementwise", 0), "repeat": ("elementwise", 0),
    "roll": ("elementwise", 0), "flip": ("elementwise", 0), "masked_scatter": ("elementwise", 0),
    "slice_backward": ("elementwise", 0), "select_backward": ("elementwise", 0),
    "slice_scatter": ("elementwise", 0), "select_scatter": ("elementwise", 0), "expand_copy": ("elementwise", 0),
    "native_dropout": ("elementwise", 2), "native_dropout_backward": ("elementwise", 1),
    "cumsum": ("reduction", 1), "sort": ("reduction", 1), "topk": ("reduction", 1),
    "_scaled_dot_product_flash_attention_for_cpu": ("softmax", 6),
}


def aten_name(qualified: str) -> str:
    """'aten::addmm' / 'aten.addmm.default' -> 'addmm'."""
    name = qualified.split("::")[-1]
    if name.startswith("aten."):
        name = name[len("aten."):]
    return name.split(".")[0]


def classify(name: str, pointwise: bool, reduction: bool) -> tuple[str, int] | None:
    """(kind, nominal FLOPs per output element) of a non-GEMM aten op, or None when it has no mapping.

    `pointwise` / `reduction` are the op's torch tags (torch.Tag.pointwise, torch.Tag.reduction)."""
    if name in _NAMED:
        return _NAMED[name]
    if pointwise or name.rstrip("_") in _POINTWISE_EXTRA:
        return "elementwise", 1
    if reduction or name in _REDUCTIONS:
        return "reduction", 1
    return None


_POINTWISE_EXTRA = frozenset({"masked_fill", "where", "threshold_backward", "tanh_backward", "sigmoid_backward",
                              "clamp", "clamp_min", "clamp_max", "lerp", "addcmul", "addcdiv", "_foreach_add",
                              "_foreach_mul"})
_REDUCTIONS = frozenset({"sum", "mean", "amax", "amin", "max", "min", "prod", "var", "std", "var_mean",
                         "std_mean", "norm", "linalg_vector_norm", "logsumexp", "argmax", "argmin", "any", "all"})


def gemm_shape(name: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> GemmShape:
    """The GemmShape of mm/addmm (A[m,k] B[k,n]) or bmm/baddbmm (A[b,m,k] B[b,k,n])."""
    if name in ("mm", "addmm"):
        (m, k), (_, n) = a_shape, b_shape
        return GemmShape(1, m, k, n)
    (batch, m, k), (_, _, n) = a_shape, b_shape
    return GemmShape(batch, m, k, n)
