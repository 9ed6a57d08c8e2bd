"""`write_report`: one self-contained HTML file (plots embedded as base64 PNG, tables inline) from a study directory,
a sweep table, or results in memory. PNG and SVG copies of every plot go to a folder beside it."""

from __future__ import annotations

import base64
import html
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from reports import plots
from reports.files import atomic_write_text, slug, write_error
from reports.load import Results, load_results

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;
border:1px solid #eee;margin:0.3em 0}figure{margin:1em 0}figcaption{font-size:13px;color:#555}
.note{color:#555;font-size:13px}.scroll{overflow-x:auto;max-width:100%}.scroll table{margin-top:0}"""
MAX_ROWS = 200  # rows shown per table (the files hold all of them)


def _table(df: pd.DataFrame, caption: str) -> str:
    shown = df.head(MAX_ROWS)
    more = f"<p class=note>first {MAX_ROWS} of {len(df)} rows</p>" if len(df) > MAX_ROWS else ""
    body = shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)
    # wide tables (a study's summary has ~20 columns) scroll sideways instead of running past the window's edge
    return f"<h3>{html.escape(caption)}</h3><div class=scroll>{body}</div>{more}"


def _figure(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    return (f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _save(fig, plots_dir: Path, name: str) -> Path:
    return next(p for p in plots.save_figure(fig, plots_dir / name) if p.suffix == ".png")


def _study_sections(res: Results, plots_dir: Path) -> list[str]:
    t, cfg = res.tables, res.info.get("config", {})
    summary = t["summary"]
    first = summary["policy"].iloc[0] if len(summary) else "?"
    seeds = (f"seeds {', '.join(map(str, cfg['seeds']))}; curves and timelines show seed {cfg['seeds'][0]}"
             if cfg.get("seeds") else f"seed {cfg.get('seed', '?')}")
    out = [f"<p>Task <b>{html.escape(str(cfg.get('task', '?')))}</b> trained for {cfg.get('steps', '?')} steps "
           f"({seeds}) under each policy; each policy's recorded precision timeline costed on "
           f"workload <b>{html.escape(str(cfg.get('workload', '?')))}</b> on machine "
           f"<b>{html.escape(str(cfg.get('hw', '?')))}</b> (engine fidelity {cfg.get('fidelity', '?')}). "
           f"Totals are over the whole run; speedup and reductions are against <b>{html.escape(str(first))}</b> "
           f"(&gt; 1 is better).</p>"]
    # return on investment in one place: accuracy, time, memory, energy and cost first, then traffic and compute
    order = ["policy", "steps", *(c for c in summary.columns if c.startswith("final_")), "time_s", "speedup",
             "peak_bytes", "stash_bytes", "max_batch", "energy_j", "energy_reduction", "energy_kwh", "device_hours",
             "cost", "cost_includes", "dram_bytes", "dram_bytes_minimal", "reread_factor", "traffic_reduction",
             "traffic_reduction_minimal", "traffic_reduction_dsq_minimal", "arith_bitops", "bitops_reduction",
             "step_time_s",
             "compute_busy", "dram_busy", "configs", "extra_passes", "train_wall_s", "n_seeds", "speedup_mean",
             "speedup_ci95"]
    key_cols = [c for c in order if c in summary.columns]
    caption = ("Summary (time_s: simulated training time; peak_bytes: peak DRAM of one step at the policy's worst "
               "configuration; max_batch: largest batch fitting the machine's DRAM; energy, cost, bytes and bit-ops: "
               "whole run" + ("; cost includes " + str(summary["cost_includes"].iloc[0]) if "cost_includes" in summary
                              and len(summary) else "") + ")")
    out.append(_table(summary[key_cols], caption))
    figs = [
        (plots.training_curves(t["metrics"]), "training_curves", "Training curves: loss and validation BLEU"),
        (plots.precision_timeline(t["timeline"]), "precision_timeline",
         "Precision timeline: storage bits per element at q0..q3 over training"),
        (plots.traffic_breakdown(t["traffic"], per="whole run"), "dram_traffic",
         "DRAM traffic over the run, by tensor role and by DSQ point"),
    ]
    energy = [{"policy": r["policy"], "component": c[len("energy_"):-2], "energy_j": r[c]}
              for r in summary.to_dict("records") for c in summary.columns
              if c.startswith("energy_") and c.endswith("_j") and c != "energy_j" and pd.notna(r[c])]
    if energy:
        figs.append((plots.energy_breakdown(pd.DataFrame(energy), title="Energy of the whole run"),
                     "energy_breakdown", "Energy of the whole run by component (joules)"))
    if t["bandwidth"]["dram_bw_scale"].nunique() > 1:
        fid = t["bandwidth"]["fidelity"].iloc[0] if "fidelity" in t["bandwidth"] else "?"
        figs.append((plots.speedup_vs_bandwidth(t["bandwidth"]), "speedup_vs_bandwidth",
                     f"Speedup against DRAM bandwidth (each policy's timeline re-costed at scaled bandwidth, "
                     f"{fid} fidelity)"))
    if any(c.endswith("_ci95") for c in summary.columns):  # a study over several seeds
        figs.insert(0, (plots.seed_intervals(summary), "seed_intervals",
                        "Final accuracy and speedup: mean over seeds, error bars the 95 % Student-t interval"))
    if len(t["busy"]):
        figs.append((plots.busy_summary(t["busy"]), "busy_summary", "Where the simulated training time goes"))
    for fig, name, caption in figs:
        out.append(_figure(_save(fig, plots_dir, name), caption))
    for policy in summary["policy"]:
        png = plots_dir / f"roofline_{slug(policy)}.png"
        if png.is_file():
            out.append(_figure(png, f"Roofline of policy {policy} at its most-used configuration"))
    out.append(_table(t["configs"], "Per configuration (per-step figures from the engine; steps spent in each)"))
    out.append(_table(t["timeline"], "Precision timeline segments"))
    out.append(_table(t["bandwidth"], "Per-step time at scaled DRAM bandwidth"))
    out.append(_table(summary, "All summary columns"))
    return out


def _sweep_sections(res: Results, plots_dir: Path) -> list[str]:
    df = res.tables["sweep"]
    axes = [c for c in ("workload", "hw", "policy", "dram_bw_scale", "array", "sram_kb")
            if c in df and df[c].astype(str).nunique() > 1]
    out = [f"<p>{len(df)} what-if points; swept: {', '.join(axes) or 'nothing (one point)'}. Figures are per "
           f"training step, averaged over each policy's precision schedule.</p>"]
    if "dram_bw_scale" in df and df.dram_bw_scale.nunique() > 1 and df.policy.nunique() > 0:
        out.append(_figure(_save(plots.speedup_vs_bandwidth(df), plots_dir, "speedup_vs_bandwidth"),
                           "Speedup against DRAM bandwidth, per policy"))
    traffic = []
    for policy, g in df.groupby("policy", sort=False):
        for col in g.columns:
            for prefix, by in (("bytes_role_", "role"), ("bytes_point_", "point")):
                if col.startswith(prefix) and g[col].notna().any():
                    traffic.append({"policy": policy, "by": by, "key": col[len(prefix):],
                                    "dram_bytes": float(g[col].mean())})
    if traffic:
        out.append(_figure(_save(plots.traffic_breakdown(pd.DataFrame(traffic), per="per step, mean over points"),
                                 plots_dir, "dram_traffic"), "DRAM traffic per step by tensor role and DSQ point"))
    energy = [{"policy": policy, "component": c[len("energy_"):-2], "energy_j": float(g[c].mean())}
              for policy, g in df.groupby("policy", sort=False) for c in g.columns
              if c.startswith("energy_") and c.endswith("_j") and c != "energy_j" and g[c].notna().any()]
    if energy:
        out.append(_figure(_save(plots.energy_breakdown(pd.DataFrame(energy), title="Energy per step, mean over "
                                                        "points"), plots_dir, "energy_breakdown"),
                           "Energy per training step by component (joules), mean over each policy's points"))
    cols = [c for c in ("workload", "hw", "policy", "dram_bw_scale", "array", "sram_kb", "fidelity", "time_s",
                        "cycles", "dram_bytes", "min_dram_bytes", "energy_j", "arith_bitops", "compute_busy",
                        "dram_busy", "dram_bw_gbps")
            if c in df]
    out.append(_table(df[cols], "Points"))
    return out


def _short(name) -> str:
    """A workload or machine as named by the user; a file path by its file name."""
    text = str(name)
    return Path(text).name if text.endswith((".json", ".toml")) else text


def default_title(res: Results) -> str:
    """What the results are (study name, task, workload, machine), never the folder path they were read from."""
    name = f" {Path(res.source).name}" if res.source is not None else ""
    if res.kind == "study":
        cfg = res.info.get("config", {})
        if cfg.get("workload"):
            return (f"dsqsim study{name}: {cfg.get('task', '?')} → {_short(cfg['workload'])} on "
                    f"{_short(cfg.get('hw', '?'))}")
        return f"dsqsim study{name}"
    df = res.tables["sweep"]
    what = [", ".join(dict.fromkeys(_short(v) for v in df[c].astype(str))) for c in ("workload", "hw") if c in df]
    return f"dsqsim sweep{name}" + (f": {' on '.join(what)}" if what else "")


def plots_folder(res: Results, out: str | os.PathLike) -> Path:
    """Where the report's PNG/SVG plots go: a study's own `plots/` when the report is written into the study
    directory, else `<out stem>_plots/` beside the report."""
    out = Path(out)
    if res.kind == "study" and res.source is not None and out.parent.resolve() == Path(res.source).resolve():
        return Path(res.source) / "plots"
    return out.with_name(out.stem + "_plots")


def write_report(source, out: str | os.PathLike = "report.html", title: str | None = None) -> Path:
    """Write one self-contained HTML report of `source` (see `reports.load.load_results`) to `out`; the plots also
    go, as PNG and SVG, to `plots/` beside a study's tables or to `<out stem>_plots/` beside the report."""
    res = load_results(source)
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"report file must end in .html, got {str(out)!r}")
    if not out.parent.is_dir():
        raise OSError(f"report folder {str(out.parent)!r} does not exist")
    plots_dir = plots_folder(res, out)
    try:
        plots_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise write_error(out, exc) from None
    sections = _study_sections(res, plots_dir) if res.kind == "study" else _sweep_sections(res, plots_dir)
    title = title or default_title(res)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
           f"<p class=note>Written by dsqsim on {stamp}. Plots as PNG/SVG in {html.escape(str(plots_dir))}.</p>"
           + "\n".join(sections) + "</body></html>\n")
    return atomic_write_text(out, doc)
