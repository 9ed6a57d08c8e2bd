"""Optional compiled kernels for the training loop's hot path: nearest-rounding bfp / mxint8 quantization of float32,
used by `sim.formats.quantize` when numba is installed (`pip install -e ".[fast]"`); numpy does the same otherwise.

They compute what `sim.formats._quantize_blocks` computes (block max of |x|, E from its exponent bits clamped to
[-127, 127], step 2**(E - (M - 1)), rint(x / step) clipped to +-(2**M - 1), times the step; blocks holding inf/NaN
become NaN), bit for bit (tests/test_formats_kernel.py), the way numpy's fast path does (`_int_codes_f32`): |x| is
saturated at the block's limit (2**M - 1) * step, then rounded to the step by adding and subtracting the magic number
1.5 * 2**(log2(step) + 23), whose ulp is the step (ties to even, as rint), and x's sign is put back. The limit and
the magic number of each block come from tables indexed by the biased exponent of the block max. That is exact for
codes of up to 22 bits (`MAX_MAN_BITS`); a block whose magic number would overflow, or holding inf/NaN, is divided
by its step instead (`_rare`).

The kernels quantize in place: one array is read and written at the same offsets, so LLVM can prove the loads and
stores of a block independent and vectorise them. A block of 16 or 32 elements along the contiguous axis is a
loop with a constant trip count, which LLVM unrolls: only its SLP vectoriser then makes vector code of it, and numba
leaves that one off by default, so `_kernels` turns it on while compiling these functions (3-4x faster).
MX formats with float elements (fp8/fp6/fp4) take `_mx_rows` / `_mx_strided`, which compute what numpy's
`sim.formats._round_block_piece` computes, bit for bit: scale X = the block max's exponent minus the element's emax,
clamped to [-127, 127] (E8M0); v = x * 2**-X (exact as x / 2**X: both are the rounded exact product); v rounded to
the element's step by adding and subtracting the magic number 1.5 * 2**(E + 23 - man_bits), E = v's exponent
clamped to [emin, emax + 1] (read from v's bits: `_f32_bits`, an LLVM bitcast); clipped to +-max; times 2**X. As
numpy, it leaves -0.0 as +0.0 (the sum with the magic number has no sign). Blocks holding inf/NaN become NaN.

Set DSQSIM_NO_NUMBA=1 to use numpy only.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from typing import Any

import numpy as np

__all__ = ["MAX_MAN_BITS", "available", "int_codes_f32_inplace", "mx_float_f32_inplace"]

MAX_MAN_BITS = 22  # |codes| < 2**22: |x| + magic is then exact before its rounding to the step

# 2**k as float32 at index k + 149, k in [-149, 149] (2**-149: the smallest subnormal; k > 127 is inf, never read)
with np.errstate(over="ignore"):
    POW2 = np.ldexp(np.float32(1.0), np.arange(-149, 150, dtype=np.int32)).astype(np.float32)


@functools.cache
def _tables(man_bits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(limit, magic) as float32 per biased exponent field F of the block max (E = F - 127, and -127 for F = 0:
    the clamp of a subnormal max), and the largest F whose magic number is finite (blocks above it, inf/NaN ones
    included, go to `_rare`)."""
    step_log2 = np.arange(256) - 127 - (man_bits - 1)
    largest = 127 - 23 + 127 + (man_bits - 1)  # the magic number 1.5 * 2**(step_log2 + 23) stays below 2**128
    ok = np.arange(256) <= largest
    limit = np.where(ok, (2.0**man_bits - 1) * np.exp2(np.where(ok, step_log2, 0)), 0.0).astype(np.float32)
    magic = np.where(ok, 1.5 * np.exp2(np.where(ok, step_log2 + 23, 0)), 0.0).astype(np.float32)
    return limit, magic, largest


def _rare(y, r, b0, b1, i, field, man_bits, pow2):  # noqa: ANN001, ANN202 (numba-compiled)
    """The block y[r, b0:b1, i] of [outer, length, inner] in place: NaN if it holds inf/NaN (field 255), else
    divided by its (huge) step. Indices, not a view: a view made in a kernel's loop costs reference counting there."""
    code_max = np.float32(2.0**man_bits - 1.0)
    step = pow2[min(field - 127 - (man_bits - 1), 149) + 149]  # not read for field 255
    for j in range(b0, b1):
        y[r, j, i] = np.nan if field == 255 else min(max(np.rint(y[r, j, i] / step), -code_max), code_max) * step


