"""`dsqsim tune`: search time-adaptive DSQ policies for the Pareto front of accuracy against simulated cost."""

from __future__ import annotations

import argparse
import os
import sys

from sim.commands.common import add_json_arg, positive_int, print_json, split_list


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune", help="search DSQ policies (formats per point, stages, switch points) for accuracy vs simulated cost",
        description="Multi-objective policy search (Optuna NSGA-II): each trial trains the reference model on --task "
                    "under a sampled monotone DSQ policy and costs its recorded precision timeline on --workload / "
                    "--hw. Writes DIR/trials.csv, DIR/pareto.csv, DIR/pareto.png and DIR/policies/*.toml "
                    "(each usable as --policy FILE). Trials are stored in --storage, so a search resumes.",
    )
    p.add_argument("--task", required=True, help="reference training task (numwords, numwords-hard, shakespeare)")
    p.add_argument("--workload", required=True, metavar="W", help="workload to cost (preset, trace .json, config)")
    p.add_argument("--hw", required=True, metavar="H", help="machine preset or .toml")
    p.add_argument("--trials", type=positive_int, required=True, help="trials in the search (finished + pruned)")
    p.add_argument("--steps", type=positive_int, required=True, help="training steps per trial")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler and of every trial's training")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--objective", default="time", choices=("time", "energy", "dram"),
                   help="cost to minimise beside accuracy (default %(default)s)")
    p.add_argument("--families", default="bfp",
                   help="format families to search: bfp, mx, fp, mxbf16 (mx plus a bf16 top rung; comma list)")
    p.add_argument("--roundings", default="nearest",
                   help="roundings a DSQ point may use: nearest, stochastic (the _sr formats); both: each point picks "
                        "one for the run (default %(default)s)")
    p.add_argument("--max-stages", type=positive_int, default=3,
                   help="most stages a policy may have (default %(default)s)")
    p.add_argument("--around", default=None, metavar="POLICY",
                   help="search the neighbourhood of this fixed or scheduled policy (preset or file) instead: its "
                        "stages, each point -2..+1 rungs of its format family, switches shifted by up to 0.2; the "
                        "policy itself is the first trial (--families, --roundings and --max-stages do not apply; each "
                        "point keeps the policy's rounding)")
    p.add_argument("--prune-margin", type=float, default=0.1, metavar="M",
                   help="stop a trial whose validation loss is more than M (relative) above that of a finished trial "
                        "that costs no more, at the same evaluation (default %(default)s)")
    p.add_argument("--max-loss-gap", type=float, default=None, metavar="G",
                   help="also stop any trial whose validation loss is more than G (relative: 0.2 = 20 %%) above the "
                        "best finished trial's at the same evaluation, however cheap (default: off)")
    p.add_argument("--fidelity", default="tile", help="engine fidelity of the costing (default %(default)s)")
    p.add_argument("--eval-every", type=positive_int, default=None, help="steps between evaluations (default steps/4)")
    p.add_argument("--resume", action="store_true", help="continue the search stored in DIR")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="parallel trial processes sharing the storage (default %(default)s: a reproducible order)")
    p.add_argument("--storage", default=None, metavar="URL", help="Optuna storage (default sqlite:///DIR/study.db)")
    p.add_argument("--no-progress", action="store_true", help="no status lines")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.policy import get_policy
    from sim.tune import TuneConfig, run_tune

    around = get_policy(args.around).to_dict() if args.around else None
    cfg = TuneConfig(task=args.task, workload=args.workload, hw=args.hw, trials=args.trials, steps=args.steps,
                     seed=args.seed, objective=args.objective, families=tuple(split_list(args.families)),
                     roundings=tuple(split_list(args.roundings)),
                     max_stages=args.max_stages, fidelity=args.fidelity, eval_every=args.eval_every,
                     around=around, prune_margin=args.prune_margin, max_loss_gap=args.max_loss_gap)
    quiet = args.no_progress or args.json
    workers = min(args.workers, os.cpu_count() or 1) if args.workers > 1 else 1
    result = run_tune(cfg, args.out, resume=args.resume, workers=workers, storage=args.storage,
                      log=None if quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    if args.json:
        print_json(result.summary())
        return 0
    cols = [c for c in ("trial", "state", "kind", "stages", "metric", "speedup", "dram_reduction", "bitops_reduction",
                        "objective_value", "policy_file") if c in result.pareto]
    metric = result.trials["metric_name"].iloc[0] if len(result.trials) else "-"
    print(f"{len(result.trials)} trial(s); Pareto front ({metric} against {cfg.objective}):")
    print(result.pareto[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"tables and plot in {args.out} (trials.csv, pareto.csv, pareto.png, policies/)")
    return 0
