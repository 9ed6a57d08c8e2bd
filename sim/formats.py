"""Number formats and the one NumPy quantizer (quantize-dequantize) shared by counting, engine and reference loop.

Families
- ``float``: IEEE-like element formats (fp32, bf16, fp16, fp8_e4m3, fp8_e5m2, fp6_e3m2, fp6_e2m3, fp4_e2m1).
  Round to nearest even (or stochastic) with gradual underflow; finite values beyond the largest finite value
  saturate to +-max (training quantizers saturate; ml_dtypes casts would give inf/NaN). +-inf and NaN pass through.
  fp32 of float32 input is the identity.
- ``fixed`` (``fixedN``): signed N-bit integers times one power-of-two scale per tensor, the smallest power of two
  ``s`` with ``max|x| <= (2**(N-1) - 1) * s`` so the tensor max always fits; codes are clipped to +-(2**(N-1) - 1).
- ``bfp`` (``bfpM`` / ``bfpM_bB``): blocks of B elements (default 16) along ``axis`` share an 8-bit exponent
  ``E = floor(log2(max|x| in block))`` clamped to [-127, 127]; each element is a sign and M-1 magnitude bits,
  value ``k * 2**(E - (M - 2))`` with integer ``|k| <= 2**(M-1) - 1``. So the block max lands in [2**(M-2), 2**(M-1))
  steps and rounding it up to 2**(M-1) saturates to 2**(M-1) - 1.
- ``mx`` (OCP Microscaling v1.0): blocks of 32 share an E8M0 scale ``X = floor(log2(max|x|)) - emax_elem`` clamped to
  [-127, 127]; elements ``x / 2**X`` are rounded to the element type (nearest even) and saturated to +-max.
  mxint8 elements are 8-bit sign-magnitude fixed point with 6 fraction bits (emax 0, max 127/64), identical to
  ``bfp8_b32``.

Any format but fp32 has a stochastic-rounding variant named ``<format>_sr`` (``mxint8_sr``, ``bf16_sr``): the same
format, bits and cost, whose ``rounding`` is "stochastic", so `quantize` rounds it stochastically unless told
otherwise. A policy names it like any format (the reference loop draws its random bits from a seeded stream).

Blocks (and, for fixed, the whole tensor) holding a NaN or +-inf become all NaN: the shared scale is undefined.
An all-zero block stays zero. A length not divisible by the block size gets a shorter last block.
Stochastic rounding rounds the value (in units of its step) up with probability equal to its fraction (to within
2**-53; bf16: random low bits added to the pattern): unbiased except where it saturates. The random bits are a
counter-based stream (splitmix64, sim/_srkernel.py): one 64-bit key drawn from the Generator per call, and each
element's bits a hash of the key and the element's offset in x's memory order.

Speed (the reference training loop quantizes ~15 M elements per step): nearest rounding of block formats works on
strided views of the tensor in its own memory order (no moveaxis or padding copies), bfp and mx of float32 through
compiled kernels when numba is installed (sim/_blockkernel.py) or a magic-number rounding in numpy otherwise; all
of them bit-identical to the general path (moveaxis, pad, `_quantize_blocks`), which stochastic rounding and the
rare cases the fast paths decline still use (tests/test_formats_kernel.py). Stochastic rounding of bfp and mx has
a compiled kernel too (sim/_srkernel.py).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

import numpy as np

from sim import _blockkernel, _srkernel

__all__ = ["NumberFormat", "get_format", "list_formats", "quantize", "ROUNDINGS"]

ROUNDINGS = ("nearest", "stochastic")
SR_SUFFIX = "_sr"  # `<format>_sr`: the format with stochastic rounding
SCALE_BITS = 8  # shared exponent width of bfp and mx (E8M0)
_SCALE_EXP_MIN, _SCALE_EXP_MAX = -127, 127
MX_BLOCK = 32
BFP_DEFAULT_BLOCK = 16


@dataclass(frozen=True)
class NumberFormat:
    """A number format. The first five fields are the contract (docs/architecture.md); the rest parametrise
    the quantizer: ``exp_bits``/``man_bits`` describe the element (float: exponent and fraction bits; fixed, bfp,
    mxint: 0 and the magnitude bits), ``emax`` the element's largest exponent (mx scale), ``max_value`` the largest
    element magnitude (block formats: in units of the shared power of two, so bfp4 1.75 and mxint8 127/64; fixed: 0,
    set per tensor), ``scale_bits`` the shared exponent width."""

    name: str
    family: str  # "float" | "fixed" | "bfp" | "mx"
    bits_per_element: float
    mult_bits: int
    block_size: int | None
    exp_bits: int = 0
    man_bits: int = 0
    emax: int = 0
    max_value: float = 0.0
    scale_bits: int = 0
    rounding: str = "nearest"  # how `quantize` rounds to this format by default ("stochastic": the `_sr` variants)

    @property
    def emin(self) -> int:
        """Smallest normal exponent of a float element (1 - bias)."""
        return 2 - 2 ** (self.exp_bits - 1) if self.exp_bits else 0

    def storage_bytes(self, elements: int) -> float:
        """Bytes to store ``elements`` values, shared exponents included (fractional: averaged over blocks)."""
        return elements * self.bits_per_element / 8.0


def _float_format(name: str, exp_bits: int, man_bits: int, emax: int, max_value: float, bits: int) -> NumberFormat:
    return NumberFormat(name, "float", float(bits), man_bits + 1, None, exp_bits, man_bits, emax, max_value)


# Element types: (exponent bits, fraction bits, emax, largest finite value, storage bits).
_FLOAT_ELEMENTS = {
    "fp32": (8, 23, 127, float(np.finfo(np.float32).max), 32),
    "bf16": (8, 7, 127, float.fromhex("0x1.fep127"), 16),
    "fp16": (5, 10, 15, 65504.0, 16),
    "fp8_e4m3": (4, 3, 8, 448.0, 8),       # OCP E4M3FN: no infinities, S.1111.111 is NaN
    "fp8_e5m2": (5, 2, 15, 57344.0, 8),
    "fp6_e3m2": (3, 2, 4, 28.0, 6),
    "fp6_e2m3": (2, 3, 2, 7.5, 6),
    "fp4_e2m1": (2, 1, 2, 6.0, 4),
}
_FLOATS = {name: _float_format(name, *spec) for name, spec in _FLOAT_ELEMENTS.items()}

_MX_ELEMENTS = {"mxfp8_e4m3": "fp8_e4m3", "mxfp8_e5m2": "fp8_e5m2", "mxfp6_e3m2": "fp6_e3m2",
                "mxfp6_e2m3": "fp6_e2m3", "mxfp4": "fp4_e2m1"}
_MX = {
    mx: NumberFormat(mx, "mx", _FLOATS[el].bits_per_element + SCALE_BITS / MX_BLOCK, _FLOATS[el].mult_bits, MX_BLOCK,
                     _FLOATS[el].exp_bits, _FLOATS[el].man_bits, _FLOATS[el].emax, _FLOATS[el].max_value, SCALE_BITS)
    for mx, el in _MX_ELEMENTS.items()
}
_MX["mxint8"] = NumberFormat("mxint8", "mx", 8 + SCALE_BITS / MX_BLOCK, 8, MX_BLOCK, 0, 7, 0, 127 / 64, SCALE_BITS)

_ALIASES = {
    "float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "fp8": "fp8_e4m3", "e4m3": "fp8_e4m3",
    "e5m2": "fp8_e5m2", "fp4": "fp4_e2m1", "mxfp8": "mxfp8_e4m3", "mxfp6": "mxfp6_e3m2", "mxfp4_e2m1": "mxfp4",
}
_FIXED_RE = re.compile(r"fixed(\d+)")
_BFP_RE = re.compile(r"bfp(\d+)(?:_b(\d+))?")
# Named built-ins for `dsqsim presets`; any fixedN (2..32) and bfpM[_bB] (2..24, B 1..4096) is also valid.
_LISTED = ["fixed8", "fixed16", "bfp2", "bfp3", "bfp4", "bfp6", "bfp8", "bfp12", "bfp16"]


@functools.cache
def _fixed(bits: int) -> NumberFormat:
    if not 2 <= bits <= 32:
        raise ValueError(f"fixed point needs 2..32 bits, got fixed{bits}")
    return NumberFormat(f"fixed{bits}", "fixed", float(bits), bits, None, 0, bits - 1)


@functools.cache
def _bfp(bits: int, block: int) -> NumberFormat:
    if not 2 <= bits <= 24:
        raise ValueError(f"bfp mantissa needs 2..24 bits (sign included), got bfp{bits}")
    if not 1 <= block <= 4096:
        raise ValueError(f"bfp block size must be 1..4096, got {block}")
    name = f"bfp{bits}" if block == BFP_DEFAULT_BLOCK else f"bfp{bits}_b{block}"
    return NumberFormat(name, "bfp", bits + SCALE_BITS / block, bits, block, 0, bits - 1, 0,
                        (2 ** (bits - 1) - 1) / 2 ** (bits - 2), SCALE_BITS)


def get_format(name: str | NumberFormat) -> NumberFormat:
    """The format called ``name`` (canonical name or alias, case-insensitive); ValueError if unknown."""
    if isinstance(name, NumberFormat):
        return name
    if not isinstance(name, str):
        raise ValueError(f"a format name must be a string, got {type(name).__name__}")
    return _lookup(name)


@functools.cache  # hot path (counting calls it per operand); one object per format, so `is` holds
def _lookup(name: str) -> NumberFormat:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _FLOATS:
        return _FLOATS[key]
    if key in _MX:
        return _MX[key]
    if m := _FIXED_RE.fullmatch(key):
        return _fixed(int(m.group(1)))
    if m := _BFP_RE.fullmatch(key):
        return _bfp(int(m.group(1)), int(m.group(2) or BFP_DEFAULT_BLOCK))
    if key.endswith(SR_SUFFIX) and len(key) > len(SR_SUFFIX):
        try:
            base = _lookup(key[: -len(SR_SUFFIX)])
        except ValueError:
            pass  # not a variant of a known format: the error below
        else:
            if base.name == "fp32" or base.rounding != "nearest":
                raise ValueError(f"no stochastic-rounding variant of {base.name} ({name!r})")
            return _sr_variant(base)
    valid = ", ".join(f.name for f in list_formats())
    raise ValueError(f"unknown number format {name!r}; valid: {valid}, or any fixedN / bfpM / bfpM_bB, each also "
                     f"as <format>{SR_SUFFIX} (stochastic rounding)")


@functools.cache  # one object per variant, whatever the spelling
def _sr_variant(base: NumberFormat) -> NumberFormat:
    return dataclasses.replace(base, name=base.name + SR_SUFFIX, rounding="stochastic")


def list_formats() -> list[NumberFormat]:
    """The named built-in formats (float, fixed, bfp, mx), for `dsqsim presets`."""
    return [*_FLOATS.values(), *(get_format(n) for n in _LISTED), *_MX.values()]


# ----------------------------------------------------------------------------------------------------------------
# Quantizer


def _work_dtype(x: np.ndarray) -> tuple[type, type, int, int]:
    """(float dtype, same-width uint dtype, fraction bits, exponent bias) of the working precision."""
    if x.dtype == np.float64:
        return np.float64, np.uint64, 52, 1023
    return np.float32, np.uint32, 23, 127


def _floor_log2(a: np.ndarray) -> np.ndarray:
    """floor(log2(a)) for finite a > 0 read from the exponent bits (int32). Inputs in the working dtype's own
    subnormal range report its minimum exponent, far below every format's range here."""
    _, uint, frac_bits, bias = _work_dtype(a)
    biased = (a.view(uint) >> frac_bits) & (2 * bias + 1)
    return biased.astype(np.int32) - bias


