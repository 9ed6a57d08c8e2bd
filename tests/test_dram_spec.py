"""DRAM presets against the DRAMSim3 configuration table, spec validation, TOML user files, variants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwmodels.dram import DramSpec, dram_aliases, get_dram, list_drams
from hwmodels.dram.spec import PRESET_DIR, address_map

DATA = Path(__file__).parent / "data"
REFERENCE = ("DDR4_8Gb_x8_3200", "LPDDR4_8Gb_x16_2400", "HBM2_8Gb_x128", "GDDR6_8Gb_x16")


def _config_table() -> dict[str, dict[str, str]]:
    """dram_configs.md as {param: {config: value}}."""
    rows = [ln for ln in (DATA / "dram_configs.md").read_text().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    table = {}
    for ln in rows[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        table[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return table


TABLE = _config_table()


@pytest.mark.parametrize("name", REFERENCE)
def test_presets_have_exactly_the_reference_parameters(name: str) -> None:
    s = get_dram(name)
    col = {k: v[name] for k, v in TABLE.items()}
    assert s.protocol.startswith(col["protocol"])
    assert s.channels == int(col["channels"])
    assert s.ranks == int(col["ranks/ch"])
    assert s.bus_width == int(col["bus bits/ch"])
    assert s.device_width == int(col["device width"])
    assert s.devices_per_rank == int(col["devices/rank"])
    # GDDR6 has bank groups disabled in DRAMSim3: 4 x 4 banks folded into one group of 16
    assert s.banks == int(col["bank groups"]) * int(col["banks/group"])
    assert s.rows == int(col["rows"])
    assert s.row_bytes == int(col["row(page) bytes per rank"])
    assert s.request_bytes == int(col["request bytes (bus/8*BL)"])
    assert s.BL == int(col["BL"]) and s.burst_cycles == int(col["burst cycles"])
    assert s.tCK_ns == pytest.approx(float(col["tCK ns"]))
    assert s.peak_gbps == pytest.approx(float(col["peak GB/s (ch*req/(burst*tCK))"]), abs=0.01)
    for key in ("CL", "CWL", "tRP", "tRAS", "tRFC", "tREFI", "tCCD_S", "tCCD_L", "tRRD_S", "tRRD_L", "tFAW", "tWR"):
        assert getattr(s, key) == int(col[key]), key
    rcd = [int(x) for x in col["tRCD (RD/WR)"].split("/")]
    assert (s.tRCD_rd, s.tRCD_wr) == (rcd[0], rcd[-1])
    wtr = [int(x) for x in col["tWTR_S/L"].split("/")]
    assert (s.tWTR_S, s.tWTR_L) == tuple(wtr)
    assert s.address_mapping == col["address_mapping"]
    assert s.trans_queue_size == int(col["trans_queue_size"]) and s.cmd_queue_size == int(col["cmd_queue_size"])


def test_aliases_and_lookup() -> None:
    aliases = dram_aliases()
    for alias, target in {"ddr4-3200": "DDR4_8Gb_x8_3200", "lpddr4-2400": "LPDDR4_8Gb_x16_2400",
                          "hbm2": "HBM2_8Gb_x128", "gddr6": "GDDR6_8Gb_x16"}.items():
        assert aliases[alias] == target
        assert get_dram(alias).name == target
    assert get_dram("HBM2_8GB_X128").name == "HBM2_8Gb_x128"  # case-insensitive
    names = {s.name for s in list_drams()}
    assert {"LPDDR5_8Gb_x16_6400", "HBM3_16Gb", "HBM3_H100"} <= names
    for path in PRESET_DIR.glob("*.toml"):  # every preset names its source
        assert "source" in path.read_text()
        assert get_dram(str(path)).source


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown DRAM 'ddr9'.*ddr4-3200"):
        get_dram("ddr9")


def test_h100_hbm3_total_bandwidth() -> None:
    s = get_dram("HBM3_H100")
    assert s.channels == 80
    assert s.peak_gbps == pytest.approx(3350, rel=0.005)
    assert s.capacity_bytes == 80 * 2**30
    assert get_dram("hbm3").with_overrides(channels=80, tCK_ns=0.7642).peak_gbps == pytest.approx(s.peak_gbps)


def test_scaled_multiplies_data_rate_and_keeps_cycles() -> None:
    s = get_dram("ddr4")
    t = s.scaled(2.0)
    assert t.peak_gbps == pytest.approx(2 * s.peak_gbps)
    assert (t.CL, t.tRCD_rd, t.tFAW) == (s.CL, s.tRCD_rd, s.tFAW)
    assert s.scaled(1) is s
    with pytest.raises(ValueError, match="bw_scale"):
        s.scaled(0)


def test_with_overrides_validates() -> None:
    s = get_dram("ddr4")
    assert s.with_overrides(address_mapping="rochrabacobg").address_mapping == "rochrabacobg"
    with pytest.raises(ValueError, match="unknown DRAM parameter"):
        s.with_overrides(tXYZ=3)
    with pytest.raises(ValueError, match="address mapping"):
        s.with_overrides(address_mapping="rochrababg")
    with pytest.raises(ValueError, match="must be positive"):
        s.with_overrides(CL=0)
    with pytest.raises(ValueError, match="tCCD_S must not exceed tCCD_L"):
        s.with_overrides(tCCD_S=9)


def test_address_map_matches_dramsim3_bit_fields() -> None:
    # DDR4 rochrababgco: 6 offset bits, co 7 bits, bg 2, ba 2, ra 1, then row
    amap = address_map(get_dram("ddr4"))
    addr = (5 << 6) | (2 << 13) | (1 << 15) | (1 << 17) | (77 << 18)
    assert amap.decode(addr) == (0, 1, 2, 1, 77, 5)
    # mixed radix for a non-power-of-two channel count agrees with counting channels in order
    h = address_map(get_dram("HBM3_H100"))
    chans = [h.decode(i * 256)[0] for i in range(200)]
    assert chans[:3] == [0, 1, 2] and chans[80] == 0 and max(chans) == 79


def test_user_toml_file(tmp_path: Path) -> None:
    text = (PRESET_DIR / "DDR4_8Gb_x8_3200.toml").read_text()
    text = re.sub(r'name = ".*"', 'name = "my_ddr4"', text).replace("tCK_ns = 0.63", "tCK_ns = 0.5")
    path = tmp_path / "mine.toml"
    path.write_text(text)
    s = get_dram(str(path))
    assert isinstance(s, DramSpec) and s.name == "my_ddr4"
    assert s.peak_gbps == pytest.approx(32.0)
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("CL = 22\n", ""))
    with pytest.raises(ValueError, match="missing DRAM parameter.*CL"):
        get_dram(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        get_dram(str(broken))
    with pytest.raises(OSError):
        get_dram(str(tmp_path / "absent.toml"))
