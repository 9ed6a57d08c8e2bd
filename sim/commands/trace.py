"""`dsqsim trace`: build one training step's trace (ops, tensors, DSQ points), print a summary, optionally save it."""

from __future__ import annotations

from sim.commands.common import add_json_arg, add_workload_args, print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("trace", help="build a workload's training-step trace and write it as JSON",
                              description=__doc__)
    add_workload_args(p)
    p.add_argument("--out", metavar="PATH", default=None,
                   help="write the trace JSON here (atomically: a temporary file renamed when complete)")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from sim.commands.common import load_workload

    trace = load_workload(args, check=False)  # a trace is shapes and exact int counts: any size can be written
    if args.out:
        try:
            trace.save(args.out)
        except OSError as exc:  # name the user's path, not the temporary file the atomic write used
            from reports.files import write_error

            raise write_error(args.out, exc) from None
    if args.json:
        print_json({
            "workload": trace.workload, "batch": trace.batch, "seq_len": trace.seq_len, "ops": len(trace.ops),
            "tensors": len(trace.tensors), "params": trace.param_count, "macs": trace.total_macs,
            "flops": trace.total_flops, "out": args.out,
        })
    else:
        print(trace.summary() + (f" -> {args.out}" if args.out else ""))
    return 0
