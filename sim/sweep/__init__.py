"""What-if sweeps: a grid of (workload, machine, policy, DRAM bandwidth, array, SRAM) points run in parallel."""

from sim.sweep.grid import AXES, SweepPoint, build_grid, parse_array
from sim.sweep.runner import SweepInterrupted, run_sweep

__all__ = ["AXES", "SweepPoint", "SweepInterrupted", "build_grid", "parse_array", "run_sweep"]
