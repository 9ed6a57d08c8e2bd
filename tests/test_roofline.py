"""Roofline bounds on a hand-described machine, speedup consistency, compare() averaging, and the plot files."""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from test_counting import MIXED, linear_trace

from sim.compare import compare
from sim.counting import count
from sim.precision import PrecisionConfig
from sim.roofline import roofline


@dataclass(frozen=True)
class ToyMachine:
    """A machine whose MAC rate scales inversely with multiplier area (bits_a x bits_b)."""

    name: str = "toy"
    vector = SimpleNamespace(lanes=64)  # class attribute, not a field: 64 vector lanes
    clock_ghz: float = 1.0
    dram_bw_gbps: float = 100.0
    macs_per_s_16x16: float = 1e12

    def peak_macs_per_s(self, bits_a: int, bits_b: int) -> float:
        return self.macs_per_s_16x16 * 256 / (bits_a * bits_b)

    def vector_cycles(self, kind: str, elements: int) -> int:
        return -(-elements // self.vector.lanes)


def test_per_op_bounds_by_hand():
    m = ToyMachine()
    r = roofline(linear_trace(), m, MIXED)
    ops = r.ops.set_index("name")
    macs = 32 * 64 * 48
    # fc.fwd: bf16 x bf16 -> 8x8 multipliers, 4x the 16x16 rate; 14336 bytes at 100 GB/s.
    fwd = ops.loc["fc.fwd"]
    assert fwd.compute_s == pytest.approx(macs / 4e12)
    assert fwd.memory_s == pytest.approx((4096 + 6144 + 3072 + 1152) / 100e9)
    assert fwd.bound == "memory" and fwd.time_s == fwd.memory_s
    assert fwd.intensity_ops_per_byte == pytest.approx(macs / 14464)
    assert fwd.attainable_ops_per_s == pytest.approx(min(4e12, 100e9 * macs / 14464))
    assert r.time_lower_bound_s == pytest.approx(ops["time_s"].sum())


def test_step_bound_allows_independent_ops_to_overlap():
    # dx and dW both depend only on fc.fwd: on a compute-free, memory-bound toy the critical path is
    # fwd + max(dx, dW), but the DRAM still has to move every byte, so the bound is the total memory time.
    r = roofline(linear_trace(), ToyMachine(dram_bw_gbps=1.0), PrecisionConfig.uniform("fp32"))
    t = r.ops.set_index("name")["time_s"]
    assert r.critical_path_s == pytest.approx(t["fc.fwd"] + max(t["fc.dx"], t["fc.dW"]))
    assert r.critical_path_s < r.serial_time_s
    assert r.time_lower_bound_s == pytest.approx(max(r.critical_path_s, r.memory_time_s, r.array_time_s))
    assert r.time_lower_bound_s <= r.serial_time_s


def test_critical_path_by_hand():
    from sim.roofline import critical_path_s

    # 0 -> {1, 2} -> 3: the longer branch counts.
    assert critical_path_s([(), (0,), (0,), (1, 2)], [1.0, 5.0, 2.0, 1.0]) == 7.0
    assert critical_path_s([(), (), ()], [1.0, 3.0, 2.0]) == 3.0


def test_compute_bound_when_bandwidth_is_huge():
    r = roofline(linear_trace(), ToyMachine(dram_bw_gbps=1e9), PrecisionConfig.uniform("fixed16"))
    assert (r.ops["bound"] == "compute").all()
    assert r.time_lower_bound_s == pytest.approx(3 * 32 * 64 * 48 / 1e12)
    assert r.compute_bound_fraction == 1.0


@pytest.mark.parametrize("bw", [1.0, 100.0, 1e4])
@pytest.mark.parametrize("fmt", ["fp32", "bf16", "bfp4", "fixed16"])
def test_lower_bound_at_least_whole_step_roofline(bw, fmt):
    m = ToyMachine(dram_bw_gbps=bw)
    r = roofline(linear_trace(), m, PrecisionConfig.uniform(fmt))
    total_compute = sum(row.macs / m.peak_macs_per_s(row.bits_a, row.bits_b) for row in r.ops.itertuples())
    total_memory = r.counts.dram_bytes / (bw * 1e9)
    assert r.time_lower_bound_s >= max(total_compute, total_memory) * (1 - 1e-12)
    assert r.time_lower_bound_s <= (total_compute + total_memory) * (1 + 1e-12)


def test_speedups_consistent():
    trace, m = linear_trace(), ToyMachine()
    results = {f: roofline(trace, m, PrecisionConfig.uniform(f)) for f in ("fp32", "bf16", "bfp4")}
    df = compare(trace, m, [PrecisionConfig.uniform(f) for f in results], tiled=False)  # a toy: no engine
    assert df["speedup"].iloc[0] == 1.0
    for row in df.itertuples():
        assert row.speedup == pytest.approx(results["fp32"].time_lower_bound_s / row.time_lower_bound_s)
    ab = results["bf16"].speedup_over(results["fp32"])
    bc = results["bfp4"].speedup_over(results["bf16"])
    assert results["bfp4"].speedup_over(results["fp32"]) == pytest.approx(ab * bc)
    # Narrower formats move fewer bytes on a memory-bound toy: each step is a real speedup.
    assert ab > 1 and bc > 1


class TwoStagePolicy:
    """A schedule: bfp4 for the first quarter of training, bf16 after."""

    name = "two_stage"

    def timeline(self, total_steps):
        return [(PrecisionConfig.uniform("bfp4"), 0.25), (PrecisionConfig.uniform("bf16"), 0.75)]


def test_compare_averages_over_timeline():
    trace, m = linear_trace(), ToyMachine()
    lo, hi = (roofline(trace, m, PrecisionConfig.uniform(f)) for f in ("bfp4", "bf16"))
    df = compare(trace, m, [PrecisionConfig.uniform("fp32"), TwoStagePolicy()], tiled=False).set_index("policy")
    avg = df.loc["two_stage"]
    assert avg.time_lower_bound_s == pytest.approx(0.25 * lo.time_lower_bound_s + 0.75 * hi.time_lower_bound_s)
    assert avg.dram_bytes == pytest.approx(0.25 * lo.counts.dram_bytes + 0.75 * hi.counts.dram_bytes)
    assert avg.arith_bitops == pytest.approx(0.25 * lo.counts.arith_bitops + 0.75 * hi.counts.arith_bitops)


def test_plot_files_written(tmp_path):
    from reports.roofline_plot import save_roofline_plot

    r = roofline(linear_trace(), ToyMachine(), MIXED)
    written = save_roofline_plot(r, tmp_path / "roof")
    assert sorted(p.name for p in written) == ["roof.png", "roof.svg"]
    assert (tmp_path / "roof.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "roof.svg").read_text()[:2000]
    assert all(p.stat().st_size > 5000 for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roof.png", "roof.svg"]  # no temp files left


def test_plot_bad_suffix_writes_nothing(tmp_path):
    from reports.roofline_plot import save_roofline_plot

    r = roofline(linear_trace(), ToyMachine(), MIXED)
    with pytest.raises(ValueError, match="suffix"):
        save_roofline_plot(r, tmp_path / "roof.jpg")
    assert list(tmp_path.iterdir()) == []


def test_counts_reused():
    trace = linear_trace()
    c = count(trace, MIXED)
    assert roofline(trace, ToyMachine(), MIXED, counts=c).counts is c


def test_vector_op_by_hand():
    """A GELU over y[32,48] runs on the 64-lane vector unit: 1536 elements -> 24 cycles at 1 GHz."""
    from workloads import Op, Operand, Tensor

    trace = linear_trace()
    trace.tensors["h"] = Tensor("h", (32, 48), "activation", None)
    trace.ops.insert(1, Op("fc.gelu", "elementwise", "forward", 0, (Operand("y", None),), (Operand("h", None),),
                           0, 8 * 32 * 48))
    m = ToyMachine()
    r = roofline(trace, m, PrecisionConfig.uniform("bf16"))
    gelu = r.ops.set_index("name").loc["fc.gelu"]
    assert gelu.bits_a == 0 and gelu.arith_bitops == 0
    assert gelu.compute_s == pytest.approx(24e-9)
    assert gelu.memory_s == pytest.approx(2 * 1536 * 2 / 100e9)
    assert gelu.bound == "memory"
    assert gelu.work_ops == 1536 and gelu.intensity_ops_per_byte == pytest.approx(1536 / 6144)
    vector = [roof for roof in r.roofs if roof.unit == "op"]
    assert len(vector) == 1 and vector[0].peak_ops_per_s == pytest.approx(64e9)
