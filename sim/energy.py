"""Energy of one training step: arithmetic, vector unit, SRAM and DRAM, from the step's counts and its time.

Components (joules), `COMPONENTS`:
- array: every GEMM MAC at its operands' compute formats (`ComputeEnergy.mac_pj`: multiply ~ a x b significand
  bits, float if the format is; add at the accumulator width);
- vector: elements x ops per element of every non-GEMM op (the vector unit's own op counts) x `vector_pj_per_op`;
- sram: on-chip traffic. A GEMM on a systolic array reads the A/B elements and writes the output elements its
  model counts (`Machine.gemm`), at the buffers' sizes; every byte from DRAM is also written into a buffer and every
  byte to DRAM read out of one. Without an array model (throughput machines) and for vector ops only that staging.
- dram_act, dram_rw: per command (`hwmodels.dram.energy`): READ/WRITE = bytes / request bytes per access, rounded
  up; ACT = one per DRAM row of each access (streaming, open-page) unless the engine result counts them;
- dram_refresh, dram_background: per memory clock of the step's time: one REF per rank every tREFI, background
  at active standby except the refresh time (`estimate_rank_cycles`: labelled estimate) unless counted.
Roofline: the minimal traffic and the step's lower-bound time. Engine (`step_energy`): the SimResult's tiled
traffic and simulated time (and its DRAM counters, if it carries them: see docs/energy.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sim.counting import GEMM_KINDS, Counts, count
from sim.precision import PrecisionConfig

COMPONENTS = ("array", "vector", "sram", "dram_act", "dram_rw", "dram_refresh", "dram_background")
PJ = 1e-12


@dataclass
class StepEnergy:
    """A step's energy in joules, by component; `ops` has one row per op (dynamic energy of the op)."""

    energy_j: float
    energy_by_component: dict[str, float]
    dram_background_estimated: bool
    ops: pd.DataFrame | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"energy_j": self.energy_j, "energy_by_component": dict(self.energy_by_component),
                "dram_background_estimated": self.dram_background_estimated}


def is_float_format(fmt) -> bool:
    """Does a MAC on this format need a float multiplier? Float formats and the MX float elements; fixed, block
    floating point and mxint share an exponent per block and multiply integer mantissas."""
    return fmt.family == "float" or (fmt.family == "mx" and "fp" in fmt.name)


def _op_elements(trace, op) -> int:
    """Elements a vector op streams through: its largest operand (as sim.roofline and the engine count it)."""
    return max((int(trace.access_elements(o)) for o in (*op.inputs, *op.outputs)), default=0)


def _gemm_parts_pj(trace, op, config, machine, macs: int, read_bytes: float, write_bytes: float,
                   cache: dict) -> tuple[float, float]:
    """(array pJ, SRAM pJ) of one GEMM."""
    from sim.storage import compute_format

    e = machine.energy
    s = machine.sram
    in_kb = (s.a_kb + s.b_kb) / 2
    if "sram" not in cache:  # per-byte energies of the buffers, once per call of op_energy
        cache["sram"] = (e.sram_write_pj_per_byte(in_kb), e.sram_read_pj_per_byte(s.out_kb),
                         e.sram_read_pj_per_byte(in_kb), e.sram_write_pj_per_byte(s.out_kb))
    w_in, r_out, r_in, w_out = cache["sram"]
    fa, fb = (compute_format(o, trace.tensors[o.tensor], config) for o in op.inputs[:2])
    out = op.outputs[0]
    fo = compute_format(out, trace.tensors[out.tensor], config)
    array_pj = macs * e.mac_pj(int(fa.mult_bits), int(fb.mult_bits), is_float_format(fa), is_float_format(fb))
    stage_pj = read_bytes * w_in + write_bytes * r_out
    if machine.array is None or op.gemm is None:
        return array_pj, stage_pj
    g = op.gemm
    key = (g.batch, g.m, g.k, g.n, int(fa.mult_bits), int(fb.mult_bits))
    if key not in cache:
        cache[key] = machine.gemm(g.m, g.k, g.n, key[4], key[5], batch=g.batch)
    r = cache[key]
    in_bytes = (fa.bits_per_element + fb.bits_per_element) / 16  # A and B reads are counted together
    sram_pj = r.sram_reads * in_bytes * r_in + r.sram_writes * fo.bits_per_element / 8 * w_out
    return array_pj, stage_pj + sram_pj


