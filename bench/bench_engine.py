"""Benchmark of the SimPy engine: whole-process CPU seconds of one training step at `tile` fidelity
(`dsqsim simulate --fidelity tile`) against the targets of issue 11 (goal 1), how the work grows with layers, batch,
sequence length and DRAM bandwidth (it should follow ops x simulated steps, not simulated cycles), and the full
`transaction` fidelity on transformer-iwslt (goal 2: <= 2 CPU-minutes)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

# whole-process CPU seconds of one step, on every machine preset (issue 11, goal 1)
TARGETS_CPU_S = {"transformer-iwslt": 2.5, "gpt2-small": 4.0, "llama-7b": 15.0}
# the full transaction-level step (every burst through the DRAM model), whole process (issue 11, goal 2)
TRANSACTION_TARGETS_CPU_S = {"transformer-iwslt": 120.0}
MACHINES = ("edge-npu", "cloud-npu", "h100-sxm")


def _cli_step(workload: str, machine: str, fidelity: str = "tile", *extra: str) -> dict:
    """One `dsqsim simulate` in a child process: its CPU seconds (user + system) and its JSON result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-m", "sim.cli", "simulate", "--workload", workload, "--hw", machine,
                          "--policy", "bf16", "--fidelity", fidelity, "--json", *extra], capture_output=True,
                         text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu_s, **json.loads(out.stdout)}


def _one(workload: str, machine, config, batch: int | None = None, seq_len: int | None = None,
         layers: int | None = None, dram_bw_scale: float | None = None) -> dict:
    """One step in this process: CPU seconds of the simulation (planning included, trace building not), cold: the
    engine's process-wide memos (plans, DRAM work) are emptied first, so each case pays for its own work."""
    from sim.engine import clear_memos, simulate
    from workloads import build_trace, get_spec

    clear_memos()

    spec = get_spec(workload)
    if layers is not None:
        import dataclasses

        spec = dataclasses.replace(spec, n_layers=spec.n_layers * layers,
                                   n_decoder_layers=spec.n_decoder_layers * layers)
    trace = build_trace(spec, batch=batch, seq_len=seq_len)
    if dram_bw_scale is not None:
        machine = machine.with_overrides(dram_bw_scale=dram_bw_scale)
    t0 = time.process_time()
    r = simulate(trace, machine, config, fidelity="tile", cache=None)
    cpu_s = time.process_time() - t0
    return {"ops": len(trace.ops), "steps": int(r.ops["steps"].sum()), "cycles": r.cycles, "events": r.events,
            "dram_events": r.dram_events, "cpu_s": cpu_s}


