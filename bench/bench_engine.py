"""Benchmark of the SimPy engine: wall time and events per second of one training step at `tile` fidelity, and how
wall time grows with layers, batch and sequence length (it should follow ops x simulated steps, not cycles)."""

from __future__ import annotations

import time


def _one(workload: str, machine, config, batch: int | None = None, seq_len: int | None = None,
         layers: int | None = None, max_steps: int | None = None) -> dict:
    from sim.engine import EngineOptions, simulate
    from workloads import build_trace, get_spec

    spec = get_spec(workload)
    if layers is not None:
        import dataclasses

        spec = dataclasses.replace(spec, n_layers=spec.n_layers * layers,
                                   n_decoder_layers=spec.n_decoder_layers * layers)
    t0 = time.perf_counter()
    trace = build_trace(spec, batch=batch, seq_len=seq_len)
    build_s = time.perf_counter() - t0
    options = EngineOptions(max_steps=max_steps) if max_steps else EngineOptions()
    r = simulate(trace, machine, config, fidelity="tile", options=options, cache=None)
    steps = int(r.ops["steps"].sum())
    return {"ops": len(trace.ops), "steps": steps, "cycles": r.cycles, "sim_ms": r.time_s * 1e3,
            "events": r.events, "wall_s": r.wall_s, "build_s": build_s}


def _best(repeats: int, *args, **kw) -> dict:
    """The fastest of `repeats` runs: the machine is shared, so the minimum is the least disturbed."""
    return min((_one(*args, **kw) for _ in range(repeats)), key=lambda r: r["wall_s"])


def run(quick: bool = False) -> str:
    from hwmodels.machine import get_machine
    from sim.precision import PrecisionConfig

    config = PrecisionConfig.uniform("bf16")
    repeats = 1 if quick else 2
    machines = ["edge-npu"] if quick else ["edge-npu", "cloud-npu", "h100-sxm"]
    presets = ["tiny-lm", "transformer-iwslt"] + ([] if quick else ["gpt2-small"])
    rows = [(w, m, _best(repeats, w, get_machine(m), config)) for m in machines for w in presets]
    base_w, base_m = ("tiny-lm" if quick else "transformer-iwslt"), "edge-npu"
    machine = get_machine(base_m)
    scaling = [(label, _best(repeats, base_w, machine, config, **kw)) for label, kw in [
        ("base", {}), ("2x batch", {"batch": 2 * _batch(base_w)}), ("2x seq_len", {"seq_len": 2 * _seq(base_w)}),
        ("2x layers", {"layers": 2})]]
    out = ["## Engine (SimPy replay, tile fidelity)", "",
           "One training step, uniform bf16. `steps` is the number of simulated pipeline steps (at most "
           "`EngineOptions.max_steps` = 8 per op: an op with more tiles has consecutive tiles merged into 8 steps of "
           "summed bytes and cycles), `events` "
           "the SimPy events scheduled plus the DRAM-model events. Wall time (fastest of "
           f"{repeats} run{'s' if repeats > 1 else ''} on a shared machine) includes planning (tiling) but not trace "
           "building. Targets: transformer-iwslt < 5 s, gpt2-small < 30 s.", "",
           "| workload | machine | ops | steps | simulated ms | events | wall s | events/s |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for w, m, r in rows:
        out.append(f"| {w} | {m} | {r['ops']} | {r['steps']} | {r['sim_ms']:.4g} | {r['events']} | "
                   f"{r['wall_s']:.2f} | {r['events'] / r['wall_s']:.3g} |")
    base = scaling[0][1]
    out += ["", f"Scaling of {base_w} on {base_m}: ratios to the base case.", "",
            "| case | ops | steps | simulated cycles | wall s | cycles ratio | steps ratio | wall ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in scaling:
        out.append(f"| {label} | {r['ops']} | {r['steps']} | {r['cycles']:.4g} | {r['wall_s']:.2f} | "
                   f"{r['cycles'] / base['cycles']:.2f} | {r['steps'] / base['steps']:.2f} | "
                   f"{r['wall_s'] / base['wall_s']:.2f} |")
    return "\n".join(out) + "\n"


def _batch(w: str) -> int:
    from workloads import get_spec

    return get_spec(w).default_batch


def _seq(w: str) -> int:
    from workloads import get_spec

    return get_spec(w).default_seq_len


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    print(run(quick=ap.parse_args().quick))
