"""Block formats (bfp, OCP MX): hand-worked blocks and an independent per-block oracle (E8M0 power of two, then an
ml_dtypes cast with saturation for MX floats; exact rationals for bfp and mxint8)."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from sim.formats import get_format, quantize

MX_ELEMENTS = {  # name -> (ml_dtypes element type, emax of the element type, largest element value)
    "mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8, 448.0),
    "mxfp8_e5m2": (ml_dtypes.float8_e5m2, 15, 57344.0),
    "mxfp6_e3m2": (ml_dtypes.float6_e3m2fn, 4, 28.0),
    "mxfp6_e2m3": (ml_dtypes.float6_e2m3fn, 2, 7.5),
    "mxfp4": (ml_dtypes.float4_e2m1fn, 2, 6.0),
}


def floor_log2(v: float) -> int:
    return math.frexp(v)[1] - 1


def oracle_mx_float(block: np.ndarray, name: str) -> np.ndarray:
    dtype, emax, max_elem = MX_ELEMENTS[name]
    amax = float(np.max(np.abs(block)))
    if amax == 0:
        return np.zeros_like(block)
    scale = 2.0 ** min(max(floor_log2(amax) - emax, -127), 127)
    scaled = np.clip(block.astype(np.float64) / scale, -max_elem, max_elem)
    return (scaled.astype(dtype).astype(np.float64) * scale).astype(np.float32)


def oracle_int_codes(block: np.ndarray, magnitude_bits: int, step_exp_offset: int) -> np.ndarray:
    """bfp / mxint8 with exact rationals: step 2**(E - offset), round half to even, clip to 2**bits - 1."""
    amax = float(np.max(np.abs(block)))
    if amax == 0:
        return np.zeros_like(block)
    step = Fraction(2) ** (min(max(floor_log2(amax), -127), 127) - step_exp_offset)
    code_max = 2**magnitude_bits - 1
    codes = [max(-code_max, min(code_max, round(Fraction(float(v)) / step))) for v in block]  # round(): half even
    return np.array([float(c * step) for c in codes], dtype=np.float32)


def oracle(x: np.ndarray, name: str) -> np.ndarray:
    """Blocks along the last axis, looped in Python (the implementation under test is vectorised)."""
    fmt = get_format(name)
    out = np.empty_like(x, dtype=np.float32)
    for row in np.ndindex(x.shape[:-1]):
        for start in range(0, x.shape[-1], fmt.block_size):
            block = x[row][start:start + fmt.block_size]
            if fmt.family == "mx" and name != "mxint8":
                q = oracle_mx_float(block, name)
            else:  # bfpM: M-1 magnitude bits, step 2**(E-(M-2)); mxint8: 7 magnitude bits, step 2**(E-6)
                q = oracle_int_codes(block, fmt.mult_bits - 1, fmt.mult_bits - 2)
            out[row][start:start + fmt.block_size] = q
    return out


def heavy_tailed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-6, 7, shape))
    x.reshape(-1)[::7] = 0.0  # exact zeros inside blocks
    return x.astype(np.float32)


@pytest.mark.parametrize("name", [*MX_ELEMENTS, "mxint8", "bfp4", "bfp8", "bfp3_b8", "bfp12_b64"])
def test_blocks_match_independent_oracle(name: str) -> None:
    rng = np.random.default_rng(7)
    x = heavy_tailed(rng, (6, 100))  # 100 is not a multiple of 8, 16, 32 or 64: partial last blocks
    x[2, :32] = 0.0  # an all-zero block
    x[3, :40] = np.linspace(-3, 3, 40) * 2.0**-130  # tiny blocks: shared exponent clamps at -127
    np.testing.assert_array_equal(quantize(x, name), oracle(x, name))


def test_mx_hand_worked_blocks() -> None:
    # mxfp4: amax 6 -> X = floor(log2 6) - 2 = 0; e2m1 grid 0, .5, 1, 1.5, 2, 3, 4, 6; ties to even mantissa
    block = np.array([6, 0.3, -5, 2.5, 0.25, 1.25, 3.5, 0.75] + [0] * 24, dtype=np.float32)
    want = [6, 0.5, -4, 2, 0, 1, 4, 1] + [0] * 24
    np.testing.assert_array_equal(quantize(block, "mxfp4"), want)
    # amax 7 -> X = 0 and 7 saturates to 6; amax 100 -> X = 4, 100/16 = 6.25 -> 6 -> 96, 20/16 = 1.25 -> 1 -> 16
    np.testing.assert_array_equal(quantize(np.array([7.0, 1.0]), "mxfp4"), [6, 1])
    np.testing.assert_array_equal(quantize(np.array([100.0, 20.0, -40.0]), "mxfp4"), [96, 16, -32])
    # mxfp8_e4m3: amax 1000 -> X = 9 - 8 = 1; 1000/2 = 500 saturates to 448 -> 896; 3/2 = 1.5 exact
    np.testing.assert_array_equal(quantize(np.array([1000.0, 3.0, 0.0]), "mxfp8_e4m3"), [896, 3, 0])
    # mxint8: amax 1 -> X = 0, step 2**-6: 0.3 -> 19/64, -0.7 -> -45/64; 1.995 -> 127.68 -> 128 -> saturates 127
    np.testing.assert_array_equal(quantize(np.array([1.0, 0.3, -0.7]), "mxint8"), [1, 19 / 64, -45 / 64])
    np.testing.assert_array_equal(quantize(np.array([1.995, 0.5]), "mxint8"), [127 / 64, 0.5])


def test_bfp_hand_worked_blocks() -> None:
    # bfp4: sign + 3 magnitude bits; amax 3.3 -> E = 1, step 2**(1-2) = 0.5: 3.3 -> 3.5, -0.4 -> -0.5, 0.1 -> 0
    np.testing.assert_array_equal(quantize(np.array([3.3, 1.0, -0.4, 0.1]), "bfp4"), [3.5, 1, -0.5, 0])
    # 3.9 -> 7.8 steps -> 8 -> saturates to 7 steps = 3.5 (the shared exponent never grows)
    np.testing.assert_array_equal(quantize(np.array([3.9, -3.9]), "bfp4"), [3.5, -3.5])
    # two blocks of 16: each has its own exponent
    x = np.concatenate([np.full(16, 0.01), np.full(16, 100.0)]).astype(np.float32)
    x[0] = 1.0  # block 1: E = 0, step 0.25 -> 0.01 flushes to 0
    q = quantize(x, "bfp4")
    assert q[0] == 1 and np.all(q[1:16] == 0) and np.all(q[16:] == 96)  # 100: E = 6, step 16, 6.25 -> 6


def test_axis_partial_blocks_and_shapes() -> None:
    rng = np.random.default_rng(9)
    x = heavy_tailed(rng, (4, 37, 3))
    for name in ("bfp4", "mxfp4", "mxint8"):
        along1 = quantize(x, name, axis=1)
        np.testing.assert_array_equal(along1, np.moveaxis(quantize(np.moveaxis(x, 1, -1), name), -1, 1))
        # the last, partial block (37 = 32 + 5 for mx, 2*16 + 5 for bfp) is quantized on its own
        b = get_format(name).block_size
        tail = 37 - 37 % b
        np.testing.assert_array_equal(along1[:, tail:], quantize(x[:, tail:], name, axis=1))
    assert quantize(np.float32(3.3), "bfp4").shape == ()
    assert quantize(np.zeros((0, 16)), "bfp4").shape == (0, 16)


def test_nonfinite_element_poisons_only_its_block() -> None:
    x = np.ones(64, dtype=np.float32)
    x[3], x[40] = np.nan, np.inf
    for name in ("bfp8", "mxfp8_e4m3", "mxint8"):
        q = quantize(x, name)
        b = get_format(name).block_size
        poisoned = {3 // b, 40 // b}
        for k in range(64 // b):
            blk = q[k * b:(k + 1) * b]
            assert np.isnan(blk).all() if k in poisoned else np.array_equal(blk, np.ones(b))


def test_mxint8_is_bfp8_with_blocks_of_32() -> None:
    rng = np.random.default_rng(12)
    x = heavy_tailed(rng, (8, 96))
    np.testing.assert_array_equal(quantize(x, "mxint8"), quantize(x, "bfp8_b32"))
    assert get_format("mxint8").max_value == get_format("bfp8_b32").max_value == 127 / 64
