"""Every GEMM of the reference model (forward and backward) reads operands with one shared exponent per block along
that GEMM's reduction axis K: a's last axis and b's second to last in a @ b (docs/training.md). The GEMMs are
intercepted where they run (`sim.training.quant._matmul`), so an operand quantized along the wrong axis, or a GEMM
that bypasses the helper, fails."""

from __future__ import annotations

import numpy as np
import pytest

import sim.training.quant as quant
from sim.formats import quantize
from sim.precision import PrecisionConfig
from sim.training import Transformer, TransformerConfig

# Distinct formats per point, all with blocks; mxfp4 and mxint8 are coarse enough that a block along another axis
# moves some value (an fp8 element is often exact along any axis).
CONFIGS = {
    "bfp": PrecisionConfig("bfp4", "bfp3", "bfp5", "bfp8", activation="fp32"),
    "mx": PrecisionConfig("mxfp4", "mxint8", "mxfp6_e2m3", "mxfp8_e4m3", activation="fp32"),
}


def _record(monkeypatch) -> list[tuple[np.ndarray, np.ndarray, str, str]]:
    calls: list[tuple[np.ndarray, np.ndarray, str, str]] = []
    real = quant._matmul

    def spy(a: np.ndarray, b: np.ndarray, a_point: str, b_point: str) -> np.ndarray:
        calls.append((a.copy(), b.copy(), a_point, b_point))
        return real(a, b, a_point, b_point)

    monkeypatch.setattr(quant, "_matmul", spy)
    return calls


def _blocks_along(x: np.ndarray, fmt: str, axis: int) -> bool:
    """x is exactly representable with one shared exponent per block along `axis`."""
    return np.array_equal(quantize(x, fmt, axis=axis), x)


@pytest.mark.parametrize("n_enc", [1, 0])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_gemm_operand_is_blocked_along_k(monkeypatch, name: str, n_enc: int) -> None:
    config = CONFIGS[name]
    cfg = TransformerConfig(vocab_size=37, d_model=64, n_heads=2, d_ff=96, n_encoder_layers=n_enc,
                            n_decoder_layers=1, max_len=16, label_smoothing=0.1, activation="gelu")
    model = Transformer(cfg, seed=4)
    rng = np.random.default_rng(8)
    batch = {"src": rng.integers(1, 37, (5, 9)), "tgt": rng.integers(1, 37, (5, 13))}
    calls = _record(monkeypatch)
    model.loss_and_grads(batch, config)
    linears = sum(k.endswith(".w") for k in model.params)
    attentions = sum(k.endswith(".o.w") for k in model.params)
    assert len(calls) == 3 * linears + 6 * attentions  # y, dx, dW per linear; S, O, dP, dV, dQ, dK per attention
    fmt = {p: config.format_at(p, "activation").name for p in ("q0", "q1", "q2")}
    for i, (a, b, pa, pb) in enumerate(calls):
        assert a.shape[-1] == b.shape[-2]
        for operand, point, k_axis, other_axis in ((a, pa, -1, -2), (b, pb, -2, -1)):
            where = f"GEMM {i}, {point} operand {operand.shape}"
            assert _blocks_along(operand, fmt[point], k_axis), f"{where} is not blocked along K"
            assert not _blocks_along(operand, fmt[point], other_axis), f"{where} is also blocked across K"


def test_points_of_the_gemms_follow_the_access_semantics(monkeypatch) -> None:
    """Forward GEMMs read q0 operands; backward GEMMs read q2 gradients/weights and q1 stashes."""
    cfg = TransformerConfig(vocab_size=11, d_model=16, n_heads=2, d_ff=32, n_encoder_layers=0, n_decoder_layers=1,
                            max_len=8)
    model = Transformer(cfg, seed=0)
    calls = _record(monkeypatch)
    model.loss_and_grads({"tgt": np.random.default_rng(0).integers(1, 11, (2, 7))}, CONFIGS["bfp"])
    points = sorted((pa, pb) for _, _, pa, pb in calls)
    linears, attentions = 5, 1  # qkv, o, fc1, fc2, out
    expected = ([("q0", "q0")] * (linears + 2 * attentions) + [("q1", "q2")] * (linears + attentions)
                + [("q2", "q1")] * 3 * attentions + [("q2", "q2")] * linears)
    assert points == sorted(expected)
