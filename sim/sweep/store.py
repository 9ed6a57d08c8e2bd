"""Incremental persistence of a sweep: one JSON part per finished point, plus an atomically rewritten Parquet.

Layout for `--out results.parquet`: `results.parquet.parts/<point key>.json`. A part is written (tmp file, then
`os.replace`) the moment its point finishes, so a Ctrl-C or a killed worker loses at most the points in flight.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd

from reports.files import readable_tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = readable_tmp(path.parent, path.name)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_frame(df: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as Parquet (or CSV for a .csv path) so a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = readable_tmp(path.parent, path.name)
    try:
        if path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _clean(value):
    """JSON-safe scalar (NaN -> None; numpy scalars -> Python)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class SweepStore:
    """The parts directory and the consolidated table of one sweep output."""

    def __init__(self, out_path: str | Path):
        self.out_path = Path(out_path)
        if self.out_path.suffix not in (".parquet", ".csv"):
            raise ValueError(f"sweep output must end in .parquet or .csv, got {str(out_path)!r}")
        if self.out_path.exists() and self.out_path.is_dir():
            raise ValueError(f"sweep output {str(out_path)!r} is a directory; give a .parquet file path")
        self.parts_dir = self.out_path.with_name(self.out_path.name + ".parts")

    def clear(self) -> None:
        if self.parts_dir.exists():
            shutil.rmtree(self.parts_dir)

    def finished(self) -> dict[str, dict]:
        """Point key -> saved row, for every part on disk (unreadable parts, e.g. a torn copy, are skipped)."""
        rows: dict[str, dict] = {}
        if not self.parts_dir.is_dir():
            return rows
        for part in self.parts_dir.glob("*.json"):
            try:
                rows[part.stem] = json.loads(part.read_text())
            except (OSError, json.JSONDecodeError):
                continue
        return rows

    def save_row(self, key: str, row: dict) -> None:
        clean = {k: _clean(v) for k, v in row.items()}
        atomic_write_bytes(self.parts_dir / f"{key}.json", json.dumps(clean).encode())

    def write_table(self, rows: list[dict], columns_first: list[str]) -> pd.DataFrame:
        df = pd.DataFrame(rows)
        if not df.empty:
            first = [c for c in columns_first if c in df.columns]
            df = df[first + [c for c in df.columns if c not in first]]
        atomic_write_frame(df, self.out_path)
        return df