def _pow2(e: np.ndarray, dtype: type) -> np.ndarray:
    """2**e as ``dtype`` for integer e (exact, including subnormal powers)."""
    return np.ldexp(np.ones((), dtype=dtype), e.astype(np.int32))


def _round(v: np.ndarray, rounding: str, bits: np.ndarray | None) -> np.ndarray:
    """Round ``v`` (a temporary, values in units of their step; overwritten) to integers and return them.
    Stochastic: up when the uniform made of ``bits`` (uint64 per element, `_srkernel.random_bits`) is below the
    fraction."""
    if rounding == "nearest":
        return np.rint(v, out=v)  # ties to even
    down = np.floor(v)
    v -= down  # the fraction, exact
    down += _srkernel.uniforms(bits) < v  # adds 0.0 or 1.0, as the kernel does (-0.0 becomes +0.0)
    return down


def _round_float(v: np.ndarray, fmt: NumberFormat, rounding: str, rbits, original: np.ndarray | None = None,
                 ) -> np.ndarray:
    """Round ``v`` (a contiguous temporary, overwritten) to the float element type ``fmt`` with gradual underflow,
    saturating finite values to +-max; ``original``'s inf and NaN are copied through.

    The step at each element is 2**(E - man_bits) with E = floor(log2|v|) clamped to [emin, emax + 1] (below emin
    the subnormal step is fixed; above emax + 1 everything saturates anyway). Nearest: one float addition of
    M = 1.5 * 2**(E - man_bits + frac_bits), whose ulp is that step, rounds v ties-to-even (M is an even multiple
    of the step and |v| < M / 2), and subtracting M is exact. When the element shares the working type's exponent
    range (bf16 from float32) rounding the bit pattern is simpler and also exact for subnormals. Stochastic: v / step
    rounded up with probability equal to its fraction. In place on purpose: fresh 4 MB buffers cost page faults.
    """
    dtype, uint, frac_bits, bias = _work_dtype(v)
    bits = v.view(uint)
    drop = frac_bits - fmt.man_bits
    if fmt.emin == 1 - bias:  # bf16 from float32: round the bit pattern (a carry bumps the exponent)
        if rounding == "nearest":
            carry = bits >> drop
            carry &= uint(1)
            carry += uint((1 << (drop - 1)) - 1)
        else:
            carry = (rbits >> np.uint64(64 - drop)).astype(uint)  # exact: up with P = dropped fraction
        bits += carry
        bits &= ~uint((1 << drop) - 1)
        q = v
    else:
        exp_field = bits & uint(2 * bias + 1 << frac_bits)  # biased exponent, in place in the bit pattern
        np.maximum(exp_field, uint(fmt.emin + bias << frac_bits), out=exp_field)
        np.minimum(exp_field, uint(fmt.emax + 1 + bias << frac_bits), out=exp_field)
        if rounding == "nearest":
            exp_field += uint((drop << frac_bits) + (1 << frac_bits - 1))  # M's bit pattern
            magic = exp_field.view(dtype)
            v += magic
            v -= magic
            q = v
        else:
            exp_field -= uint(fmt.man_bits << frac_bits)  # 2**(E - man_bits), a normal number here
            step = exp_field.view(dtype)
            v /= step
            q = _round(v, rounding, rbits)
            q *= step
    np.clip(q, -fmt.max_value, fmt.max_value, out=q)
    if original is not None:
        nonfinite = ~np.isfinite(original)
        if nonfinite.any():
            q[nonfinite] = original[nonfinite]  # inf and NaN pass through
    return q


