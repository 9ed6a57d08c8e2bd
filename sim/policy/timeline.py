"""The precision configuration used over a training run: change points plus the total number of steps."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.precision import DSQ_POINTS, PrecisionConfig

__all__ = ["Timeline"]

_SCHEMA_VERSION = 1
_CONFIG_COLUMNS = (*DSQ_POINTS, "activation", "master", "optimizer")


@dataclass
class Timeline:
    """``changes``: (first step, config) in increasing step order, the first at step 0; each config runs until the
    next change or ``total_steps``. Iterating a Timeline yields ``fractions()``, the (config, fraction of steps)
    pairs that `dsqsim compare`/`study` average over. ``reasons``: why the config changed at a step, where the
    policy said (e.g. a monitored policy's "q3 relative error 0.09 > 0.05").

    ``extra_passes``: training passes (forward and backward) computed beyond one per step, by (why, config): a
    monitored policy's shadow passes at a higher precision and steps computed again after a rollback. They cost
    time, traffic and energy, so `overhead()` gives them to `cost_timeline` beside `fractions()`."""

    total_steps: int
    changes: list[tuple[int, PrecisionConfig]] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    extra_passes: dict[tuple[str, PrecisionConfig], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.total_steps, int) or self.total_steps <= 0:
            raise ValueError(f"timeline total_steps must be a positive integer, got {self.total_steps!r}")
        changes, self.changes = list(self.changes), []
        reasons, self.reasons = dict(self.reasons), {}
        for step, config in changes:
            self.record(step, config, reasons.get(step, ""))

    @classmethod
    def constant(cls, config: PrecisionConfig, total_steps: int) -> Timeline:
        return cls(total_steps, [(0, config)])

    def record(self, step: int, config: PrecisionConfig, reason: str = "") -> None:
        """Note that ``config`` is in use from ``step`` on (a no-op when it is already the current one), and why."""
        if not isinstance(config, PrecisionConfig):
            raise ValueError(f"timeline entries must be PrecisionConfig, got {type(config).__name__}")
        if not 0 <= step < self.total_steps:
            raise ValueError(f"timeline step {step} outside 0..{self.total_steps - 1}")
        if not self.changes and step != 0:
            raise ValueError(f"a timeline starts at step 0, got a first change at step {step}")
        if self.changes:
            last_step, last_config = self.changes[-1]
            if step <= last_step:
                raise ValueError(f"timeline steps must increase: {step} after {last_step}")
            if config == last_config:
                return
        self.changes.append((int(step), config))
        if reason:
            self.reasons[int(step)] = str(reason)

    def record_extra(self, why: str, config: PrecisionConfig, passes: int = 1) -> None:
        """Note `passes` extra training passes at `config` (e.g. "shadow gradient", "rolled back")."""
        if not isinstance(config, PrecisionConfig) or not isinstance(passes, int) or passes < 0:
            raise ValueError(f"extra passes need a PrecisionConfig and a count >= 0, got {config!r}, {passes!r}")
        key = (str(why), config)
        self.extra_passes[key] = self.extra_passes.get(key, 0) + passes

    def overhead(self) -> list[tuple[PrecisionConfig, float]]:
        """Each configuration's extra passes as a fraction of the run's steps (empty for most policies)."""
        out: dict[PrecisionConfig, int] = {}
        for (_, config), n in self.extra_passes.items():
            out[config] = out.get(config, 0) + n
        return [(c, n / self.total_steps) for c, n in out.items() if n]

    def segments(self) -> list[tuple[int, int, PrecisionConfig]]:
        """(first step, end step exclusive, config) for each change point."""
        ends = [s for s, _ in self.changes[1:]] + [self.total_steps]
        return [(s, e, c) for (s, c), e in zip(self.changes, ends, strict=True)]

    def config_at(self, step: int) -> PrecisionConfig:
        if not self.changes:
            raise ValueError("empty timeline: no configuration recorded")
        if not 0 <= step < self.total_steps:
            raise ValueError(f"step {step} outside 0..{self.total_steps - 1}")
        current = self.changes[0][1]
        for s, c in self.changes:
            if s > step:
                break
            current = c
        return current

    def fractions(self) -> list[tuple[PrecisionConfig, float]]:
        """Each distinct configuration with the fraction of steps it was used, in order of first use."""
        if not self.changes:
            raise ValueError("empty timeline: no configuration recorded")
        steps: dict[PrecisionConfig, int] = {}
        for start, end, config in self.segments():
            steps[config] = steps.get(config, 0) + (end - start)
        return [(c, n / self.total_steps) for c, n in steps.items()]

    def __iter__(self) -> Iterator[tuple[PrecisionConfig, float]]:
        return iter(self.fractions() if self.changes else [])

    def __len__(self) -> int:
        return len(self.fractions()) if self.changes else 0

    def __getitem__(self, i: int) -> tuple[PrecisionConfig, float]:
        return self.fractions()[i]

    def to_frame(self):
        """One row per change point: step_start, step_end, steps, fraction, label and the config's formats."""
        import pandas as pd

        rows = [
            {"step_start": s, "step_end": e, "steps": e - s, "fraction": (e - s) / self.total_steps,
             "label": c.label, **c.to_dict(), "reason": self.reasons.get(s, "")}
            for s, e, c in self.segments()
        ]
        columns = ["step_start", "step_end", "steps", "fraction", "label", *_CONFIG_COLUMNS, "reason"]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": _SCHEMA_VERSION,
            "total_steps": self.total_steps,
            "changes": [{"step": s, "config": c.to_dict(), **({"reason": self.reasons[s]} if s in self.reasons else {})}
                        for s, c in self.changes],
            **({"extra_passes": [{"why": why, "config": c.to_dict(), "passes": n}
                                 for (why, c), n in self.extra_passes.items()]} if self.extra_passes else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Timeline:
        if not isinstance(d, dict) or "total_steps" not in d or "changes" not in d:
            raise ValueError("a timeline needs 'total_steps' and 'changes'")
        if d.get("schema_version", _SCHEMA_VERSION) != _SCHEMA_VERSION:
            raise ValueError(f"timeline schema_version {d['schema_version']} not supported "
                             f"(expected {_SCHEMA_VERSION})")
        try:
            changes = [(int(c["step"]), PrecisionConfig.from_dict(c["config"])) for c in d["changes"]]
            reasons = {int(c["step"]): str(c["reason"]) for c in d["changes"] if c.get("reason")}
            extra = {(str(e["why"]), PrecisionConfig.from_dict(e["config"])): int(e["passes"])
                     for e in d.get("extra_passes", [])}
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed timeline entry: {exc}") from None
        return cls(int(d["total_steps"]), changes, reasons, extra)

    def save(self, path: str | Path) -> Path:
        """Write JSON (``.json``) or CSV (``.csv``, the to_frame table)."""
        path = Path(path)
        if path.suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        elif path.suffix == ".csv":
            if self.extra_passes:  # the CSV is the change-point table: it has no place for them
                whys = ", ".join(sorted({w for w, _ in self.extra_passes}))
                raise ValueError(f"this timeline records extra passes ({whys}), which only the .json form keeps; "
                                 "save it as .json")
            self.to_frame().to_csv(path, index=False)
        else:
            raise ValueError(f"timeline file must end in .json or .csv, got {path.name!r}")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Timeline:
        path = Path(path)
        if path.suffix == ".json":
            try:
                return cls.from_dict(json.loads(path.read_text()))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if path.suffix == ".csv":
            return cls._from_csv(path)
        raise ValueError(f"timeline file must end in .json or .csv, got {path.name!r}")

    @classmethod
    def _from_csv(cls, path: Path) -> Timeline:
        import pandas as pd

        if not path.exists():
            raise FileNotFoundError(f"timeline file not found: {path}")
        frame = pd.read_csv(path, dtype=str).fillna("")
        missing = [c for c in ("step_start", "step_end", *DSQ_POINTS) if c not in frame.columns]
        if missing or frame.empty:
            raise ValueError(f"{path}: not a timeline CSV (missing {', '.join(missing) or 'rows'})")
        changes, reasons = [], {}
        for row in frame.to_dict("records"):
            config = {c: row[c] for c in _CONFIG_COLUMNS if row.get(c)}
            changes.append((int(row["step_start"]), PrecisionConfig.from_dict(config)))
            if row.get("reason"):
                reasons[int(row["step_start"])] = row["reason"]
        return cls(int(frame["step_end"].astype(int).max()), changes, reasons)


def work_weights(pairs: Iterable[tuple[PrecisionConfig, float]]) -> list[tuple[PrecisionConfig, float]]:
    """(config, weight) pairs (a `Timeline`, or any pairs of fractions) normalised to sum to 1 and merged by
    config, plus a Timeline's extra passes as fractions of its steps: the one place extra passes (a monitored
    policy's shadow gradients, rolled-back steps) enter a run's cost, in order of first use."""
    merged: dict[PrecisionConfig, float] = {}
    for config, frac in pairs:
        merged[config] = merged.get(config, 0.0) + float(frac)
    total = sum(merged.values())
    if not merged or not total > 0:
        raise ValueError("the precision timeline is empty")
    merged = {c: f / total for c, f in merged.items()}
    for config, frac in pairs.overhead() if isinstance(pairs, Timeline) else []:
        merged[config] = merged.get(config, 0.0) + frac
    return list(merged.items())