def op_energy(trace, machine, config: PrecisionConfig, counts: Counts,
              traffic: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-op dynamic energy (J) by component: array, vector, sram, dram_act, dram_rw (+ `energy_j`, their sum).

    `trace` is the stored step (`sim.storage.resolve(trace, config).trace`, as `counts` was made from). DRAM traffic
    is the minimal traffic of `counts.accesses`, or per-op `read_bytes`/`write_bytes` of `traffic` (the engine's)."""
    from hwmodels.dram.energy import DramPowerRates, has_power, power_rates

    dram = machine.dram
    # a DRAM without a [power] table: its energy is unknown (NaN), the rest of the step is still costed
    rates = power_rates(dram) if has_power(dram) else DramPowerRates(*[math.nan] * 8)
    t = dram.tCK_ns
    rb, row = dram.request_bytes, dram.row_bytes
    e = machine.energy
    acc = counts.accesses
    n_ops = len(trace.ops)
    if traffic is None:
        reads = acc[acc["direction"] == "read"].groupby("op_index")["bytes"].sum().reindex(range(n_ops), fill_value=0)
        writes = acc[acc["direction"] == "write"].groupby("op_index")["bytes"].sum().reindex(range(n_ops),
                                                                                             fill_value=0)
        nbytes = acc["bytes"].to_numpy()
        per_access = pd.DataFrame({"op_index": acc["op_index"], "write": acc["direction"] == "write",
                                   "cmds": [math.ceil(b / rb) for b in nbytes],
                                   "acts": [math.ceil(b / row) for b in nbytes]})
        rd_cmds = per_access[~per_access["write"]].groupby("op_index")["cmds"].sum().reindex(range(n_ops),
                                                                                             fill_value=0)
        wr_cmds = per_access[per_access["write"]].groupby("op_index")["cmds"].sum().reindex(range(n_ops),
                                                                                            fill_value=0)
        acts = per_access.groupby("op_index")["acts"].sum().reindex(range(n_ops), fill_value=0)
    else:
        reads, writes = traffic["read_bytes"].reset_index(drop=True), traffic["write_bytes"].reset_index(drop=True)
        rd_cmds = reads.map(lambda b: math.ceil(b / rb))
        wr_cmds = writes.map(lambda b: math.ceil(b / rb))
        acts = (reads.map(lambda b: math.ceil(b / row)) + writes.map(lambda b: math.ceil(b / row)))
    # plain lists: positional pandas access per op costs more than all the arithmetic
    reads, writes, rd_cmds, wr_cmds, acts = ([float(v) for v in x] for x in (reads, writes, rd_cmds, wr_cmds, acts))
    gemm_cache: dict = {}
    rows = []
    out_kb = machine.sram.out_kb
    stage_w, stage_r = e.sram_write_pj_per_byte(out_kb), e.sram_read_pj_per_byte(out_kb)
    for i, (op, c) in enumerate(zip(trace.ops, counts.ops.itertuples(index=False), strict=True)):
        rd, wr = reads[i], writes[i]
        array_pj = vector_pj = 0.0
        if op.kind in GEMM_KINDS and c.macs > 0:
            array_pj, sram_pj = _gemm_parts_pj(trace, op, config, machine, int(c.macs), rd, wr, gemm_cache)
        elif op.kind in GEMM_KINDS:
            sram_pj = 0.0
        else:
            elements = _op_elements(trace, op)
            if elements:
                ops_per = machine.vector.ops_per_element.get(op.kind, 1.0)
                vector_pj = e.vector_pj(elements * ops_per)
            # operands staged through a buffer: written on arrival, read by the unit (and the reverse for results)
            sram_pj = (rd + wr) * (stage_w + stage_r)
        rows.append({"array": array_pj * PJ, "vector": vector_pj * PJ, "sram": sram_pj * PJ,
                     "dram_act": acts[i] * rates.act * t * PJ,
                     "dram_rw": (rd_cmds[i] * rates.read + wr_cmds[i] * rates.write) * t * PJ})
    frame = pd.DataFrame(rows, columns=list(COMPONENTS[:5]))
    frame["energy_j"] = frame.sum(axis=1, skipna=False)  # NaN DRAM energy (no power data) stays NaN
    return frame


def dram_time_energy_j(dram, time_s: float, counters: Any = None) -> tuple[float, float, bool]:
    """(refresh J, background J, estimated?) of a DRAM over `time_s`: one REF per rank every tREFI and the rank
    states of `estimate_rank_cycles`, unless `counters` (a DramCounters for the same interval) gives them."""
    from hwmodels.dram.energy import DramCounters, dram_energy, estimate_rank_cycles, has_power

    if not has_power(dram):
        return math.nan, math.nan, True
    if counters is None:
        end_cycle = time_s * 1e9 / dram.tCK_ns
        refs = end_cycle / dram.tREFI * dram.ranks * dram.channels
        active, idle = estimate_rank_cycles(dram, end_cycle, refs)
        counters = DramCounters(end_cycle=end_cycle, read_cmds=0, write_cmds=0, act_cmds=0, ref_cmds=refs,
                                rank_active_cycles=active, all_bank_idle_cycles=idle, background_estimated=True)
    en = dram_energy(dram, counters)
    return en.refresh_pj * PJ, en.background_pj * PJ, counters.background_estimated


def _total(ops: pd.DataFrame, refresh_j: float, background_j: float, estimated: bool) -> StepEnergy:
    by = {k: float(ops[k].sum(skipna=False)) for k in COMPONENTS[:5]}
    by["dram_refresh"], by["dram_background"] = refresh_j, background_j
    return StepEnergy(energy_j=math.fsum(by.values()), energy_by_component=by, dram_background_estimated=estimated,
                      ops=ops)


def energy_supported(machine) -> bool:
    """Has `machine` what energy needs (a hwmodels Machine does; duck-typed test machines may not)?"""
    return all(hasattr(machine, a) for a in ("dram", "sram", "energy")) and \
        hasattr(getattr(machine, "vector", None), "ops_per_element")


def roofline_energy(trace, machine, config: PrecisionConfig, counts: Counts, time_s: float) -> StepEnergy:
    """The step's energy at the roofline: minimal traffic, DRAM refresh/background over the lower-bound `time_s`."""
    ops = op_energy(trace, machine, config, counts)
    return _total(ops, *dram_time_energy_j(machine.dram, time_s))


# SimResult fields step_energy reads when the engine provides them (see docs/energy.md); else estimated.
SIMRESULT_DRAM_FIELDS = ("dram_act_cmds", "dram_read_cmds", "dram_write_cmds", "dram_ref_cmds",
                         "dram_rank_active_cycles", "dram_all_bank_idle_cycles")


def step_energy(result, machine, config: PrecisionConfig, trace, counts: Counts | None = None,
                storage=None) -> StepEnergy:
    """Energy of the step an engine `SimResult` simulated: its per-op tiled traffic and its time.

    Compute and SRAM energy follow the step's counts (`sim.counting.count`) like the roofline's; DRAM commands from
    the result's per-op bytes (or its DRAM counters when it has `SIMRESULT_DRAM_FIELDS`); refresh and background over
    `result.time_s`. `counts` / `storage`: the step's `sim.counting.count` and `sim.storage.resolve` when the caller has
    them already."""
    from hwmodels.dram.energy import DramCounters
    from sim.storage import resolve

    storage = storage if storage is not None else resolve(trace, config)
    stored = storage.trace
    counts = counts if counts is not None else count(stored, config, storage)
    traffic = None
    if result.ops is not None and len(result.ops) == len(stored.ops) and \
            {"read_bytes", "write_bytes"} <= set(result.ops.columns):
        traffic = result.ops[["read_bytes", "write_bytes"]]
    ops = op_energy(stored, machine, config, counts, traffic)
    counted = {k: getattr(result, k, None) for k in SIMRESULT_DRAM_FIELDS}
    counters = None
    if all(v is not None for v in counted.values()):
        dram = machine.dram
        counters = DramCounters(end_cycle=result.time_s * 1e9 / dram.tCK_ns, read_cmds=counted["dram_read_cmds"],
                                write_cmds=counted["dram_write_cmds"], act_cmds=counted["dram_act_cmds"],
                                ref_cmds=counted["dram_ref_cmds"],
                                rank_active_cycles=counted["dram_rank_active_cycles"],
                                all_bank_idle_cycles=counted["dram_all_bank_idle_cycles"])
        rates_j = _dram_command_j(dram, counters)
        ops["dram_act"] *= rates_j[0] / max(float(ops["dram_act"].sum()), 1e-300)  # counted total, op shares kept
        ops["dram_rw"] *= rates_j[1] / max(float(ops["dram_rw"].sum()), 1e-300)
        ops["energy_j"] = ops[list(COMPONENTS[:5])].sum(axis=1, skipna=False)
    return _total(ops, *dram_time_energy_j(machine.dram, result.time_s, counters))


def _dram_command_j(dram, counters) -> tuple[float, float]:
    from hwmodels.dram.energy import dram_energy

    en = dram_energy(dram, counters)
    return en.act_pj * PJ, (en.read_pj + en.write_pj) * PJ


def average_energy(parts: list[tuple[float, StepEnergy]]) -> StepEnergy:
    """Weighted average over (fraction, StepEnergy) pairs: a policy's step energy over its timeline."""
    weight = math.fsum(f for f, _ in parts)
    by = {k: math.fsum(f * s.energy_by_component[k] for f, s in parts) / weight for k in COMPONENTS}
    return StepEnergy(energy_j=math.fsum(by.values()), energy_by_component=by,
                      dram_background_estimated=any(s.dram_background_estimated for _, s in parts))
