"""`dsqsim simulate`: replay one training step of a workload on a machine under a precision policy (SimPy engine).

A time-adaptive policy is costed once per distinct configuration and reported as the step averaged over its
timeline (fraction of `--total-steps` spent in each configuration), with each configuration's figures alongside.
"""

from __future__ import annotations

import argparse

from sim.commands.common import (
    LazyText,
    add_hw_arg,
    add_json_arg,
    add_workload_args,
    positive_float,
    positive_int,
    print_json,
)

FIDELITY_CHOICES = ("roofline", "tile", "transaction", "sampled")


def register(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="simulate one training step (SimPy engine: tile or transaction level)",
                              description=__doc__)
    add_workload_args(p)
    add_hw_arg(p)
    p.add_argument("--policy", required=True, metavar="P",
                   help="a format name (fixed precision), dsq, cyclic, or a policy .toml/.json file")
    p.add_argument("--fidelity", default="tile", metavar="F",
                   help="roofline (analytic bound), tile (default: bulk DRAM transfers) or transaction "
                        "(every burst through the DRAM model, the reference: seconds to minutes, its time estimate "
                        "is printed first) or sampled (EXPERIMENTAL: a stratified sample at transaction level "
                        "extrapolated from tile, with a nominal 95%% interval: sampling error plus a model-discrepancy "
                        "bound; its measured coverage is in docs/engine.md)")
    p.add_argument("--sample-budget-s", type=positive_float, default=None, metavar="S",
                   help="sampled fidelity: nominal CPU seconds for its transaction-level replays (default 30)")
    p.add_argument("--seed", type=int, default=0, help="sampled fidelity: the sample's seed (default 0)")
    p.add_argument("--total-steps", type=positive_int, default=1000,
                   help="training length over which a time-adaptive policy is averaged (default %(default)s)")
    p.add_argument("--dram-bw-scale", type=positive_float, default=None, metavar="X",
                   help="scale the DRAM data rate by X (a faster or slower memory of the same organisation)")
    p.add_argument("--array", default=None, metavar="RxC", help="override the systolic array size, e.g. 64x64")
    p.add_argument("--sram-kb", type=positive_float, default=None, help="override the on-chip SRAM size (KB)")
    p.add_argument("--dram-channels", type=positive_int, default=None, help="override the number of DRAM channels")
    max_steps = p.add_argument("--max-steps", type=positive_int, default=None,
                               help="cap on simulated steps per op; more tiles are merged into groups "
                                    "(default %(engine_default)s)")
    max_steps.engine_default = LazyText(lambda: __import__("sim.engine", fromlist=["EngineOptions"])
                                        .EngineOptions().max_steps)  # the engine's own, read only for --help
    p.add_argument("--timeline", default=None, metavar="F",
                   help="write a Chrome trace-event JSON (Perfetto, chrome://tracing) of the step; for a "
                        "time-adaptive policy, of its first configuration")
    p.add_argument("--cache-dir", default=None, metavar="D",
                   help="also cache results on disk in D (e.g. ~/.cache/dsqsim)")
    add_json_arg(p)
    p.set_defaults(func=run)


def build_machine(args: argparse.Namespace):
    """The named machine with the command-line overrides applied."""
    from hwmodels.machine import get_machine, parse_array_size

    machine = get_machine(args.hw)
    overrides = {}
    if args.dram_bw_scale is not None:
        overrides["dram_bw_scale"] = args.dram_bw_scale
    if args.array is not None:
        overrides["array"] = parse_array_size(args.array, "--array")
    if args.sram_kb is not None:
        overrides["sram_kb"] = args.sram_kb
    if args.dram_channels is not None:
        overrides["dram_channels"] = args.dram_channels
    from sim.limits import check_overrides

    check_overrides(**overrides)
    return machine.with_overrides(**overrides) if overrides else machine


def _energy(result, machine, trace):
    """(timeline-averaged StepEnergy, per-configuration StepEnergy list) of a PolicySimResult (sim.energy)."""
    from sim.energy import average_energy, step_energy

    parts = [(frac, step_energy(r, machine, cfg, trace)) for cfg, frac, r in result.configs]
    return average_energy(parts), [e for _, e in parts]


