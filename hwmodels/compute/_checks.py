"""Input checks shared by the compute models (numpy integers accepted, bools and floats refused)."""

from __future__ import annotations

import operator


def positive_int(value: object, what: str) -> int:
    """`value` as a plain int; ValueError naming `what` unless it is a positive integer."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or number <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return number
