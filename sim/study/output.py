"""Write a study to a directory: tables (CSV and Parquet), `study.json`, roofline plots, and `report.html`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from sim.study.run import SCHEMA_VERSION, TABLES, StudyResult
from sim.sweep.store import atomic_write_bytes, atomic_write_frame


def write_study(result: StudyResult, out: Path, trace, machine, report: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        df = getattr(result, name)
        atomic_write_frame(df, out / f"{name}.csv")
        atomic_write_frame(df, out / f"{name}.parquet")
    info = {"schema_version": SCHEMA_VERSION, "kind": "study", "config": asdict(result.config),
            "machine": str(machine.name), "workload": str(trace.workload), "tables": list(TABLES)}
    atomic_write_bytes(out / "study.json", json.dumps(info, indent=1).encode())
    result.out_dir = out
    if report:
        from reports.html import write_report

        _rooflines(result, out / "plots", trace, machine)
        result.report_path = write_report(out, out / "report.html")


def _rooflines(result: StudyResult, plots: Path, trace, machine) -> None:
    """One roofline per policy, at the configuration it spent most steps in (helper F's plot)."""
    for name, extra in result.extras.items():
        config, frac = max(extra["timeline"].fractions(), key=lambda cf: cf[1])
        _draw_roofline(name, config, frac, trace, machine, plots)


def _draw_roofline(policy: str, config, frac: float, trace, machine, plots: Path) -> Path:
    from reports.files import slug
    from reports.roofline_plot import save_roofline_plot
    from sim.roofline import roofline

    plots.mkdir(parents=True, exist_ok=True)
    r = roofline(trace, machine, config)
    title = (f"{policy}: {config.label} ({frac:.0%} of steps) — {r.workload} on {r.machine}, "
             f"step >= {r.time_lower_bound_s * 1e3:.3g} ms")
    return next(p for p in save_roofline_plot(r, plots / f"roofline_{slug(policy)}", title=title)
                if p.suffix == ".png")


def draw_rooflines(info: dict, configs, plots: Path) -> list[Path]:
    """The study's roofline plots redrawn from its saved tables (`study.json` and the configs table): one per
    policy at the configuration it spent most steps in, as `write_study` draws them. ValueError/OSError when the
    study's workload or machine cannot be resolved here (e.g. a relative file path from another folder)."""
    from hwmodels.machine import get_machine
    from sim.precision import PrecisionConfig
    from workloads import resolve_workload

    cfg = info.get("config", {})
    if not cfg.get("workload") or not cfg.get("hw"):
        raise ValueError("study.json names no workload or machine")
    trace = resolve_workload(cfg["workload"], batch=cfg.get("batch"), seq_len=cfg.get("seq_len"))
    machine = get_machine(cfg["hw"])
    fields = ("q0", "q1", "q2", "q3", "activation", "master", "optimizer")
    written = []
    for policy, rows in configs.groupby("policy", sort=False):
        row = rows.loc[rows["fraction"].idxmax()]
        config = PrecisionConfig.from_dict({k: row[k] for k in fields if k in row and isinstance(row[k], str)})
        written.append(_draw_roofline(str(policy), config, float(row["fraction"]), trace, machine, plots))
    return written
