"""The policy search space of `dsqsim tune`: time-adaptive DSQ policies, monotone by construction.

A trial picks a format family (a ladder of formats in increasing precision, ordered as `check_monotone` orders
them), a number of stages, for each DSQ point a starting rung and per later stage a climb of 0-2 rungs (so no point
ever loses precision), and how stages switch: a schedule (stage start fractions from normalised gaps) or a
validation-loss plateau (patience, min_delta). With several roundings (`--roundings nearest,stochastic`) each
point also picks one for the whole run (stochastic: the `_sr` variant of each of its formats). Activations follow
q0. The result is a policy-file dict
(`sim.policy.policy_from_dict`), so every trial's policy is usable anywhere as `--policy FILE`.

`suggest_near` searches instead the neighbourhood of a given schedule or fixed policy (`dsqsim tune --around FILE`):
the same stages, each point moved by -2..+1 rungs of the policy's family ladder (two rungs, because neighbouring
rungs often have the same bit width: mxfp6_e3m2 and mxfp6_e2m3), precision kept monotone over the stages, each
switch fraction shifted by up to ±0.2; each point keeps the base's rounding (an `_sr` format moves along the
ladder as `_sr`). Its all-zero move is the base policy itself, enqueued as the first trial.
"""

from __future__ import annotations

from typing import Any

from sim.formats import ROUNDINGS, SR_SUFFIX, get_format
from sim.precision import DSQ_POINTS

