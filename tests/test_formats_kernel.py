"""The fast paths of block quantization (the numba kernels, and numpy's magic-number rounding without numba) give
exactly, bit for bit, what the general path gives: the moveaxis-and-pad implementation that stochastic rounding and
the fallbacks still use. Signed zeros, NaN blocks, subnormal and huge block maxima, ties, partial blocks, every
axis, and inputs that are views (transposed, sliced) included."""

from __future__ import annotations

import numpy as np
import pytest

import sim._blockkernel as blockkernel
import sim.formats as formats
from sim.formats import get_format, quantize

FORMATS = ["bfp4", "bfp3", "bfp8", "bfp16", "bfp23", "bfp24", "bfp3_b8", "bfp12_b64", "bfp5_b1", "bfp6_b100",
           "mxint8", "mxfp8_e4m3", "mxfp6_e2m3", "mxfp4"]


def _general(x: np.ndarray, name: str, axis: int) -> np.ndarray:
    """The general path of `quantize` for nearest rounding (moveaxis, zero padding, one shared exponent per row)."""
    x = np.atleast_1d(np.asarray(x))
    x = x if x.dtype == np.float64 else x.astype(np.float32)
    fmt = get_format(name)
    with np.errstate(over="ignore", invalid="ignore"):
        xb, lead, length = formats._blocked(x, axis, fmt.block_size)
        out = formats._unblocked(formats._quantize_blocks(xb, fmt, "nearest", None), lead, length, axis)
    return np.asarray(out, dtype=np.float32)


def _data(rng: np.random.Generator, shape: tuple[int, ...], kind: str, dtype: type) -> np.ndarray:
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-8, 9, shape))
    flat = x.reshape(-1)
    if kind == "zeros":
        flat[::5], flat[1::7] = 0.0, -0.0
        flat[: min(flat.size, 40)] = 0.0  # whole zero blocks
    elif kind == "subnormal":
        x *= 2.0**-135
    elif kind == "huge":
        x *= 2.0**110
    elif kind == "nonfinite":
        flat[::13], flat[3::17] = np.nan, -np.inf
    elif kind == "ties":
        x = np.round(x * 64) / 64
    return x.astype(dtype)


@pytest.fixture(params=["numba", "numpy"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "numba" and not blockkernel.available():
        pytest.skip("numba is not installed (pip install -e '.[fast]')")
    if request.param == "numpy":
        monkeypatch.setattr(blockkernel, "available", lambda: False)
    return request.param


@pytest.mark.parametrize("kind", ["normal", "zeros", "subnormal", "huge", "nonfinite", "ties"])
def test_fast_paths_are_bit_identical_to_the_general_path(backend: str, kind: str) -> None:
    rng = np.random.default_rng(["normal", "zeros", "subnormal", "huge", "nonfinite", "ties"].index(kind))
    checked = 0
    for shape in [(7,), (33,), (4, 37, 3), (6, 100), (2, 3, 11, 16), (64, 1), (1, 64)]:
        for dtype in (np.float32, np.float64):
            x = _data(rng, shape, kind, dtype)
            views = [x, x.T, np.moveaxis(x, 0, -1)] + ([x[..., ::2], x[:, 1:]] if x.ndim >= 2 else [])
            for v in (v for v in views if v.size):
                for name in FORMATS:
                    for axis in range(-v.ndim, v.ndim):
                        got, want = quantize(v, name, axis=axis), _general(v, name, axis)
                        assert got.shape == want.shape and got.dtype == np.float32
                        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (shape, v.strides, name)
                        checked += 1
    assert checked > 3000


def test_the_fast_paths_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the test above against comparing the general path with itself."""
    calls = []
    monkeypatch.setattr(formats, "_quantize_blocks", lambda *a: calls.append(a) or a[0])
    x = np.random.default_rng(0).standard_normal((32, 48)).astype(np.float32)
    for name in ("bfp4", "mxint8", "mxfp4"):
        quantize(x, name)
        quantize(x.T, name, axis=0)
    monkeypatch.setattr(blockkernel, "available", lambda: False)
    quantize(x, "bfp4", axis=0)
    assert calls == []
    quantize(x * 2.0**110, "bfp4")  # the numpy magic number would overflow: the general path takes it
    assert len(calls) == 1


def test_negative_values_that_round_to_zero_keep_their_sign(backend: str) -> None:
    x = np.array([4.0, -0.01, 0.01, -0.0] + [0.0] * 12, dtype=np.float32)
    q = quantize(x, "bfp4")
    assert q[1] == 0 and np.signbit(q[1]) and not np.signbit(q[2]) and np.signbit(q[3])
