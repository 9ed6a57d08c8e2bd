"""Hardware models: DRAM (transaction-level and bulk), compute units (systolic arrays, vector units), machines.

Knows nothing of `sim` or `workloads`.
"""
