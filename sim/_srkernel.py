"""Stochastic rounding's random bits, and its compiled kernel for bfp / mx of float32 (the `_sr` formats).

Random bits: a quantization draws one 64-bit key from its Generator; the element at offset k of a dense copy of x
laid out in x's memory order (numpy's order "K") gets splitmix64's output for state key + (k + 1) * golden, i.e.
`_mix(key + (k + 1) * GOLDEN)`. A counter-based stream: any element's bits are computed where they are needed, so
the kernel draws them inside its loop and numpy (`random_bits`) draws them for the whole array, the same bits in
both. The value rounds up (in units of its step) when the top 53 bits, as a uniform in [0, 1), are below its
fraction: P(up) = fraction to within 2**-53. splitmix64 is the generator Java's SplittableRandom and xoshiro's
seeding use; its output passes BigCrush.

`sr_blocks_f32_inplace` quantizes float32 to bfp / mxint8 (integer codes) or MX float elements with the same
float32 operations, in the same order, as `sim.formats._quantize_blocks` with stochastic rounding (x / step, floor,
+1 if the uniform is below the fraction, clip, times the step; MX floats: x / 2**X, then that in the element's
step, clip to +-max, times 2**X), bit for bit (tests/test_formats_srkernel.py); divisions by a power of two that
varies per element are multiplications by its exact reciprocal (the same result), as a per-element division stops
LLVM vectorising. About 2.2-2.5 ms per 4M elements on every layout (this machine, AVX-512), against 34-63 ms on
numpy's general path, which moves the axis, pads and draws in separate passes.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from sim import _blockkernel

__all__ = ["draw_key", "random_bits", "sr_blocks_f32_inplace", "stream_bits"]

GOLDEN, MIX1, MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_U53 = 2.0**-53


def _mix(z):  # noqa: ANN001, ANN202 (numba-compiled too) splitmix64's output function
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


_mix_arrays = _mix  # numpy's; `_kernels` replaces the module's `_mix` by a compiled scalar function


# Bit generators whose raw 64-bit output is what Generator.integers(2**64, dtype=uint64) returns (numpy returns
# next_uint64 for the full range); drawing it raw skips ~1 us of argument handling per quantize call.
_RAW_IS_UINT64 = (np.random.PCG64, np.random.PCG64DXSM, np.random.Philox, np.random.SFC64)


def draw_key(rng: np.random.Generator) -> np.uint64:
    """A quantize call's stream key: `rng.integers(2**64, dtype=np.uint64)`, the same value and generator state."""
    bit_generator = rng.bit_generator
    if type(bit_generator) in _RAW_IS_UINT64:
        return np.uint64(bit_generator.random_raw())
    return rng.integers(2**64, dtype=np.uint64)


def stream_bits(key: np.uint64, n: int) -> np.ndarray:
    """The 64 random bits of offsets 0 .. n-1 of the stream `key` (uint64, flat; module docstring)."""
    z = np.arange(1, n + 1, dtype=np.uint64)
    z *= GOLDEN  # wraps modulo 2**64, as intended
    z += np.uint64(key)
    return _mix_arrays(z)


def random_bits(key: np.uint64, x: np.ndarray) -> np.ndarray:
    """The 64 random bits of each element of x (uint64, shaped like x) for the stream `key` (module docstring)."""
    like = np.empty_like(x, dtype=np.uint8)  # dense, in x's memory order, as the kernel's copy of x
    perm = sorted(range(x.ndim), key=lambda i: (-like.strides[i], i))
    return stream_bits(key, x.size).reshape([x.shape[i] for i in perm]).transpose(np.argsort(perm))


def uniforms(bits: np.ndarray) -> np.ndarray:
    """The top 53 of `bits` as float64 uniforms in [0, 1)."""
    return (bits >> np.uint64(11)).astype(np.float64) * _U53


def _uniform(key, offset):  # noqa: ANN001, ANN202 the uniform in [0, 1) of the element at `offset` (uint64)
    return np.float64(_mix(key + (offset + np.uint64(1)) * GOLDEN) >> np.uint64(11)) * _U53


def _block_scale(amax, emax, man_bits, int_codes, pow2):  # noqa: ANN001, ANN202
    """The block's step (integer codes) or scale 2**X (MX floats), X = E - emax clamped to [-127, 127], E from
    the block max's exponent bits (0 for an all-zero block, as numpy has it)."""
    e = np.int64(amax >> np.uint32(23)) - 127 if amax else np.int64(0)
    x_e = min(max(e - emax, -127), 127)
    return pow2[x_e - (man_bits - 1) + 149] if int_codes else pow2[x_e + 149]


