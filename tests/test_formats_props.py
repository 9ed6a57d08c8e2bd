"""Properties of the quantizer (hypothesis): idempotence, error bounds, monotonicity, zero/NaN blocks, and an
unbiasedness test of stochastic rounding with a tolerance derived from its variance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim.formats import get_format, quantize

FORMATS = ["bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1", "fixed8", "fixed4", "bfp4", "bfp8", "bfp3_b8",
           "mxint8", "mxfp8_e4m3", "mxfp6_e2m3", "mxfp4"]
# No float32 subnormal inputs: a fixed-point tensor whose max is subnormal has a step below float32's (documented).
finite32 = st.floats(min_value=-(2.0**100), max_value=2.0**100, allow_nan=False, allow_infinity=False, width=32,
                     allow_subnormal=False)
vectors = arrays(np.float32, st.integers(1, 80), elements=finite32)
SETTINGS = settings(max_examples=25, deadline=None)


def step_of(x: np.ndarray, fmt_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(spacing of the format around each element, largest magnitude representable there), computed
    independently with frexp in float64. Blocks run along the last axis of a 1-d x."""
    fmt = get_format(fmt_name)
    x = x.astype(np.float64)
    if fmt.family == "float":
        e = np.maximum(np.frexp(np.abs(x))[1] - 1, fmt.emin)
        return np.exp2(e - fmt.man_bits), np.full_like(x, fmt.max_value)
    if fmt.family == "fixed":
        amax = np.abs(x).max()
        qmax = 2 ** (fmt.mult_bits - 1) - 1
        step = 2.0 ** math.ceil(math.log2(amax / qmax)) if amax else 1.0
        return np.full_like(x, step), np.full_like(x, qmax * step)
    b = fmt.block_size
    step, limit = np.empty_like(x), np.empty_like(x)
    for s in range(0, len(x), b):
        blk = x[s:s + b]
        amax = np.abs(blk).max()
        e = max(np.frexp(amax)[1] - 1, -127) if amax else 0
        if fmt.exp_bits:  # mx float: element spacing times the E8M0 scale
            scale_e = max(e - fmt.emax, -127)
            el = np.maximum(np.frexp(np.abs(blk) / 2.0**scale_e)[1] - 1, fmt.emin)
            step[s:s + b] = np.exp2(el - fmt.man_bits + scale_e)
            limit[s:s + b] = fmt.max_value * 2.0**scale_e
        else:  # bfp and mxint8: codes up to 2**man_bits - 1 of step 2**(E - (man_bits - 1))
            step[s:s + b] = 2.0 ** (e - (fmt.man_bits - 1))
            limit[s:s + b] = (2**fmt.man_bits - 1) * 2.0 ** (e - (fmt.man_bits - 1))
    return step, limit


@pytest.mark.parametrize("name", FORMATS)
@SETTINGS
@given(x=vectors)
def test_idempotent(name: str, x: np.ndarray) -> None:
    q = quantize(x, name)
    np.testing.assert_array_equal(quantize(q, name), q)


@pytest.mark.parametrize("name", FORMATS)
@SETTINGS
@given(x=vectors)
def test_error_within_half_a_step_unless_saturated(name: str, x: np.ndarray) -> None:
    q = quantize(x, name).astype(np.float64)
    step, limit = step_of(x, name)
    x64 = x.astype(np.float64)
    saturated = np.abs(x64) > limit
    assert np.all(np.abs(q - x64)[~saturated] <= step[~saturated] / 2)
    np.testing.assert_array_equal(q[saturated], np.sign(x64[saturated]) * limit[saturated])


@pytest.mark.parametrize("name", FORMATS)
@SETTINGS
@given(x=vectors)
def test_monotone_within_a_block(name: str, x: np.ndarray) -> None:
    """Sorting a block does not change its shared exponent, so the quantized values must come out sorted."""
    fmt = get_format(name)
    width = fmt.block_size or len(x)
    for s in range(0, len(x), width):
        q = quantize(np.sort(x[s:s + width]), name)
        assert np.all(np.diff(q) >= 0)


