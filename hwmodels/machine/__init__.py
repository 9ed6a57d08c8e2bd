"""Machines: compute units + SRAM buffers + a DRAM preset + a clock, defined in TOML (presets in `presets/`)."""

from hwmodels.machine.loader import PRESET_DIR, get_machine, list_machines, load_machine_toml, machine_from_dict
from hwmodels.machine.model import ArraySpec, Machine, SramSpec, parse_array_size

__all__ = ["PRESET_DIR", "ArraySpec", "Machine", "SramSpec", "get_machine", "list_machines", "load_machine_toml",
           "machine_from_dict", "parse_array_size"]
