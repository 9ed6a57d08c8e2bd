"""The hand-written backward against finite differences (float64) and PyTorch autograd on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from sim.training import Transformer, TransformerConfig


def _setup(n_enc: int, activation: str, dropout: float, dtype: str = "float64"):
    cfg = TransformerConfig(vocab_size=11, d_model=8, n_heads=2, d_ff=16, n_encoder_layers=n_enc, n_decoder_layers=2,
                            max_len=10, dropout=dropout, label_smoothing=0.1, activation=activation, dtype=dtype)
    model = Transformer(cfg, seed=1)
    rng = np.random.default_rng(0)
    src = rng.integers(1, 11, (3, 5))
    src[0, 3:] = 0  # padding in the source
    tgt = rng.integers(1, 11, (3, 6))
    tgt[1, 4:] = 0  # and in the target
    return model, {"src": src, "tgt": tgt} if n_enc else {"tgt": tgt}


@pytest.mark.parametrize(("n_enc", "activation", "dropout"), [(1, "gelu", 0.1), (0, "relu", 0.1), (1, "relu", 0.0)])
def test_gradients_match_finite_differences(n_enc: int, activation: str, dropout: float) -> None:
    model, batch = _setup(n_enc, activation, dropout)
    state = model.rng_state()

    def loss() -> float:
        model.set_rng_state(state)  # the same dropout masks at every evaluation
        return model.loss_and_grads(batch)[0]

    model.set_rng_state(state)
    _, grads = model.loss_and_grads(batch)
    assert set(grads) == set(model.params)
    eps, checked = 1e-6, 0
    for name, p in model.params.items():
        flat = p.reshape(-1)
        for i in range(0, flat.size, max(1, flat.size // 4)):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            numeric, analytic = (up - down) / (2 * eps), grads[name].reshape(-1)[i]
            assert abs(numeric - analytic) <= 1e-6 + 1e-5 * abs(numeric), (name, i, numeric, analytic)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("n_enc", [1, 0])
def test_gradients_match_pytorch_autograd(n_enc: int) -> None:
    pytest.importorskip("torch")
    from sim.training.torch_mirror import TorchMirror

    model, batch = _setup(n_enc, "gelu", 0.0)
    loss, grads = model.loss_and_grads(batch)
    t_loss, t_grads = TorchMirror(model.config, model.params).loss_and_grads(batch)
    assert loss == pytest.approx(t_loss, rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, t_grads[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_float32_model_tracks_float64() -> None:
    m64, batch = _setup(1, "relu", 0.0)
    m32, _ = _setup(1, "relu", 0.0, dtype="float32")
    l64, g64 = m64.loss_and_grads(batch)
    l32, g32 = m32.loss_and_grads(batch)
    assert all(g.dtype == np.float32 for g in g32.values())
    assert l32 == pytest.approx(l64, rel=1e-5)
    for name in g64:
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-3, atol=1e-5, err_msg=name)