def run(args: argparse.Namespace) -> int:
    from sim.commands.common import load_workload
    from sim.engine import EngineOptions, ResultCache, simulate_policy, write_timeline
    from sim.engine.cache import DEFAULT_CACHE
    from sim.policy import get_policy

    if args.fidelity not in FIDELITY_CHOICES:
        raise ValueError(f"unknown fidelity {args.fidelity!r}; valid: {', '.join(FIDELITY_CHOICES)}")
    if args.timeline and args.fidelity == "roofline":
        raise ValueError("--timeline needs a simulated fidelity (tile or transaction), not roofline")
    if args.timeline:
        import os

        folder = os.path.dirname(os.path.abspath(args.timeline))
        if not os.path.isdir(folder):
            raise OSError(f"--timeline directory does not exist: {folder}")
    trace = load_workload(args)
    machine = build_machine(args)
    policy = get_policy(args.policy)
    knobs = {"max_steps": args.max_steps, "sample_budget_s": args.sample_budget_s}
    options = EngineOptions(**{k: v for k, v in knobs.items() if v is not None}, seed=args.seed)
    if args.fidelity == "transaction":  # seconds to hours with the bytes moved: say so before starting
        import sys

        from sim.progress import estimate_line

        configs = dict.fromkeys(c for c, _ in policy.timeline(args.total_steps))
        print(estimate_line(trace, machine, configs), file=sys.stderr, flush=True)
    cache = ResultCache(args.cache_dir) if args.cache_dir else DEFAULT_CACHE
    result = simulate_policy(trace, machine, policy, total_steps=args.total_steps, fidelity=args.fidelity,
                             options=options, cache=cache)
    first = result.configs[0][2]
    energy, config_energy = _energy(result, machine, trace)
    if args.timeline:
        try:
            write_timeline(first, args.timeline)
        except OSError as exc:  # name the user's path, not the temporary file the atomic write used
            from reports.files import write_error

            raise write_error(args.timeline, exc) from None
    if args.json:
        d = result.to_dict()
        out = {"workload": d["workload"], "hw": d["machine"], "policy": d["policy"], "fidelity": d["fidelity"],
               "cycles": d["cycles"], "time_s": d["time_s"], "dram_bytes": d["dram_bytes"],
               "arith_bitops": d["arith_bitops"], "compute_busy": d["compute_busy"], "dram_busy": d["dram_busy"],
               "events": d["events"], "wall_s": d["wall_s"], "total_steps": args.total_steps,
               "configs": d["configs"], **energy.to_dict()}
        for entry, e in zip(out["configs"], config_energy, strict=True):
            entry["energy_j"] = e.energy_j
        if args.fidelity == "sampled":
            out["sampled"] = [r.sampled.to_dict() for _, _, r in result.configs]
        if len(result.configs) == 1:
            out["stall_cycles"] = first.stall_cycles
            out["bytes_by_point"] = first.bytes_by_point
            out["bytes_by_role"] = first.bytes_by_role
            out["busy"] = first.busy
        print_json(out)
        return 0
    print(f"{first.workload} on {first.machine}, policy {policy.name}, fidelity {args.fidelity}")
    for _cfg, frac, r in result.configs:
        print(f"  {frac:6.1%} of steps  {r.config_label}: {r.cycles:.6g} cycles = {r.time_s * 1e3:.4g} ms, "
              f"DRAM {r.dram_bytes / 1e6:.4g} MB, compute busy {r.compute_busy:.0%}, DRAM busy {r.dram_busy:.0%}, "
              f"{r.events} events in {r.wall_s:.2f} s")
        if r.sampled is not None:
            e = r.sampled
            est = e.estimate_cycles or 1.0
            print(f"           nominal 95% interval {e.ci_low_cycles:.6g} .. {e.ci_high_cycles:.6g} cycles "
                  f"(±{e.half_width_rel:.2%}: sampling ±{e.sampling_half_cycles / est:.2%}, model discrepancy "
                  f"±{e.discrepancy_cycles / est:.2%}; EXPERIMENTAL, coverage in docs/engine.md; "
                  f"tile {e.tile_cycles:.6g}), "
                  f"{e.samples} of {e.population} units, seed {e.seed}, budget {e.sample_budget_s:g} s")
    print(f"  step (averaged): {result.cycles:.6g} cycles = {result.time_s * 1e3:.4g} ms, "
          f"DRAM {result.dram_bytes / 1e6:.4g} MB, {result.arith_bitops:.4g} bit-ops")
    by = ", ".join(f"{k} {v:.3g}" for k, v in energy.energy_by_component.items())
    note = " (DRAM background estimated)" if energy.dram_background_estimated else ""
    print(f"  energy (averaged): {energy.energy_j:.4g} J = {by} J{note}")
    if len(result.configs) == 1 and args.fidelity != "roofline":
        s = first.stall_cycles
        total = first.cycles or 1
        print(f"  time split: compute+DRAM {s['compute_overlap_dram'] / total:.0%}, compute only "
              f"{s['compute_only'] / total:.0%}, waiting on DRAM {s['dram_only'] / total:.0%}, "
              f"idle {s['idle'] / total:.0%}")
    if args.timeline:
        print(f"wrote {args.timeline}")
    return 0
