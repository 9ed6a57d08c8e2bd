"""`dsqsim compare`: MACs, bit-operations, DRAM bytes and roofline step time of several policies side by side.

A time-adaptive policy is averaged over its timeline (fraction of steps at each configuration): its schedule over
--total-steps, or the timeline recorded by a training run (--timeline FILE).
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
    from sim.policy import get_policy
    from sim.roofline import COMPARE_COLUMNS, compare

    policies = [get_policy(n) for n in split_list(args.policies)]
    timelines = _timelines(args.timeline, policies)
    trace = load_workload(args)
    machine = get_machine(args.hw)
    df = compare(trace, machine, policies, total_steps=args.total_steps, timelines=timelines)
    if args.json:
        rows = df[COMPARE_COLUMNS].to_dict(orient="records")
        print_json({"workload": trace.workload, "hw": machine.name, "rows": rows})
        return 0
    print(f"{trace.workload} on {machine.name}: per-step averages over each policy's timeline (configs: distinct "
          f"configurations averaged), speedup relative to {df['policy'].iloc[0]}")
    width = max(len("policy"), *(len(str(p)) for p in df["policy"]))
    print(f"{'policy':<{width}} {'MACs':>10} {'bit-ops':>10} {'DRAM MB':>10} {'time ms':>10} {'speedup':>8} "
          f"{'configs':>7}")
    for r in df.itertuples(index=False):
        print(f"{r.policy:<{width}} {r.macs:>10.4g} {r.arith_bitops:>10.4g} {r.dram_bytes / 1e6:>10.4g} "
              f"{r.time_lower_bound_s * 1e3:>10.4g} {r.speedup:>7.3g}x {r.configs:>7}")
    return 0
