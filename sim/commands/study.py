"""`dsqsim study`: the closed loop — train under each policy, cost each precision timeline, report."""

from __future__ import annotations

import argparse
import os
import sys

from sim.commands.common import add_json_arg, positive_float, positive_int, print_json, split_list

DEFAULTS = {"task": "numwords", "workload": "transformer-iwslt", "hw": "edge-npu", "policies": "fp32,fixed16,dsq",
            "steps": 100, "out": "dsqsim-out"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "study", help="train under each policy, cost its precision timeline on a machine, write tables and a report",
        description="Closed-loop study. Every option has a default, so plain `dsqsim study` runs a quick study "
                    f"({DEFAULTS['task']}, {DEFAULTS['steps']} steps, {DEFAULTS['workload']} on {DEFAULTS['hw']}, "
                    f"{DEFAULTS['policies']}) and writes {DEFAULTS['out']}/report.html.",
    )
    p.add_argument("--task", default=DEFAULTS["task"], help="reference training task (default %(default)s)")
    p.add_argument("--workload", default=DEFAULTS["workload"], metavar="W",
                   help="workload to cost (preset, trace .json or config.json; default %(default)s)")
    p.add_argument("--batch", type=positive_int, default=None, help="override the workload's batch size")
    p.add_argument("--seq-len", type=positive_int, default=None, help="override the workload's sequence length")
    p.add_argument("--hw", default=DEFAULTS["hw"], metavar="H", help="machine preset or .toml (default %(default)s)")
    p.add_argument("--policies", default=DEFAULTS["policies"],
                   help="comma list; the first is the baseline (default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=DEFAULTS["steps"], help="training steps (default %(default)s)")
    p.add_argument("--eval-every", type=positive_int, default=None, help="evaluate every N steps (default steps/5)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default %(default)s)")
    p.add_argument("--seeds", default=None, metavar="S1,S2,..",
                   help="train every policy once per seed; the summary gains mean and 95%% t interval columns")
    p.add_argument("--repeats", type=positive_int, default=None, metavar="N", help="seeds --seed .. --seed+N-1")
    p.add_argument("--fidelity", default="tile",
                   help="engine fidelity: roofline, tile or transaction (default %(default)s)")
    p.add_argument("--dram-bw-scale", default="0.25,0.5,1,2,4",
                   help="DRAM bandwidth multipliers for the speedup-vs-bandwidth plot (default %(default)s)")
    p.add_argument("--bw-fidelity", default=None,
                   help="fidelity of that bandwidth what-if (default: --fidelity; roofline is the fast choice)")
    p.add_argument("--device-hour-price", type=positive_float, default=None, metavar="PRICE",
                   help="price of one device hour: the summary adds the run's cost (simulated device hours x price)")
    p.add_argument("--price-kwh", type=positive_float, default=None, metavar="PRICE",
                   help="price of one kWh: adds the energy cost when the summary has energy (energy_j)")
    p.add_argument("--out", default=DEFAULTS["out"], metavar="DIR", help="output directory (default %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="reuse finished policies in DIR and continue interrupted training from its checkpoint")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help="policies trained in parallel (default: CPU count)")
    p.add_argument("--no-report", action="store_true", help="tables only, no plots or report.html")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or status lines")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.study import StudyConfig, run_study

    scales = []
    for item in split_list(args.dram_bw_scale):
        try:
            scales.append(float(item))
        except ValueError:
            raise ValueError(f"--dram-bw-scale: expected numbers, got {item!r}") from None
    from sim.study.seeds import parse_seeds

    seeds = parse_seeds(args.seeds, args.repeats, args.seed)
    config = StudyConfig(
        task=args.task, workload=args.workload, hw=args.hw, policies=tuple(split_list(args.policies)),
        steps=args.steps, seed=seeds[0], seeds=seeds if len(seeds) > 1 else (), fidelity=args.fidelity,
        bw_fidelity=args.bw_fidelity, batch=args.batch,
        seq_len=args.seq_len,
        dram_bw_scales=tuple(scales), eval_every=args.eval_every, device_hour_price=args.device_hour_price,
        price_kwh=args.price_kwh,
    )
    quiet = args.no_progress or args.json
    result = run_study(config, args.out, resume=args.resume, progress=not quiet, report=not args.no_report,
                       workers=args.workers, log=None if quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    if args.json:
        print_json({"out": str(args.out), "report": str(result.report_path) if result.report_path else None,
                    "summary": _records(result.summary)})
        return 0
    cols = [c for c in ("policy", "steps", "final_valid_loss", "final_bleu", "time_s", "speedup", "peak_bytes",
                        "max_batch", "energy_j", "cost", "dram_bytes", "dram_bytes_minimal", "reread_factor",
                        "traffic_reduction", "bitops_reduction") if c in result.summary]
    print(result.summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(seeds) > 1:
        _print_seed_intervals(result.summary, len(seeds))
    print("\n(time_s: simulated training time of the run; bytes: totals over the run, as the engine moves them "
          "(dram_bytes) and the minimal traffic (dram_bytes_minimal), their ratio reread_factor; ratios against "
          f"{config.policies[0]}; peak_bytes: peak DRAM of one step, worst configuration; max_batch: largest batch "
          "fitting the machine's DRAM; energy_j: joules of the run)")
    if "cost_includes" in result.summary:
        print(f"cost includes: {result.summary['cost_includes'].iloc[0]}")
    where = result.report_path or args.out
    print(f"report: {where}")
    return 0


def _records(df) -> list[dict]:
    """Rows as dicts with NaN as None, so the JSON is strict."""
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


def _print_seed_intervals(summary, n_seeds: int) -> None:
    from sim.study.seeds import format_mean_ci

    print(f"\nmean ± 95% t interval over {n_seeds} seeds (costs from each seed's own timeline):")
    cols = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean") and f"{c[:-5]}_ci95" in summary]
    for _, row in summary.iterrows():
        cells = "  ".join(f"{c} {format_mean_ci(row[f'{c}_mean'], row[f'{c}_ci95'], 4)}" for c in cols)
        print(f"{row['policy']}: {cells}")
