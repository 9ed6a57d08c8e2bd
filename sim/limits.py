"""Sizes the models can represent, checked where sizes enter (workload resolution, CLI options) so an extreme value
gets one line and exit code 2 instead of a silent overflow or a traceback deep inside a model.

Why these limits: the counting, roofline and engine sum bytes, MACs and bit-operations in 64-bit integer columns
(pandas/numpy), and times in float64. A step whose worst-case counts stay below 2**62 cannot overflow those sums;
the bound is computed exactly (Python ints) from the trace before anything is counted.
"""

from __future__ import annotations

MAX_COUNT = 2**62             # any count of one step (bytes, MACs, bit-operations), with headroom under int64
MAX_ELEMENT_BYTES = 4         # the widest storage format (fp32)
MAX_MULT_BITS = 32            # the widest multiplier operand a format may declare (bit-operations = MACs x a x b)
MAX_BENCH_TRANSACTIONS = 20_000_000  # dram-bench: bursts through the transaction model (~100 s at ~2e5/s, ~1 GB)
MAX_DRAM_CHANNELS = 4096      # the engine keeps state per channel
BW_SCALE_RANGE = (1e-6, 1e6)  # --dram-bw-scale: beyond this the DRAM clock is not a finite, non-zero float in ns
MAX_SRAM_KB = 2**40           # 1 EiB of SRAM: larger is no longer "an SRAM" and its byte count loses float precision
MAX_ARRAY_DIM = 2**20         # systolic array rows/cols
MAX_GEMM_FOLDS = 2_000_000    # column folds (N / array cols): the fold model keeps a list entry per fold (~0.8 s)
MAX_OPERAND_BITS = 64         # --bits-a/--bits-b/--native-bits of `dsqsim gemm`


def trace_bounds(trace) -> tuple[int, int, int]:
    """(bytes, MACs, bit-operations) upper bounds of one step of `trace` at any precision, as exact ints."""
    elements = 0
    for op in trace.ops:
        for operand in (*op.inputs, *op.outputs):
            elements += int(trace.access_elements(operand))
    macs = sum(int(op.macs) for op in trace.ops)
    return elements * MAX_ELEMENT_BYTES, macs, macs * MAX_MULT_BITS * MAX_MULT_BITS


def check_trace(trace) -> None:
    """ValueError (one line) when a step of `trace` could overflow the models' 64-bit counts."""
    nbytes, macs, bitops = trace_bounds(trace)
    if nbytes > MAX_COUNT or bitops > MAX_COUNT:
        raise ValueError(
            f"workload {trace.workload} at batch {trace.batch}, sequence length {trace.seq_len} is too large to "
            f"simulate: one step moves up to {float(nbytes):.3g} bytes and does {float(macs):.3g} MACs, beyond what "
            f"the models count exactly (2**62 ~ 4.6e18 bytes or bit-operations); use a smaller --batch or --seq-len")


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:.6g} and {high:.6g}, got {value:.6g}")


MAX_STEPS = 2**53  # training steps of a schedule (a step index must stay exact in float64 fractions)


def check_overrides(dram_bw_scale: float | None = None, array: tuple[int, int] | None = None,
                    sram_kb: float | None = None, dram_channels: int | None = None) -> None:
    """ValueError (one line) for machine what-ifs outside what the models represent (see the limits above)."""
    if dram_bw_scale is not None:
        check_range("the DRAM bandwidth scale", float(dram_bw_scale), *BW_SCALE_RANGE)
    if array is not None:
        for dim in array:
            check_range("an array dimension", int(dim), 1, MAX_ARRAY_DIM)
    if sram_kb is not None:
        check_range("the SRAM size in KB", float(sram_kb), 0.0, MAX_SRAM_KB)
    if dram_channels is not None:
        check_range("the number of DRAM channels", int(dram_channels), 1, MAX_DRAM_CHANNELS)


def check_steps(steps: int, what: str = "steps") -> None:
    check_range(what, int(steps), 1, MAX_STEPS)


def check_gemm(m: int, k: int, n: int, bits: tuple[int, ...], array: tuple[int, int] | None) -> None:
    """ValueError (one line) for a GEMM the fold model cannot represent exactly or hold in memory."""
    for b in bits:
        check_range("an operand width in bits", int(b), 1, MAX_OPERAND_BITS)
    if array is not None:
        check_overrides(array=array)
    if m * k * n * MAX_OPERAND_BITS**2 > MAX_COUNT:
        raise ValueError(f"a {m}x{k}x{n} GEMM has {float(m * k * n):.3g} MACs, beyond what the models count "
                         f"exactly (2**62 bit-operations); use smaller --m/--k/--n")
    if array is not None:
        folds = -(-n // array[1])
        if folds > MAX_GEMM_FOLDS:
            raise ValueError(f"a {m}x{k}x{n} GEMM on a {array[0]}x{array[1]} array takes {folds:,} column folds; the "
                             f"fold model handles at most {MAX_GEMM_FOLDS:,} (use a smaller --n or more --cols)")