def _sr_elem(v, u, s, int_codes, code_max, man_field, lo, hi, max_value):  # noqa: ANN001, ANN202 (scalars)
    """x rounded stochastically (v = x / s, u: its uniform) in a block of step s (integer codes, saturated at
    code_max steps) or scale s (MX float elements: lo/hi the bit patterns of 2**emin and 2**(emax + 1), man_field
    the fraction bits << 23, saturated at +-max_value). Loop-invariant arguments are computed by the caller: a
    power computed here stopped the loop vectorising (15x slower), as does a division by a per-element divisor."""
    if int_codes:
        fl = np.floor(v)
        fl += np.float32(1.0) if u < np.float64(v - fl) else np.float32(0.0)
        fl = -code_max if fl < -code_max else fl
        fl = code_max if fl > code_max else fl
        return fl * s
    ef = _blockkernel._f32_bits(v) & np.uint32(0x7F800000)
    ef = lo if ef < lo else ef
    ef = hi if ef > hi else ef
    es = _blockkernel._bits_f32(ef - man_field)  # the element's step 2**(E - man_bits) ...
    w = v * _blockkernel._bits_f32(np.uint32(254 << 23) + man_field - ef)  # ... v / es, as 2**(man_bits - E) is exact
    fl = np.floor(w)
    fl += np.float32(1.0) if u < np.float64(w - fl) else np.float32(0.0)
    q = fl * es
    q = -max_value if q < -max_value else q
    q = max_value if q > max_value else q
    return q * s


def _sr_rows(y, bits, length, block, key, int_codes, man_bits, emax, lo, hi, max_value, pow2):  # noqa: ANN001, ANN202
    """y (flat: rows of `length`) quantized in place (bits: y seen as uint32), blocks of `block` along the rows (a
    row's last block may be shorter). int_codes: bfp / mxint8 codes of man_bits magnitude bits; else MX float
    elements. Inlined into a caller with a constant `block`, the loops over a whole block (from 0 to `block`)
    unroll and vectorise, with SLP on as in sim/_blockkernel.py; the shorter last block repeats them. Indices are
    flat (they are the offsets) and unsigned: a signed index needs a wraparound check that stops vectorising."""
    code_max, man_field = np.float32(2.0**man_bits - 1.0), np.uint32(man_bits << 23)
    for row0 in range(0, y.size, length):
        whole = row0 + length - length % block
        for b0 in range(row0, whole, block):
            amax = np.uint32(0)
            for t in range(block):
                a = bits[np.uint64(b0 + t)] & np.uint32(0x7FFFFFFF)  # |x| as an integer, ordered as floats
                amax = a if a > amax else amax  # a select: numba's max() branches, which stops vectorising
            if amax >= np.uint32(0x7F800000):  # inf or NaN in the block
                for t in range(block):
                    y[np.uint64(b0 + t)] = np.nan
                continue
            s = _block_scale(amax, emax, man_bits, int_codes, pow2)
            for t in range(block):
                k = np.uint64(b0 + t)
                y[k] = _sr_elem(y[k] / s, _uniform(key, k), s, int_codes, code_max, man_field, lo, hi, max_value)
        if whole < row0 + length:  # the shorter last block, the same steps
            amax = np.uint32(0)
            for k in range(np.uint64(whole), np.uint64(row0 + length)):
                a = bits[k] & np.uint32(0x7FFFFFFF)
                amax = a if a > amax else amax
            if amax >= np.uint32(0x7F800000):
                for k in range(np.uint64(whole), np.uint64(row0 + length)):
                    y[k] = np.nan
                continue
            s = _block_scale(amax, emax, man_bits, int_codes, pow2)
            for k in range(np.uint64(whole), np.uint64(row0 + length)):
                y[k] = _sr_elem(y[k] / s, _uniform(key, k), s, int_codes, code_max, man_field, lo, hi, max_value)


def _sr_rows32(y, bits, length, key, int_codes, man_bits, emax, lo, hi, max_value, pow2):  # noqa: ANN001, ANN202
    _sr_rows(y, bits, length, 32, key, int_codes, man_bits, emax, lo, hi, max_value, pow2)


def _sr_rows16(y, bits, length, key, int_codes, man_bits, emax, lo, hi, max_value, pow2):  # noqa: ANN001, ANN202
    _sr_rows(y, bits, length, 16, key, int_codes, man_bits, emax, lo, hi, max_value, pow2)


