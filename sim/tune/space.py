"""The policy search space of `dsqsim tune`: time-adaptive DSQ policies, monotone by construction.

A trial picks a format family (a ladder of formats in increasing precision, ordered as `check_monotone` orders
them), a number of stages, for each DSQ point a starting rung and per later stage a climb of 0-2 rungs (so no point
ever loses precision), and how stages switch: a schedule (stage start fractions from normalised gaps) or a
validation-loss plateau (patience, min_delta). Activations follow q0. The result is a policy-file dict
(`sim.policy.policy_from_dict`), so every trial's policy is usable anywhere as `--policy FILE`.
"""

from __future__ import annotations

from typing import Any

from sim.precision import DSQ_POINTS

# Increasing precision (mult_bits, then bits per element); tests check each ladder is strictly monotone.
LADDERS: dict[str, tuple[str, ...]] = {
    "bfp": ("bfp3", "bfp4", "bfp6", "bfp8", "bfp12", "bfp16"),
    "mx": ("mxfp4", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp8_e4m3", "mxint8"),
    "fp": ("fp4_e2m1", "fp6_e3m2", "fp6_e2m3", "fp8_e4m3", "bf16", "fp16"),
}
TRIGGERS = ("schedule", "loss")
MAX_CLIMB = 2  # rungs a point may climb from one stage to the next


def check_families(families: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    bad = [f for f in families if f not in LADDERS]
    if bad or not families:
        raise ValueError(f"unknown format family {', '.join(bad) or '(none)'}; choose from {', '.join(LADDERS)}")
    return tuple(dict.fromkeys(families))


def suggest_policy(trial: Any, families: tuple[str, ...], max_stages: int, name: str) -> dict[str, Any]:
    """Sample one policy (as a policy-file dict) through an Optuna trial's suggest_* calls."""
    family = trial.suggest_categorical("family", list(families)) if len(families) > 1 else families[0]
    ladder = LADDERS[family]
    n_stages = trial.suggest_int("stages", 1, max_stages) if max_stages > 1 else 1
    rung = {q: trial.suggest_int(f"{family}_{q}_start", 0, len(ladder) - 1) for q in DSQ_POINTS}
    stages = []
    for s in range(n_stages):
        if s:
            for q in DSQ_POINTS:
                rung[q] = min(len(ladder) - 1, rung[q] + trial.suggest_int(f"{q}_climb{s}", 0, MAX_CLIMB))
        stage = {q: ladder[rung[q]] for q in DSQ_POINTS}
        stage["activation"] = stage["q0"]
        stages.append(stage)
    if n_stages == 1:
        return {"name": name, "kind": "fixed", "description": f"tune trial ({family})", "config": stages[0]}
    trigger = trial.suggest_categorical("trigger", list(TRIGGERS))
    desc = f"tune trial ({family}, {n_stages} stages, {trigger})"
    if trigger == "schedule":
        gaps = [trial.suggest_float(f"gap{s}", 0.1, 1.0) for s in range(n_stages)]
        total, at, run = sum(gaps), [], 0.0
        for g in gaps[:-1]:
            run += g
            at.append(round(run / total, 4))
        return {"name": name, "kind": "dsq", "description": desc, "stages": stages, "at": at}
    patience = trial.suggest_int("patience", 1, 3)
    min_delta = round(trial.suggest_float("min_delta", 0.0, 0.05), 4)
    return {"name": name, "kind": "dsq-loss", "description": desc, "stages": stages, "patience": patience,
            "min_delta": min_delta}


def to_toml(d: dict[str, Any]) -> str:
    """A policy-file dict as TOML (strings, numbers, lists of numbers, one table or a list of tables)."""
    def value(v: Any) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list | tuple):
            if v and isinstance(v[0], dict):
                return "[\n" + "".join(f"    {value(x)},\n" for x in v) + "]"
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise ValueError(f"cannot write {type(v).__name__} to TOML")

    return "".join(f"{k} = {value(v)}\n" for k, v in d.items())
