"""Counting checked against hand calculations on one linear layer's forward and backward GEMMs."""

import pytest

from sim.counting import count
from sim.precision import PrecisionConfig
from workloads import GemmShape, Op, Operand, Tensor, Trace

M, K, N = 32, 64, 48  # x[M,K] . W[K,N] -> y[M,N]


def linear_trace() -> Trace:
    """y = x.W; dx = dy.W^T; dW = x_stash^T.dy, with x stashed at q1 by the forward GEMM."""
    tensors = {t.name: t for t in [
        Tensor("x", (M, K), "activation", "q0"),
        Tensor("W", (K, N), "weight", "q0"),
        Tensor("y", (M, N), "activation", None),
        Tensor("x_stash", (M, K), "stashed_activation", "q1"),
        Tensor("dy", (M, N), "activation_grad", "q2"),
        Tensor("dx", (M, K), "activation_grad", "q3"),
        Tensor("dW", (K, N), "weight_grad", "q3"),
    ]}
    macs = M * K * N
    ops = [
        Op("fc.fwd", "gemm", "forward", 0, (Operand("x", "q0"), Operand("W", "q0")),
           (Operand("y", None), Operand("x_stash", "q1")), macs, 2 * macs, GemmShape(1, M, K, N)),
        Op("fc.dx", "gemm", "backward", 0, (Operand("dy", "q2"), Operand("W", "q2")),
           (Operand("dx", "q3"),), macs, 2 * macs, GemmShape(1, M, N, K)),
        Op("fc.dW", "gemm", "backward", 0, (Operand("x_stash", "q1"), Operand("dy", "q2")),
           (Operand("dW", "q3"),), macs, 2 * macs, GemmShape(1, K, M, N)),
    ]
    return Trace(workload="linear", spec={}, batch=1, seq_len=M, tensors=tensors, ops=ops)


MIXED = PrecisionConfig(q0="bf16", q1="bfp4", q2="fixed16", q3="fp32")


def test_linear_layer_by_hand():
    c = count(linear_trace(), MIXED)
    macs = M * K * N
    assert c.macs == 3 * macs
    # Multiplier widths: bf16 significand 8 bits, bfp4 mantissa 4, fixed16 16.
    assert c.arith_bitops == macs * (8 * 8) + macs * (16 * 16) + macs * (4 * 16)
    mk, kn, mn = M * K, K * N, M * N
    # Bytes per element: bf16 2, bfp4 4.5/8, fixed16 2, fp32 4. y has no DSQ point: activation -> q0's format.
    expected_points = {
        "q0": mk * 2 + kn * 2,                  # x, W read by the forward GEMM
        "q1": 2 * (mk * 4.5 / 8),               # stash written forward, read by dW
        "q2": mn * 2 + kn * 2 + mn * 2,         # dy and W read by dx; dy read by dW
        "q3": mk * 4 + kn * 4,                  # dx, dW written
        "other": mn * 2,                        # y written
    }
    assert c.bytes_by_point == pytest.approx(expected_points, abs=0)
    assert c.bytes_by_role == {
        "activation": mk * 2 + mn * 2, "weight": kn * 2 * 2, "stashed_activation": 2 * mk * 4.5 / 8,
        "activation_grad": mn * 2 * 2 + mk * 4, "weight_grad": kn * 4,
    }
    assert c.dram_bytes == sum(expected_points.values()) == 48384
    assert c.read_bytes + c.write_bytes == c.dram_bytes
    fwd = c.ops.set_index("name").loc["fc.fwd"]
    assert (fwd.bits_a, fwd.bits_b, fwd.read_bytes, fwd.write_bytes) == (8, 8, mk * 2 + kn * 2, mn * 2 + mk * 4.5 / 8)
    assert c.ops["dram_bytes"].sum() == c.dram_bytes


