"""`dsqsim train`: train the NumPy reference Transformer on a task under a precision policy."""

from __future__ import annotations

import argparse
import sys

from sim.commands.common import add_json_arg, positive_float, positive_int, print_json

TASKS = ("numwords", "shakespeare")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train the reference Transformer under a precision policy (real quantization)",
        description="Train the NumPy reference Transformer with quantization at q0..q3 as the policy says. Writes "
                    "metrics.csv (one row per evaluation), checkpoint.npz and timeline.json into --out.",
    )
    p.add_argument("--task", required=True, choices=TASKS, help="numwords (digits -> words) or shakespeare (char LM)")
    p.add_argument("--policy", default="fp32", metavar="P",
                   help="a format name (fixed policy), a preset (dsq, dsq-loss, cyclic) or a .toml/.json policy file")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (default: the task's)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and dropout")
    p.add_argument("--eval-every", type=positive_int, default=None, help="steps between evaluations/checkpoints")
    p.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (default: the task's)")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim.training.train import TrainingDiverged, train

    try:
        result = train(args.task, args.policy, steps=args.steps, seed=args.seed, out_dir=args.out,
                       resume=args.resume, eval_every=args.eval_every, lr=args.lr, progress=not args.no_progress)
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
