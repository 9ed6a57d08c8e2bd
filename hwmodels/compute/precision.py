"""Precision-scalable MACs: products per MAC unit per cycle as a function of the operand widths.

The default law follows Bit Fusion (Sharma et al., ISCA 2018): a MAC built from 2-bit "bit bricks" that fuse in
power-of-two groups. A native-width MAC computes (native/a)·(native/b) products per cycle for operands narrower than
native, rounded up to the next supported width (2, 4, 8, 16 for a 16-bit array) and never below `min_bits`; an
operand wider than native takes ceil(width/native) passes, so the rate drops below 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from hwmodels.compute._checks import positive_int


@dataclass(frozen=True)
class PrecisionLaw:
    """How many products one MAC unit computes per cycle for given operand widths (bits, plain integers)."""

    native_bits: int = 16
    min_bits: int = 2       # the narrowest slice the MAC can split into (Bit Fusion's 2-bit brick)
    scalable: bool = True   # False: a fixed-width MAC, one product per cycle at or below native width
    pow2: bool = True       # round widths up to a power of two, as fused bit bricks do

    def __post_init__(self) -> None:
        for key in ("native_bits", "min_bits"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"precision law: {key} must be a positive integer, got {value!r}")
        if self.min_bits > self.native_bits:
            raise ValueError(f"precision law: min_bits ({self.min_bits}) exceeds native_bits ({self.native_bits})")

    def effective_bits(self, bits: int) -> int:
        """The width the MAC actually spends on an operand of `bits` bits."""
        eff = max(check_bits(bits), self.min_bits)
        if self.pow2:
            eff = 1 << (eff - 1).bit_length()
        return eff

    def _factor(self, bits: int) -> Fraction:
        eff = self.effective_bits(bits)
        if eff > self.native_bits:  # multi-pass: ceil(width/native) cycles per operand
            return Fraction(1, math.ceil(eff / self.native_bits))
        return Fraction(self.native_bits, eff) if self.scalable else Fraction(1)

    def products_per_mac(self, bits_a: int, bits_b: int) -> Fraction:
        """Products per MAC unit per cycle (exact fraction): 16-bit array, 8x8 -> 4, 4x4 -> 16, 24x24 -> 1/4."""
        return self._factor(bits_a) * self._factor(bits_b)


def check_bits(bits: int, what: str = "operand width") -> int:
    """`bits` as a plain int (numpy integers accepted); ValueError unless a positive integer."""
    return positive_int(bits, f"{what} (bits)")