def _blocked(x: np.ndarray, axis: int, block: int) -> tuple[np.ndarray, tuple[int, ...], int]:
    """x moved so ``axis`` is last, zero-padded to whole blocks and shaped (..., nblocks, block)."""
    xm = np.moveaxis(x, axis, -1)
    length = xm.shape[-1]
    pad = (-length) % block
    if pad:
        xm = np.concatenate([xm, np.zeros(xm.shape[:-1] + (pad,), dtype=xm.dtype)], axis=-1)
    return xm.reshape(xm.shape[:-1] + (-1, block)), xm.shape[:-1], length


def _unblocked(q: np.ndarray, lead: tuple[int, ...], length: int, axis: int) -> np.ndarray:
    q = q.reshape(lead + (-1,))[..., :length]
    return np.moveaxis(q, -1, axis)


def _abs_and_block_amax(xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|xb|, max |x| over the last axis with keepdims); NaN propagates. numpy reduces short last axes slowly, so
    blocks of up to 16 take an elementwise maximum over their B strided columns (each op spans all blocks)."""
    a = np.abs(xb)
    if xb.shape[-1] > 16:
        return a, np.max(a, axis=-1, keepdims=True)
    amax = a[..., :1].copy()
    for j in range(1, xb.shape[-1]):
        np.maximum(amax, a[..., j:j + 1], out=amax)
    return a, amax


def _quantize_blocks(xb: np.ndarray, fmt: NumberFormat, rounding: str, bits) -> np.ndarray:
    """Quantize (..., nblocks, block) with one shared exponent per block (bfp and mx); ``bits``: stochastic
    rounding's random bits, blocked as xb."""
    dtype = xb.dtype.type
    q, amax = _abs_and_block_amax(xb)  # q: a scratch buffer from here on, holding the result at the end
    bad = ~np.isfinite(amax)
    e = _floor_log2(np.where(bad | (amax == 0), 1, amax).astype(dtype))
    scale_e = np.clip(e - fmt.emax, _SCALE_EXP_MIN, _SCALE_EXP_MAX)
    if fmt.exp_bits == 0:  # bfp and mxint8: sign-magnitude integer codes, step 2**(E - (man_bits - 1))
        step = _pow2(scale_e - (fmt.man_bits - 1), dtype)
        np.divide(xb, step, out=q)
        q = _round(q, rounding, bits)
        code_max = 2.0**fmt.man_bits - 1
        np.clip(q, -code_max, code_max, out=q)
        q *= step
    else:  # mx float: scale by 2**X (E8M0) and round each element in the element type
        scale = _pow2(scale_e, dtype)
        np.divide(xb, scale, out=q)
        q = _round_float(q, fmt, rounding, bits)
        q *= scale
    if bad.any():  # zero blocks need no care: their elements round to zero
        q[np.broadcast_to(bad, q.shape)] = np.nan
    return q


