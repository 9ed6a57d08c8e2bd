"""Machines from TOML: the preset registry and user files, validated on load (schema: README, "Machines")."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hwmodels.compute import PeakEntry, PrecisionLaw, ThroughputUnit, VectorUnit
from hwmodels.compute.energy import ComputeEnergy
from hwmodels.dram import get_dram
from hwmodels.machine.model import ArraySpec, Machine, SramSpec

PRESET_DIR = Path(__file__).parent / "presets"

_TOP = {"name", "description", "clock_ghz", "array", "throughput", "sram", "vector", "dram", "dram_capacity_gb",
        "energy"}
_ARRAY = {"rows", "cols", "dataflow", "native_bits", "min_bits", "precision_scalable", "pow2"}
_THROUGHPUT = {"units", "tile_m", "tile_n", "peak"}
_PEAK = {"name", "mult_bits", "tflops"}
_SRAM = {"a_kb", "b_kb", "out_kb", "total_kb"}
_VECTOR = {"lanes", "ops_per_element"}


class _Section:
    """One TOML table, read with the file name in every error."""

    def __init__(self, data: Any, where: str, allowed: set[str], origin: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"machine file {origin}: [{where}] must be a table")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"machine file {origin}: unknown key {unknown[0]!r} in [{where}]; "
                             f"valid: {', '.join(sorted(allowed))}")
        self.data, self.where, self.origin = data, where, origin

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise ValueError(f"machine file {self.origin}: missing key {key!r} in [{self.where}]")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ValueError(f"machine file {self.origin}: [{self.where}] {key} must be {names}, got {value!r}")
        return value


def machine_from_dict(data: dict[str, Any], origin: str = "<dict>") -> Machine:
    """A validated Machine from parsed TOML; ValueError naming the key and file on any problem."""
    top = _Section(data, "top level", _TOP, origin)
    name = top.get("name", str)
    try:
        dram = _dram(top.get("dram", dict), origin)
        array = throughput = None
        if "array" in data:
            a = _Section(data["array"], "array", _ARRAY, origin)
            law = PrecisionLaw(a.get("native_bits", int, 16), a.get("min_bits", int, 2),
                               a.get("precision_scalable", bool, True), a.get("pow2", bool, True))
            array = ArraySpec(a.get("rows", int), a.get("cols", int), a.get("dataflow", str, "os"), law)
        if "throughput" in data:
            t = _Section(data["throughput"], "throughput", _THROUGHPUT, origin)
            peaks = []
            for i, entry in enumerate(t.get("peak", list)):
                p = _Section(entry, f"throughput.peak[{i}]", _PEAK, origin)
                peaks.append(PeakEntry(p.get("name", str), p.get("mult_bits", int), p.get("tflops", (int, float))))
            throughput = ThroughputUnit(tuple(peaks), t.get("units", int, 1), t.get("tile_m", int, 128),
                                        t.get("tile_n", int, 128))
        s = _Section(top.get("sram", dict), "sram", _SRAM, origin)
        if "total_kb" in s.data:
            if {"a_kb", "b_kb", "out_kb"} & set(s.data):
                raise ValueError(f"machine file {origin}: [sram] give either total_kb or a_kb/b_kb/out_kb")
            third = s.get("total_kb", (int, float)) / 3
            sram = SramSpec(third, third, third)
        else:
            sram = SramSpec(s.get("a_kb", (int, float)), s.get("b_kb", (int, float)), s.get("out_kb", (int, float)))
        v = _Section(top.get("vector", dict), "vector", _VECTOR, origin)
        vector = VectorUnit(v.get("lanes", int))
        ops = v.get("ops_per_element", dict, {})
        if ops:
            unknown = sorted(set(ops) - set(vector.ops_per_element))
            if unknown:
                raise ValueError(f"machine file {origin}: unknown op kind {unknown[0]!r} in [vector.ops_per_element]; "
                                 f"valid: {', '.join(vector.kinds)}")
            vector = VectorUnit(vector.lanes, {**vector.ops_per_element, **ops})
        energy = _energy(top.get("energy", dict, {}), origin)
        return Machine(name=name, clock_ghz=top.get("clock_ghz", (int, float)), dram=dram, vector=vector, sram=sram,
                       array=array, throughput=throughput, description=top.get("description", str, ""),
                       source=origin, dram_capacity_gb=top.get("dram_capacity_gb", (int, float), None),
                       energy=energy)
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if origin in msg else f"machine file {origin}: {msg}") from None


def _energy(table: dict[str, Any], origin: str) -> ComputeEnergy:
    """[energy]: overrides of the ComputeEnergy defaults (Horowitz 45 nm table; docs/energy.md)."""
    try:
        return ComputeEnergy().with_overrides(**table)
    except TypeError as exc:  # e.g. a string where a number belongs, caught by the comparisons in validation
        raise ValueError(f"machine file {origin}: bad value in [energy] ({exc})") from None


def _dram(table: dict[str, Any], origin: str):
    """[dram]: preset (name, alias or .toml path), optional DramSpec field overrides, optional peak_gbps target."""
    if "preset" not in table:
        raise ValueError(f"machine file {origin}: missing key 'preset' in [dram]")
    rest = dict(table)
    preset = rest.pop("preset")
    target = rest.pop("peak_gbps", None)
    if not isinstance(preset, str):
        raise ValueError(f"machine file {origin}: [dram] preset must be a string, got {preset!r}")
    spec = get_dram(preset if not preset.endswith(".toml") else str(Path(origin).parent / preset))
    if rest:
        spec = spec.with_overrides(**rest)
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, int | float) or not target > 0:
            raise ValueError(f"machine file {origin}: [dram] peak_gbps must be a positive number, got {target!r}")
        spec = spec.scaled(target / spec.peak_gbps)
    return spec


def load_machine_toml(path: str | Path) -> Machine:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise OSError(f"machine file not found: {p}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"machine file {p}: not valid TOML ({exc})") from None
    return machine_from_dict(data, str(p))


_PRESETS: dict[str, Machine] = {}


def _presets() -> dict[str, Machine]:
    if not _PRESETS:
        for path in sorted(PRESET_DIR.glob("*.toml")):
            machine = load_machine_toml(path)
            _PRESETS[machine.name] = machine
    return _PRESETS


def list_machines() -> list[str]:
    """Names of the preset machines."""
    return sorted(_presets())


def get_machine(name_or_path: str | Machine) -> Machine:
    """A preset by name (case-insensitive) or a Machine from a .toml file path."""
    if isinstance(name_or_path, Machine):
        return name_or_path
    key = str(name_or_path)
    if key.endswith(".toml") or "/" in key:
        return load_machine_toml(key)
    presets = _presets()
    for name, machine in presets.items():
        if name.lower() == key.lower():
            return machine
    raise ValueError(f"unknown machine {key!r}; valid: {', '.join(sorted(presets))} or a .toml file")
