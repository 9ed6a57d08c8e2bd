"""`dsqsim memory`: peak DRAM footprint of a training step per policy, from the liveness of the trace's tensors, and
the largest batch that fits the machine's DRAM.

Weights (fp32 masters and stored low-precision copies), optimizer state and step inputs are live the whole step;
every other tensor from its write to its last read. stash = everything saved for backward, at the forward/backward
boundary. A time-adaptive policy shows its worst configuration; max_batch must fit under all of them.
See docs/memory.md.
"""

from __future__ import annotations

import argparse

from sim.commands.common import add_hw_arg, add_json_arg, add_workload_args, positive_int, print_json, split_list


def register(subparsers) -> None:
    p = subparsers.add_parser("memory", help="peak DRAM footprint and largest batch per policy", description=__doc__)
    add_workload_args(p)
    add_hw_arg(p)
    p.add_argument("--policies", required=True, metavar="P1,P2,...",
                   help="comma-separated policies: format names (fp32, bf16, fixed16, bfp8, ...), dsq, cyclic, or "
                        "policy files")
    p.add_argument("--total-steps", type=positive_int, default=1000,
                   help="length of training over which a time-adaptive policy's configurations are taken")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.memory import memory_table

    df = memory_table(args.workload, args.hw, split_list(args.policies), batch=args.batch, seq_len=args.seq_len,
                      total_steps=args.total_steps)
    a = df.attrs
    if args.json:
        rows = df.astype(object).where(df.notna(), None).to_dict(orient="records")
        print_json({"workload": a["workload"], "hw": a["hw"], "batch": a["batch"], "seq_len": a["seq_len"],
                    "capacity_bytes": a["capacity_bytes"], "rows": rows, "max_batch_note": a["max_batch_note"]})
        return 0
    print(f"{a['workload']} (batch {a['batch']} x {a['seq_len']}) on {a['hw']} ({a['capacity_bytes'] / 1e9:.4g} GB "
          "DRAM): peak DRAM bytes of one step; weights = masters + stored copies; stash = saved for backward at the "
          "forward/backward boundary; gradients = most gradient bytes live at once; max batch = largest batch whose "
          "peak fits the DRAM under every configuration of the policy")
    width = max(len("policy"), *(len(str(p)) for p in df["policy"]))
    print(f"{'policy':<{width}} {'peak GB':>9} {'stash GB':>9} {'weights GB':>10} {'optim GB':>9} {'grads GB':>9} "
          f"{'max batch':>9}  peak at / worst config")
    for r in df.to_dict("records"):
        best = "n/a" if r["max_batch"] is None or str(r["max_batch"]) == "<NA>" else str(r["max_batch"])
        print(f"{r['policy']:<{width}} {r['peak_bytes'] / 1e9:>9.4g} {r['stash_bytes'] / 1e9:>9.4g} "
              f"{r['weights_bytes'] / 1e9:>10.4g} {r['optimizer_bytes'] / 1e9:>9.4g} "
              f"{r['gradient_bytes'] / 1e9:>9.4g} {best:>9}  {r['peak_op']} / {r['config']}")
    if a["max_batch_note"]:
        print(f"max batch n/a: {a['max_batch_note']}")
    return 0
