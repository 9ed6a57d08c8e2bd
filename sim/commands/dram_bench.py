"""`dsqsim dram-bench`: synthetic traffic through the transaction-level DRAM model (DRAMSim3 reference methodology)."""

from __future__ import annotations

import argparse

from sim.commands.common import add_json_arg, positive_int, print_json

PATTERN_CHOICES = ("seq_read", "seq_write", "mix", "rand_read")
JSON_KEYS = ("dram", "pattern", "requests", "achieved_gbps", "peak_gbps", "efficiency", "avg_read_latency_ns",
             "row_hit_rate", "end_cycle", "wall_s", "stride_bytes", "issue_width", "outstanding", "address_mapping",
             "read_cmds", "write_cmds", "act_cmds", "ref_cmds", "rank_active_cycles", "all_bank_idle_cycles")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dram-bench", help="bandwidth and latency of a DRAM preset under a synthetic pattern",
        description="Drive N requests of a pattern through the cycle-level DRAM model, as the DRAMSim3 reference "
                    "runs were made: up to W new transactions per memory clock, in order; a full queue blocks.")
    p.add_argument("--dram", default="ddr4-3200", metavar="NAME",
                   help="DRAM preset or alias (see `dsqsim presets`), or a DRAM .toml file (default %(default)s)")
    p.add_argument("--pattern", default="seq_read", choices=PATTERN_CHOICES, help="traffic pattern")
    p.add_argument("--requests", type=positive_int, default=200_000, metavar="N",
                   help="requests (default %(default)s; requests x bursts per request at most 20,000,000)")
    p.add_argument("--stride", type=positive_int, default=64, metavar="BYTES",
                   help="bytes per request and address step (default %(default)s); a request larger than one burst is "
                        "several bursts")
    p.add_argument("--issue-width", type=positive_int, default=1, metavar="W",
                   help="transactions offered per memory clock (default %(default)s, DRAMSim3's own trace driver)")
    p.add_argument("--address-map", default=None, metavar="STR",
                   help="DRAMSim3 address mapping string overriding the preset's, e.g. rochrabacobg")
    p.add_argument("--outstanding", type=positive_int, default=None, metavar="K",
                   help="at most K requests in flight (1 = dependent requests: unloaded latency)")
    add_json_arg(p)
    p.set_defaults(func=run)


def check_size(args: argparse.Namespace) -> None:
    """Refuse, in one line, a run the transaction model cannot finish in reasonable time and memory."""
    from hwmodels.dram import get_dram
    from sim.limits import MAX_BENCH_TRANSACTIONS

    bursts = args.requests * max(-(-args.stride // get_dram(args.dram).request_bytes), 1)
    if bursts > MAX_BENCH_TRANSACTIONS:
        raise ValueError(f"{args.requests:,} requests of {args.stride:,} bytes are {bursts:,} DRAM transactions; "
                         f"dram-bench runs at most {MAX_BENCH_TRANSACTIONS:,} (about 100 s at ~2e5 per second)")


def run(args: argparse.Namespace) -> int:
    from hwmodels.dram import get_dram, run_bench
    from hwmodels.dram.energy import bench_energy, energy_summary

    check_size(args)
    spec = get_dram(args.dram)
    if args.address_map:
        spec = spec.with_overrides(address_mapping=args.address_map)
    # the model counts commands and rank-state clocks itself (either path): background energy is exact
    result = run_bench(spec, pattern=args.pattern, requests=args.requests, stride_bytes=args.stride,
                       issue_width=args.issue_width, outstanding=args.outstanding)
    energy = energy_summary(bench_energy(result, spec), result.requests * result.stride_bytes)
    d = result.to_dict()
    if args.json:
        print_json({**{k: d[k] for k in JSON_KEYS}, **energy})
        return 0
    lat = "-" if result.avg_read_latency_ns is None else f"{result.avg_read_latency_ns:.1f} ns"
    rows = [
        ("DRAM", f"{result.dram} (map {result.address_mapping})"),
        ("pattern", f"{result.pattern}, {result.requests} x {result.stride_bytes} B, issue width "
                    f"{result.issue_width}"),
        ("achieved", f"{result.achieved_gbps:.2f} GB/s of {result.peak_gbps:.2f} peak "
                     f"({100 * result.efficiency:.1f} %)"),
        ("avg read latency", lat),
        ("row hit rate", f"{result.row_hit_rate:.4f}"),
        ("commands", f"{result.read_cmds} RD, {result.write_cmds} WR, {result.act_cmds} ACT, "
                     f"{result.ref_cmds} REF"),
        ("end cycle", f"{result.end_cycle} ({result.end_cycle * spec.tCK_ns:.0f} ns)"),
        ("energy", _energy_line(energy)),
        ("wall time", f"{result.wall_s:.2f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _energy_line(energy: dict) -> str:
    e = energy["energy_pj"]
    parts = ", ".join(f"{k} {e[k] / 1e6:.4g}" for k in ("act", "read", "write", "refresh", "background"))
    note = " (background ESTIMATED: no rank-state counters)" if energy["background_estimated"] else ""
    return f"{e['total'] / 1e6:.4g} uJ = {parts} uJ; {energy['pj_per_byte']:.4g} pJ/B{note}"
