"""`dsqsim sweep`: a grid of what-if points (workload x machine x policy x DRAM bandwidth x array x SRAM)."""

from __future__ import annotations

import argparse
import os
import sys

from sim.commands.common import add_json_arg, add_workload_args, positive_int, print_json, split_list

DEFAULT_WORKLOAD = "transformer-iwslt"
DEFAULT_HW = "edge-npu"
DEFAULT_POLICIES = "fp32,fixed16,dsq"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="what-if grid over DRAM bandwidth, array size, SRAM, machines and policies (parallel)",
        description="Run a grid of what-if points in parallel; every finished point is saved at once, so an "
                    "interrupted sweep resumes with --resume. Names may be comma lists.",
    )
    add_workload_args(p, required=False)
    p.set_defaults(workload=DEFAULT_WORKLOAD)
    p.add_argument("--hw", default=DEFAULT_HW, metavar="H", help="machine preset(s) or .toml (default %(default)s)")
    p.add_argument("--policies", default=DEFAULT_POLICIES, help="policies (default %(default)s)")
    p.add_argument("--dram-bw-scale", default="0.25,0.5,1,2,4", help="DRAM bandwidth multipliers (default %(default)s)")
    p.add_argument("--array", default=None, help="systolic array sizes ROWSxCOLS, e.g. 32x32,64x64 (default: the "
                                                 "machine's own)")
    p.add_argument("--sram-kb", default=None, help="on-chip SRAM sizes in KiB (default: the machine's own)")
    p.add_argument("--fidelity", default="tile",
                   help="engine fidelity: roofline, tile or transaction (default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=1000, help="training steps a policy schedule spans "
                                                                    "(default %(default)s)")
    p.add_argument("--out", default="dsqsim-sweep.parquet", help="results .parquet or .csv (default %(default)s); "
                                                                 "finished points go to OUT.parts/ at once")
    p.add_argument("--resume", action="store_true", help="reuse finished points saved for OUT")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help="parallel worker processes (default: CPU count)")
    p.add_argument("--executor", default="local", help="local (process pool) or dask (default %(default)s)")
    p.add_argument("--scheduler", default=None, metavar="ADDR", help="Dask scheduler address (default: start a "
                                                                     "local Dask cluster)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.sweep import SweepInterrupted, run_sweep

    def numbers(text: str | None, name: str) -> list:
        if text is None:
            return [None]
        out = []
        for item in split_list(text):
            try:
                out.append(float(item))
            except ValueError:
                raise ValueError(f"--{name}: expected numbers, got {item!r}") from None
        return out

    try:
        df = run_sweep(
            split_list(args.workload), split_list(args.hw), split_list(args.policies),
            numbers(args.dram_bw_scale, "dram-bw-scale"),
            [None] if args.array is None else split_list(args.array),
            numbers(args.sram_kb, "sram-kb"),
            out=args.out, resume=args.resume, workers=args.workers, executor=args.executor,
            scheduler=args.scheduler, fidelity=args.fidelity, batch=args.batch, seq_len=args.seq_len,
            steps=args.steps, progress=not args.no_progress and not args.json,
        )
    except SweepInterrupted as exc:
        print(f"dsqsim: sweep stopped: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print_json({"out": str(args.out), "points": int(len(df)), "rows": _records(df)})
        return 0
    cols = [c for c in ("workload", "hw", "policy", "dram_bw_scale", "array", "sram_kb", "time_s", "dram_bytes",
                        "arith_bitops", "compute_busy", "dram_busy") if c in df and df[c].notna().any()]
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nwrote {args.out} ({len(df)} points); report: dsqsim report {args.out} --out report.html")
    return 0


def _records(df) -> list[dict]:
    """Rows as dicts with NaN as None, so the JSON is strict."""
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")
