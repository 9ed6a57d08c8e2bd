"""Incremental persistence of a sweep: one JSON part per finished point, plus an atomically rewritten Parquet.

Layout for `--out results.parquet`: `results.parquet.parts/<point key>.json`. A part is written (tmp file, then
`os.replace`) the moment its point finishes, so a Ctrl-C or a killed worker loses at most the points in flight.

Earlier results are never destroyed by a run that does not finish: a fresh (non-resume) run over existing results
writes its parts to `results.parquet.parts.new/` and swaps them in, with the new table, only when every point has
finished. A resume first adopts such staged parts (they are the interrupted run's finished points), then only adds
parts. The table itself is replaced by a partial one only when there was no earlier table or parts to lose.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd

from reports.files import readable_tmp, write_error


def _mkdir(folder: Path, target: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(target, exc) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _mkdir(path.parent, path)
    tmp = readable_tmp(path.parent, path.name)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_frame(df: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as Parquet (or CSV for a .csv path) so a reader never sees a half-written file."""
    path = Path(path)
    _mkdir(path.parent, path)
    tmp = readable_tmp(path.parent, path.name)
    try:
        if path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from None
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
        self.staging_dir = self.out_path.with_name(self.out_path.name + ".parts.new")
        self.write_dir = self.parts_dir
        self.had_results = False  # set by start(): whether there are results a failed run must not destroy

    @property
    def staged(self) -> bool:
        """True while new parts go beside the old ones (a fresh run over earlier results)."""
        return self.write_dir == self.staging_dir

    @property
    def may_write_partial_table(self) -> bool:
        """A partial table may replace `out_path` only when there was nothing there to lose."""
        return not self.had_results

    def start(self, resume: bool) -> None:
        """Prepare the directories for a run (after all input is validated: this is the first write)."""
        self.had_results = self.out_path.exists() or any(self.parts_dir.glob("*.json"))
        if resume:
            self._adopt_staged()
            self.write_dir = self.parts_dir
        else:
            shutil.rmtree(self.staging_dir, ignore_errors=True)
            if self.had_results:
                self.write_dir = self.staging_dir
            else:
                shutil.rmtree(self.parts_dir, ignore_errors=True)
                self.write_dir = self.parts_dir

    def _adopt_staged(self) -> None:
        if not self.staging_dir.is_dir():
            return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        for part in self.staging_dir.glob("*.json"):
            os.replace(part, self.parts_dir / part.name)
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    def finished(self) -> dict[str, dict]:
        """Point key -> saved row, for every part on disk (unreadable parts, e.g. a torn copy, are skipped);
        staged parts of an interrupted run take precedence over older ones."""
        rows: dict[str, dict] = {}
        for folder in (self.parts_dir, self.staging_dir):
            if not folder.is_dir():
                continue
            for part in folder.glob("*.json"):
                try:
                    rows[part.stem] = json.loads(part.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
        return rows

    def save_row(self, key: str, row: dict) -> None:
        clean = {k: _clean(v) for k, v in row.items()}
        atomic_write_bytes(self.write_dir / f"{key}.json", json.dumps(clean).encode())

    def write_table(self, rows: list[dict], columns_first: list[str]) -> pd.DataFrame:
        df = pd.DataFrame(rows)
        if not df.empty:
            first = [c for c in columns_first if c in df.columns]
            df = df[first + [c for c in df.columns if c not in first]]
        atomic_write_frame(df, self.out_path)
        return df

    def commit(self, rows: list[dict], columns_first: list[str]) -> pd.DataFrame:
        """The run finished: write the table, then swap staged parts in for the old ones."""
        df = self.write_table(rows, columns_first)
        if self.staged:
            old = self.parts_dir.with_name(self.parts_dir.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if self.parts_dir.exists():
                os.replace(self.parts_dir, old)
            self.staging_dir.mkdir(parents=True, exist_ok=True)  # a grid with every point already done
            os.replace(self.staging_dir, self.parts_dir)
            shutil.rmtree(old, ignore_errors=True)
            self.write_dir = self.parts_dir
        return df
