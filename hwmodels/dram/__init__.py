"""DRAM models validated against DRAMSim3: specs and presets, a transaction-level model (SimPy), a bulk model.

Public API:
    DramSpec, get_dram, list_drams, dram_aliases     organisation/timing presets (TOML); spec.py
    DramSystem                                       cycle-level controllers + in-order front end; system.py
                                                     (compiled core of the same model: compiled.py, _dramcore.c)
    TransactionDram                                  SimPy adapter: access(addr, nbytes, is_write) -> event
    BulkDram, BulkResult                             DMA-level timing per row activation; bulk.py
    run_bench, BenchResult, PATTERNS                 the DRAMSim3 reference methodology (`dsqsim dram-bench`)
"""

from hwmodels.dram.bench import PATTERNS, BenchResult, run_bench
from hwmodels.dram.bulk import BulkDram, BulkResult
from hwmodels.dram.spec import DramSpec, dram_aliases, get_dram, list_drams
from hwmodels.dram.system import DramSystem
from hwmodels.dram.transaction import TransactionDram

__all__ = ["PATTERNS", "BenchResult", "BulkDram", "BulkResult", "DramSpec", "DramSystem", "TransactionDram",
           "dram_aliases", "get_dram", "list_drams", "run_bench"]