def test_bfp4_stores_4_5_bits_per_element():
    c = count(linear_trace(), PrecisionConfig.uniform("bfp4"))
    q_elements = sum(a.elements for a in c.accesses.itertuples() if a.point != "other")
    q_bytes = sum(c.bytes_by_point[p] for p in ("q0", "q1", "q2", "q3"))
    assert q_bytes * 8 == q_elements * 4.5


def test_fixed16_costs_256_bitops_per_mac():
    c = count(linear_trace(), PrecisionConfig.uniform("fixed16"))
    assert c.arith_bitops == 256 * c.macs


def test_preset_trace_precision_scaling():
    """On a real trace: halving the width of q0..q3 halves the bytes of every access the two configurations share;
    bf16 additionally has the optimizer write the bf16 weight copies the GEMMs read (fp32 GEMMs read the fp32 master
    itself); master weights and optimizer state do not move; uniform formats cost mult_bits^2 per MAC."""
    from workloads import resolve_workload

    trace = resolve_workload("tiny-lm")
    fp32 = count(trace, PrecisionConfig.uniform("fp32"))
    bf16 = count(trace, PrecisionConfig.uniform("bf16"))
    assert fp32.macs == bf16.macs == trace.total_macs > 0
    assert fp32.arith_bitops == 24 * 24 * fp32.macs and bf16.arith_bitops == 8 * 8 * bf16.macs
    key = ["op_index", "direction", "point", "elements"]
    at_points = [c.accesses[c.accesses["point"] != "other"] for c in (fp32, bf16)]
    merged = at_points[0].merge(at_points[1], on=key, how="outer", suffixes=("_32", "_16"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    assert len(both) > 0 and (both["bytes_16"] * 2 == both["bytes_32"]).all()
    extra = merged[merged["_merge"] != "both"]
    assert set(extra["_merge"]) == {"right_only"}  # only bf16 has accesses fp32 lacks: the copies' writes
    assert set(extra["role_16"]) == {"weight_copy"} and set(extra["direction"]) == {"write"}
    copies = {n for n, t in trace.tensors.items() if t.role == "weight_copy"}
    assert set(extra["tensor_16"]) == {n for n in copies if n.endswith("@q0")}  # one bf16 copy serves q0 and q2
    for p in ("q0", "q1", "q2", "q3"):
        assert fp32.bytes_by_point[p] > 0
    keep = ["weight", "optimizer_state"]
    for c in (fp32, bf16):
        assert sum(c.bytes_by_point.values()) == sum(c.bytes_by_role.values()) == c.dram_bytes
    fixed = [c.accesses[(c.accesses["point"] == "other") & c.accesses["role"].isin(keep)]["bytes"].sum()
             for c in (fp32, bf16)]
    assert fixed[0] == fixed[1] > 0


def test_stash_bytes_follow_q1():
    from workloads import resolve_workload

    trace = resolve_workload("tiny-lm")
    c = count(trace, PrecisionConfig(q0="bf16", q1="bfp4", q2="bf16", q3="fp32"))
    stash = c.accesses[c.accesses["role"] == "stashed_activation"]
    assert len(stash) > 0 and (stash["point"] == "q1").all() and (stash["fmt"] == "bfp4").all()
    # Each stash is written once and read at least once; 4.5 bits per element.
    assert (stash["bytes"] * 8 == stash["elements"] * 4.5).all()
    assert set(stash[stash["direction"] == "write"]["tensor"]) == set(stash[stash["direction"] == "read"]["tensor"])


def test_stochastic_rounding_variants_cost_as_their_base_format():
    """`_sr` formats change the rounding, not the bits: the same MACs, bit-ops and bytes (no random-bit cost)."""
    sr = PrecisionConfig(q0="bf16_sr", q1="bfp4_sr", q2="fixed16_sr", q3="fp32")
    a, b = count(linear_trace(), MIXED), count(linear_trace(), sr)
    assert (a.macs, a.arith_bitops) == (b.macs, b.arith_bitops) and a.arith_bitops > 0
    assert a.dram_bytes == b.dram_bytes > 0
