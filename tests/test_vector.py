"""The vector unit: cycles = ceil(elements x ops per element / lanes), by op kind."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwmodels.compute import DEFAULT_OPS_PER_ELEMENT, VectorUnit


def test_cycles_by_kind():
    v = VectorUnit(lanes=16)
    for kind, ops in DEFAULT_OPS_PER_ELEMENT.items():
        for elements in (0, 1, 15, 16, 17, 10_000):
            assert v.cycles(kind, elements) == math.ceil(elements * ops / 16)
    assert v.cycles("elementwise", np.int64(32)) == 2  # numpy integers from DataFrames are fine


def test_defaults_cover_non_gemm_op_kinds():
    # the workloads' non-GEMM op kinds (workloads.OP_KINDS minus gemm/bmm)
    assert set(DEFAULT_OPS_PER_ELEMENT) == {"elementwise", "softmax", "layernorm", "reduction", "embedding", "loss",
                                             "optimizer"}
    v = VectorUnit(lanes=1)
    assert v.cycles("softmax", 100) > v.cycles("elementwise", 100)
    assert v.cycles("optimizer", 100) > v.cycles("layernorm", 100)


def test_overrides_and_more_lanes():
    v = VectorUnit(lanes=8, ops_per_element={**DEFAULT_OPS_PER_ELEMENT, "softmax": 8.0})
    assert v.cycles("softmax", 64) == 64
    assert VectorUnit(lanes=64).cycles("layernorm", 6400) * 4 == VectorUnit(lanes=16).cycles("layernorm", 6400)
    assert hash(v) == hash(VectorUnit(lanes=8, ops_per_element={**DEFAULT_OPS_PER_ELEMENT, "softmax": 8.0}))


@pytest.mark.parametrize("call, match", [
    (lambda: VectorUnit(lanes=0), "lanes must be a positive integer"),
    (lambda: VectorUnit(lanes=4, ops_per_element={"softmax": -1}), "ops_per_element\\['softmax'\\]"),
    (lambda: VectorUnit(lanes=4).cycles("conv", 10), "unknown vector op kind 'conv'; valid: elementwise"),
    (lambda: VectorUnit(lanes=4).cycles("softmax", -3), "elements must be a non-negative integer"),
    (lambda: VectorUnit(lanes=4).cycles("softmax", 2.5), "elements must be a non-negative integer"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
