"""DRAM device/system description (`DramSpec`) and the preset registry.

Parameters follow DRAMSim3's configuration names and conventions: timing in memory clocks (tCK), `columns` is the
number of physical columns of one device (each `device_width` bits; DRAMSim3 multiplies GDDR's ini value by BL and
HBM's by 2 before use), a "request" is one burst of `bus_width / 8 * BL` bytes that takes `burst_cycles` tCK on the
data bus. Presets live in `presets/*.toml`; a user file follows the same schema (see README, "DRAM").
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRESET_DIR = Path(__file__).parent / "presets"
_MAP_FIELDS = ("ch", "ra", "bg", "ba", "ro", "co")
REFRESH_POLICIES = ("RANK_LEVEL_STAGGERED", "RANK_LEVEL_SIMULTANEOUS", "NONE")


@dataclass(frozen=True)
class DramSpec:
    """One DRAM system: organisation, timing (tCK units) and controller parameters."""

    name: str
    protocol: str
    # organisation
    channels: int
    ranks: int
    bankgroups: int
    banks_per_group: int
    rows: int
    columns: int
    device_width: int
    bus_width: int
    BL: int
    burst_cycles: int
    # timing, in memory clocks except tCK_ns
    tCK_ns: float
    CL: int
    CWL: int
    tRCD_rd: int
    tRCD_wr: int
    tRP: int
    tRAS: int
    tRTP: int
    tWR: int
    tCCD_S: int
    tCCD_L: int
    tRRD_S: int
    tRRD_L: int
    tFAW: int
    tWTR_S: int
    tWTR_L: int
    tRFC: int
    tREFI: int
    AL: int = 0
    tRTRS: int = 2
    tRPRE: int = 1
    tWPRE: int = 1
    tPPD: int = 0  # PRE to PRE, other banks (LPDDR4, GDDR)
    t32AW: int = 0  # GDDR: at most 32 ACTs per t32AW window (0 = no such limit)
    # controller
    address_mapping: str = "rochrababgco"
    trans_queue_size: int = 32
    cmd_queue_size: int = 8
    refresh_policy: str = "RANK_LEVEL_STAGGERED"
    row_hit_limit: int = 4  # DRAMSim3 precharges an open row with pending hits after this many hits (fairness)
    source: str = ""
    # power ([power] table; DRAMSim3's names): VDD in volts, currents in mA per device; None = not given.
    # Used by hwmodels.dram.energy only (docs/energy.md). tRFCb: per-bank refresh cycle, DRAMSim3's default 20.
    VDD: float | None = None
    IDD0: float | None = None
    IDD2P: float | None = None
    IDD2N: float | None = None
    IDD3P: float | None = None
    IDD3N: float | None = None
    IDD4R: float | None = None
    IDD4W: float | None = None
    IDD5AB: float | None = None
    IDD5PB: float | None = None
    IDD6x: float | None = None
    tRFCb: int = 20
    power_source: str = ""

    def __post_init__(self) -> None:
        ints = [f.name for f in dataclasses.fields(self) if f.type == "int"]
        for key in ints:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"DRAM {self.name!r}: {key} must be an integer, got {value!r}")
        positive = ("channels", "ranks", "bankgroups", "banks_per_group", "rows", "columns", "device_width",
                    "bus_width", "BL", "burst_cycles", "CL", "CWL", "tRCD_rd", "tRCD_wr", "tRP", "tRAS", "tREFI",
                    "trans_queue_size", "cmd_queue_size")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ValueError(f"DRAM {self.name!r}: {key} must be positive, got {getattr(self, key)}")
        for key in ints:
            if getattr(self, key) < 0:
                raise ValueError(f"DRAM {self.name!r}: {key} must be >= 0, got {getattr(self, key)}")
        if not (isinstance(self.tCK_ns, int | float) and self.tCK_ns > 0 and math.isfinite(self.tCK_ns)):
            raise ValueError(f"DRAM {self.name!r}: tCK_ns must be a positive number, got {self.tCK_ns!r}")
        for key in ("columns", "BL", "bus_width"):  # the burst offset and column split are bit fields
            v = getattr(self, key)
            if v & (v - 1):
                raise ValueError(f"DRAM {self.name!r}: {key} must be a power of two, got {v}")
        for short, long_ in (("tCCD_S", "tCCD_L"), ("tRRD_S", "tRRD_L"), ("tWTR_S", "tWTR_L")):
            if getattr(self, short) > getattr(self, long_):
                raise ValueError(f"DRAM {self.name!r}: {short} must not exceed {long_}")
        if self.bus_width % self.device_width:
            raise ValueError(f"DRAM {self.name!r}: bus_width {self.bus_width} is not a multiple of device_width")
        if self.columns < self.BL:
            raise ValueError(f"DRAM {self.name!r}: columns ({self.columns}) must be >= BL ({self.BL})")
        if self.refresh_policy not in REFRESH_POLICIES:
            raise ValueError(f"DRAM {self.name!r}: refresh_policy {self.refresh_policy!r}; "
                             f"valid: {', '.join(REFRESH_POLICIES)}")
        parse_address_mapping(self.address_mapping)
        for key in ("VDD", "IDD0", "IDD2P", "IDD2N", "IDD3P", "IDD3N", "IDD4R", "IDD4W", "IDD5AB", "IDD5PB", "IDD6x"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
                                  or v < 0 or (key == "VDD" and v == 0)):
                raise ValueError(f"DRAM {self.name!r}: {key} must be a non-negative number (VDD positive), got {v!r}")

    # --- derived quantities -------------------------------------------------------------------------------------
    @property
    def request_bytes(self) -> int:
        """Bytes moved by one burst (one READ/WRITE command): bus_width / 8 * BL."""
        return self.bus_width // 8 * self.BL

    @property
    def peak_gbps(self) -> float:
        """Peak data rate in GB/s as DRAMSim3 computes it: channels x request bytes / (burst cycles x tCK)."""
        return self.channels * self.request_bytes / (self.burst_cycles * self.tCK_ns)

    @property
    def devices_per_rank(self) -> int:
        return self.bus_width // self.device_width

    @property
    def banks(self) -> int:
        """Banks per rank."""
        return self.bankgroups * self.banks_per_group

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (page) across the rank."""
        return self.columns * self.device_width // 8 * self.devices_per_rank

    @property
    def bursts_per_row(self) -> int:
        return self.columns // self.BL

    @property
    def capacity_bytes(self) -> int:
        return self.channels * self.ranks * self.banks * self.rows * self.row_bytes

    @property
    def read_delay(self) -> int:
        """Cycles from a READ command to its last data beat: AL + CL + burst."""
        return self.AL + self.CL + self.burst_cycles

    @property
    def write_delay(self) -> int:
        return self.AL + self.CWL + self.burst_cycles

    # --- variants -------------------------------------------------------------------------------------------------
    def with_overrides(self, **changes: Any) -> DramSpec:
        """A copy with some fields replaced (e.g. channels=40, address_mapping='rochrabacobg'); validated."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown DRAM parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **changes)

    def scaled(self, bw_scale: float) -> DramSpec:
        """The same device clocked bw_scale times faster: tCK_ns / bw_scale, every timing kept in cycles.

        Peak and achieved bandwidth scale by bw_scale and every latency (in ns) by 1 / bw_scale: a what-if for a
        faster (or slower) memory of the same organisation and cycle-level behaviour.
        """
        if not (bw_scale > 0 and math.isfinite(bw_scale)):
            raise ValueError(f"bw_scale must be a positive finite number, got {bw_scale!r}")
        if bw_scale == 1:
            return self
        return dataclasses.replace(self, name=f"{self.name}@x{bw_scale:g}", tCK_ns=self.tCK_ns / bw_scale)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AddressMap:
    """How a byte address splits into (channel, rank, bankgroup, bank, row, column).

    DRAMSim3 takes bit fields above the request-size offset, least significant field last in the mapping string.
    We use the mixed-radix generalisation (field = address // stride % count), identical for power-of-two counts
    and also defined for e.g. 80 channels (5 HBM3 stacks).
    """

    shift_bits: int
    stride: dict[str, int]
    count: dict[str, int]

    def decode(self, addr: int) -> tuple[int, int, int, int, int, int]:
        x = addr >> self.shift_bits
        s, c = self.stride, self.count
        return (x // s["ch"] % c["ch"], x // s["ra"] % c["ra"], x // s["bg"] % c["bg"], x // s["ba"] % c["ba"],
                x // s["ro"] % c["ro"], x // s["co"] % c["co"])


def parse_address_mapping(mapping: str) -> tuple[str, ...]:
    """The six 2-letter fields of a mapping string, most significant first; ValueError if malformed."""
    if not isinstance(mapping, str) or len(mapping) != 12:
        raise ValueError(f"address mapping {mapping!r} must be 12 characters: the six fields "
                         f"{', '.join(_MAP_FIELDS)} in some order (e.g. 'rochrababgco')")
    fields = tuple(mapping[i:i + 2] for i in range(0, 12, 2))
    if sorted(fields) != sorted(_MAP_FIELDS):
        raise ValueError(f"address mapping {mapping!r} must use each of {', '.join(_MAP_FIELDS)} exactly once")
    return fields


def address_map(spec: DramSpec) -> AddressMap:
    """Field strides as DRAMSim3's Config::SetAddressMapping places them (last field of the string lowest)."""
    count = {"ch": spec.channels, "ra": spec.ranks, "bg": spec.bankgroups, "ba": spec.banks_per_group,
             "ro": spec.rows, "co": spec.bursts_per_row}
    stride: dict[str, int] = {}
    step = 1
    for token in reversed(parse_address_mapping(spec.address_mapping)):
        stride[token] = step
        step *= count[token]
    return AddressMap(shift_bits=_log2(spec.request_bytes), stride=stride, count=count)


def _log2(n: int) -> int:
    return max(int(n).bit_length() - 1, 0)


# --- registry -------------------------------------------------------------------------------------------------------
def load_dram_toml(path: str | Path) -> tuple[DramSpec, list[str]]:
    """A DramSpec and its aliases from a TOML file (schema: README, "DRAM"). OSError/ValueError on bad files."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    return spec_from_dict(data, origin=str(path))


def spec_from_dict(data: dict[str, Any], origin: str = "<dict>") -> tuple[DramSpec, list[str]]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):  # [organisation], [timing], [controller], [power] tables are just grouping
            flat.update(value)
        else:
            flat[key] = value
    aliases = list(flat.pop("aliases", []))
    flat.setdefault("burst_cycles", _default_burst_cycles(flat))
    names = {f.name for f in dataclasses.fields(DramSpec)}
    unknown = sorted(set(flat) - names)
    if unknown:
        raise ValueError(f"{origin}: unknown DRAM parameter(s) {', '.join(unknown)}")
    missing = sorted(f.name for f in dataclasses.fields(DramSpec)
                     if f.name not in flat and f.default is dataclasses.MISSING)
    if missing:
        raise ValueError(f"{origin}: missing DRAM parameter(s) {', '.join(missing)}")
    return DramSpec(**flat), aliases


def _default_burst_cycles(flat: dict[str, Any]) -> int:
    """DRAMSim3's burst_cycle by protocol: GDDR5 BL/4, GDDR5X BL/8, GDDR6 BL/16, others (DDR) BL/2."""
    bl = flat.get("BL")
    if not isinstance(bl, int):
        return 0  # validation of BL reports the problem
    divisor = {"GDDR5": 4, "GDDR5X": 8, "GDDR6": 16}.get(str(flat.get("protocol", "")).upper(), 2)
    return max(bl // divisor, 1)


_PRESETS: dict[str, DramSpec] = {}
_ALIASES: dict[str, str] = {}


def _load_presets() -> None:
    if _PRESETS:
        return
    for path in sorted(PRESET_DIR.glob("*.toml")):
        spec, aliases = load_dram_toml(path)
        _PRESETS[spec.name] = spec
        for alias in aliases:
            _ALIASES[alias.lower()] = spec.name


def list_drams() -> list[DramSpec]:
    """The built-in presets, by name."""
    _load_presets()
    return [_PRESETS[k] for k in sorted(_PRESETS)]


def dram_aliases() -> dict[str, str]:
    """Friendly alias -> preset name."""
    _load_presets()
    return dict(_ALIASES)


def get_dram(name: str | DramSpec) -> DramSpec:
    """A preset by name or alias (case-insensitive), or a DramSpec from a .toml file path."""
    if isinstance(name, DramSpec):
        return name
    _load_presets()
    if str(name).endswith(".toml"):
        return load_dram_toml(name)[0]
    by_lower = {k.lower(): k for k in _PRESETS}
    key = str(name).lower()
    if key in by_lower:
        return _PRESETS[by_lower[key]]
    if key in _ALIASES:
        return _PRESETS[_ALIASES[key]]
    choices = sorted(_PRESETS) + sorted(_ALIASES)
    raise ValueError(f"unknown DRAM {name!r}; valid: {', '.join(choices)} or a .toml file")