def _rows(y, bits, block, man_bits, limit, magic, largest, pow2):  # noqa: ANN001, ANN202
    """y [rows, length] quantized in place (bits: y seen as uint32), blocks along the contiguous axis; a row's last
    block may be shorter. Inlined into a caller with a constant `block`, the loops over whole blocks unroll and
    vectorise; they are written out here, not in a helper, as numba's inlining of a helper taking arrays cost
    reference counting in the loop (10x slower)."""
    rows, length = y.shape
    whole = length - length % block
    y3 = y.reshape(rows, length, 1)  # for _rare
    for r in range(rows):
        for b0 in range(0, whole, block):
            amax = np.uint32(0)
            for j in range(block):
                amax = max(amax, bits[r, b0 + j] & np.uint32(0x7FFFFFFF))  # |x| as an integer, ordered as floats
            field = amax >> np.uint32(23)  # biased exponent of the block max (0: zero or subnormal)
            if field > largest:
                _rare(y3, r, b0, b0 + block, 0, field, man_bits, pow2)
                continue
            lim, mg = limit[field], magic[field]
            for j in range(block):
                v = y[r, b0 + j]
                a = np.abs(v)
                a = lim if a > lim else a  # saturate first: the sum below is then exact before rounding
                y[r, b0 + j] = np.copysign((a + mg) - mg, v)
        if whole < length:  # the shorter last block (all of a row shorter than a block), the same steps
            amax = np.uint32(0)
            for j in range(whole, length):
                amax = max(amax, bits[r, j] & np.uint32(0x7FFFFFFF))
            field = amax >> np.uint32(23)
            if field > largest:
                _rare(y3, r, whole, length, 0, field, man_bits, pow2)
                continue
            lim, mg = limit[field], magic[field]
            for j in range(whole, length):
                v = y[r, j]
                a = np.abs(v)
                a = lim if a > lim else a
                y[r, j] = np.copysign((a + mg) - mg, v)


def _rows16(y, bits, man_bits, limit, magic, largest, pow2):  # noqa: ANN001, ANN202
    _rows(y, bits, 16, man_bits, limit, magic, largest, pow2)


def _rows32(y, bits, man_bits, limit, magic, largest, pow2):  # noqa: ANN001, ANN202
    _rows(y, bits, 32, man_bits, limit, magic, largest, pow2)


def _short(y, bits, man_bits, limit, magic, largest, pow2):  # noqa: ANN001, ANN202
    """y [rows, length < block] quantized in place, each row one block (an attention row of 11): the steps of
    `_rows`'s last block, which runs 2-3x slower there than in a function of its own (measured, as `_mx_short`)."""
    rows, length = y.shape
    y3 = y.reshape(rows, length, 1)  # for _rare
    for r in range(rows):
        amax = np.uint32(0)
        for j in range(length):
            amax = max(amax, bits[r, j] & np.uint32(0x7FFFFFFF))
        field = amax >> np.uint32(23)
        if field > largest:
            _rare(y3, r, 0, length, 0, field, man_bits, pow2)
            continue
        lim, mg = limit[field], magic[field]
        for j in range(length):
            v = y[r, j]
            a = np.abs(v)
            a = lim if a > lim else a
            y[r, j] = np.copysign((a + mg) - mg, v)


def _strided(y, bits, block, man_bits, limit, magic, largest, pow2):  # noqa: ANN001, ANN202
    """y [outer, length, inner] quantized in place, blocks along axis 1: each block is `inner` columns side by side,
    so the loops run along the contiguous inner axis (vectorised without help)."""
    outer, length, inner = y.shape
    amax = np.empty(inner, np.uint32)
    lim = np.empty(inner, np.float32)
    mg = np.empty(inner, np.float32)
    for o in range(outer):
        for b0 in range(0, length, block):
            b1 = min(b0 + block, length)
            amax[:] = 0
            for j in range(b0, b1):
                for i in range(inner):
                    amax[i] = max(amax[i], bits[o, j, i] & np.uint32(0x7FFFFFFF))
            rare = False
            for i in range(inner):
                field = amax[i] >> np.uint32(23)
                if field > largest:  # left as it is below (inf, 0), then done by _rare
                    rare, lim[i], mg[i] = True, np.inf, np.float32(0.0)
                else:
                    lim[i], mg[i] = limit[field], magic[field]
            for j in range(b0, b1):
                for i in range(inner):
                    v = y[o, j, i]
                    a = np.abs(v)
                    a = lim[i] if a > lim[i] else a
                    y[o, j, i] = np.copysign((a + mg[i]) - mg[i], v)
            if rare:
                for i in range(inner):
                    if amax[i] >> np.uint32(23) > largest:
                        _rare(y, o, b0, b1, i, amax[i] >> np.uint32(23), man_bits, pow2)


