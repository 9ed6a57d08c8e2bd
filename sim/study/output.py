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
    from reports.files import slug
    from reports.roofline_plot import save_roofline_plot
    from sim.roofline import roofline

    plots.mkdir(parents=True, exist_ok=True)
    for name, extra in result.extras.items():
        config, frac = max(extra["timeline"].fractions(), key=lambda cf: cf[1])
        r = roofline(trace, machine, config)
        title = (f"{name}: {config.label} ({frac:.0%} of steps) — {r.workload} on {r.machine}, "
                 f"step >= {r.time_lower_bound_s * 1e3:.3g} ms")
        save_roofline_plot(r, plots / f"roofline_{slug(name)}", title=title)
