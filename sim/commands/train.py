"""`dsqsim train`: train the NumPy reference Transformer on a task under a precision policy."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from sim.commands.common import add_json_arg, positive_float, positive_int, print_json

TASKS = ("numwords", "numwords-hard", "shakespeare")


def _seed(text: str) -> int:
    """argparse type of --seed: checked before the run directory is created, so bad input leaves nothing behind."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train the reference Transformer under a precision policy (real quantization)",
        description="Train the NumPy reference Transformer with quantization at q0..q3 as the policy says. Writes "
                    "metrics.csv (one row per evaluation), checkpoint.npz and timeline.json into --out.",
    )
    p.add_argument("--task", required=True, choices=TASKS,
                   help="numwords (digits -> words), numwords-hard (up to 12 digits, small model) or shakespeare")
    p.add_argument("--policy", default="fp32", metavar="P",
                   help="a format name (fixed policy), a preset (dsq, dsq-loss, cyclic) or a .toml/.json policy file")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (default: the task's)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of initialisation, data order and dropout (>= 0)")
    p.add_argument("--seeds", default=None, metavar="S1,S2,..",
                   help="train once per seed (runs in DIR/seed<k>/) and report the mean and a 95%% t interval")
    p.add_argument("--repeats", type=positive_int, default=None, metavar="N",
                   help="like --seeds with seeds --seed .. --seed+N-1")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help="seeds trained in parallel processes (default: CPU count)")
    p.add_argument("--eval-every", type=positive_int, default=None, help="steps between evaluations/checkpoints")
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (default: the task's)")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in DIR from its last checkpoint (a DIR without one starts a new run, with a "
                        "note on stderr)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.study.seeds import parse_seeds
    from sim.training.checkpoint import CHECKPOINT_NAME
    from sim.training.train import TrainingDiverged

    seeds = parse_seeds(args.seeds, args.repeats, args.seed)
    if any(s < 0 for s in seeds):
        raise ValueError(f"--seeds: seeds must be non-negative integers, got {','.join(map(str, seeds))}")
    if len(seeds) > 1 or args.seeds is not None or args.repeats is not None:
        return _run_seeds(args, seeds)
    if args.resume and not (Path(args.out) / CHECKPOINT_NAME).is_file():
        # Not an error: a study or script may resume runs that never started. But say it, so a mistyped --out
        # does not silently train from scratch.
        print(f"dsqsim: note: --resume: no checkpoint in {args.out}; starting a new run", file=sys.stderr)
    try:
        result = _train_one(args, args.seed, args.out, progress=not args.no_progress)
    except TrainingDiverged as exc:
        print(f"dsqsim: error: {exc}", file=sys.stderr)
        return 3
    summary = result.summary()
    if args.json:
        print_json(summary)
    else:
        metric = "bpc" if "bpc" in summary else "bleu"
        em = "" if summary["exact_match"] is None else f"  exact match {summary['exact_match']:.3f}"
        print(f"{summary['task']} / {summary['policy']}: {summary['steps']} steps, valid loss "
              f"{summary['final_valid_loss']:.4f}, {metric} {summary[metric]:.3f}{em}  "
              f"({summary['wall_s']:.1f} s, {summary['steps_per_s']:.2f} steps/s); results in {args.out}")
    return 0


def _train_one(args: argparse.Namespace, seed: int, out: str | Path, progress: bool) -> Any:
    from sim.training.train import train

    return train(args.task, args.policy, steps=args.steps, seed=seed, out_dir=out, resume=args.resume,
                 eval_every=args.eval_every, lr=args.lr, progress=progress)


def _seed_summary(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One seed's summary (a picklable dict), or its divergence as `diverged`."""
    from sim.training.train import TrainingDiverged

    try:
        return {"seed": seed, **_train_one(args, seed, Path(args.out) / f"seed{seed}", progress=False).summary()}
    except TrainingDiverged as exc:
        return {"seed": seed, "diverged": str(exc)}


def _run_seeds(args: argparse.Namespace, seeds: tuple[int, ...]) -> int:
    """Train every seed (`--workers` at a time, in processes) and report the mean and 95 % interval over seeds."""
    import pandas as pd

    from sim.study.seeds import aggregate_seeds, format_mean_ci

    get_policy_checked(args.policy)  # a bad policy fails once, before any process starts
    workers = min(args.workers, len(seeds))
    if workers <= 1:
        rows = [_seed_summary(args, s) for s in seeds]
    else:
        from concurrent.futures import ProcessPoolExecutor

        from sim.sweep.executors import process_context

        with ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) as pool:
            rows = list(pool.map(_seed_summary, [args] * len(seeds), seeds))
    frame = pd.DataFrame(rows)
    ok = frame[frame["diverged"].isna()] if "diverged" in frame else frame
    metrics = [c for c in ("final_valid_loss", "bleu", "exact_match", "bpc") if c in ok and ok[c].notna().any()]
    agg = aggregate_seeds(ok.assign(policy=args.policy), "policy", metrics) if len(ok) else pd.DataFrame()
    diverged = frame[frame["diverged"].notna()] if "diverged" in frame else frame.iloc[:0]
    if args.json:
        stats = agg.iloc[0].to_dict() if len(agg) else {}
        print_json({"task": args.task, "policy": args.policy, "seeds": list(seeds), "runs": rows,
                    "mean": {m: stats.get(f"{m}_mean") for m in metrics},
                    "ci95": {m: stats.get(f"{m}_ci95") for m in metrics}})
    else:
        cols = [c for c in ("seed", "steps", *metrics, "wall_s") if c in ok]
        print(ok[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        for m in metrics:
            print(f"{m}: {format_mean_ci(agg.iloc[0][f'{m}_mean'], agg.iloc[0][f'{m}_ci95'], 4)} "
                  f"(mean ± 95% t interval over {len(ok)} seed(s))")
        for _, row in diverged.iterrows():
            print(f"seed {row['seed']}: {row['diverged']}", file=sys.stderr)
        print(f"results in {args.out}/seed<k>/")
    return 3 if len(diverged) else 0


def get_policy_checked(name: str) -> None:
    from sim.policy import get_policy

    get_policy(name)