def _f32_bits(v):  # noqa: ANN001, ANN202 (replaced by an LLVM bitcast float32 -> uint32 in `_kernels`)
    return np.float32(v).view(np.uint32)


def _bits_f32(b):  # noqa: ANN001, ANN202 (replaced by an LLVM bitcast uint32 -> float32 in `_kernels`)
    return np.uint32(b).view(np.float32)


def _mx_elem(x, inv, scale, lo, hi, off, max_value):  # noqa: ANN001, ANN202 (scalars only: inlines for free)
    """One element of an MX float block: x / 2**X rounded to the element type (nearest even, gradual underflow,
    saturated at +-max_value), times 2**X; lo/hi: the bit patterns 2**emin and 2**(emax + 1), off: the magic
    number's offset from the element's exponent bits. The same float32 operations, in the same order, as
    `sim.formats._round_float`."""
    v = x * inv
    e = _f32_bits(v) & np.uint32(0x7F800000)
    e = lo if e < lo else e  # selects, not min/max: numba's min/max branch, and a branch here mispredicts
    e = hi if e > hi else e
    mg = _bits_f32(np.uint32(e + off))
    q = (v + mg) - mg
    q = -max_value if q < -max_value else q
    q = max_value if q > max_value else q
    return q * scale


def _mx_scales(field, emax, pow2):  # noqa: ANN001, ANN202
    """(2**-X, 2**X) of a block whose max has biased exponent `field` < 255: X = field - 127 - emax in [-127, 127]."""
    x = min(max(np.int64(field) - 127 - emax, -127), 127)
    return pow2[149 - x], pow2[149 + x]


def _mx_rows(y, bits, block, emax, lo, hi, off, max_value, pow2):  # noqa: ANN001, ANN202
    """y [rows, length >= block] quantized in place to MX float elements, blocks along the contiguous axis (a row's
    last block may be shorter); as `_rows`, inlined with a constant `block` so the block loops unroll and vectorise.
    Rows shorter than a block go to `_mx_short`."""
    rows, length = y.shape
    whole = length - length % block
    for r in range(rows):
        for b0 in range(0, whole, block):
            amax = np.uint32(0)
            for j in range(block):
                amax = max(amax, bits[r, b0 + j] & np.uint32(0x7FFFFFFF))
            field = amax >> np.uint32(23)
            if field == 255:  # inf or NaN: no scale
                for j in range(block):
                    y[r, b0 + j] = np.nan
                continue
            inv, scale = _mx_scales(field, emax, pow2)
            for j in range(block):
                y[r, b0 + j] = _mx_elem(y[r, b0 + j], inv, scale, lo, hi, off, max_value)
        if whole < length:  # the shorter last block, the same steps
            amax = np.uint32(0)
            for j in range(whole, length):
                amax = max(amax, bits[r, j] & np.uint32(0x7FFFFFFF))
            field = amax >> np.uint32(23)
            if field == 255:
                for j in range(whole, length):
                    y[r, j] = np.nan
                continue
            inv, scale = _mx_scales(field, emax, pow2)
            for j in range(whole, length):
                y[r, j] = _mx_elem(y[r, j], inv, scale, lo, hi, off, max_value)


def _mx_rows32(y, bits, emax, lo, hi, off, max_value, pow2):  # noqa: ANN001, ANN202
    _mx_rows(y, bits, 32, emax, lo, hi, off, max_value, pow2)


