"""DRAM models validated against DRAMSim3: specs and presets, a transaction-level SimPy model, a bulk-transfer model.

Public API:
    DramSpec, get_dram, list_drams, dram_aliases      -- organisation/timing presets (TOML), see spec.py
"""

from hwmodels.dram.spec import DramSpec, dram_aliases, get_dram, list_drams

__all__ = ["DramSpec", "dram_aliases", "get_dram", "list_drams"]