def run(quick: bool = False) -> str:
    from hwmodels.machine import get_machine
    from sim.precision import PrecisionConfig

    machines = ("edge-npu",) if quick else MACHINES
    workloads = ("tiny-lm", "transformer-iwslt") if quick else ("tiny-lm", *TARGETS_CPU_S)
    out = ["## Engine (SimPy replay: tile and transaction fidelity)", "",
           "One training step, uniform bf16: `dsqsim simulate --workload W --hw H --policy bf16 --fidelity tile` in a "
           "child process, its whole-process CPU seconds (user + system: imports, trace building, planning, "
           "simulation). Targets (issue 11): transformer-iwslt <= 2.5 CPU-s, gpt2-small <= 4, llama-7b <= 15, on "
           "every machine. `events` = SimPy events plus the DRAM model's work (`dram events`: row visits decoded and "
           "refresh steps).", "",
           "| workload | machine | simulated ms | events | dram events | CPU s | target | met |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    tile_rows = {}
    for w in workloads:
        for m in machines:
            r = tile_rows[w, m] = _cli_step(w, m)
            target = TARGETS_CPU_S.get(w)
            met = "" if target is None else ("yes" if r["cpu_s"] <= target else "**no**")
            dram_events = r["configs"][0].get("dram_events", "") if r.get("configs") else ""
            out.append(f"| {w} | {m} | {r['time_s'] * 1e3:.4g} | {r['events']} | {dram_events} | "
                       f"{r['cpu_s']:.2f} | {target or ''} | {met} |")
    out += ["", *_transaction_section(("tiny-lm",) if quick else tuple(TRANSACTION_TARGETS_CPU_S), machines,
                                      tile_rows, 0.01 if quick else 3.0)]
    base_w, base_m = ("tiny-lm" if quick else "transformer-iwslt"), "edge-npu"
    machine, config = get_machine(base_m), PrecisionConfig.uniform("bf16")
    cases = [("base", {}), ("2x batch", {"batch": 2 * _spec(base_w).default_batch}),
             ("2x seq_len", {"seq_len": 2 * _spec(base_w).default_seq_len}), ("2x layers", {"layers": 2}),
             ("DRAM bandwidth / 100", {"dram_bw_scale": 0.01})]
    scaling = [(label, _one(base_w, machine, config, **kw)) for label, kw in cases]
    base = scaling[0][1]
    out += ["", f"Scaling of {base_w} on {base_m} (CPU seconds of the simulation in one process; ratios to the "
            "base case): wall time should follow steps, not simulated cycles.", "",
            "| case | ops | steps | simulated cycles | dram events | CPU s | cycles ratio | steps ratio | CPU ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in scaling:
        out.append(f"| {label} | {r['ops']} | {r['steps']} | {r['cycles']:.4g} | {r['dram_events']} | "
                   f"{r['cpu_s']:.2f} | {r['cycles'] / base['cycles']:.2f} | {r['steps'] / base['steps']:.2f} | "
                   f"{r['cpu_s'] / base['cpu_s']:.2f} |")
    return "\n".join(out) + "\n"


def _bursts(workload: str, machine: str) -> int:
    from hwmodels.machine import get_machine
    from sim.precision import PrecisionConfig
    from sim.progress import transaction_bursts
    from workloads import resolve_workload

    return transaction_bursts(resolve_workload(workload), get_machine(machine), PrecisionConfig.uniform("bf16"))


def _transaction_section(workloads, machines, tile_rows: dict, budget_s: float) -> list[str]:
    """The full transaction-level step: every DRAM burst through the transaction model (the compiled core, one call
    per DMA batch), whole-process CPU seconds, beside the tile run of the same step from the table above and the
    sampled estimate of it (seed 0) with its interval."""
    out = ["Full `transaction` fidelity (every DRAM burst through the transaction-level model; the compiled core "
           "runs each DMA batch in one call): `dsqsim simulate ... --fidelity transaction` in a child process, "
           "whole-process CPU seconds. Target (issue 11, goal 2): transformer-iwslt <= 120 CPU-s. "
           "`tile - transaction`: the tile step of the table above against this one. `sampled`: "
           f"`--fidelity sampled --sample-budget-s {budget_s:g} --seed 0` in a child process, its estimate against the "
           "transaction step, the half-width of its nominal 95 % interval, and whether that covers the step.", "",
           "| workload | machine | bursts | simulated ms | tile - transaction | CPU s | bursts per CPU s | target "
           "| met | sampled CPU s | sampled - transaction | interval +- | covers |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for w in workloads:
        for m in machines:
            r = _cli_step(w, m, "transaction")
            n = _bursts(w, m)
            tile = tile_rows.get((w, m))
            diff = f"{tile['cycles'] / r['cycles'] - 1:+.2%}" if tile else ""
            target = TRANSACTION_TARGETS_CPU_S.get(w)
            met = "" if target is None else ("yes" if r["cpu_s"] <= target else "**no**")
            sr = _cli_step(w, m, "sampled", "--sample-budget-s", f"{budget_s:g}", "--seed", "0")
            e = sr["sampled"][0]
            covers = "yes" if e["ci_low_cycles"] <= r["cycles"] <= e["ci_high_cycles"] else "**no**"
            out.append(f"| {w} | {m} | {n:.3g} | {r['time_s'] * 1e3:.4g} | {diff} | {r['cpu_s']:.1f} | "
                       f"{n / r['cpu_s']:.3g} | {target or ''} | {met} | {sr['cpu_s']:.1f} | "
                       f"{e['estimate_cycles'] / r['cycles'] - 1:+.2%} | {e['half_width_rel']:.2%} | {covers} |")
    return out


def _spec(w: str):
    from workloads import get_spec

    return get_spec(w)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    print(run(quick=ap.parse_args().quick))