def _sr_strided(y, bits, length, inner, block, key, int_codes, man_bits, emax, lo, hi, max_value, pow2):  # noqa: ANN001, ANN202
    """y (flat: [outer, length, inner]) quantized in place, blocks of `block` along the length axis (`inner` columns
    side by side, loops along the contiguous inner axis); flat unsigned indices, as `_sr_rows`."""
    code_max, man_field = np.float32(2.0**man_bits - 1.0), np.uint32(man_bits << 23)
    amax = np.empty(inner, np.uint32)
    s = np.empty(inner, np.float32)
    inv = np.empty(inner, np.float32)  # 1 / s where that is a float32 (then x * inv is x / s exactly), else 0
    for o0 in range(0, y.size, length * inner):
        for b0 in range(0, length, block):
            r0, r1 = o0 + b0 * inner, o0 + min(b0 + block, length) * inner  # the block rows' flat span
            amax[:] = 0
            for row in range(r0, r1, inner):
                for i in range(inner):
                    a = bits[np.uint64(row + i)] & np.uint32(0x7FFFFFFF)
                    amax[i] = a if a > amax[i] else amax[i]
            exact = True
            for i in range(inner):
                s[i] = _block_scale(amax[i], emax, man_bits, int_codes, pow2) if amax[i] < np.uint32(0x7F800000) \
                    else np.float32(1.0)
                inv[i] = np.float32(1.0) / s[i]
                exact &= s[i] * inv[i] == np.float32(1.0) and inv[i] != np.inf
            for row in range(r0, r1, inner):
                if exact:  # loop-invariant: LLVM makes two loops, the first vectorised
                    for i in range(inner):
                        k = np.uint64(row + i)
                        y[k] = _sr_elem(y[k] * inv[i], _uniform(key, k), s[i], int_codes, code_max, man_field, lo,
                                        hi, max_value)
                else:  # a block of int codes with max below ~2**-120: 1 / step is beyond float32
                    for i in range(inner):
                        k = np.uint64(row + i)
                        y[k] = _sr_elem(y[k] / s[i], _uniform(key, k), s[i], int_codes, code_max, man_field, lo,
                                        hi, max_value)
            for i in range(inner):
                if amax[i] >= np.uint32(0x7F800000):  # inf or NaN in the block
                    for row in range(r0, r1, inner):
                        y[row + i] = np.nan


@functools.cache
def _kernels() -> dict[str, Any]:
    import numba
    from numba.core import config

    _blockkernel._kernels()  # makes the bitcast intrinsics `_sr_elem` uses
    tail = (numba.uint64, numba.boolean, numba.int64, numba.int64, numba.uint32, numba.uint32, numba.float32,
            numba.float32[::1])  # key, int_codes, man_bits, emax, lo, hi, max_value, pow2
    flat = (numba.float32[::1], numba.uint32[::1], numba.int64)  # y, bits, length
    with _blockkernel._LOCK:  # as sim/_blockkernel.py: the globals replaced once, SLP on for these kernels only
        slp = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1
        try:
            g = globals()
            if not isinstance(g["_mix"], numba.core.registry.CPUDispatcher):
                for name in ("_mix", "_uniform", "_block_scale", "_sr_elem", "_sr_rows"):
                    g[name] = numba.njit(cache=True, nogil=True, inline="always")(g[name])
            jit = functools.partial(numba.njit, cache=True, nogil=True)
            return {"rows32": jit([flat + tail])(_sr_rows32), "rows16": jit([flat + tail])(_sr_rows16),
                    "rows": jit([flat + (numba.int64,) + tail])(g["_sr_rows"].py_func),
                    "strided": jit([flat + (numba.int64, numba.int64) + tail])(_sr_strided)}
        finally:
            config.SLP_VECTORIZE = slp


@functools.lru_cache(maxsize=64)
def _format_args(fmt: Any) -> tuple:
    """The kernels' arguments after the key for `fmt`: int_codes, man_bits, emax, lo, hi, max_value, pow2."""
    int_codes = fmt.exp_bits == 0
    lo = np.uint32(0 if int_codes else (fmt.emin + 127) << 23)
    hi = np.uint32(0 if int_codes else (fmt.emax + 1 + 127) << 23)
    return int_codes, fmt.man_bits, fmt.emax, lo, hi, np.float32(fmt.max_value), _blockkernel.POW2


def sr_blocks_f32_inplace(y: np.ndarray, shape: tuple[int, int, int], block: int, key: np.uint64, fmt: Any) -> None:
    """Stochastically rounds y in place to the bfp/mx format `fmt` (one `sim.formats._kernel_takes`): float32,
    C-contiguous, seen as [outer, length, inner] = `shape`, blocks along axis 1; random bits of stream `key`.
    Only when `_blockkernel.available()`."""
    tail = (np.uint64(key), *_format_args(fmt))
    outer, length, inner = shape
    k = _kernels()
    y1 = y.reshape(-1)
    if inner > 1:
        k["strided"](y1, y1.view(np.uint32), length, inner, block, *tail)
    elif block in (16, 32):
        k[f"rows{block}"](y1, y1.view(np.uint32), length, *tail)
    else:
        k["rows"](y1, y1.view(np.uint32), length, block, *tail)
