"""Compute and SRAM energy: the Horowitz 45 nm table the defaults come from, scaling laws, machine overrides."""

from __future__ import annotations

import pytest

from hwmodels.compute.energy import ComputeEnergy
from hwmodels.machine import get_machine
from hwmodels.machine.loader import machine_from_dict

E = ComputeEnergy()


def test_defaults_reproduce_the_cited_table_points():
    """Horowitz, ISSCC 2014, 45 nm: the points the default laws are fitted through (docs/energy.md)."""
    assert E.mul_pj(8, 8, False) == pytest.approx(0.2)
    assert E.mul_pj(11, 11, True) == pytest.approx(1.1)  # fp16 significands
    assert E.mul_pj(24, 24, True) == pytest.approx(3.7)  # fp32 significands
    assert E.add_pj(16, False) == pytest.approx(0.05) and E.add_pj(32, False) == pytest.approx(0.1)
    assert E.add_pj(16, True) == pytest.approx(0.4) and E.add_pj(32, True) == pytest.approx(0.9)
    for kb, pj in ((8, 10.0), (32, 20.0), (1024, 100.0)):
        assert E.sram_read_pj_per_byte(kb) * 8 == pytest.approx(pj)
    # the integer law's prediction at 32x32 against the table's 3.1 pJ: within 5 %
    assert E.mul_pj(32, 32, False) == pytest.approx(3.1, rel=0.05)


def test_multiplier_scales_with_the_operand_product_and_mac_adds_the_accumulator():
    assert E.mul_pj(4, 4, False) == pytest.approx(E.mul_pj(8, 8, False) / 4)
    assert E.mul_pj(4, 16, False) == pytest.approx(E.mul_pj(8, 8, False))
    assert E.mac_pj(8, 8) == pytest.approx(E.mul_pj(8, 8, False) + E.add_pj(32, False))
    assert E.mac_pj(8, 8, True, False) == pytest.approx(E.mul_pj(8, 8, True) + E.add_pj(32, True))
    as_int = E.with_overrides(accumulate="int", accumulator_bits=24)
    assert as_int.mac_pj(11, 11, True, True) == pytest.approx(E.mul_pj(11, 11, True) + E.add_pj(24, False))
    widths = [E.mac_pj(b, b) for b in (2, 4, 8, 16, 24)]
    assert widths == sorted(widths)


def test_sram_energy_grows_with_size_and_is_held_above_the_table():
    sizes = [1, 4, 8, 16, 64, 256, 1024]
    per_byte = [E.sram_read_pj_per_byte(kb) for kb in sizes]
    assert per_byte == sorted(per_byte) and len(set(per_byte)) == len(per_byte)
    assert E.sram_read_pj_per_byte(50 * 1024) == E.sram_read_pj_per_byte(1024)
    assert E.with_overrides(sram_write_factor=1.5).sram_write_pj_per_byte(64) == \
        pytest.approx(1.5 * E.sram_read_pj_per_byte(64))
    with pytest.raises(ValueError, match="SRAM size"):
        E.sram_read_pj_per_byte(0)


def test_process_scale_multiplies_every_energy():
    s = E.with_overrides(process_scale=0.25)
    assert s.mac_pj(8, 8) == pytest.approx(E.mac_pj(8, 8) / 4)
    assert s.sram_read_pj_per_byte(100) == pytest.approx(E.sram_read_pj_per_byte(100) / 4)
    assert s.vector_pj(10) == pytest.approx(E.vector_pj(10) / 4)


@pytest.mark.parametrize("changes, match", [
    ({"process_scale": -1.0}, "process_scale"), ({"accumulate": "fixed"}, "accumulate"),
    ({"accumulator_bits": 0}, "accumulator_bits"), ({"sram_kb_points": [8.0]}, "sram_kb_points"),
    ({"sram_kb_points": [32.0, 8.0], "sram_pj_per_64b": [1.0, 2.0]}, "sram_kb_points"),
    ({"bogus": 1.0}, "unknown energy parameter"), ({"vector_pj_per_op": "x"}, "vector_pj_per_op"),
])
def test_bad_energy_parameters(changes, match):
    with pytest.raises(ValueError, match=match):
        E.with_overrides(**changes)


def _machine_dict(energy: dict | None) -> dict:
    d = {"name": "m", "clock_ghz": 1.0, "array": {"rows": 8, "cols": 8}, "sram": {"total_kb": 96},
         "vector": {"lanes": 8}, "dram": {"preset": "ddr4"}}
    if energy is not None:
        d["energy"] = energy
    return d


def test_machine_energy_table_overrides_defaults():
    assert machine_from_dict(_machine_dict(None)).energy == ComputeEnergy()
    m = machine_from_dict(_machine_dict({"process_scale": 0.5, "sram_kb_points": [1, 2],
                                         "sram_pj_per_64b": [1.0, 2.0]}))
    assert m.energy.process_scale == 0.5 and m.energy.sram_kb_points == (1, 2)
    for bad, match in (({"nope": 1}, "unknown energy parameter"), ({"process_scale": "big"}, "process_scale"),
                       ({"sram_kb_points": ["a", "b"], "sram_pj_per_64b": [1, 2]}, r"\[energy\]")):
        with pytest.raises(ValueError, match=match):
            machine_from_dict(_machine_dict(bad), "f.toml")


def test_presets_carry_an_energy_model():
    for name in ("edge-npu", "cloud-npu", "h100-sxm"):
        assert get_machine(name).energy.mac_pj(8, 8) > 0
