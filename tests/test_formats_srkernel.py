"""Stochastic rounding's random bits and its compiled kernel: the bits are splitmix64's (checked against the
generator's published first outputs), and the kernel gives exactly, bit for bit, what numpy's general path gives
with the same key, for every block format it takes, every layout and the corner cases of the block scale."""

from __future__ import annotations

import numpy as np
import pytest

import sim._blockkernel as blockkernel
import sim._srkernel as srkernel
import sim.formats as formats
from sim.formats import quantize

SR_FORMATS = ["bfp4_sr", "bfp8_sr", "bfp16_sr", "bfp3_b8_sr", "bfp6_b100_sr", "mxint8_sr", "mxfp8_e4m3_sr",
              "mxfp8_e5m2_sr", "mxfp6_e3m2_sr", "mxfp6_e2m3_sr", "mxfp4_sr"]
KINDS = ["normal", "zeros", "nonfinite", "subnormal", "tiny", "huge"]


def test_random_bits_are_splitmix64() -> None:
    """Key 0, offsets 0, 1, 2: splitmix64's first three outputs from seed 0 (Vigna's reference splitmix64.c)."""
    bits = srkernel.random_bits(np.uint64(0), np.zeros(3, np.float32))
    assert [int(b) for b in bits] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_random_bits_follow_memory_order() -> None:
    """An element's bits depend on its offset in x's memory order: a transposed view draws the bits of its base."""
    x = np.zeros((3, 5), np.float32)
    key = np.uint64(12345)
    np.testing.assert_array_equal(srkernel.random_bits(key, x.T), srkernel.random_bits(key, x).T)
    assert len(np.unique(srkernel.random_bits(key, x))) == x.size


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.PCG64DXSM, np.random.Philox,
                                           np.random.SFC64, np.random.MT19937])
def test_draw_key_is_integers_full_range(bit_generator: type) -> None:
    """`draw_key` (raw output where that is the same) gives what `integers(2**64, dtype=uint64)` gives and leaves
    the generator in the same state, between other draws (including buffered 32-bit ones)."""
    a, b = np.random.Generator(bit_generator(5)), np.random.Generator(bit_generator(5))
    for i in range(300):
        if i % 3 == 0:
            assert a.integers(10, dtype=np.uint32) == b.integers(10, dtype=np.uint32)
        if i % 5 == 0:
            assert a.random() == b.random()
        key = srkernel.draw_key(a)
        assert type(key) is np.uint64 and key == b.integers(2**64, dtype=np.uint64)
    np.testing.assert_array_equal(a.random(8), b.random(8))  # the same state after


def _data(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-6, 7, shape))
    flat = x.reshape(-1)
    if kind == "zeros":
        flat[::3] = -0.0
        flat[:70] = 0.0  # whole zero blocks
    elif kind == "nonfinite":
        flat[5::97], flat[40::131], flat[77::151] = np.nan, np.inf, -np.inf
    elif kind == "subnormal":  # block maxima in float32's subnormal range
        x *= 2.0**-140
    elif kind == "tiny":  # blocks whose integer step has no float32 reciprocal, beside ordinary ones
        x *= np.exp2(rng.choice([-130, -122, 0], shape))
    elif kind == "huge":
        x *= 2.0**100
    return x.astype(np.float32)


def _numpy_general(x: np.ndarray, name: str, axis: int, key: np.uint64) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(formats._quantize(x, formats.get_format(name), axis, "stochastic", key), np.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SR_FORMATS)
def test_sr_kernel_is_bit_identical_to_numpy(name: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Along the contiguous axis and across it, with shorter last blocks and views (transposed, sliced, reversed);
    each case draws its key as `quantize` does, and the case went through the kernel."""
    if not blockkernel.available():
        pytest.skip("numba is not installed (pip install -e '.[fast]')")
    rng = np.random.default_rng([SR_FORMATS.index(name), KINDS.index(kind)])
    calls = []
    kernel = srkernel.sr_blocks_f32_inplace
    monkeypatch.setattr(srkernel, "sr_blocks_f32_inplace", lambda *a: calls.append(1) or kernel(*a))
    checked = 0
    for shape in [(45,), (8, 96), (3, 7, 45), (70, 33), (5, 64, 3), (2, 96, 17)]:
        base = _data(rng, shape, kind)
        views = [base, base.T, base[..., ::-1]] + ([base[1:, ::2]] if base.ndim > 1 else [])
        for x in views:
            for axis in range(-x.ndim, 0):
                got = quantize(x, name, axis=axis, rng=np.random.default_rng(checked))
                key = np.random.default_rng(checked).integers(2**64, dtype=np.uint64)
                want = _numpy_general(x, name, axis, key)
                assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (shape, x.strides, axis)
                checked += 1
    assert len(calls) == checked
    if kind == "nonfinite":
        assert np.isnan(got).any()


def _padded_general(x: np.ndarray, name: str, axis: int, key: np.uint64) -> np.ndarray:
    """numpy's general path forced: the axis moved last, padded to whole blocks, `_quantize_blocks`."""
    fmt = formats.get_format(name)
    x = np.asarray(x)
    bits = srkernel.random_bits(key, x)
    with np.errstate(over="ignore", invalid="ignore"):
        xb, lead, length = formats._blocked(x, axis, fmt.block_size)
        q = formats._quantize_blocks(xb, fmt, "stochastic", formats._blocked(bits, axis, fmt.block_size)[0])
    return np.asarray(formats._unblocked(q, lead, length, axis), np.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", SR_FORMATS)
def test_short_rows_are_bit_identical_to_padded_path(name: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows shorter than a block (attention rows) skip the padding: the same bits as the padded general path, for
    float32 and float64, along every axis shorter than a block, on views; and the short path did run."""
    fmt = formats.get_format(name)
    rng = np.random.default_rng([SR_FORMATS.index(name), KINDS.index(kind), 1])
    calls = []
    short = formats._short_rows_stochastic
    monkeypatch.setattr(formats, "_short_rows_stochastic", lambda *a: calls.append(1) or short(*a))
    checked = 0
    for shape in [(5,), (6, 11, 4), (3, 2, 11, 11), (fmt.block_size - 1, 40)]:
        base = _data(rng, shape, kind)
        views = [base, base.T, base[..., ::-1], base.astype(np.float64)]
        for x in views:
            for axis in [a for a in range(x.ndim) if x.shape[a] < fmt.block_size]:
                key = np.uint64(rng.integers(2**64, dtype=np.uint64))
                with np.errstate(over="ignore", invalid="ignore"):
                    got = np.asarray(formats._quantize(x, fmt, axis, "stochastic", key), np.float32)
                want = _padded_general(x, name, axis, key)
                assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (shape, x.strides, axis)
                checked += 1
    assert checked and len(calls) == checked


def test_sr_kernel_rounds_both_ways() -> None:
    """The kernel's draws are not degenerate: a value a third of a step above a code rounds up about a third of
    the time (the unbiasedness test in test_formats_props.py checks the mean for several formats)."""
    x = np.full((2000, 32), 1.0 + 1 / 3 / 64, np.float32)  # mxint8 step 1/64 in a block of max 1
    q = quantize(x, "mxint8_sr", rng=3)
    up = (q > 1.0).mean()
    assert set(np.unique(q)) == {np.float32(1.0), np.float32(1.0 + 1 / 64)}
    assert abs(up - 1 / 3) < 0.01
