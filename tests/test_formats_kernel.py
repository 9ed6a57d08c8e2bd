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
           "mxint8", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4"]


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


MX_FLOATS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4"]


def _mx_data(rng: np.random.Generator, shape: tuple[int, ...], name: str, kind: str) -> np.ndarray:
    """float32 data aimed at one corner of MX rounding. Grid-based kinds put one element of every 32 at max_value
    * 2**s (so the block scale is 2**s, floor(log2 max_value) being emax) and the others on the element grid's
    midpoints (ties), its subnormal steps, or beyond max_value (saturation), all times 2**s."""
    fmt = get_format(name)
    x = rng.standard_normal(shape)
    if kind == "wide":
        x *= np.exp2(rng.integers(-60, 61, shape))
    elif kind in ("ties", "subnormal", "saturate"):
        s = np.exp2(rng.integers(-100, 110 - fmt.emax, shape))  # finite, unclamped scales; the anchors pick them
        sub_step = 2.0 ** (fmt.emin - fmt.man_bits)
        if kind == "ties":  # (m + 1/2) steps at a random element exponent, normal and subnormal
            e = rng.integers(fmt.emin - 1, fmt.emax + 1, shape)
            e[rng.random(shape) < 0.3] = fmt.emin - 1  # subnormal ties, frequent even for e5m2's 30 exponents
            m = rng.integers(0, 2 ** (fmt.man_bits + 1), shape)
            v = (m + 0.5) * np.exp2(np.maximum(e, fmt.emin) - fmt.man_bits)
        elif kind == "subnormal":  # multiples of a quarter subnormal step, below the smallest normal
            v = rng.integers(0, 4 * 2**fmt.man_bits, shape) * (sub_step / 4)
        else:  # between max_value and 2**(emax + 1)
            v = rng.uniform(fmt.max_value, 2.0 ** (fmt.emax + 1) * 0.999, shape)
        v = np.minimum(v, fmt.max_value if kind != "saturate" else v)
        x = np.where(rng.random(shape) < 0.5, -v, v)
        flat, sflat = x.reshape(-1), s.reshape(-1)
        flat[::32] = fmt.max_value
        x = x * np.repeat(sflat[::32], 32)[: flat.size].reshape(shape)
    elif kind == "zeros":
        x.reshape(-1)[::3] = -0.0
        x.reshape(-1)[: 70] = 0.0
    elif kind == "nonfinite":
        flat = x.reshape(-1)
        flat[5::97], flat[40::131], flat[77::151] = np.nan, np.inf, -np.inf
    elif kind == "tiny":  # float32 subnormal and near-subnormal blocks: the scale clamps at 2**-127
        x *= np.exp2(rng.integers(-150, -118, shape))
    return x.astype(np.float32)


@pytest.mark.parametrize("kind", ["normal", "wide", "ties", "subnormal", "saturate", "zeros", "nonfinite", "tiny"])
@pytest.mark.parametrize("name", MX_FLOATS)
def test_mx_float_kernel_is_bit_identical_to_numpy(name: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled MX-float kernel against numpy's fast path and the general path, along the contiguous axis and
    across it (axis -2, blocks walked in place), with shorter last blocks."""
    if not blockkernel.available():
        pytest.skip("numba is not installed (pip install -e '.[fast]')")
    rng = np.random.default_rng([MX_FLOATS.index(name), len(kind)])
    calls = []
    kernel = blockkernel.mx_float_f32_inplace
    monkeypatch.setattr(blockkernel, "mx_float_f32_inplace", lambda *a: calls.append(1) or kernel(*a))
    cases = []
    for shape in [(45,), (8, 96), (3, 7, 45), (70, 33), (5, 64, 3), (2, 96, 17)]:
        x = _mx_data(rng, shape, name, kind)
        for axis in ([-1, -2] if x.ndim >= 2 else [-1]):
            got = quantize(x, name, axis=axis)
            cases.append((x, axis, got))
    assert len(calls) == len(cases)  # every case went through the kernel
    monkeypatch.setattr(blockkernel, "available", lambda: False)
    for x, axis, got in cases:
        want = quantize(x, name, axis=axis)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (x.shape, axis)
        assert np.array_equal(got.view(np.uint32), _general(x, name, axis).view(np.uint32)), (x.shape, axis)
    if kind == "nonfinite":
        assert np.isnan(got).any()
    if kind in ("ties", "subnormal", "saturate"):  # the data reached the corner it aims at
        fmt = get_format(name)
        x, axis, got = cases[0]
        scale = np.repeat(np.abs(x[::32]) / fmt.max_value, 32)[: x.size]
        units = got / scale
        if kind == "saturate":
            assert (np.abs(units) == fmt.max_value).mean() > 0.9
        else:
            assert ((units != 0) & (np.abs(units) < 2.0**fmt.emin)).any()  # subnormal elements came out
