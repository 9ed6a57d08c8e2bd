"""Energy of arithmetic and on-chip SRAM, from Horowitz's 45 nm table, scaled by a process factor.

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, table of 45 nm, 0.9 V
energies: integer add 8b 0.03 pJ, 16b 0.05, 32b 0.1; FP add 16b 0.4, 32b 0.9; integer multiply 8b 0.2, 32b 3.1;
FP multiply 16b 1.1, 32b 3.7; 64-bit SRAM (cache) read 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ.

How the defaults follow from it (all per operation, 45 nm; times `process_scale`):
- integer multiply ~ a x b (array multiplier area): 0.2 pJ / 64 per bit-product (32x32 -> 3.2 pJ, table 3.1);
- float multiply of significands a x b (hidden bit included): the line through the table's fp16 (11 x 11, 1.1 pJ)
  and fp32 (24 x 24, 3.7 pJ) points, i.e. a significand product plus exponent/normalisation overhead;
- integer add ~ width: 0.1 pJ / 32 per bit (8b -> 0.025, 16b -> 0.05); float add: the line through fp16 0.4 and
  fp32 0.9 pJ; a MAC's add is at the accumulator's width and kind;
- SRAM read of 64 bits: log-log interpolation between the three sizes, per byte = that / 8. Below 8 KB it is
  extrapolated along the first segment; above 1 MB it stays at the 1 MB figure (a large buffer is built of banks
  of at most ~1 MB and one access reads one bank; the wire energy to a distant bank is not modelled); a write costs
  `sram_write_factor` x a read (Horowitz gives reads only; 1.0 by default);
- a vector-unit elementary op: one fp32 op, the mean of fp32 add and multiply (2.3 pJ).
Every value can be overridden in a machine's [energy] table (hwmodels.machine.loader). Leakage is not modelled.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

_FP16_SIG, _FP32_SIG = 11, 24
_FLOAT_MUL_SLOPE = (3.7 - 1.1) / (_FP32_SIG ** 2 - _FP16_SIG ** 2)
_FLOAT_ADD_SLOPE = (0.9 - 0.4) / (32 - 16)


@dataclass(frozen=True)
class ComputeEnergy:
    """Per-operation energies in pJ at 45 nm (Horowitz 2014) and a process factor applied to all of them."""

    int_mul_pj_per_bit2: float = 0.2 / 64
    float_mul_pj_per_bit2: float = _FLOAT_MUL_SLOPE
    float_mul_pj_offset: float = 1.1 - _FLOAT_MUL_SLOPE * _FP16_SIG ** 2
    int_add_pj_per_bit: float = 0.1 / 32
    float_add_pj_per_bit: float = _FLOAT_ADD_SLOPE
    float_add_pj_offset: float = 0.4 - _FLOAT_ADD_SLOPE * 16
    accumulator_bits: int = 32          # a MAC adds into an accumulator this wide
    accumulate: str = "auto"            # "auto": float if either operand is float, else int; or "int" / "float"
    sram_kb_points: tuple[float, ...] = (8.0, 32.0, 1024.0)
    sram_pj_per_64b: tuple[float, ...] = (10.0, 20.0, 100.0)
    sram_write_factor: float = 1.0
    vector_pj_per_op: float = (0.9 + 3.7) / 2
    process_scale: float = 1.0          # multiply every energy (1.0 = the 45 nm table); see docs/energy.md
    source: str = "Horowitz, ISSCC 2014, 45 nm table"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "float" and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
                raise ValueError(f"energy {f.name} must be a finite number, got {v!r}")
        for key in ("int_mul_pj_per_bit2", "float_mul_pj_per_bit2", "int_add_pj_per_bit", "float_add_pj_per_bit",
                    "sram_write_factor", "vector_pj_per_op", "process_scale"):
            if getattr(self, key) < 0:
                raise ValueError(f"energy {key} must be >= 0, got {getattr(self, key)!r}")
        if not isinstance(self.accumulator_bits, int) or isinstance(self.accumulator_bits, bool) or \
                self.accumulator_bits <= 0:
            raise ValueError(f"energy accumulator_bits must be a positive integer, got {self.accumulator_bits!r}")
        if self.accumulate not in ("auto", "int", "float"):
            raise ValueError(f"energy accumulate must be auto, int or float, got {self.accumulate!r}")
        pts, pj = tuple(self.sram_kb_points), tuple(self.sram_pj_per_64b)
        if len(pts) != len(pj) or len(pts) < 2 or any(not (p > 0) for p in (*pts, *pj)) or \
                any(b <= a for a, b in zip(pts, pts[1:], strict=False)):
            raise ValueError("energy sram_kb_points and sram_pj_per_64b must be equal-length lists of >= 2 positive "
                             "numbers, sizes increasing")

    # --- arithmetic --------------------------------------------------------------------------------------------
    def mul_pj(self, bits_a: int, bits_b: int, is_float: bool) -> float:
        """One multiply of a bits_a x bits_b operand pair (significand widths for floats)."""
        if is_float:
            e = self.float_mul_pj_per_bit2 * bits_a * bits_b + self.float_mul_pj_offset
        else:
            e = self.int_mul_pj_per_bit2 * bits_a * bits_b
        return max(e, 0.0) * self.process_scale

    def add_pj(self, bits: int, is_float: bool) -> float:
        """One add at `bits` width."""
        e = self.float_add_pj_per_bit * bits + self.float_add_pj_offset if is_float else self.int_add_pj_per_bit * bits
        return max(e, 0.0) * self.process_scale

    def mac_pj(self, bits_a: int, bits_b: int, float_a: bool = False, float_b: bool = False) -> float:
        """One multiply-accumulate: the multiply at the operand widths, the add at the accumulator's width/kind."""
        is_float = float_a or float_b
        acc_float = is_float if self.accumulate == "auto" else self.accumulate == "float"
        return self.mul_pj(bits_a, bits_b, is_float) + self.add_pj(self.accumulator_bits, acc_float)

    # --- on-chip memory ------------------------------------------------------------------------------------------
    def sram_read_pj_per_byte(self, size_kb: float) -> float:
        """Reading one byte from an SRAM of `size_kb` kB: log-log interpolation of the 64-bit access energies,
        extrapolated below the smallest size, held at the largest size's value above it."""
        if not (size_kb > 0 and math.isfinite(size_kb)):
            raise ValueError(f"SRAM size must be a positive number of kB, got {size_kb!r}")
        xs = [math.log(p) for p in self.sram_kb_points]
        ys = [math.log(e) for e in self.sram_pj_per_64b]
        x = min(math.log(size_kb), xs[-1])  # above the table: one bank of the largest size
        i = 0 if x <= xs[1] else len(xs) - 2
        for j in range(len(xs) - 1):
            if xs[j] <= x <= xs[j + 1]:
                i = j
                break
        y = ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])
        return math.exp(y) / 8 * self.process_scale

    def sram_write_pj_per_byte(self, size_kb: float) -> float:
        return self.sram_read_pj_per_byte(size_kb) * self.sram_write_factor

    def vector_pj(self, elementary_ops: float) -> float:
        """Energy of `elementary_ops` vector-unit ops (elements x ops per element)."""
        return elementary_ops * self.vector_pj_per_op * self.process_scale

    def with_overrides(self, **changes) -> ComputeEnergy:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown energy parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        for key in ("sram_kb_points", "sram_pj_per_64b"):
            if key in changes and isinstance(changes[key], list):
                changes[key] = tuple(changes[key])
        return dataclasses.replace(self, **changes)

    def summary(self) -> dict:
        return dataclasses.asdict(self)
