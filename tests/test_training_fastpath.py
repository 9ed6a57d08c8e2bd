"""The fast quantizer paths change no number of a training run: a few quantized steps of each task's default model
(MX integer and MX float formats, so both compiled kernels run) give bit-identical losses and weights with the
compiled kernel, with numpy's fast path and with the general moveaxis-and-pad path. And blocking along axis -2 (a
GEMM's K for its right operand), in place on the caller's array or into a copy, equals the moveaxis route."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import sim._blockkernel as blockkernel
import sim.formats as formats
from sim.formats import get_format, quantize
from sim.precision import PrecisionConfig
from sim.training.model import Transformer
from sim.training.optim import Adam
from sim.training.tasks import get_task


def _general(x: np.ndarray, name: str, axis: int) -> np.ndarray:
    """Blocks by moveaxis to the last axis, padding, one shared exponent per row: the reference implementation."""
    fmt = get_format(name)
    with np.errstate(over="ignore", invalid="ignore"):
        xb, lead, length = formats._blocked(x, axis, fmt.block_size)
        return np.asarray(formats._unblocked(formats._quantize_blocks(xb, fmt, "nearest", None), lead, length, axis))


def _formats_of(precision: PrecisionConfig) -> set[str]:
    """The block formats (bfp, mx) a precision configuration names."""
    return {n for n in precision.to_dict().values() if get_format(n).block_size}


# Integer-code MX (mxint8) and MX float (mxfp6_e2m3) points: each compiled kernel has work to do
MIXED = PrecisionConfig("mxint8", "mxfp6_e2m3", "mxint8", "mxfp6_e2m3", activation="mxint8")


def _run(task_name: str, steps: int) -> tuple[list[float], dict[str, np.ndarray]]:
    task = get_task(task_name)
    precision = MIXED
    model = Transformer(task.model_config(), seed=0)
    opt = Adam(model.params, task.adam_config(), total_steps=10_000)
    rng = np.random.default_rng(0)
    losses = []
    with threadpool_limits(limits=1, user_api="blas"):  # as training runs: BLAS threads spin on small GEMMs
        for _ in range(steps):
            loss, grads = model.loss_and_grads(task.sample_batch(rng), precision)
            opt.step(grads, precision)
            losses.append(loss)
    return losses, model.params


@pytest.mark.parametrize("task_name", ["numwords", "shakespeare"])
def test_quantized_steps_are_bit_identical_on_every_quantizer_path(task_name: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runs = {}
    if blockkernel.available():
        calls = {"int_codes_f32_inplace": [], "mx_float_f32_inplace": []}
        for kernel_name, log in calls.items():
            kernel = getattr(blockkernel, kernel_name)
            monkeypatch.setattr(blockkernel, kernel_name, lambda *a, k=kernel, log=log: log.append(1) or k(*a))
        runs["numba"] = _run(task_name, 2)
        assert {get_format(n).exp_bits > 0 for n in _formats_of(MIXED)} == {True, False}
        assert len(calls["mx_float_f32_inplace"]) > 20  # the kernels did the work
        assert len(calls["int_codes_f32_inplace"]) > 20
        monkeypatch.undo()
    monkeypatch.setattr(blockkernel, "available", lambda: False)
    runs["numpy"] = _run(task_name, 2)
    monkeypatch.setattr(formats, "_quantize_blocks_nearest", lambda *a: None)
    runs["general"] = _run(task_name, 2)
    want_losses, want_params = runs.pop("general")
    for name, (losses, params) in runs.items():
        assert np.array_equal(np.array(losses), np.array(want_losses)), name
        for key, w in want_params.items():
            assert np.array_equal(params[key].view(np.uint32), w.view(np.uint32)), (name, key)


@pytest.mark.parametrize("shape", [(64, 11, 64), (704, 256), (3, 37, 20), (5, 16, 1), (2, 4, 7, 33)])
@pytest.mark.parametrize("name", ["bfp4", "bfp3", "bfp8", "mxint8", "mxfp6_e2m3", "mxfp4", "mxfp8_e5m2"])
def test_axis_minus2_in_place_and_copied_equals_moveaxis(shape: tuple[int, ...], name: str) -> None:
    rng = np.random.default_rng(len(shape))
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-6, 7, shape))).astype(np.float32)
    x.reshape(-1)[::9] = -0.0
    want = _general(x, name, -2)
    got = quantize(x, name, axis=-2)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    for view in (x, np.swapaxes(x, -1, -2)):  # blocks across the contiguous axis, then along it
        axis = -2 if view is x else -1
        if not blockkernel.available():
            continue
        y = view.copy(order="K")
        out = formats._kernel_blocks(y, get_format(name), axis, inplace=True)
        assert out is y  # quantized where it lies
        assert np.array_equal(y.view(np.uint32), _general(view, name, axis).view(np.uint32))
