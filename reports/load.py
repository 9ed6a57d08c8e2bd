"""Read results from disk: a study directory (`study.json` + tables) or a sweep table (.parquet / .csv)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

STUDY_TABLES = ("summary", "metrics", "timeline", "configs", "traffic", "busy", "bandwidth")


@dataclass
class Results:
    kind: str                                  # "study" | "sweep"
    source: Path | None
    tables: dict[str, pd.DataFrame]
    info: dict = field(default_factory=dict)   # study.json for a study


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read results table {str(path)!r}: {str(exc).splitlines()[0]}") from None


def load_results(source) -> Results:
    """Results as they are, a study directory, a sweep .parquet/.csv, a sweep DataFrame, or an object with study
    tables as attributes (e.g. `sim.study.StudyResult`)."""
    if isinstance(source, Results):
        return source
    if isinstance(source, pd.DataFrame):
        return Results("sweep", None, {"sweep": source})
    if hasattr(source, "summary") and hasattr(source, "bandwidth"):
        return Results("study", getattr(source, "out_dir", None), {t: getattr(source, t) for t in STUDY_TABLES})
    path = Path(source)
    if not path.exists():
        raise OSError(f"results not found: {str(path)!r} (give a study directory or a sweep .parquet/.csv)")
    if path.is_dir():
        meta = path / "study.json"
        if not meta.is_file():
            raise ValueError(f"{str(path)!r} is not a study directory (no study.json); run `dsqsim study --out DIR`")
        try:
            info = json.loads(meta.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta}: not valid JSON ({exc.msg})") from None
        tables = {}
        for name in STUDY_TABLES:
            for suffix in (".parquet", ".csv"):
                if (path / f"{name}{suffix}").is_file():
                    tables[name] = _read_table(path / f"{name}{suffix}")
                    break
            else:
                raise ValueError(f"study directory {str(path)!r} lacks the {name} table")
        return Results("study", path, tables, info)
    if path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"unknown results file {str(path)!r}: expected a study directory or a .parquet/.csv sweep")
    df = _read_table(path)
    if "policy" not in df.columns or "time_s" not in df.columns:
        raise ValueError(f"{str(path)!r} is not a sweep table (needs policy and time_s columns)")
    return Results("sweep", path, {"sweep": df})
