"""Study and sweep plots (headless Agg), each a function of result DataFrames returning a matplotlib Figure.

Frame shapes (as written by `sim.study` / `sim.sweep`):
- sweep: one row per point with `policy`, `dram_bw_scale`, `time_s` (+ `workload`, `hw`, `array`, `sram_kb`)
- traffic: long, `policy`, `by` ("role" | "point"), `key`, `dram_bytes`
- timeline: `policy`, `step_start`, `step_end`, optional `label`, `q0_bits`..`q3_bits` (storage bits per element)
- metrics: `policy`, `step`, `train_loss`, `valid_loss`, optional `bleu`
- busy: long, `policy`, `by` ("unit" | "overlap" | "phase"), `key`, `busy_s`
- energy: one row per policy with `policy` and `energy_by_component` (dict, joules: sim.energy.COMPONENTS), as
  `sim.compare.compare` returns it; or long, `policy`, `component`, `energy_j`
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reports.files import plot_paths, save_figure  # noqa: E402,F401  (save_figure: part of this API)

POINT_COLOURS = {"q0": "tab:blue", "q1": "tab:red", "q2": "tab:orange", "q3": "tab:green"}
POINT_STYLES = (("-", 3.4), ("--", 2.6), ("-.", 2.0), (":", 1.6))
GROUP_AXES = ("workload", "hw", "array", "sram_kb")


def _bytes_unit(max_bytes: float) -> tuple[float, str]:
    for scale, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if max_bytes >= scale:
            return scale, unit
    return 1.0, "bytes"


def _policy_order(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["policy"]))


def speedup_vs_bandwidth(sweep: pd.DataFrame, baseline: str | None = None) -> Figure:
    """Speedup of each policy over `baseline` (default: the first policy) against the DRAM bandwidth scale.

    One panel per (workload, hw, array, sram_kb) group present; speedups compare points equal in everything but policy.
    """
    policies = _policy_order(sweep)
    baseline = baseline or policies[0]
    if baseline not in policies:
        raise ValueError(f"baseline policy {baseline!r} is not in the results; choose from {', '.join(policies)}")
    group_cols = [c for c in GROUP_AXES if c in sweep and sweep[c].astype(str).nunique() > 1]
    groups = list(sweep.groupby(group_cols, dropna=False, sort=False)) if group_cols else [((), sweep)]
    n = len(groups)
    fig, axes = plt.subplots(1, n, figsize=(min(max(4.5 * n, 6.5), 16), 4.4), dpi=120, squeeze=False, sharey=True)
    for ax, (gkey, g) in zip(axes[0], groups, strict=True):
        base = g[g.policy == baseline].groupby("dram_bw_scale")["time_s"].mean()
        for policy in policies:
            t = g[g.policy == policy].groupby("dram_bw_scale")["time_s"].mean()
            common = t.index.intersection(base.index)
            ax.plot(common, base[common] / t[common], "o-", label=policy, lw=1.8, ms=5)
        ax.set_xscale("log", base=2)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("DRAM bandwidth scale [x the machine's peak]")
        gkey = gkey if isinstance(gkey, tuple) else (gkey,)
        where = " on ".join(str(g[c].iloc[0]) for c in ("workload", "hw") if c in g and g[c].nunique() == 1)
        ax.set_title(", ".join(f"{c}={v}" for c, v in zip(group_cols, gkey, strict=True)) or where, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel(f"speedup over {baseline} [x, simulated step time]")
    axes[0][-1].legend(fontsize=8, title="policy", title_fontsize=8, loc="best")
    fig.suptitle("Speedup against DRAM bandwidth (low bandwidth = memory-bound)", fontsize=11)
    fig.tight_layout()
    return fig


def traffic_breakdown(traffic: pd.DataFrame, per: str = "total") -> Figure:
    """Stacked bars of DRAM traffic per policy: by tensor role (left) and by DSQ point (right)."""
    policies = _policy_order(traffic)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), dpi=120)
    scale, unit = _bytes_unit(traffic.groupby(["policy", "by"])["dram_bytes"].sum().max())
    for ax, by in zip(axes, ("role", "point"), strict=True):
        sub = traffic[traffic.by == by]
        table = sub.pivot_table(index="policy", columns="key", values="dram_bytes", aggfunc="sum", fill_value=0.0)
        table = table.reindex(policies).fillna(0.0) / scale
        keys = list(dict.fromkeys(sub.key))  # first-appearance order (role order), DSQ points q0..q3 first
        keys = sorted(keys, key=lambda k: (k not in POINT_COLOURS, str(k))) if by == "point" else keys
        bottom = np.zeros(len(table))
        cmap = plt.get_cmap("tab10")
        for i, key in enumerate(keys):
            colour = POINT_COLOURS.get(key, cmap(i % 10)) if by == "point" else cmap(i % 10)
            ax.bar(table.index, table[key], bottom=bottom, label=key, color=colour, edgecolor="white", lw=0.5)
            bottom += table[key].to_numpy()
        for x, total in enumerate(bottom):
            ax.annotate(f"{total:.3g}", (x, total), ha="center", va="bottom", fontsize=8)
        ax.set_ylabel(f"DRAM traffic [{unit}, {per}]")
        ax.set_xlabel("policy")
        ax.set_title(f"by {'tensor role' if by == 'role' else 'DSQ point'}", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
        ax.set_ylim(0, max(bottom.max(), 1e-12) * 1.15)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def precision_timeline(timeline: pd.DataFrame) -> Figure:
    """Storage bits per element at q0..q3 against the training step, one panel per policy."""
    policies = _policy_order(timeline)
    fig, axes = plt.subplots(len(policies), 1, figsize=(9, 1.9 + 1.6 * len(policies)), dpi=120,
                             sharex=True, squeeze=False)
    top = max(float(timeline[[f"{q}_bits" for q in POINT_COLOURS]].max().max()), 1.0)
    for ax, policy in zip(axes[:, 0], policies, strict=True):
        seg = timeline[timeline.policy == policy].sort_values("step_start")
        for (q, colour), (style, lw) in zip(POINT_COLOURS.items(), POINT_STYLES, strict=True):
            xs = list(seg.step_start) + [seg.step_end.iloc[-1]]
            ys = list(seg[f"{q}_bits"]) + [seg[f"{q}_bits"].iloc[-1]]
            # Line widths and dashes differ so coinciding points stay visible without distorting the values.
            ax.step(xs, ys, where="post", color=colour, ls=style, lw=lw, label=q)
        if "label" in seg:
            for start, label in zip(seg.step_start, seg.label.fillna(""), strict=True):
                ax.annotate(str(label), (start, top * 1.02), fontsize=7, va="bottom", ha="left", color="0.25")
        ax.set_ylabel("bits / element")
        ax.set_ylim(0, top * 1.22)
        ax.set_title(policy, fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(ncol=4, fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
    axes[-1, 0].set_xlabel("training step")
    fig.suptitle("Precision over training (storage bits per element at each DSQ point)", fontsize=11)
    fig.tight_layout()
    return fig


def training_curves(metrics: pd.DataFrame) -> Figure:
    """Loss (train and validation) and, when recorded, BLEU against the training step, one line per policy."""
    has_bleu = "bleu" in metrics and metrics["bleu"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_bleu else 1, figsize=(11 if has_bleu else 6.5, 4.2), dpi=120,
                             squeeze=False)
    cmap = plt.get_cmap("tab10")
    for i, policy in enumerate(_policy_order(metrics)):
        m = metrics[metrics.policy == policy].sort_values("step")
        colour = cmap(i % 10)
        if "train_loss" in m and m.train_loss.notna().any():
            t = m[m.train_loss.notna()]
            axes[0, 0].plot(t.step, t.train_loss, color=colour, lw=0.8, alpha=0.45)
        if "valid_loss" in m and m.valid_loss.notna().any():
            v = m[m.valid_loss.notna()]
            axes[0, 0].plot(v.step, v.valid_loss, "o-", color=colour, lw=1.8, ms=3.5, label=policy)
        if has_bleu and m.bleu.notna().any():
            b = m[m.bleu.notna()]
            axes[0, 1].plot(b.step, b.bleu, "o-", color=colour, lw=1.8, ms=3.5, label=policy)
    axes[0, 0].set_xlabel("training step")
    axes[0, 0].set_ylabel("cross-entropy loss [nats/token]")
    axes[0, 0].set_title("loss (thin: train, markers: validation)", fontsize=10)
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].grid(True, alpha=0.3)
    if has_bleu:
        axes[0, 1].set_xlabel("training step")
        axes[0, 1].set_ylabel("BLEU [0-100]")
        axes[0, 1].set_title("validation BLEU", fontsize=10)
        axes[0, 1].legend(fontsize=8)
        axes[0, 1].grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def busy_summary(busy: pd.DataFrame) -> Figure:
    """Where the simulated training time goes, per policy: busy time by unit, the split of the run into compute/DRAM
    overlap, compute only, DRAM only and idle (stacked: these partition the time), and the span of each phase
    (first op start to last op end). Units and phase spans overlap in time, so those bars stand side by side."""
    policies = _policy_order(busy)
    titles = {"unit": "busy time by unit", "overlap": "compute vs DRAM (stacked, sums to the run)",
              "phase": "span by phase (phases may overlap)"}
    bys = [b for b in titles if (busy.by == b).any()]
    fig, axes = plt.subplots(1, len(bys), figsize=(4.8 * len(bys), 1.8 + 0.55 * len(policies)), dpi=120,
                             squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, by in zip(axes[0], bys, strict=True):
        table = busy[busy.by == by].pivot_table(index="policy", columns="key", values="busy_s", aggfunc="sum",
                                                fill_value=0.0).reindex(policies).fillna(0.0)
        table = table[list(dict.fromkeys(busy.key[busy.by == by]))]  # first-appearance order (phase order)
        if by != "overlap":
            h = 0.8 / max(len(table.columns), 1)
            for i, key in enumerate(table.columns):
                ax.barh(np.arange(len(table)) + (i - (len(table.columns) - 1) / 2) * h, table[key], height=h,
                        label=key, color=cmap(i % 10))
        else:
            left = np.zeros(len(table))
            for i, key in enumerate(table.columns):
                ax.barh(np.arange(len(table)), table[key], left=left, label=key, color=cmap(i % 10))
                left += table[key].to_numpy()
        ax.set_yticks(np.arange(len(table)), table.index)
        ax.invert_yaxis()
        ax.set_xlabel("simulated time [s]")
        ax.set_title(titles[by], fontsize=10)
        ax.legend(fontsize=7, loc="best")
        ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


ENERGY_COLOURS = {"array": "tab:blue", "vector": "tab:cyan", "sram": "tab:green", "dram_act": "tab:red",
                  "dram_rw": "tab:orange", "dram_refresh": "tab:purple", "dram_background": "tab:gray"}


def energy_breakdown(energy: pd.DataFrame, title: str = "") -> Figure:
    """Stacked bars of one training step's energy per policy, in joules, by component (sim.energy.COMPONENTS)."""
    if "energy_by_component" in energy:
        long = pd.DataFrame([{"policy": r["policy"], "component": k, "energy_j": v}
                             for r in energy.to_dict("records") for k, v in r["energy_by_component"].items()])
    else:
        long = energy
    if long.empty or not {"policy", "component", "energy_j"} <= set(long.columns):
        raise ValueError("energy_breakdown needs policy and energy_by_component (or component, energy_j) columns")
    policies = _policy_order(long)
    table = long.pivot_table(index="policy", columns="component", values="energy_j", aggfunc="sum", fill_value=0.0)
    table = table.reindex(policies).fillna(0.0)
    comps = [c for c in ENERGY_COLOURS if c in table.columns] + [c for c in table.columns if c not in ENERGY_COLOURS]
    peak = float(table.sum(axis=1).max())
    scale, unit = next(((f, u) for f, u in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ")) if peak >= f), (1e-9, "nJ"))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(policies) + 3.5), 4.4), dpi=120)
    bottom = np.zeros(len(table))
    for comp in comps:
        values = table[comp].to_numpy() / scale
        ax.bar(table.index, values, bottom=bottom, label=comp, color=ENERGY_COLOURS.get(comp), edgecolor="white",
               lw=0.5)
        bottom += values
    for x, total in enumerate(bottom):
        ax.annotate(f"{total:.3g}", (x, total), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(f"energy per training step [{unit}]")
    ax.set_xlabel("policy")
    ax.set_title(title or "Energy per step by component", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_ylim(0, max(bottom.max(), 1e-12) * 1.15)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


# The panels of `seed_intervals`, in order (the summary carries more interval columns; the table shows them all).
_CI_LABELS = {"final_bleu": "test BLEU [0-100]", "final_bpc": "validation bits per character",
              "final_valid_loss": "validation loss [nats/token]", "speedup": "simulated speedup [x]",
              "traffic_reduction": "DRAM traffic reduction [x]"}


def seed_intervals(summary: pd.DataFrame) -> Figure:
    """Mean over seeds with its 95 % Student-t interval as error bars, one panel per figure that has
    `<col>_mean`/`<col>_ci95` columns (accuracy first, then speedup), one bar per policy."""
    cols = [c for c in _CI_LABELS if f"{c}_mean" in summary and f"{c}_ci95" in summary]
    if not cols:
        raise ValueError("no <figure>_mean/<figure>_ci95 columns: run the study with several seeds")
    fig, axes = plt.subplots(1, len(cols), figsize=(3.6 * len(cols), 3.8), dpi=120, squeeze=False)
    cmap = plt.get_cmap("tab10")
    policies = list(summary["policy"])
    n = int(summary["n_seeds"].max()) if "n_seeds" in summary else 0
    for ax, col in zip(axes[0], cols, strict=True):
        err = summary[f"{col}_ci95"].fillna(0.0)
        ax.bar(range(len(policies)), summary[f"{col}_mean"], yerr=err, capsize=4,
               color=[cmap(i % 10) for i in range(len(policies))], edgecolor="black", lw=0.5)
        ax.set_xticks(range(len(policies)), policies, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(_CI_LABELS[col])
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"mean over {n} seeds, error bars: 95 % Student-t interval", fontsize=10)
    fig.tight_layout()
    return fig


def pareto_front(trials: pd.DataFrame, metric: str, metric_label: str, cost: str, cost_label: str,
                 baseline_cost: float | None = None) -> Figure:
    """Accuracy (`metric`) against simulated cost (`cost`) of every trial; the Pareto-optimal trials (`pareto`
    column true) joined by a step line; `baseline_cost` (fp32's cost) drawn as a vertical line when given."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=120)
    done = trials[trials[metric].notna() & trials[cost].notna()]
    rest = done[~done["pareto"].astype(bool)]
    front = done[done["pareto"].astype(bool)].sort_values(cost)
    ax.scatter(rest[cost], rest[metric], s=22, color="tab:gray", alpha=0.7, label="trial")
    ax.step(front[cost], front[metric], where="post", color="tab:red", lw=1.2, alpha=0.8)
    ax.scatter(front[cost], front[metric], s=40, color="tab:red", zorder=3, label="Pareto front")
    for _, row in front.iterrows():
        ax.annotate(str(row.get("trial", "")), (row[cost], row[metric]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    if baseline_cost is not None:
        ax.axvline(baseline_cost, color="black", ls="--", lw=1, label="fp32 cost")
    ax.set_xlabel(cost_label)
    ax.set_ylabel(metric_label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
