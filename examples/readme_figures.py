"""Make the README's figures (docs/img/*.png) and fill its generated blocks from real runs.

    python examples/readme_figures.py [--out runs/readme] [--only study,sweep,roofline]

- study: the README's main command (`dsqsim study` on its built-in defaults) into OUT/study; its summary table goes
  into the README block `readme:study`, its training curves and precision timeline into docs/img.
- sweep: job 1's sweep (transformer-iwslt on edge-npu and cloud-npu, fixed16 and dsq, DRAM bandwidth x0.25..x4);
  the speedup figure and a one-line reading go into `readme:sweep`.
- roofline: job 2's roofline plot (gpt2-small on cloud-npu under dsq's first configuration).
Runs resume from OUT; the README is rewritten only between its `<!-- readme:NAME -->` markers.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
DPI = 72  # small PNGs: the README shows them at page width


def replace_block(name: str, body: str, readme: Path = ROOT / "README.md") -> None:
    """Rewrite the text between `<!-- readme:NAME -->` and `<!-- /readme:NAME -->` in the README (or `readme`)."""
    text = readme.read_text()
    pattern = re.compile(rf"(<!-- readme:{name} -->\n).*?(\n<!-- /readme:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme.name} has no block readme:{name}")
    readme.write_text(pattern.sub(lambda m: m.group(1) + body.strip() + m.group(2), text))


def _save(fig, name: str) -> None:
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG / f"{name}.png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def _gb(x: float) -> str:
    return f"{x / 1e9:.1f} GB" if x < 1e12 else f"{x / 1e12:.2f} TB"


SEEDS = (0, 1, 2)


def _pm(row: dict, col: str, digits: int) -> str:
    """`mean ± half-width` over seeds (just the mean when the seeds agree)."""
    mean, half = row[f"{col}_mean"], row[f"{col}_ci95"]
    return f"{mean:.{digits}f}" if not half > 0.5 * 10 ** -digits else f"{mean:.{digits}f} ± {half:.{digits}f}"


def _study_table(single, seeded) -> list[str]:
    """The README's study table: accuracy and ratios over seeds (`seeded`), totals and memory of the main command's
    run (`single`, seed 0)."""
    metric = "final_bleu" if "final_bleu_mean" in seeded else "final_bpc"
    name = "BLEU" if metric == "final_bleu" else "bpc"
    lines = [f"| policy | valid loss | {name} | simulated time | speedup | DRAM traffic, tiled / minimal (re-read) | "
             "traffic reduction, tiled / minimal / q0..q3 | bit-op reduction | energy (reduction) | peak memory |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    by_policy = {r["policy"]: r for r in seeded.to_dict("records")}
    for r in single.to_dict("records"):
        m = by_policy[r["policy"]]
        e = r.get("energy_j")
        energy = f"{e:.0f} J ({r['energy_reduction']:.2f})" if e is not None and e == e else "–"
        lines.append(
            f"| {r['policy']} | {_pm(m, 'final_valid_loss', 3)} | {_pm(m, metric, 1)} | {r['time_s']:.1f} s | "
            f"{_pm(m, 'speedup', 2)} | {_gb(r['dram_bytes'])} / {_gb(r['dram_bytes_minimal'])} "
            f"({r['reread_factor']:.2f}) | {_pm(m, 'traffic_reduction', 2)} / {r['traffic_reduction_minimal']:.2f} / "
            f"{r['traffic_reduction_dsq_minimal']:.2f} | {_pm(m, 'bitops_reduction', 1)} | {energy} | "
            f"{r['peak_bytes'] / 1e9:.2f} GB |")
    return lines


def study(out: Path) -> None:
    import resource

    from reports import plots
    from sim.study import StudyConfig, run_study

    def cpu_s() -> float:  # this process and every worker it has waited for
        return sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                   for f in ("ru_utime", "ru_stime"))

    cpu0 = cpu_s()
    wall0 = time.perf_counter()
    shutil.rmtree(out / "study", ignore_errors=True)  # a fresh run: its time is part of the block
    res = run_study(StudyConfig(), out_dir=out / "study", log=lambda s: print(s, file=sys.stderr))
    wall, cpu = time.perf_counter() - wall0, cpu_s() - cpu0
    seeded = run_study(StudyConfig(seeds=SEEDS), out_dir=out / "study-seeds", resume=True,
                       log=lambda s: print(s, file=sys.stderr))
    lines = _study_table(res.summary, seeded.summary)
    s, cfg, bw = res.summary, res.config, res.bandwidth
    first = s["policy"].iloc[0]
    span = ""
    if bw["dram_bw_scale"].nunique() > 1:
        piv = bw.pivot_table(index="dram_bw_scale", columns="policy", values="time_s")
        last = s["policy"].iloc[-1]
        lo, hi = piv.index.min(), piv.index.max()
        span = (f" With DRAM bandwidth scaled x{lo:g} to x{hi:g}, {last}'s speedup over {first} goes from "
                f"{piv.loc[lo, first] / piv.loc[lo, last]:.2f} to {piv.loc[hi, first] / piv.loc[hi, last]:.2f}.")
    seeds = ",".join(map(str, SEEDS))
    body = (f"`dsqsim study`: task {cfg.task}, {cfg.steps} steps; costed on {cfg.workload} on {cfg.hw} at "
            f"{cfg.fidelity} fidelity; ratios against {first} (> 1 is better). Trained with seeds {seeds} "
            f"(`dsqsim study --seeds {seeds}`): mean ± 95 % confidence half-width over seeds where the seeds differ; "
            f"time, traffic, energy and memory are seed {cfg.seed}'s run (the same for every seed when a policy's "
            f"switches are scheduled, not loss-triggered).\n\n" + "\n".join(lines)
            + f"\n\nThe main command itself (seed {cfg.seed} only) took {wall:.0f} s wall and {cpu:.0f} CPU-s (all "
            f"processes) on the 2-core machine that made it.{span} Made by `python examples/readme_figures.py`.")
    replace_block("study", body)
    fig = plots.training_curves(res.metrics)
    _save(fig, "training_curves")
    _save(plots.precision_timeline(res.timeline), "precision_timeline")


def sweep(out: Path) -> None:
    from reports.plots import speedup_vs_bandwidth
    from sim.sweep import run_sweep

    scales = [0.25, 0.5, 1, 2, 4]
    df = run_sweep("transformer-iwslt", ["edge-npu", "cloud-npu"], ["fixed16", "dsq"], scales,
                   out=str(out / "bw.parquet"), resume=True, workers=2)
    _save(speedup_vs_bandwidth(df), "speedup_vs_bandwidth")
    parts = []
    for hw, g in df.groupby("hw", sort=False):
        t = g.pivot_table(index="dram_bw_scale", columns="policy", values="time_s")
        sp = t["fixed16"] / t["dsq"]
        parts.append(f"on {hw} dsq is {sp.loc[min(scales)]:.2f}x faster than fixed16 at x{min(scales):g} "
                     f"bandwidth and {sp.loc[max(scales)]:.2f}x at x{max(scales):g}")
    replace_block("sweep", "Per training step, averaged over each policy's schedule: " + "; ".join(parts) +
                  ". When memory-bound the speedup is the traffic reduction; when compute-bound, the narrower "
                  "multiplies. Made by `python examples/readme_figures.py`.")


def roofline_plot() -> None:
    from hwmodels.machine import get_machine
    from reports.roofline_plot import roofline_figure
    from sim.policy import get_policy
    from sim.roofline import roofline
    from workloads import build_trace

    config = get_policy("dsq").config_at(0, 1000)
    r = roofline(build_trace("gpt2-small"), get_machine("cloud-npu"), config)
    _save(roofline_figure(r), "roofline")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/readme", help="where the runs are kept (resumable)")
    p.add_argument("--only", default="study,sweep,roofline")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if "roofline" in only:
        roofline_plot()
    if "sweep" in only:
        sweep(out)
    if "study" in only:
        study(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
