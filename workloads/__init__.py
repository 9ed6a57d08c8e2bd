"""Workload models: Transformer specs and training-step traces. Knows nothing of `sim` or `hwmodels`."""