# Nearest rounding of block formats, the hot path of the reference training loop: no moveaxis or padding copies.
# x is seen in its own memory order as [outer, length, inner] (inner = the elements after the blocking axis in
# memory; plans cached per shape, strides, axis and block size). bfp/mx of float32 go to the compiled kernels
# (sim/_blockkernel.py) when numba is there. Otherwise blocks are strided views [outer, nblocks, B, inner] of a copy
# laid out like x, quantized in place; integer codes are rounded with one addition and one subtraction of a
# per-block magic number (as in `_round_float`) on |x|, whose sign is put back afterwards, so -0.0 and ties to even
# come out exactly as rint() gives them.


_Plan = tuple[tuple[int, ...], tuple[int, int, int], tuple[tuple[int, int, int, int], ...], tuple[int, ...]]


@functools.lru_cache(maxsize=1024)
def _block_plan(shape: tuple[int, ...], strides: tuple[int, ...], axis: int, block: int) -> _Plan:
    """(memory-order permutation, (outer, length, inner) of the blocking axis in that order, pieces (start, stop,
    nblocks, block length): whole blocks, then the shorter last block; the inverse permutation)."""
    perm = tuple(sorted(range(len(shape)), key=lambda i: (-strides[i], i)))
    ax = perm.index(axis)
    pshape = [shape[i] for i in perm]
    outer, length, inner = int(np.prod(pshape[:ax])), pshape[ax], int(np.prod(pshape[ax + 1:]))
    whole = length - length % block
    pieces = ((0, whole, whole // block, block),) if whole else ()
    if length % block:
        pieces += ((whole, length, 1, length % block),)
    return perm, (outer, length, inner), pieces, tuple(int(i) for i in np.argsort(perm))


def _spread(per_block: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-block array [outer, nblocks, 1, inner] made ready for elementwise ops on [outer, nblocks, B, inner]:
    numpy broadcasts a short inner axis slowly, so there it is repeated to full size (one cheap pass)."""
    if shape[3] >= 16 or shape[2] == 1:
        return per_block
    return np.repeat(per_block, shape[2], axis=2)


def _block_amax(a: np.ndarray) -> np.ndarray:
    """max over axis 2 of [outer, nblocks, B, inner] (keepdims); NaN propagates. numpy reduces a short axis slowly,
    so short blocks take elementwise maxima of strided slices: first of every 4th element (B/4 long), then of
    those B/4 columns (6 ops for B = 16 instead of 15)."""
    bk = a.shape[2]
    if bk > 64 or a.shape[3] >= 16:
        return np.max(a, axis=2, keepdims=True)
    if bk % 4 == 0 and bk >= 8:
        m = np.maximum(a[:, :, 0::4], a[:, :, 1::4])
        np.maximum(m, a[:, :, 2::4], out=m)
        np.maximum(m, a[:, :, 3::4], out=m)
        a, bk = m, bk // 4
    amax = np.maximum(a[:, :, :1], a[:, :, 1:2]) if bk > 1 else a[:, :, :1].copy()
    for j in range(2, bk):
        np.maximum(amax, a[:, :, j:j + 1], out=amax)
    return amax


@functools.cache
def _int_code_bits(man_bits: int) -> tuple[np.uint32, np.uint32, int]:
    """For integer codes (bfp, mxint8: emax 0) on float32, with E the biased exponent of the block max in place
    (bits & 0x7f800000): limit = (2**m - 1) * 2**(E - (m - 1)) = 1.1...1b * 2**E has the bit pattern E | LIMIT;
    magic = 1.5 * 2**(s + 23) with s = E - (m - 1) is E + MAGIC; the largest E whose magic is finite."""
    limit_mantissa = ((1 << (man_bits - 1)) - 1) << (24 - man_bits)
    magic_offset = ((23 - (man_bits - 1)) << 23) + (1 << 22)
    largest_field = (254 - 23 + (man_bits - 1)) << 23
    return np.uint32(limit_mantissa), np.uint32(magic_offset), largest_field


def _int_codes_f32(a: np.ndarray, man_bits: int) -> bool:
    """Round |x| in the blocks a [outer, nblocks, B, inner] (float32, a view; overwritten) to integer codes times
    the block's step, nearest even, saturated; False (a partly written) for a block holding inf/NaN, a subnormal
    block max, or a magic number beyond float32: the general path handles those exactly."""
    limit_mantissa, magic_offset, largest_field = _int_code_bits(man_bits)
    amax = _block_amax(a).view(np.uint32)
    field = amax & np.uint32(0x7F800000)
    if int(field.max()) > largest_field or ((amax - np.uint32(1)) < np.uint32(0x7FFFFF)).any():
        return False
    field |= limit_mantissa
    np.minimum(a, _spread(field.view(np.float32), a.shape), out=a)  # saturate first: then |x| / step < 2**22
    field &= np.uint32(0x7F800000)
    field += magic_offset
    magic = _spread(field.view(np.float32), a.shape)
    a += magic  # the sum's ulp is the step: |x| rounds to it, ties to even (magic / step is even)
    a -= magic
    return True


def _round_block_piece(p: np.ndarray, fmt: NumberFormat) -> bool:
    """Quantize the blocks p [outer, nblocks, B, inner] (a view) in place, nearest rounding, any working dtype;
    False (p partly written) when the magic number of some block would overflow."""
    dtype, uint, frac_bits, bias = _work_dtype(p)
    a = np.abs(p)
    amax = _block_amax(a)
    field = (amax.view(uint) >> frac_bits).astype(np.int32)  # biased exponent; 0 for zero and subnormal amax
    bad = field == 2 * bias + 1  # inf or NaN in the block
    if bad.any():
        field[bad] = bias
    scale_e = np.clip(field - (bias + fmt.emax), _SCALE_EXP_MIN, _SCALE_EXP_MAX)
    if fmt.exp_bits == 0:  # bfp and mxint8: codes |k| <= 2**man_bits - 1, step 2**s
        s = scale_e - (fmt.man_bits - 1)
        if int(s.max()) + frac_bits + bias >= 2 * bias + 1:
            return False
        limit = _pow2(s, dtype) * dtype(2.0**fmt.man_bits - 1)  # exact: an integer below 2**23 times 2**s
        magic = (((s + (frac_bits + bias)).astype(uint) << uint(frac_bits)) | uint(1 << frac_bits - 1)).view(dtype)
        np.minimum(a, _spread(limit, a.shape), out=a)  # saturate first: then |x| / step < 2**22 and the sum is exact
        magic = _spread(magic, a.shape)
        a += magic  # 1.5 * 2**(s + frac_bits): its ulp is the step, so the sum rounds |x| to it, ties to even
        a -= magic
        bits = p.view(uint)
        bits &= uint(1 << (8 * a.itemsize - 1))  # the sign of x ...
        bits |= a.view(uint)  # ... on the rounded magnitude
    else:  # mx float: scale by 2**X (E8M0) and round each element in the element type, as _quantize_blocks does
        scale = _spread(_pow2(scale_e, dtype), a.shape)
        np.divide(p, scale, out=a)
        q = _round_float(a, fmt, "nearest", None)
        q *= scale
        p[...] = q
    if bad.any():
        p[np.broadcast_to(bad, p.shape)] = np.nan
    return True


def _pieces(x: np.ndarray, axis: int, block: int) -> list[np.ndarray] | None:
    """Views [outer, nblocks, B, inner] of the dense array x covering it: whole blocks, then the shorter last one."""
    perm, (outer, length, inner), pieces, _ = _block_plan(x.shape, x.strides, axis % x.ndim, block)
    base = x.transpose(perm)
    if not base.flags.c_contiguous:  # not expected of a fresh dense array
        return None
    x3 = base.reshape(outer, length, inner)
    return [x3[:, start:stop].reshape(outer, nblocks, bk, inner) for start, stop, nblocks, bk in pieces]


def _kernel_takes(fmt: NumberFormat) -> bool:
    """The compiled kernels are there and quantize float32 to `fmt`: bfp, mxint8 (integer codes of <= 22 bits) and
    MX formats with float elements."""
    if fmt.block_size is None or not (fmt.exp_bits == 0 and fmt.emax == 0 and fmt.man_bits <= _blockkernel.MAX_MAN_BITS
                                      or fmt.family == "mx" and fmt.exp_bits > 0):
        return False
    return _blockkernel.available()


def _kernel_blocks(x: np.ndarray, fmt: NumberFormat, axis: int, inplace: bool = False,
                   key: np.uint64 | None = None) -> np.ndarray | None:
    """`fmt` (one `_kernel_takes`) of float32 x (ndim >= 1, nonempty) by the compiled kernels, in x's memory order:
    into a copy of x, or into x itself when `inplace` (x dense; the caller owns it); None if x's layout does not
    allow it. Nearest rounding, or stochastic with the random stream `key`."""
    perm, shape3, _, _ = _block_plan(x.shape, x.strides, axis % x.ndim, fmt.block_size)
    if not x.transpose(perm).flags.c_contiguous:  # a strided view: a dense copy, then quantize the copy in place
        x = np.array(x, order="K")
        perm, shape3, _, _ = _block_plan(x.shape, x.strides, axis % x.ndim, fmt.block_size)
        if not x.transpose(perm).flags.c_contiguous:
            return None
    elif not inplace:
        x = x.copy(order="K")  # dense in the same axis order as x: the same plan
    if key is not None:
        _srkernel.sr_blocks_f32_inplace(x.transpose(perm), shape3, fmt.block_size, key, fmt)
    elif fmt.exp_bits:
        _blockkernel.mx_float_f32_inplace(x.transpose(perm), shape3, fmt.block_size, fmt.exp_bits, fmt.man_bits,
                                          fmt.emax, fmt.max_value)
    else:
        _blockkernel.int_codes_f32_inplace(x.transpose(perm), shape3, fmt.block_size, fmt.man_bits)
    return x


def _quantize_blocks_nearest(x: np.ndarray, fmt: NumberFormat, axis: int) -> np.ndarray | None:
    """bfp/mx with nearest rounding along ``axis``, in x's memory order; None when the general path must be used
    (codes too wide for the magic-number rounding, or values it cannot take exactly)."""
    int_codes_f32 = x.dtype == np.float32 and fmt.exp_bits == 0 and fmt.emax == 0  # bfp, mxint8: the hot path
    if x.dtype == np.float32 and _kernel_takes(fmt):
        out = _kernel_blocks(x, fmt, axis)
        if out is not None:
            return out
    _, _, frac_bits, _ = _work_dtype(x)
    if fmt.exp_bits == 0 and fmt.man_bits >= frac_bits:  # |codes| < 2**(frac_bits - 1) keeps the sum exact
        return None
    if int_codes_f32:
        a = np.abs(x)  # dense, laid out like x
        pieces = _pieces(a, axis, fmt.block_size)
        if pieces is None or not all(_int_codes_f32(p, fmt.man_bits) for p in pieces):
            return None
        out = x.view(np.uint32) & np.uint32(0x80000000)  # the sign of x on the rounded magnitude (keeps -0.0)
        out |= a.view(np.uint32)
        return out.view(np.float32)
    out = np.array(x, order="K")  # a dense copy, laid out like x
    pieces = _pieces(out, axis, fmt.block_size)
    if pieces is None or not all(_round_block_piece(p, fmt) for p in pieces):
        return None
    return out


def _short_rows_stochastic(x: np.ndarray, fmt: NumberFormat, axis: int, key: np.uint64) -> np.ndarray | None:
    """bfp/mx with stochastic rounding of x whose blocking axis is shorter than a block (attention rows), in x's
    memory order: `_quantize_blocks` on a strided view of a dense copy, with no padding to a whole block (which for
    11-element rows of 32-blocks tripled the work); 5-8x faster than the general path there, slower on long rows.
    The same operations on the same values, so the same result. None when the copy's layout does not allow it."""
    out = np.array(x, order="K")  # dense, laid out like x: element k of its memory order draws the stream's bits k
    perm, (outer, length, inner), _, _ = _block_plan(out.shape, out.strides, axis % x.ndim, fmt.block_size)
    base = out.transpose(perm)
    if not base.flags.c_contiguous:  # not expected of a fresh dense array
        return None
    bits = _srkernel.stream_bits(key, out.size).reshape(outer, 1, length, inner)
    view = base.reshape(outer, 1, length, inner)  # [outer, one block, its elements, inner]
    q = _quantize_blocks(view.transpose(0, 3, 1, 2), fmt, "stochastic", bits.transpose(0, 3, 1, 2))
    view[...] = q.transpose(0, 2, 3, 1)
    return out


def _quantize_fixed(x: np.ndarray, fmt: NumberFormat, rounding: str, bits) -> np.ndarray:
    """Signed fixed point with one power-of-two scale for the whole tensor, chosen so the max fits."""
    amax = float(np.max(np.abs(x)))
    if not np.isfinite(amax):
        return np.full_like(x, np.nan)
    if amax == 0:
        return np.zeros_like(x)
    qmax = 2 ** (fmt.mult_bits - 1) - 1
    k = int(np.ceil(np.log2(amax / qmax)))
    while amax > qmax * 2.0**k:  # guard log2 rounding: smallest k with amax <= qmax * 2**k
        k += 1
    while amax <= qmax * 2.0 ** (k - 1):
        k -= 1
    if k < -126 + fmt.mult_bits:  # steps near float32's subnormal range: exact arithmetic in float64
        x = x.astype(np.float64)
    step = x.dtype.type(2.0**k)
    codes = _round(x / step, rounding, bits)
    np.clip(codes, -qmax, qmax, out=codes)
    return codes * step


def quantize(x, fmt: str | NumberFormat, axis: int = -1, rounding: str | None = None,
             rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Quantize-dequantize ``x`` to ``fmt``; returns a new float32 array of the same shape (block formats with
    nearest rounding: laid out in memory like ``x``, e.g. a transposed view gives a transposed result).

    ``axis`` is the axis along which blocks of bfp/mx formats run (ignored otherwise). ``rounding`` is
    "nearest" (ties to even) or "stochastic" (``rng``: a numpy Generator or seed; None draws a fresh one); None:
    the format's own (`NumberFormat.rounding`: stochastic for the ``_sr`` variants, else nearest).
    float64 input is rounded directly (no double rounding through float32).
    """
    fmt = get_format(fmt)
    rounding = fmt.rounding if rounding is None else rounding
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; valid: {', '.join(ROUNDINGS)}")
    key = None
    if rounding == "stochastic":
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        key = _srkernel.draw_key(rng)  # the call's random stream (sim/_srkernel.py)
    if (type(x) is np.ndarray and x.dtype == np.float32 and x.size and x.ndim
            and -x.ndim <= axis < x.ndim and _kernel_takes(fmt)):  # the training loop's case, straight to the kernel
        out = _kernel_blocks(x, fmt, axis, key=key)
        if out is not None:
            return out
    with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN blocks are handled explicitly
        return _quantize(x, fmt, axis, rounding, key)


def _quantize(x, fmt: NumberFormat, axis: int, rounding: str, key: np.uint64 | None) -> np.ndarray:
    x = np.asarray(x)
    shape = x.shape
    x = np.atleast_1d(x)  # 0-d arithmetic would give numpy scalars, which cannot be rounded in place
    if x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    if x.size == 0:
        return np.zeros(shape, dtype=np.float32)
    bits = _srkernel.random_bits(key, x) if rounding == "stochastic" else None
    if fmt.family == "float":
        if fmt.name == "fp32" and x.dtype == np.float32:
            return x.reshape(shape).copy()
        out = _round_float(np.array(x, order="C"), fmt, rounding, bits, original=x)
    elif fmt.family == "fixed":
        out = _quantize_fixed(x, fmt, rounding, bits)
    else:
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} out of range for an array of {x.ndim} dimensions")
        if rounding == "nearest":
            out = _quantize_blocks_nearest(x, fmt, axis)
        else:
            out = _short_rows_stochastic(x, fmt, axis, key) if x.shape[axis] < fmt.block_size else None
        if out is None:
            xb, lead, length = _blocked(x, axis, fmt.block_size)
            bb = None if bits is None else _blocked(bits, axis, fmt.block_size)[0]
            out = _unblocked(_quantize_blocks(xb, fmt, rounding, bb), lead, length, axis)
        return np.asarray(out, dtype=np.float32).reshape(shape)
    return np.asarray(out, dtype=np.float32, order="C").reshape(shape)