def _mx_short(y, bits, emax, lo, hi, off, max_value, pow2):  # noqa: ANN001, ANN202
    """y [rows, length < block] quantized in place to MX float elements, each row one block (an attention row of 11
    or 16). The steps of `_mx_rows`'s last block, but that loop (from a variable start, or on strided rows) runs
    3-15x slower than this one from 0 on contiguous rows (measured, 2026-12: LLVM vectorises only this one)."""
    rows, length = y.shape
    for r in range(rows):
        amax = np.uint32(0)
        for j in range(length):
            amax = max(amax, bits[r, j] & np.uint32(0x7FFFFFFF))
        field = amax >> np.uint32(23)
        if field == 255:
            for j in range(length):
                y[r, j] = np.nan
            continue
        inv, scale = _mx_scales(field, emax, pow2)
        for j in range(length):
            y[r, j] = _mx_elem(y[r, j], inv, scale, lo, hi, off, max_value)


def _mx_strided(y, bits, block, emax, lo, hi, off, max_value, pow2):  # noqa: ANN001, ANN202
    """y [outer, length, inner] quantized in place to MX float elements, blocks along axis 1 (`inner` columns side
    by side, loops along the contiguous inner axis)."""
    outer, length, inner = y.shape
    amax = np.empty(inner, np.uint32)
    inv = np.empty(inner, np.float32)
    scale = np.empty(inner, np.float32)
    for o in range(outer):
        for b0 in range(0, length, block):
            b1 = min(b0 + block, length)
            amax[:] = 0
            for j in range(b0, b1):
                for i in range(inner):
                    amax[i] = max(amax[i], bits[o, j, i] & np.uint32(0x7FFFFFFF))
            bad = False
            for i in range(inner):
                field = amax[i] >> np.uint32(23)
                if field == 255:  # rounded below like the others, then set to NaN
                    bad, inv[i], scale[i] = True, np.float32(1.0), np.float32(1.0)
                else:
                    inv[i], scale[i] = _mx_scales(field, emax, pow2)
            for j in range(b0, b1):
                for i in range(inner):
                    y[o, j, i] = _mx_elem(y[o, j, i], inv[i], scale[i], lo, hi, off, max_value)
            if bad:
                for i in range(inner):
                    if amax[i] >> np.uint32(23) == 255:
                        for j in range(b0, b1):
                            y[o, j, i] = np.nan


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