@pytest.mark.parametrize("name", ["bfp4", "mxfp4", "mxint8", "fixed8"])
@SETTINGS
@given(x=vectors, where=st.integers(0, 79))
def test_zero_and_nan_blocks(name: str, x: np.ndarray, where: int) -> None:
    assert np.all(quantize(np.zeros_like(x), name) == 0)
    b = get_format(name).block_size or len(x)
    i = where % len(x)
    y = x.copy()
    y[i] = np.nan
    q = quantize(y, name)
    start = i - i % b
    assert np.isnan(q[start:start + b]).all()
    rest = np.ones(len(x), bool)
    rest[start:start + b] = False
    np.testing.assert_array_equal(q[rest], quantize(x, name)[rest])


@pytest.mark.parametrize("name", ["fp8_e4m3", "bf16", "fp4_e2m1", "fixed8", "bfp4", "mxint8", "mxfp4"])
def test_stochastic_rounding_is_unbiased(name: str) -> None:
    """Mean of N draws per element vs x: each draw is one of the two neighbours a step apart with P(up) = frac,
    so the mean has standard deviation step*sqrt(p(1-p)/N); allow 5 of those (plus a floor for p near 0 or 1)."""
    rng = np.random.default_rng(11)
    n_draws = 4000
    x = np.clip(rng.standard_normal(64) * 0.7, -3.9, 3.9).astype(np.float32)
    x[::16] = 4.0  # every block max is a power of two: exact in every format, so nothing saturates
    tiled = np.broadcast_to(x, (n_draws, x.size))
    q = quantize(tiled, name, rounding="stochastic", rng=rng).astype(np.float64)
    step, _ = step_of(x, name)
    lo = np.floor(x / step) * step
    assert np.all(np.isclose(q, lo, rtol=0, atol=1e-12) | np.isclose(q, lo + step, rtol=0, atol=1e-12))
    p = (x - lo) / step
    sigma = step * np.sqrt(np.maximum(p * (1 - p), 1.0 / n_draws) / n_draws)
    assert np.all(np.abs(q.mean(axis=0) - x) <= 5 * sigma)
    # and the nearest mode is deterministic, the stochastic one actually varies
    assert np.unique(q[:, 1:], axis=0).shape[0] > 1


def test_stochastic_rng_seed_reproducible() -> None:
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    a = quantize(x, "bfp4", rounding="stochastic", rng=5)
    b = quantize(x, "bfp4", rounding="stochastic", rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["mxint8", "bf16", "bfp4", "fixed8", "mxfp6_e2m3"])
def test_sr_variant_is_the_format_with_stochastic_rounding(name: str) -> None:
    """`<format>_sr`: same bits and cost fields, stochastic by default (the draws of the base format's stochastic
    mode, bit for bit), nearest when asked; one object per variant."""
    import dataclasses

    base, sr = get_format(name), get_format(f"{name}_SR")
    assert sr.name == f"{base.name}_sr" and sr.rounding == "stochastic" and base.rounding == "nearest"
    assert dataclasses.replace(sr, name=base.name, rounding="nearest") == base
    assert get_format(sr.name) is sr
    x = np.random.default_rng(2).standard_normal((8, 64)).astype(np.float32)
    np.testing.assert_array_equal(quantize(x, sr, rng=7), quantize(x, base, rounding="stochastic", rng=7))
    np.testing.assert_array_equal(quantize(x, sr, rounding="nearest"), quantize(x, base))
    assert not np.array_equal(quantize(x, sr, rng=7), quantize(x, base))


@pytest.mark.parametrize(("name", "match"), [("fp32_sr", "no stochastic-rounding variant of fp32"),
                                             ("mxint8_sr_sr", "no stochastic-rounding variant of mxint8_sr"),
                                             ("nope_sr", "unknown number format"), ("_sr", "unknown number format")])
def test_sr_variant_errors(name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_format(name)
