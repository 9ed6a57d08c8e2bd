"""`dsqsim compare`: MACs, bit-operations, DRAM bytes and roofline step time of several policies side by side.

A time-adaptive policy is averaged over its timeline (fraction of steps at each configuration): its schedule over
--total-steps, or the timeline recorded by a training run (--timeline FILE). DRAM traffic is shown in both views of
`sim.traffic`: minimal (each tensor written once, read once per consumer) and tiled (what the engine moves at tile
fidelity, GEMM re-reads included), with their ratio, the re-read factor; --scope dsq counts q0..q3 traffic only.
"""

from __future__ import annotations

import argparse

from sim.commands.common import add_hw_arg, add_json_arg, add_workload_args, positive_int, print_json, split_list


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare precision policies on one workload and machine",
                              description=__doc__)
    add_workload_args(p)
    add_hw_arg(p)
    p.add_argument("--policies", required=True, metavar="P1,P2,...",
                   help="comma-separated policies: format names (fp32, bf16, fixed16, bfp8, ...), dsq, cyclic, or "
                        "policy files; speedups are relative to the first")
    p.add_argument("--total-steps", type=positive_int, default=1000, help="length of training for the schedules")
    p.add_argument("--timeline", metavar="[POLICY=]FILE", action="append", default=[],
                   help="a timeline (.json/.csv) recorded by a training run, averaged over instead of POLICY's "
                        "schedule; without POLICY= it applies to the one time-adaptive policy listed (repeatable)")
    p.add_argument("--scope", choices=("step", "dsq"), default="step",
                   help="traffic counted for the printed reductions: the whole step, or q0..q3 only (published DSQ "
                        "figures often count only those); --json gives both")
    p.add_argument("--no-tiled", dest="tiled", action="store_false",
                   help="skip the engine's tiled traffic (minimal traffic and roofline only: instant)")
    add_json_arg(p)
    p.set_defaults(func=run)


def _timelines(specs: list[str], policies: list) -> dict:
    """{policy name: recorded Timeline} from `--timeline [POLICY=]FILE` options."""
    from sim.policy import FixedPolicy, Timeline

    names = [p.name for p in policies]
    adaptive = [p.name for p in policies if not isinstance(p, FixedPolicy)]
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = "", spec
            if len(adaptive) != 1:
                raise ValueError(f"--timeline {spec!r}: say which policy it is for (POLICY=FILE); time-adaptive "
                                 f"policies listed: {', '.join(adaptive) or 'none'}")
            name = adaptive[0]
        if name not in names:
            raise ValueError(f"--timeline {spec!r}: policy {name!r} is not in --policies ({', '.join(names)})")
        out[name] = Timeline.load(path)
    return out


def run(args: argparse.Namespace) -> int:
    from hwmodels.machine import get_machine
    from sim.commands.common import load_workload
    from sim.compare import COMPARE_COLUMNS, compare_traffic
    from sim.policy import get_policy

    policies = [get_policy(n) for n in split_list(args.policies)]
    timelines = _timelines(args.timeline, policies)
    trace = load_workload(args)
    machine = get_machine(args.hw)
    df, breakdown = compare_traffic(trace, machine, policies, total_steps=args.total_steps, timelines=timelines,
                                    tiled=args.tiled)
    if args.json:
        rows = df[[*COMPARE_COLUMNS, "energy_by_component"]].to_dict(orient="records")
        print_json({"workload": trace.workload, "hw": machine.name, "rows": rows,
                    "breakdown": breakdown.to_dict(orient="records")})
        return 0
    dsq = "_dsq" if args.scope == "dsq" else ""
    scope = "q0..q3 traffic only" if dsq else "the whole step's traffic"
    print(f"{trace.workload} on {machine.name}: per-step averages over each policy's timeline (configs: distinct "
          f"configurations averaged); speedup and traffic reductions relative to {df['policy'].iloc[0]}, "
          f"reductions over {scope}; DRAM MB minimal / tiled (engine, tile fidelity), re-read = tiled / minimal")
    width = max(len("policy"), *(len(str(p)) for p in df["policy"]))
    print(f"{'policy':<{width}} {'MACs':>10} {'bit-ops':>10} {'min MB':>10} {'tiled MB':>10} {'re-read':>7} "
          f"{'time ms':>10} {'speedup':>8} {'min red.':>8} {'tiled red.':>10} {'configs':>7} {'energy J':>10} "
          f"{'E ratio':>7}")
    for r in df.to_dict("records"):
        print(f"{r['policy']:<{width}} {r['macs']:>10.4g} {r['arith_bitops']:>10.4g} "
              f"{r['dram_bytes' + dsq] / 1e6:>10.4g} {r['dram_bytes' + dsq + '_tiled'] / 1e6:>10.4g} "
              f"{r['reread_factor']:>7.3g} {r['time_lower_bound_s'] * 1e3:>10.4g} {r['speedup']:>7.3g}x "
              f"{r['traffic_reduction' + dsq]:>7.3g}x {r['traffic_reduction' + dsq + '_tiled']:>9.3g}x "
              f"{r['configs']:>7} {r['energy_j']:>10.4g} {r['energy_ratio']:>7.3g}")
    return 0