def _bitcasts() -> tuple[Any, Any]:
    """numba intrinsics reinterpreting a float32 as uint32 and back (one LLVM bitcast: no memory, vectorises)."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def f32_bits(typingctx, v):  # noqa: ANN001, ANN202, ARG001
        def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202, ARG001
            return builder.bitcast(args[0], ir.IntType(32))
        return types.uint32(types.float32), codegen

    @intrinsic
    def bits_f32(typingctx, b):  # noqa: ANN001, ANN202, ARG001
        def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202, ARG001
            return builder.bitcast(args[0], ir.FloatType())
        return types.float32(types.uint32), codegen

    return f32_bits, bits_f32


@functools.cache
def _kernels() -> dict[str, Any]:
    import numba
    from numba.core import config

    f32_1d, u32_2d, f32_2d = numba.float32[::1], numba.uint32[:, ::1], numba.float32[:, ::1]
    tail = (numba.int64, f32_1d, f32_1d, numba.int64, f32_1d)  # man_bits, limit, magic, largest, pow2
    rows_sig = (f32_2d, u32_2d) + tail
    strided_sig = (numba.float32[:, :, ::1], numba.uint32[:, :, ::1], numba.int64) + tail
    u32 = numba.uint32
    mx_tail = (numba.int64, u32, u32, u32, numba.float32, f32_1d)  # emax, lo, hi, off, max_value, pow2
    with _LOCK:  # the module globals below are replaced once, even if threads get here together
        slp = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1  # read by numba's pass builder at each compilation: on for these kernels only
        try:
            g = globals()
            if not isinstance(g["_rows"], numba.core.registry.CPUDispatcher):  # the kernels find these compiled
                g["_rare"] = numba.njit(cache=True, nogil=True)(g["_rare"])
                g["_rows"] = numba.njit(cache=True, nogil=True, inline="always")(g["_rows"])
                g["_f32_bits"], g["_bits_f32"] = _bitcasts()
                for name in ("_mx_elem", "_mx_scales", "_mx_rows"):
                    g[name] = numba.njit(cache=True, nogil=True, inline="always")(g[name])
            jit = functools.partial(numba.njit, cache=True, nogil=True)  # compiled once, then loaded from __pycache__
            rows, mx_rows = g["_rows"].py_func, g["_mx_rows"].py_func
            return {"rows16": jit([rows_sig])(_rows16), "rows32": jit([rows_sig])(_rows32),
                    "rows": jit([(f32_2d, u32_2d, numba.int64) + tail])(rows),
                    "strided": jit([strided_sig])(_strided), "short": jit([rows_sig])(_short),
                    "mx_rows32": jit([(f32_2d, u32_2d) + mx_tail])(_mx_rows32),
                    "mx_rows": jit([(f32_2d, u32_2d, numba.int64) + mx_tail])(mx_rows),
                    "mx_short": jit([(f32_2d, u32_2d) + mx_tail])(_mx_short),
                    "mx_strided": jit([(numba.float32[:, :, ::1], numba.uint32[:, :, ::1], numba.int64) + mx_tail])(
                        _mx_strided)}
        finally:
            config.SLP_VECTORIZE = slp


def int_codes_f32_inplace(y: np.ndarray, shape: tuple[int, int, int], block: int, man_bits: int) -> None:
    """Quantizes y in place: float32, C-contiguous, seen as [outer, length, inner] = `shape`, blocks of `block`
    along axis 1, codes of `man_bits` <= MAX_MAN_BITS magnitude bits (bfp, mxint8). Only when `available()`."""
    k = _kernels()
    limit, magic, largest = _tables(man_bits)
    outer, length, inner = shape
    if inner > 1:
        y3 = y.reshape(shape)
        k["strided"](y3, y3.view(np.uint32), block, man_bits, limit, magic, largest, POW2)
        return
    rows = outer if length % block else 1  # whole blocks only: one long row of them, no per-row overhead
    y2 = y.reshape(rows, -1)
    bits2 = y2.view(np.uint32)
    if length < block:
        k["short"](y2, bits2, man_bits, limit, magic, largest, POW2)
    elif block == 16:
        k["rows16"](y2, bits2, man_bits, limit, magic, largest, POW2)
    elif block == 32:
        k["rows32"](y2, bits2, man_bits, limit, magic, largest, POW2)
    else:
        k["rows"](y2, bits2, block, man_bits, limit, magic, largest, POW2)


@functools.cache
def _mx_args(exp_bits: int, man_bits: int, emax: int, max_value: float) -> tuple:
    """The kernels' trailing arguments for an MX float element, made once (the training loop makes ~400 calls per
    step): emax, the bit patterns of 2**emin and 2**(emax + 1) (the element's exponent clamp), the magic number's
    offset from the element's exponent bits (1.5 * 2**(E + 23 - man_bits), as `sim.formats._round_float` has them),
    max_value as float32, POW2."""
    emin = 2 - 2 ** (exp_bits - 1)
    lo, hi = (emin + 127) << 23, (emax + 1 + 127) << 23
    off = ((23 - man_bits) << 23) + (1 << 22)
    return emax, np.uint32(lo), np.uint32(hi), np.uint32(off), np.float32(max_value), POW2


def mx_float_f32_inplace(y: np.ndarray, shape: tuple[int, int, int], block: int, exp_bits: int, man_bits: int,
                         emax: int, max_value: float) -> None:
    """Quantizes y in place to an MX format with float elements (`exp_bits` >= 2 exponent and `man_bits` fraction
    bits, largest exponent `emax`, largest magnitude `max_value`): float32, C-contiguous, seen as [outer, length,
    inner] = `shape`, blocks of `block` along axis 1. Only when `available()`."""
    k = _kernels()
    tail = _mx_args(exp_bits, man_bits, emax, max_value)
    outer, length, inner = shape
    if inner > 1:
        y3 = y.reshape(shape)
        k["mx_strided"](y3, y3.view(np.uint32), block, *tail)
        return
    y2 = y.reshape(outer if length % block else 1, -1)
    bits2 = y2.view(np.uint32)
    if length < block:
        k["mx_short"](y2, bits2, *tail)
    elif block == 32:
        k["mx_rows32"](y2, bits2, *tail)
    else:
        k["mx_rows"](y2, bits2, block, *tail)
