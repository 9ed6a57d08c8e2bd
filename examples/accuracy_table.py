"""Accuracy of the reference Transformer trained under fp32, fixed16, a flat low-precision config, `dsq` and the
monitored `dsq-guard`, beside each run's simulated speedup over fp32 (--workload / --hw, tile fidelity).

The flat config is `dsq`'s first stage held for the whole run, so the table shows what raising precision over time
buys. Same seeds and steps for every row; evaluation is in fp32 on the master weights. With several seeds each cell
is the mean over seeds ± the half-width of its 95 % confidence interval (Student t). Runs go to
--out/<task>-<policy>-n<steps>-s<seed> (resumable: rerunning the script continues unfinished runs). Prints a
Markdown table; --write-readme also puts it in the README's `readme:accuracy` block.

    python examples/accuracy_table.py --seeds 0,1,2 --workers 2 --write-readme
    python examples/accuracy_table.py --tasks numwords-hard,shakespeare --steps numwords-hard=600,shakespeare=300 ...

Without --steps each task runs its full length (`Task.default_steps`: numwords 1500, numwords-hard 6000, shakespeare
12000; docs/policies.md says why); `--steps` is one number for every task or `task=N` pairs.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

POLICIES = ("fp32", "fixed16", "flat", "dsq", "dsq-guard")


def _policy(name: str, steps: int) -> Any:
    from sim.policy import FixedPolicy, get_policy

    if name != "flat":
        return name
    first = get_policy("dsq").config_at(0, steps)
    return FixedPolicy(f"flat {first.label}", first)


def _step_time_s(timeline: Any, workload: str, hw: str) -> float:
    """Simulated time per training step of a run's recorded timeline (extra passes included), tile fidelity."""
    from hwmodels.machine import get_machine
    from sim.study.costing import cost_timeline
    from workloads import resolve_workload

    return cost_timeline(resolve_workload(workload), get_machine(hw), timeline, "tile", minimal=False,
                         energy=False).figures["time_s"]


def _one(task: str, policy: str, steps: int, seed: int, out: str, cost_on: tuple[str, str]) -> dict[str, Any]:
    """One run (trained or resumed) as a table row; `step_time_s` is its simulated step time on `cost_on`."""
    from sim.training.train import TrainingDiverged, train

    run_dir = Path(out) / f"{task}-{policy}-n{steps}-s{seed}"
    try:
        result = train(task, _policy(policy, steps), steps=steps, seed=seed, out_dir=run_dir, resume=True,
                       progress=False)
    except TrainingDiverged as exc:
        return {"task": task, "policy": policy, "diverged": str(exc)}
    row = {"task": task, "policy": policy, "seed": seed, **result.final, "wall_s": result.wall_s,
           "step_time_s": _step_time_s(result.timeline, *cost_on)}
    row["configs"] = ["/".join((*c.points, c.activation)) for _, c in result.timeline.changes]
    row["switches"] = [s for s, _ in result.timeline.changes[1:]]
    return row


def _precision(rows: list[dict[str, Any]]) -> str:
    """The configs in order, with the step of each switch: one step when every seed switched at the same step,
    else one per seed."""
    parts = rows[0]["configs"]
    if any(r["configs"] != parts for r in rows):
        return " / ".join(sorted({" → ".join(r["configs"]) for r in rows})) + " (differs by seed)"
    out = parts[0]
    for i, config in enumerate(parts[1:]):
        steps = [r["switches"][i] for r in rows]
        at = str(steps[0]) if len(set(steps)) == 1 else " / ".join(map(str, steps)) + " by seed"
        out += f" → {config} (step {at})"
    return out


def _mean_ci(values: list[float], digits: int) -> str:
    """"m ± h" with h the half-width of the 95 % Student-t interval of the mean (just "m" for one value)."""
    from sim.study.seeds import format_mean_ci, mean_ci

    return format_mean_ci(*mean_ci(values), digits=digits)


