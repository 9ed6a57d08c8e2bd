"""Number-format registry and element rounding, checked against ml_dtypes casts and exact rational arithmetic."""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from sim.formats import NumberFormat, get_format, list_formats, quantize

# format name -> ml_dtypes/numpy type used as the oracle
ELEMENT_ORACLES = {
    "bf16": ml_dtypes.bfloat16,
    "fp16": np.float16,
    "fp8_e4m3": ml_dtypes.float8_e4m3fn,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp6_e3m2": ml_dtypes.float6_e3m2fn,
    "fp6_e2m3": ml_dtypes.float6_e2m3fn,
    "fp4_e2m1": ml_dtypes.float4_e2m1fn,
}


def representable(dtype) -> np.ndarray:
    """Every finite value of an ml_dtypes/numpy type, sorted (float64)."""
    width = np.dtype(dtype).itemsize
    patterns = np.arange(2 ** (8 * width), dtype=np.uint8 if width == 1 else np.uint16)
    with np.errstate(invalid="ignore"):  # NaN patterns
        values = patterns.view(dtype).astype(np.float64)
    return np.unique(values[np.isfinite(values)])


def probe_values(dtype) -> np.ndarray:
    """Representable values, exact midpoints (ties), and the float32 neighbours of each midpoint."""
    v = representable(dtype)
    mids = ((v[1:] + v[:-1]) / 2).astype(np.float32)
    assert np.array_equal(mids.astype(np.float64), (v[1:] + v[:-1]) / 2)  # ties are exact in float32
    up, down = np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf))
    return np.concatenate([v.astype(np.float32), mids, up, down])


@pytest.mark.parametrize("name", list(ELEMENT_ORACLES))
def test_element_rounding_matches_ml_dtypes(name: str) -> None:
    dtype = ELEMENT_ORACLES[name]
    fmt = get_format(name)
    rng = np.random.default_rng(1)
    x = np.concatenate([probe_values(dtype), (rng.standard_normal(20000) * 2.0 ** rng.integers(-20, 20, 20000))])
    x = x.astype(np.float32)
    inside = np.abs(x) <= fmt.max_value
    got = quantize(x, name)
    want = x[inside].astype(dtype).astype(np.float32)
    np.testing.assert_array_equal(got[inside], want)
    # saturation: ml_dtypes overflows to inf/NaN, the quantizer clamps to the largest finite value
    np.testing.assert_array_equal(np.abs(got[~inside]), np.float32(fmt.max_value))
    assert np.all(np.sign(got[~inside]) == np.sign(x[~inside]))
    assert fmt.max_value == representable(dtype).max()


@pytest.mark.parametrize("name", ["fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp4_e2m1", "bf16", "fp16"])
def test_subnormals_and_ties_by_hand(name: str) -> None:
    fmt = get_format(name)
    sub_step = 2.0 ** (fmt.emin - fmt.man_bits)  # smallest subnormal
    x = np.array([sub_step / 2, 1.5 * sub_step, 2.5 * sub_step, sub_step * 0.49, -sub_step / 2], dtype=np.float32)
    # ties to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (in units of the subnormal step); -0.5 -> -0
    np.testing.assert_array_equal(quantize(x, name), np.array([0, 2, 2, 0, 0], dtype=np.float32) * sub_step)


def test_fp32_identity_and_nonfinite_pass_through() -> None:
    x = np.array([1.1, -np.inf, np.inf, np.nan, 1e-45], dtype=np.float32)
    q = quantize(x, "fp32")
    np.testing.assert_array_equal(q, x)
    for name in ELEMENT_ORACLES:
        q = quantize(x, name)
        assert q[1] == -np.inf and q[2] == np.inf and np.isnan(q[3])


