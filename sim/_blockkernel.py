"""Optional compiled kernels for the training loop's hot path: nearest-rounding bfp / mxint8 quantization of float32,
used by `sim.formats.quantize` when numba is installed (`pip install -e ".[fast]"`); numpy does the same otherwise.

They follow `sim.formats._quantize_blocks` operation for operation (block max of |x|, E from its exponent bits with a
zero or subnormal max at -127, step 2**(E - (M - 1)), rint(x / step) clipped to +-(2**M - 1), times the step; blocks
holding inf/NaN become NaN), so results are bit-identical (tests/test_formats_kernel.py), in one pass over each block
while it is in cache instead of numpy's dozen passes over the tensor. x * (1 / step) equals x / step exactly (both
round the same real number once) whenever 1 / step is a float32, i.e. for steps >= 2**-127; smaller steps divide.
Set DSQSIM_NO_NUMBA=1 to use numpy only.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from typing import Any

import numpy as np

__all__ = ["available", "int_codes_f32"]

# 2**k as float32 at index k + 149, k in [-149, 149] (2**-149: the smallest subnormal; k > 127 is inf, never read)
with np.errstate(over="ignore"):
    POW2 = np.ldexp(np.float32(1.0), np.arange(-149, 150, dtype=np.int32)).astype(np.float32)


def _rare(x, bits, y, r, b0, n, man_bits, pow2):  # noqa: ANN001, ANN202 (numba-compiled)
    """A block x[r, b0:b0 + n] holding inf/NaN (it becomes NaN) or with a step below 2**-127 (divide by it)."""
    code_max = np.float32(2.0**man_bits - 1.0)
    amax = np.uint32(0)
    for j in range(n):
        amax = max(amax, bits[r, b0 + j] & np.uint32(0x7FFFFFFF))
    field = np.int32(amax >> np.uint32(23))
    step = pow2[field - 127 - (man_bits - 1) + 149]
    for j in range(n):
        if field == 255:
            y[r, b0 + j] = np.nan
        else:
            y[r, b0 + j] = min(max(np.rint(x[r, b0 + j] / step), -code_max), code_max) * step


def _rows(x, bits, y, block, man_bits, pow2):  # noqa: ANN001, ANN202
    """y = x quantized, blocks along the contiguous axis of [rows, length] (y may be x). Inlined into a caller with
    a constant `block`, the loops over whole blocks have a constant trip count and vectorise (4x faster for blocks
    of 16); they are written out here because a call, even inlined, lost that. A zero block takes the common path
    (no branch to mispredict): with its exponent raised to man_bits - 1 any step keeps +-0 as it is."""
    rows, length = x.shape
    code_max = np.float32(2.0**man_bits - 1.0)
    whole = length - length % block
    for r in range(rows):
        for b0 in range(0, whole, block):
            amax = np.uint32(0)
            for j in range(block):
                amax = max(amax, bits[r, b0 + j] & np.uint32(0x7FFFFFFF))  # |x| as an integer, ordered as floats
            field = np.int32(amax >> np.uint32(23))  # biased exponent of the block max (0: zero or subnormal)
            if field == 255 or (field < man_bits - 1 and amax != 0):  # inf/NaN, or a step below 2**-127
                _rare(x, bits, y, r, b0, block, man_bits, pow2)
                continue
            e = max(field, man_bits - 1) - 127 - (man_bits - 1)
            step, inv = pow2[e + 149], pow2[149 - e]
            for j in range(block):
                y[r, b0 + j] = min(max(np.rint(x[r, b0 + j] * inv), -code_max), code_max) * step
        if whole < length:  # the shorter last block (all of a row shorter than a block), the same steps
            amax = np.uint32(0)
            for j in range(whole, length):
                amax = max(amax, bits[r, j] & np.uint32(0x7FFFFFFF))
            field = np.int32(amax >> np.uint32(23))
            if field == 255 or (field < man_bits - 1 and amax != 0):
                _rare(x, bits, y, r, whole, length - whole, man_bits, pow2)
                continue
            e = max(field, man_bits - 1) - 127 - (man_bits - 1)
            step, inv = pow2[e + 149], pow2[149 - e]
            for j in range(whole, length):
                y[r, j] = min(max(np.rint(x[r, j] * inv), -code_max), code_max) * step


def _rows16(x, bits, y, man_bits, pow2):  # noqa: ANN001, ANN202
    _rows(x, bits, y, 16, man_bits, pow2)


def _rows32(x, bits, y, man_bits, pow2):  # noqa: ANN001, ANN202
    _rows(x, bits, y, 32, man_bits, pow2)


def _strided(x, bits, y, block, man_bits, pow2):  # noqa: ANN001, ANN202
    """y = x quantized, blocks along axis 1 of [outer, length, inner]: each block is `inner` columns side by side."""
    outer, length, inner = x.shape
    code_max = np.float32(2.0**man_bits - 1.0)
    amax = np.empty(inner, np.uint32)
    step = np.empty(inner, np.float32)
    inv = np.empty(inner, np.float32)
    for o in range(outer):
        for b0 in range(0, length, block):
            b1 = min(b0 + block, length)
            amax[:] = 0
            for j in range(b0, b1):
                for i in range(inner):
                    amax[i] = max(amax[i], bits[o, j, i] & np.uint32(0x7FFFFFFF))
            rare = False
            for i in range(inner):
                field = np.int32(amax[i] >> np.uint32(23))
                e = field - 127 - (man_bits - 1)
                step[i] = pow2[e + 149]
                inv[i] = pow2[149 - e] if e >= -127 else np.float32(0.0)  # a zero column: any step keeps it
                rare = rare or field == 255 or (e < -127 and amax[i] != 0)
            if not rare:
                for j in range(b0, b1):
                    for i in range(inner):
                        y[o, j, i] = min(max(np.rint(x[o, j, i] * inv[i]), -code_max), code_max) * step[i]
                continue
            for j in range(b0, b1):  # a block holding inf/NaN, or a step below 2**-127
                for i in range(inner):
                    if (amax[i] >> np.uint32(23)) == 255:
                        y[o, j, i] = np.nan
                    else:
                        y[o, j, i] = min(max(np.rint(x[o, j, i] / step[i]), -code_max), code_max) * step[i]


@functools.cache
def available() -> bool:
    """numba imports and is not disabled (DSQSIM_NO_NUMBA=1). The import costs ~0.3 s of CPU, so it happens on the
    first quantization that could use a kernel, not when `sim.formats` is imported."""
    if os.environ.get("DSQSIM_NO_NUMBA") or importlib.util.find_spec("numba") is None:
        return False
    try:
        import numba  # noqa: F401
    except Exception:  # a broken or incompatible install: numpy does the work
        return False
    return True


_LOCK = threading.Lock()


@functools.cache
def _kernels() -> dict[str, Any]:
    import numba

    with _LOCK:  # the module globals below are replaced once, even if threads get here together
        jit = numba.njit(cache=True, nogil=True)  # compiled once, then loaded from __pycache__
        inline = numba.njit(cache=True, nogil=True, inline="always")  # so a constant block size reaches the loops
        g = globals()
        if not isinstance(g["_rows"], numba.core.registry.CPUDispatcher):
            g["_rare"], g["_rows"] = jit(g["_rare"]), inline(g["_rows"])  # the kernels find these when compiled
        rows = g["_rows"].py_func
        return {"rows16": jit(_rows16), "rows32": jit(_rows32), "rows": jit(rows), "strided": jit(_strided)}


def int_codes_f32(x: np.ndarray, y: np.ndarray, shape: tuple[int, int, int], block: int, man_bits: int) -> None:
    """y = x quantized (y may be x): float32, C-contiguous, seen as [outer, length, inner] = `shape`, blocks of
    `block` along axis 1, codes of `man_bits` magnitude bits (bfp, mxint8). Only when `available()`."""
    k = _kernels()
    outer, length, inner = shape
    if inner > 1:
        x3 = x.reshape(shape)
        k["strided"](x3, x3.view(np.uint32), y.reshape(shape), block, man_bits, POW2)
        return
    rows = outer if length % block else 1  # whole blocks only: one long row of them, no per-row overhead
    x2 = x.reshape(rows, -1)
    bits2, y2 = x2.view(np.uint32), y.reshape(rows, -1)
    if block == 16:
        k["rows16"](x2, bits2, y2, man_bits, POW2)
    elif block == 32:
        k["rows32"](x2, bits2, y2, man_bits, POW2)
    else:
        k["rows"](x2, bits2, y2, block, man_bits, POW2)
