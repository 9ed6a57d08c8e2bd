"""`dsqsim roofline`: per-op roofline and the step's lower-bound time of a workload on a machine under a policy."""

from __future__ import annotations

import argparse

from sim.commands.common import add_hw_arg, add_json_arg, add_workload_args, positive_int, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("roofline", help="roofline lower bound of one training step under a precision policy",
                              description=__doc__)
    add_workload_args(p)
    add_hw_arg(p)
    p.add_argument("--policy", required=True, metavar="P",
                   help="a format name (fixed precision), dsq, cyclic, or a policy .toml/.json file")
    p.add_argument("--step", type=int, default=0,
                   help="training step whose configuration a time-adaptive policy uses (default %(default)s)")
    p.add_argument("--total-steps", type=positive_int, default=1000, help="length of training for the schedule")
    p.add_argument("--top", type=positive_int, default=15, help="ops shown in the table, largest time share first")
    p.add_argument("--plot", metavar="F", default=None,
                   help="write the roofline plot: F.png or F.svg, or both when F has no suffix")
    add_json_arg(p)
    p.set_defaults(func=run)


def _table(result, top: int) -> str:
    ops = result.ops.sort_values("time_s", ascending=False).head(top)
    lines = [f"{'op':<34} {'phase':<9} {'bits':>5} {'MACs':>10} {'bytes':>10} {'op/B':>8} {'bound':<7} "
             f"{'time_us':>9} {'share':>6} {'energy_uJ':>9}"]
    for r in ops.itertuples(index=False):
        bits = f"{r.bits_a}x{r.bits_b}" if r.macs > 0 else "vec"
        lines.append(f"{str(r.name)[:34]:<34} {r.phase:<9} {bits:>5} {r.macs:>10.3g} {r.dram_bytes:>10.3g} "
                     f"{r.intensity_ops_per_byte:>8.3g} {r.bound:<7} {r.time_s * 1e6:>9.3g} {r.time_share:>6.1%} "
                     f"{r.energy_j * 1e6:>9.3g}")
    return "\n".join(lines)


def _json_records(frame) -> list[dict]:
    """Rows as dicts, with missing values and infinities (an op with no DRAM traffic) as null: strict JSON."""
    import math

    import pandas as pd

    def clean(v):
        if v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
            return None
        return v

    return [{k: clean(v) for k, v in rec.items()} for rec in frame.to_dict(orient="records")]


def run(args: argparse.Namespace) -> int:
    from hwmodels.machine import get_machine
    from sim.commands.common import load_workload
    from sim.policy import get_policy
    from sim.roofline import roofline

    if args.step < 0 or args.step >= args.total_steps:
        raise ValueError(f"--step must be in [0, --total-steps={args.total_steps}), got {args.step}")
    if args.plot:
        from reports.files import plot_paths

        plot_paths(args.plot)  # reject a bad suffix before the work
    trace = load_workload(args)
    machine = get_machine(args.hw)
    policy = get_policy(args.policy)
    config = policy.config_at(args.step, args.total_steps)
    result = roofline(trace, machine, config)
    written = []
    if args.plot:
        from reports.roofline_plot import save_roofline_plot

        written = [str(p) for p in save_roofline_plot(result, args.plot)]
    if args.json:
        out = {"workload": result.workload, "hw": result.machine, "policy": policy.name, "step": args.step,
               **result.summary(), "overlapped_bound_s": result.overlapped_bound_s, "plots": written,
               "roofs": [r.__dict__ for r in result.roofs],
               "ops": _json_records(result.ops.drop(columns=["op_index"]))}
        print_json(out)
        return 0
    c = result.counts
    print(f"{result.workload} on {result.machine}, policy {policy.name} at step {args.step}: {result.config_label}")
    print(f"  MACs {c.macs:.4g}, arithmetic {c.arith_bitops:.4g} bit-ops, DRAM {c.dram_bytes / 1e6:.4g} MB "
          f"(q0 {c.bytes_by_point['q0'] / 1e6:.4g}, q1 {c.bytes_by_point['q1'] / 1e6:.4g}, "
          f"q2 {c.bytes_by_point['q2'] / 1e6:.4g}, q3 {c.bytes_by_point['q3'] / 1e6:.4g}, "
          f"other {c.bytes_by_point['other'] / 1e6:.4g} MB)")
    print(f"  step lower bound {result.time_lower_bound_s * 1e3:.4g} ms = max(critical path "
          f"{result.critical_path_s * 1e3:.4g}, array {result.array_time_s * 1e3:.4g}, vector "
          f"{result.vector_time_s * 1e3:.4g}, memory {result.memory_time_s * 1e3:.4g}) ms; without overlap between "
          f"ops {result.serial_time_s * 1e3:.4g} ms, {result.compute_bound_fraction:.0%} of it in compute-bound ops")
    by = ", ".join(f"{k} {v:.3g}" for k, v in result.energy_by_component.items())
    print(f"  energy {result.energy_j:.4g} J per step = {by} J (per-op energy below: dynamic only; DRAM refresh "
          f"and background are per step{', background estimated' if result.dram_background_estimated else ''})")
    for r in result.roofs:
        print(f"  roof {r.label}: {r.peak_ops_per_s / 1e12:.4g} T{r.unit}/s, ridge {r.ridge_ops_per_byte:.4g} "
              f"{r.unit}/byte")
    print()
    print(_table(result, args.top))
    for path in written:
        print(f"wrote {path}")
    return 0