def test_float64_input_is_rounded_once() -> None:
    """float64 input rounds directly (ml_dtypes goes through float32 and can double-round): exact rational check."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(2000) * 1.0000001
    for name in ("bf16", "fp8_e4m3", "fp32"):
        fmt = get_format(name)
        got = quantize(x, name)
        assert got.dtype == np.float32
        grid = representable(ELEMENT_ORACLES[name]) if name != "fp32" else None
        for xi, qi in zip(x[:300], got[:300], strict=True):
            if grid is None:
                assert qi == np.float32(xi)  # numpy's float64 -> float32 cast rounds once, to nearest even
                continue
            i = np.searchsorted(grid, xi)
            lo, hi = grid[max(i - 1, 0)], grid[min(i, len(grid) - 1)]
            best = min((lo, hi), key=lambda g: abs(Fraction(float(g)) - Fraction(float(xi))))
            assert qi == best, (name, xi.hex(), float(qi))
        assert fmt.family == "float"


def test_fixed_point_scale_and_codes() -> None:
    # max 3.0 with fixed8 (codes to 127): smallest power of two s with 3 <= 127 s is 2**-5 (127/32 = 3.97)
    x = np.array([3.0, -1.0, 0.015625, 0.0234375, 0.01], dtype=np.float32)
    q = quantize(x, "fixed8")
    s = 2.0**-5
    np.testing.assert_array_equal(q, np.array([96, -32, 0, 1, 0], dtype=np.float32) * s)  # 0.5 -> 0, 0.75 -> 1
    # a power-of-two max still fits exactly: 4.0 <= 127 * 2**-4
    assert quantize(np.array([4.0, 1 / 16], dtype=np.float32), "fixed8").tolist() == [4.0, 0.0625]
    # the max always fits (no saturation), and more bits never hurt
    rng = np.random.default_rng(3)
    y = rng.standard_normal(4000).astype(np.float32) * 37
    for bits in (4, 8, 16):
        assert np.max(np.abs(quantize(y, f"fixed{bits}"))) >= np.max(np.abs(y)) * (1 - 2.0 ** (2 - bits))
    errors = [np.abs(quantize(y, f"fixed{b}") - y).max() for b in (4, 8, 12, 16)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 1000
    assert np.all(quantize(np.zeros(5), "fixed8") == 0)
    assert np.isnan(quantize(np.array([1.0, np.inf]), "fixed8")).all()


BITS = {
    "fp32": (32, 24), "bf16": (16, 8), "fp16": (16, 11), "fp8_e4m3": (8, 4), "fp8_e5m2": (8, 3),
    "fp6_e3m2": (6, 3), "fp6_e2m3": (6, 4), "fp4_e2m1": (4, 2), "fixed8": (8, 8), "fixed16": (16, 16),
    "bfp4": (4.5, 4), "bfp8": (8.5, 8), "bfp16": (16.5, 16), "bfp6_b32": (6.25, 6), "bfp4_b8": (5.0, 4),
    "mxint8": (8.25, 8), "mxfp8_e4m3": (8.25, 4), "mxfp8_e5m2": (8.25, 3), "mxfp6_e3m2": (6.25, 3),
    "mxfp6_e2m3": (6.25, 4), "mxfp4": (4.25, 2),
}


@pytest.mark.parametrize("name", list(BITS))
def test_bits_per_element_and_mult_bits(name: str) -> None:
    fmt = get_format(name)
    assert (fmt.bits_per_element, fmt.mult_bits) == BITS[name]
    assert fmt.storage_bytes(1024) == 1024 * BITS[name][0] / 8
    assert fmt.block_size == ({"bfp": int(name.partition("_b")[2] or 16), "mx": 32}.get(fmt.family))


def test_registry_names_and_errors() -> None:
    names = [f.name for f in list_formats()]
    assert len(names) == len(set(names))
    for n in names:
        assert get_format(n).name == n
        assert get_format(n.upper()) == get_format(n)
    assert get_format("fp8").name == "fp8_e4m3" and get_format("bfp6_b16").name == "bfp6"
    fmt = get_format("bf16")
    assert get_format(fmt) is fmt and isinstance(fmt, NumberFormat)
    for bad in ("fp7", "bfp1", "bfp30", "fixed1", "bfp4_b0", "mxfp5", ""):
        with pytest.raises(ValueError, match="number format|bits|block"):
            get_format(bad)
    with pytest.raises(ValueError, match="valid:"):
        get_format("nope")
    with pytest.raises(ValueError, match="rounding"):
        quantize(np.ones(3), "bf16", rounding="up")
    with pytest.raises(ValueError, match="axis"):
        quantize(np.ones((2, 3)), "bfp4", axis=2)
