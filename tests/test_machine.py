"""Machines: presets, the Machine contract (peaks, GEMM dispatch, vector cycles, overrides) and TOML validation."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from hwmodels.compute import systolic_gemm
from hwmodels.dram import get_dram
from hwmodels.machine import Machine, get_machine, list_machines

ROOT = Path(__file__).resolve().parents[1]


def test_presets_listed_and_loadable():
    names = list_machines()
    assert {"edge-npu", "cloud-npu", "h100-sxm"} <= set(names)
    for name in names:
        m = get_machine(name)
        assert isinstance(m, Machine) and m.name == name
        assert m.dram_bw_gbps > 0 and m.sram_kb > 0
    assert get_machine("EDGE-NPU") is get_machine("edge-npu")


def test_edge_npu():
    m = get_machine("edge-npu")
    assert (m.array.rows, m.array.cols, m.clock_ghz) == (32, 32, 1.0)
    assert m.dram == get_dram("lpddr4-2400")
    assert m.dram_bw_gbps == pytest.approx(19.28, abs=0.01)  # one 64-bit LPDDR4-2400 channel
    assert m.peak_macs_per_s(16, 16) == pytest.approx(32 * 32 * 1e9)
    assert m.peak_macs_per_s(8, 8) == pytest.approx(4 * 32 * 32 * 1e9)
    assert m.peak_macs_per_s(4, 8) == pytest.approx(8 * 32 * 32 * 1e9)
    assert m.peak_macs_per_s(24, 24) == pytest.approx(32 * 32 * 1e9 / 4)


def test_cloud_npu():
    m = get_machine("cloud-npu")
    assert (m.array.rows, m.array.cols, m.clock_ghz) == (128, 128, 0.94)
    assert m.dram.channels == 8 and m.dram_bw_gbps == pytest.approx(256.0)
    assert m.peak_macs_per_s(16, 16) == pytest.approx(128 * 128 * 0.94e9)


def test_h100_peak_table():
    m = get_machine("h100-sxm")
    assert m.array is None and m.throughput is not None
    assert m.dram == get_dram("hbm3-h100") and m.dram_bw_gbps == pytest.approx(3350, abs=1)
    tflops = {bits: 2 * m.peak_macs_per_s(bits, bits) / 1e12 for bits in (3, 4, 8, 11, 24)}
    assert tflops == pytest.approx({3: 1979, 4: 1979, 8: 989, 11: 989, 24: 67})  # e5m2, e4m3, bf16, fp16, fp32
    assert 2 * m.peak_macs_per_s(4, 8) / 1e12 == pytest.approx(989)  # mixed: the wider operand decides
    with pytest.raises(ValueError, match="no peak entry covers 32-bit"):
        m.peak_macs_per_s(32, 8)


def test_h100_gemm_waves():
    m = get_machine("h100-sxm")
    per_sm = m.peak_macs_per_s(8, 8) / (m.clock_ghz * 1e9) / 132   # dense MACs per SM per cycle
    assert per_sm == pytest.approx(2048, rel=1e-3)
    full = m.gemm(128 * 12, 4096, 128 * 11, 8, 8)        # 132 tiles: one full wave
    assert full.utilization == pytest.approx(1, rel=1e-3)
    tail = m.gemm(128 * 12, 4096, 128 * 11 + 1, 8, 8)    # 144 tiles: a second, mostly idle wave
    assert tail.compute_cycles == 2 * full.compute_cycles
    assert tail.utilization < 0.6
    assert full.dram_read_bytes == (128 * 12 * 4096 + 4096 * 128 * 11) * 8 / 8


def test_npu_gemm_is_the_systolic_model():
    m = get_machine("edge-npu")
    r = m.gemm(300, 500, 200, 8, 4)
    s = m.sram
    ref = systolic_gemm(32, 32, "os", 300, 500, 200, 8, 4, (s.a_kb, s.b_kb, s.out_kb), law=m.array.law)
    assert r == ref
    assert r.compute_cycles < m.gemm(300, 500, 200, 16, 16).compute_cycles  # quantized operands run faster
    batched = m.gemm(300, 500, 200, 8, 4, batch=3)
    assert batched.compute_cycles == 3 * r.compute_cycles and batched.macs == 3 * r.macs


def test_vector_cycles():
    m = get_machine("edge-npu")
    assert m.vector_cycles("elementwise", 1000) == math.ceil(1000 / 32)
    assert m.vector_cycles("softmax", 1000) == math.ceil(1000 * 5 / 32)
    with pytest.raises(ValueError, match="unknown vector op kind 'gemm'"):
        m.vector_cycles("gemm", 10)


def test_with_overrides():
    m = get_machine("edge-npu")
    o = m.with_overrides(dram_bw_scale=2.0, array=(64, 16), sram_kb=96)
    assert o.dram_bw_gbps == pytest.approx(2 * m.dram_bw_gbps)
    assert (o.array.rows, o.array.cols, o.array.dataflow) == (64, 16, "os")
    assert o.sram_kb == pytest.approx(96) and o.sram.a_kb == pytest.approx(32)
    assert o.name == m.name and dict(o.overrides)["array"] == (64, 16)
    assert m.with_overrides() is m
    assert get_machine("cloud-npu").with_overrides(dram_channels=4).dram_bw_gbps == pytest.approx(128)
    with pytest.raises(ValueError, match="no systolic array"):
        get_machine("h100-sxm").with_overrides(array=(8, 8))
    with pytest.raises(ValueError, match="dram_bw_scale"):
        m.with_overrides(dram_bw_scale=0)
    with pytest.raises(ValueError, match="array rows"):
        m.with_overrides(array=(0, 8))


def test_example_file_loads():
    m = get_machine(str(ROOT / "examples" / "machines" / "my-npu.toml"))
    assert m.name == "my-npu" and m.array.dataflow == "ws" and m.sram_kb == 1280


GOOD = """
name = "t"
clock_ghz = 1.0
[array]
rows = 4
cols = 4
[sram]
total_kb = 12
[vector]
lanes = 4
[dram]
preset = "ddr4"
"""


@pytest.mark.parametrize("edit, match", [
    (("[array]\n", "[array]\nbogus = 1\n"), "unknown key 'bogus' in \\[array\\]"),
    (("clock_ghz = 1.0", "clock_ghz = -1.0"), "clock_ghz must be a positive number"),
    (("clock_ghz = 1.0", "clock_ghz = 'fast'"), "clock_ghz must be"),
    (("rows = 4", "rows = 0"), "rows must be a positive integer"),
    (("[array]\n", "[array]\ndataflow = 'rs'\n"), "unknown dataflow 'rs'"),
    (("preset = \"ddr4\"", "preset = \"ddr9\""), "unknown DRAM"),
    (("lanes = 4", "lanes = 4\nops_per_element = { gelu = 3 }"), "unknown op kind 'gelu'"),
    (("total_kb = 12", "total_kb = 12\na_kb = 3"), "either total_kb"),
    (("name = \"t\"", ""), "missing key 'name'"),
    (("name = \"t\"", "name = \"t\"\ncolour = 1"), "unknown key 'colour' in \\[top level\\]"),
    (("[array]\nrows = 4\ncols = 4\n", "[throughput]\nunits = 2\n[[throughput.peak]]\nname='x'\nmult_bits=8\n"),
     "missing key 'tflops'"),
    (("[array]", "rows = [ ]\n[array]"), None),  # not valid TOML (duplicate key) -> ValueError too
])
def test_bad_machine_files(tmp_path, edit, match):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ValueError) as info:
        get_machine(str(path))
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    if match:
        assert info.match(match)


def test_good_file_and_missing_file(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    m = get_machine(str(path))
    assert m.sram.a_kb == pytest.approx(4) and m.dram.name == "DDR4_8Gb_x8_3200"
    path.write_text(GOOD.replace('preset = "ddr4"', 'preset = "ddr4"\nchannels = 2'))
    assert get_machine(str(path)).dram_bw_gbps == pytest.approx(2 * m.dram_bw_gbps)
    path.write_text(GOOD.replace('preset = "ddr4"', 'preset = "ddr4"\npeak_gbps = 51.2'))
    assert get_machine(str(path)).dram_bw_gbps == pytest.approx(51.2)
    with pytest.raises(OSError, match="not found"):
        get_machine(str(tmp_path / "nope.toml"))
    with pytest.raises(ValueError, match="unknown machine 'nope'; valid: cloud-npu, edge-npu"):
        get_machine("nope")


def test_cli_bad_machine_file_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace("[array]\n", "[array]\nbogus = 1\n"))
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "gemm", "--hw", str(path), "--m", "8", "--k", "8",
                           "--n", "8"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "unknown key 'bogus'" in proc.stderr and str(path) in proc.stderr
