"""Quantization sits where the trace puts it: q0 forward GEMM operands, q1 stashes (used by backward), q2 backward
GEMM operands, q3 gradients written; master weights stay fp32 unless the config says otherwise. Every GEMM operand is
blocked along its GEMM's reduction axis (tests/test_reference_axes.py checks all of them)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.formats import quantize
from sim.precision import PrecisionConfig
from sim.training import Quantizer, Transformer, TransformerConfig
from sim.training.layers import Linear, cross_entropy
from sim.training.optim import Adam, AdamConfig

COARSE = "bfp3"


def _model_and_batch(n_enc: int = 1) -> tuple[Transformer, dict]:
    cfg = TransformerConfig(vocab_size=13, d_model=16, n_heads=2, d_ff=32, n_encoder_layers=n_enc,
                            n_decoder_layers=1, max_len=12, label_smoothing=0.1, activation="gelu")
    rng = np.random.default_rng(5)
    batch = {"src": rng.integers(1, 13, (4, 7)), "tgt": rng.integers(1, 13, (4, 9))}
    return Transformer(cfg, seed=2), batch


def _only(point: str, fmt: str = COARSE) -> PrecisionConfig:
    formats = {"q0": "fp32", "q1": "fp32", "q2": "fp32", "q3": "fp32", "activation": "fp32"}
    formats[point] = fmt
    return PrecisionConfig(**formats)


def _head_input_and_dlogits(model: Transformer, batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """The fp32 input h [tokens, d] of the output projection and d loss / d logits, from a plain fp32 forward."""
    qz = Quantizer(None, training=True)
    logits, labels = model._forward(batch, qz)
    h = model.out.x_stash  # the stash is [tokens, d_in]
    _, dlogits = cross_entropy(logits, labels, model.config.pad_id, model.config.label_smoothing)
    return h.reshape(-1, h.shape[-1]), dlogits.reshape(-1, dlogits.shape[-1])


def test_fp32_config_is_exactly_the_unquantized_model() -> None:
    model, batch = _model_and_batch()
    loss, grads = model.loss_and_grads(batch)
    loss32, grads32 = model.loss_and_grads(batch, PrecisionConfig.uniform("fp32"))
    assert loss == loss32
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads32[k])


def test_coarse_stash_changes_gradients_not_the_loss_and_backward_uses_the_quantized_stash() -> None:
    model, batch = _model_and_batch()
    loss, grads = model.loss_and_grads(batch)
    qloss, qgrads = model.loss_and_grads(batch, _only("q1"))
    assert qloss == loss  # q1 only touches what the backward pass reads
    differing = [k for k in grads if not np.allclose(grads[k], qgrads[k], rtol=1e-3, atol=1e-6)]
    assert len(differing) > len(grads) // 2
    h, dlogits = _head_input_and_dlogits(model, batch)
    by_hand = quantize(h, COARSE, axis=0).T @ dlogits  # dW of the output projection: stash blocked along tokens
    np.testing.assert_allclose(qgrads["out.w"], by_hand, rtol=1e-5, atol=1e-7)
    wrong_axis = quantize(h, COARSE, axis=-1).T @ dlogits
    assert not np.allclose(qgrads["out.w"], wrong_axis, rtol=1e-3, atol=1e-6)
    assert not np.allclose(by_hand, h.T @ dlogits, rtol=1e-2)
    np.testing.assert_allclose(grads["out.w"], h.T @ dlogits, rtol=1e-5, atol=1e-7)


def test_q2_quantizes_the_backward_gemm_operands() -> None:
    model, batch = _model_and_batch()
    _, qgrads = model.loss_and_grads(batch, _only("q2"))
    h, dlogits = _head_input_and_dlogits(model, batch)
    # dW = xᵀ·dy reduces over tokens: dy at q2 blocked along the token axis
    np.testing.assert_allclose(qgrads["out.w"], h.T @ quantize(dlogits, COARSE, axis=0), rtol=1e-5, atol=1e-7)
    assert not np.allclose(qgrads["out.w"], h.T @ quantize(dlogits, COARSE, axis=-1), rtol=1e-3, atol=1e-6)


def test_linear_backward_requantizes_the_stored_gradient_along_each_gemms_k() -> None:
    """dx = q2(dy)·q2(W)ᵀ blocked along d_out; dW = q1(x)ᵀ·q2(dy) blocked along tokens: two quantizations of dy."""
    rng = np.random.default_rng(3)
    params: dict = {}
    lin = Linear("l", params, 24, 40, rng, "float32")
    params["l.w"] = rng.standard_normal((24, 40)).astype(np.float32)  # no accidental structure in the weights
    config = PrecisionConfig("fp32", "bfp4", "bfp3", "fp32", activation="fp32")
    qz = Quantizer(config)
    x = rng.standard_normal((3, 11, 24)).astype(np.float32)
    dy = rng.standard_normal((3, 11, 40)).astype(np.float32)
    lin.forward(x, params, qz)
    grads: dict = {}
    dx = lin.backward(dy, params, qz, grads)
    x2, dy2, w = x.reshape(-1, 24), dy.reshape(-1, 40), params["l.w"]
    expected_dx = quantize(dy2, "bfp3", axis=-1) @ quantize(w, "bfp3", axis=1).T
    np.testing.assert_allclose(dx.reshape(-1, 24), expected_dx, rtol=1e-5, atol=1e-6)
    wrong_axis = quantize(dy2, "bfp3", axis=-1) @ quantize(w, "bfp3", axis=0).T
    assert not np.allclose(dx.reshape(-1, 24), wrong_axis, rtol=1e-3, atol=1e-5)
    expected_dw = quantize(x2, "bfp4", axis=0).T @ quantize(dy2, "bfp3", axis=0)
    np.testing.assert_allclose(grads["l.w"], expected_dw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["l.b"], dy2.sum(axis=0), rtol=1e-5, atol=1e-5)  # a reduction of stored dy


def test_q3_puts_every_gradient_on_the_format_grid() -> None:
    model, batch = _model_and_batch()
    _, grads = model.loss_and_grads(batch)
    _, qgrads = model.loss_and_grads(batch, _only("q3"))
    for k, g in qgrads.items():
        np.testing.assert_array_equal(quantize(g, COARSE, axis=-1), g, err_msg=k)
    assert any(not np.allclose(grads[k], qgrads[k], rtol=1e-2) for k in grads)


@pytest.mark.parametrize("point", ["q0", "activation"])
def test_forward_formats_change_the_loss(point: str) -> None:
    model, batch = _model_and_batch()
    loss, _ = model.loss_and_grads(batch)
    qloss, _ = model.loss_and_grads(batch, _only(point))
    assert qloss != pytest.approx(loss, rel=1e-4)


def test_q0_quantizes_forward_gemm_operands() -> None:
    """Decoder-only, one layer: the logits are q0(h)·q0(W) + b, checked against the model's eval loss."""
    model, batch = _model_and_batch(n_enc=0)
    config = _only("q0")
    qz = Quantizer(config, training=True)
    logits, _ = model._forward(batch, qz)
    h = model.out.x_stash  # q1 is fp32 here: the stash is h itself, [tokens, d_in]
    w = model.params["out.w"]
    expected = quantize(h, COARSE, axis=-1) @ quantize(w, COARSE, axis=0) + model.params["out.b"]  # along d_in
    np.testing.assert_allclose(logits.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)