# Increasing precision (mult_bits, then bits per element); tests check each ladder is strictly monotone.
LADDERS: dict[str, tuple[str, ...]] = {
    "bfp": ("bfp3", "bfp4", "bfp6", "bfp8", "bfp12", "bfp16"),
    "mx": ("mxfp4", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp8_e4m3", "mxint8"),
    "fp": ("fp4_e2m1", "fp6_e3m2", "fp6_e2m3", "fp8_e4m3", "bf16", "fp16"),
    # MX with a 16-bit top rung, for points that need more than 8 bits late in a run (the tuned dsq preset's
    # backward operands and gradients): a family of its own so `mx` searches sample what they always did
    "mxbf16": ("mxfp4", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp8_e4m3", "mxint8", "bf16"),
}
TRIGGERS = ("schedule", "loss")
MAX_CLIMB = 2  # rungs a point may climb from one stage to the next


def _choices(given: list[str] | tuple[str, ...], valid: Any, what: str) -> tuple[str, ...]:
    """`given` without repeats, each one of `valid`; ValueError naming `what` otherwise (or when empty)."""
    bad = [g for g in given if g not in valid]
    if bad or not given:
        raise ValueError(f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(valid)}")
    return tuple(dict.fromkeys(given))


def check_families(families: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return _choices(families, LADDERS, "format family")


def check_roundings(roundings: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return _choices(roundings, ROUNDINGS, "rounding")


def suggest_policy(trial: Any, families: tuple[str, ...], max_stages: int, name: str,
                   roundings: tuple[str, ...] = ("nearest",)) -> dict[str, Any]:
    """Sample one policy (as a policy-file dict) through an Optuna trial's suggest_* calls. One rounding: every
    format rounds so (the parameters sampled are those of a search without the option)."""
    family = trial.suggest_categorical("family", list(families)) if len(families) > 1 else families[0]
    ladder = LADDERS[family]
    n_stages = trial.suggest_int("stages", 1, max_stages) if max_stages > 1 else 1
    rung = {q: trial.suggest_int(f"{family}_{q}_start", 0, len(ladder) - 1) for q in DSQ_POINTS}
    rounding = {q: trial.suggest_categorical(f"{q}_rounding", list(roundings)) if len(roundings) > 1
                else roundings[0] for q in DSQ_POINTS}
    suffix = {q: SR_SUFFIX if rounding[q] == "stochastic" else "" for q in DSQ_POINTS}
    stages = []
    for s in range(n_stages):
        if s:
            for q in DSQ_POINTS:
                rung[q] = min(len(ladder) - 1, rung[q] + trial.suggest_int(f"{q}_climb{s}", 0, MAX_CLIMB))
        stage = {q: ladder[rung[q]] + suffix[q] for q in DSQ_POINTS}
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


NEAR_LOWER, NEAR_RAISE, NEAR_SHIFT = 2, 1, 0.2  # rungs down / up a point may move; largest shift of a switch


def near_base(policy: dict[str, Any]) -> tuple[str, list[dict[str, int]], list[float]]:
    """(family, per-stage rungs of q0..q3 and activation, switch fractions) of a fixed or schedule (`dsq`) policy
    dict whose formats all lie on one family ladder; ValueError otherwise."""
    kind = policy.get("kind")
    if kind == "fixed" and isinstance(policy.get("config"), dict):
        stages, at = [policy["config"]], []
    elif kind == "dsq":
        stages, at = list(policy["stages"]), [float(a) for a in policy.get("at") or []]
    else:
        raise ValueError(f"--around needs a fixed or scheduled (kind dsq) policy, got kind {kind!r}")
    keys = (*DSQ_POINTS, "activation")
    names = [{k: _rung_and_suffix(st.get(k, st.get("q0")))[0] for k in keys} for st in stages
             if isinstance(st, dict)]  # each point's format, rounding aside
    for family, ladder in LADDERS.items():
        if len(names) == len(stages) and all(n in ladder for st in names for n in st.values()):
            return family, [{k: ladder.index(n) for k, n in st.items()} for st in names], at
    used = sorted({str(st.get(k)) for st in stages for k in keys if isinstance(st, dict) and st.get(k)})
    ladders = "; ".join(f"{f}: " + ", ".join(v) for f, v in LADDERS.items())
    raise ValueError(f"--around: the policy's formats ({', '.join(used)}) do not all lie on one family ladder "
                     f"({ladders})")


def _rung_and_suffix(fmt: Any) -> tuple[Any, str]:
    """(the canonical name of the format `fmt` names without its rounding suffix, that suffix): `MXINT8_SR` ->
    (`mxint8`, `_sr`). What is not a format name comes back as it is (and lies on no ladder)."""
    try:
        f = get_format(fmt)
    except ValueError:
        return fmt, ""
    return (f.name.removesuffix(SR_SUFFIX), SR_SUFFIX) if f.rounding == "stochastic" else (f.name, "")


def near_zero_params(policy: dict[str, Any]) -> dict[str, Any]:
    """The trial parameters that reproduce the base policy (no move, no shift)."""
    _, rungs, at = near_base(policy)
    return {**{f"{q}_move{s}": 0 for s in range(len(rungs)) for q in DSQ_POINTS},
            **{f"shift{i}": 0.0 for i in range(len(at))}}


def suggest_near(trial: Any, policy: dict[str, Any], name: str) -> dict[str, Any]:
    """Sample a neighbour of `policy` (see the module docstring) as a policy-file dict."""
    family, base, at = near_base(policy)
    ladder, top = LADDERS[family], len(LADDERS[family]) - 1
    given = [policy["config"]] if policy["kind"] == "fixed" else policy["stages"]
    keep = [{k: st[k] for k in ("master", "optimizer") if k in st} for st in given]  # not searched
    keys = (*DSQ_POINTS, "activation")
    suffix = [{k: _rung_and_suffix(st.get(k, st["q0"]))[1] for k in keys}
              for st in given]  # each point keeps the base's rounding, stage by stage
    stages, prev = [], None
    for s, rungs in enumerate(base):
        moved = {q: rungs[q] + trial.suggest_int(f"{q}_move{s}", -NEAR_LOWER, NEAR_RAISE) for q in DSQ_POINTS}
        moved["activation"] = rungs["activation"] + moved["q0"] - rungs["q0"]  # activations move with q0
        moved = {k: min(top, max(0, r)) for k, r in moved.items()}
        if prev is not None:  # never below the previous stage: precision stays monotone
            moved = {k: max(r, prev[k]) for k, r in moved.items()}
        stages.append({k: ladder[r] + suffix[s][k] for k, r in moved.items()} | keep[s])
        prev = moved
    shifted = [min(0.95, max(0.05, a + trial.suggest_float(f"shift{i}", -NEAR_SHIFT, NEAR_SHIFT)))
               for i, a in enumerate(at)]
    starts: list[float] = []
    for a in sorted(shifted):
        starts.append(round(max(a, starts[-1] + 0.01) if starts else a, 4))
    desc = f"tune trial near {policy.get('name', 'a policy')} ({family})"
    if len(stages) == 1:
        return {"name": name, "kind": "fixed", "description": desc, "config": stages[0]}
    return {"name": name, "kind": "dsq", "description": desc, "stages": stages, "at": starts}