def parse_steps(text: str | None, tasks: list[str]) -> dict[str, int]:
    """`--steps`: None for each task's full length, "1500" for every task, or "numwords-hard=6000,shakespeare=3000"
    (every task named once)."""
    if text is None:
        from sim.training.tasks import get_task

        return {t: get_task(t).default_steps for t in tasks}
    if "=" not in text:
        return {t: int(text) for t in tasks}
    steps = {k.strip(): int(v) for k, v in (part.split("=", 1) for part in text.split(",") if part.strip())}
    missing = [t for t in tasks if t not in steps]
    if missing:
        raise SystemExit(f"--steps names no length for {', '.join(missing)}")
    return steps


def table(rows: list[dict[str, Any]], compact: bool = False) -> str:
    """The Markdown table; `compact` (the README's) keeps task, policy, the metric and the speedup."""
    lines = ["| task | policy | precision used (q0/q1/q2/q3/act) | seeds | valid loss | BLEU (test) / bpc (valid) "
             "| exact match (test) | speedup |", "|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["policy"]), []).append(r)
    for (task, policy), rs in groups.items():
        ok = [r for r in rs if "diverged" not in r]
        if len(ok) < len(rs):
            lines.append(f"| {task} | {policy} | | {len(rs)} | {len(rs) - len(ok)} diverged | "
                         f"{rs[0].get('diverged', '')} | | |")
            if not ok:
                continue
        metric = (_mean_ci([r["bleu"] for r in ok], 1) if "bleu" in ok[0] else _mean_ci([r["bpc"] for r in ok], 3))
        em = (_mean_ci([r["exact_match"] for r in ok], 3) if ok[0].get("exact_match") is not None else "–")
        lines.append(f"| {task} | {policy} | {_precision(ok)} | {len(ok)} | "
                     f"{_mean_ci([r['final_valid_loss'] for r in ok], 4)} | {metric} | {em} | "
                     f"{_mean_ci([r['speedup'] for r in ok], 2)} |")
    if compact:  # columns 1, 2, 6 and 8 of each line (cells hold no "|")
        lines = ["|" + "|".join(line.split("|")[i] for i in (1, 2, 6, 8)) + "|" for line in lines]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="numwords,numwords-hard,shakespeare")
    parser.add_argument("--steps", default=None, help="N for every task, or task=N,task=N (default: full lengths)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--policies", default=",".join(POLICIES), help="a subset of the rows (runs resume by name)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workload", default="transformer-iwslt", help="workload the speedup is costed on")
    parser.add_argument("--hw", default="edge-npu", help="machine the speedup is costed on")
    parser.add_argument("--out", default="runs/accuracy")
    parser.add_argument("--write-readme", action="store_true", help="also fill the README's readme:accuracy block")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = args.tasks.split(",")
    steps = parse_steps(args.steps, tasks)
    policies = [p for p in args.policies.split(",") if p]
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise SystemExit(f"--policies: unknown {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    jobs = [(t, p, s) for t in tasks for p in policies for s in seeds]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(_one, t, p, steps[t], s, args.out, (args.workload, args.hw)) for t, p, s in jobs]
        rows = [f.result() for f in futures]
    # fp32's step time does not depend on the run's length or seed: one baseline for every speedup
    from sim.policy import get_policy

    fp32_step_s = _step_time_s(get_policy("fp32").timeline(1), args.workload, args.hw)
    for r in rows:
        if "step_time_s" in r:
            r["speedup"] = fp32_step_s / r["step_time_s"]
    text = table(rows)
    lengths = ", ".join(f"{t} {steps[t]}" for t in tasks)
    print(f"steps: {lengths}; seeds {args.seeds}\n")
    print(text)
    if args.write_readme:
        from readme_figures import ROOT, replace_block

        note = (f"Steps per run: {lengths}; seeds {args.seeds}; mean ± 95 % confidence half-width over seeds; "
                "flat = dsq's first stage for the whole run; evaluation in fp32 on the master weights; speedup = "
                f"fp32's simulated training time over the run's recorded timeline (monitoring passes included) on "
                f"{args.workload} / {args.hw}, tile fidelity.")
        replace_block("accuracy", note + " The precision each run used and its loss and exact match: "
                      "[docs/policies.md](docs/policies.md), \"The accuracy table in full\".\n\n"
                      + table(rows, compact=True))
        replace_block("accuracy", note + "\n\n" + text, ROOT / "docs" / "policies.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