def test_master_weights_stay_fp32_and_follow_a_master_format_when_asked() -> None:
    model, batch = _model_and_batch()
    _, grads = model.loss_and_grads(batch)
    opt = Adam(model.params, AdamConfig(lr=1e-2, warmup_steps=1), total_steps=10)
    opt.step(grads, PrecisionConfig.uniform(COARSE))
    w = model.params["out.w"]
    assert w.dtype == np.float32 and not np.array_equal(quantize(w, "bf16"), w)  # master is fp32 by default
    opt.step(grads, PrecisionConfig("fp32", "fp32", "fp32", "fp32", master="bf16"))
    for k, p in model.params.items():
        np.testing.assert_array_equal(quantize(p, "bf16"), p, err_msg=k)


def test_stochastically_rounded_master_weights_draw_per_run_seed() -> None:
    """A `_sr` master format rounds with bits from the run's seed and the step: the same seed repeats the update
    bit for bit, another seed rounds differently (the stream used to depend on the step alone)."""
    def updated(seed: int) -> dict[str, np.ndarray]:
        model, batch = _model_and_batch()
        _, grads = model.loss_and_grads(batch)
        opt = Adam(model.params, AdamConfig(lr=1e-2, warmup_steps=1), total_steps=10, seed=seed)
        opt.step(grads, PrecisionConfig("fp32", "fp32", "fp32", "fp32", master="bf16_sr"))
        return model.params

    a, again, other = updated(0), updated(0), updated(1)
    for k in a:
        np.testing.assert_array_equal(a[k], again[k], err_msg=k)
        np.testing.assert_array_equal(quantize(a[k], "bf16"), a[k], err_msg=k)  # on the bf16 grid
    assert any(not np.array_equal(a[k], other[k]) for k in a)
