"""Accuracy of the reference Transformer trained under fp32, fixed16, a flat low-precision config and `dsq`.

The flat config is `dsq`'s first stage held for the whole run, so the table shows what raising precision over time
buys. Same seed and steps for every row; evaluation is in fp32 on the master weights. Runs go to --out/<task>-<policy>
(resumable: rerunning the script continues unfinished runs). Prints a Markdown table (the README's).

    python examples/accuracy_table.py --steps 1500 --workers 2
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

POLICIES = ("fp32", "fixed16", "flat", "dsq")


def _policy(name: str, steps: int) -> Any:
    from sim.policy import FixedPolicy, get_policy

    if name != "flat":
        return name
    first = get_policy("dsq").config_at(0, steps)
    return FixedPolicy(f"flat {first.label}", first)


def _one(task: str, policy: str, steps: int, seed: int, out: str) -> dict[str, Any]:
    from sim.training.train import TrainingDiverged, train

    run_dir = Path(out) / f"{task}-{policy}"
    try:
        result = train(task, _policy(policy, steps), steps=steps, seed=seed, out_dir=run_dir, resume=True,
                       progress=False)
    except TrainingDiverged as exc:
        return {"task": task, "policy": policy, "diverged": str(exc)}
    row = {"task": task, "policy": result.policy, **result.final, "wall_s": result.wall_s}
    row["precision"] = " → ".join(f"{c.label} from step {s}" for s, c in result.timeline.changes)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| task | policy | precision used (q0/q1/q2/q3) | valid loss | BLEU / bpc | exact match |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "diverged" in r:
            lines.append(f"| {r['task']} | {r['policy']} | | diverged | {r['diverged']} | |")
            continue
        metric = f"{r['bleu']:.1f}" if "bleu" in r else f"{r['bpc']:.3f}"
        em = f"{r['exact_match']:.3f}" if r.get("exact_match") is not None else "–"
        lines.append(f"| {r['task']} | {r['policy']} | {r['precision']} | {r['final_valid_loss']:.4f} | {metric} "
                     f"| {em} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="numwords,shakespeare")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="runs/accuracy")
    args = parser.parse_args(argv)
    jobs = [(t, p) for t in args.tasks.split(",") for p in POLICIES]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(_one, t, p, args.steps, args.seed, args.out) for t, p in jobs]
        rows = [f.result() for f in futures]
    print(f"{args.steps} steps, seed {args.seed}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
