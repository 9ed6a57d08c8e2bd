"""Precision policies over training time: registry, presets and policy files.

``get_policy(name_or_path)`` accepts any format name (a fixed policy), a preset name from ``presets.toml``
("dsq", "dsq-loss", "cyclic"), or a ``.toml``/``.json`` policy file (schema in the README, "Precision policies").
Every call returns a fresh policy, so loss-triggered state is never shared between runs.
"""

from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from sim.formats import get_format
from sim.policy.guard import GuardPolicy
from sim.policy.policies import (
    CyclicPolicy,
    FixedPolicy,
    LossTriggeredPolicy,
    Policy,
    SchedulePolicy,
    check_monotone,
)
from sim.policy.timeline import Timeline
from sim.precision import DSQ_POINTS, PrecisionConfig

__all__ = [
    "Policy", "FixedPolicy", "SchedulePolicy", "LossTriggeredPolicy", "CyclicPolicy", "GuardPolicy", "Timeline",
    "get_policy", "list_policies", "describe_configs", "policy_from_dict", "load_policy_file", "check_monotone",
    "KINDS",
]

KINDS = ("fixed", "dsq", "dsq-loss", "cyclic", "dsq-guard")
_PRESETS_PATH = Path(__file__).with_name("presets.toml")
_FIXED_LISTED = ("fp32", "bf16", "fp16", "fixed16", "fixed8", "bfp8", "mxfp8_e4m3")
_COMMON_KEYS = {"name", "kind", "description"}
_KIND_KEYS = {
    "fixed": {"format", "config"},
    "dsq": {"stages", "stages_from", "at"},
    "dsq-loss": {"stages", "stages_from", "patience", "min_delta", "assume_at"},
    "cyclic": {"base", "family", "low_bits", "high_bits", "cycles", "points", "block_size"},
    "dsq-guard": {"stages", "stages_from", "thresholds", "flush_thresholds", "probe_every", "patience",
                  "spike_factor", "spike_warmup", "max_rollbacks", "grad_threshold"},
}


@cache
def _presets() -> dict[str, dict[str, Any]]:
    with _PRESETS_PATH.open("rb") as f:
        return tomllib.load(f)


def _config(value: Any, what: str) -> PrecisionConfig:
    """A config from a format name, a [q0, q1, q2, q3] list or a table."""
    if isinstance(value, str):
        return PrecisionConfig.uniform(value)
    if isinstance(value, list | tuple):
        if len(value) != len(DSQ_POINTS):
            raise ValueError(f"{what}: a list config needs 4 formats [q0, q1, q2, q3], got {len(value)}")
        return PrecisionConfig(*value)
    if isinstance(value, dict):
        return PrecisionConfig.from_dict(value)
    raise ValueError(f"{what}: expected a format name, a [q0, q1, q2, q3] list or a table, got {type(value).__name__}")


_RESOLVING: list[str] = []  # the `stages_from` references being resolved, outermost first (to report a cycle)


def _stages_from(ref: Any, name: str) -> list[PrecisionConfig]:
    """The stages of the policy `ref` names (a preset or a policy file), for a policy whose file says
    `stages_from = ref` instead of writing them out again."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"policy {name!r}: 'stages_from' must name a policy (a preset or a file), got {ref!r}")
    key = ref.strip()
    if key in _RESOLVING:
        raise ValueError(f"policy {name!r}: 'stages_from' goes round in a circle: {' -> '.join([*_RESOLVING, key])}")
    _RESOLVING.append(key)
    try:
        source = get_policy(key)
    except OSError as exc:
        raise ValueError(f"policy {name!r}: stages_from {key!r}: {exc}") from None
    finally:
        _RESOLVING.pop()
    stages = getattr(source, "stages", None)
    if not stages:
        raise ValueError(f"policy {name!r}: stages_from {key!r} names a {source.kind} policy, which has no stages")
    return list(stages)


def policy_from_dict(d: dict[str, Any], default_name: str = "custom") -> Policy:
    """Build a policy from its file form; ValueError naming the first problem."""
    if not isinstance(d, dict):
        raise ValueError(f"a policy must be a table, got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in KINDS:
        raise ValueError(f"policy 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(d) - _COMMON_KEYS - _KIND_KEYS[kind])
    if unknown:
        valid = ", ".join(sorted(_COMMON_KEYS | _KIND_KEYS[kind]))
        raise ValueError(f"unknown key(s) {', '.join(unknown)} for a {kind} policy; valid: {valid}")
    name = str(d.get("name", default_name))
    desc = str(d.get("description", ""))
    try:
        if kind == "fixed":
            if ("format" in d) == ("config" in d):
                raise ValueError(f"fixed policy {name!r} needs exactly one of 'format' or 'config'")
            return FixedPolicy(name, _config(d.get("format", d.get("config")), name), desc)
        if kind == "cyclic":
            if "base" not in d:
                raise ValueError(f"cyclic policy {name!r} needs 'base' (a format or a q0..q3 table)")
            extra = {k: d[k] for k in _KIND_KEYS["cyclic"] - {"base"} if k in d}
            return CyclicPolicy(name, _config(d["base"], f"{name} base"), description=desc, **extra)
        if "stages_from" in d:
            if "stages" in d:
                raise ValueError(f"{kind} policy {name!r}: give 'stages' or 'stages_from', not both")
            configs = _stages_from(d["stages_from"], name)
        else:
            stages = d.get("stages")
            if not isinstance(stages, list) or not stages:
                raise ValueError(f"{kind} policy {name!r} needs 'stages', a non-empty list of configs (or "
                                 f"'stages_from', a policy whose stages it takes)")
            configs = [_config(s, f"{name} stage {i + 1}") for i, s in enumerate(stages)]
        if kind == "dsq":
            return SchedulePolicy(name, configs, d.get("at"), desc)
        if kind == "dsq-guard":
            extra = {k: d[k] for k in _KIND_KEYS["dsq-guard"] - {"stages", "stages_from"} if k in d}
            return GuardPolicy(name, configs, description=desc, **extra)
        extra = {k: d[k] for k in ("patience", "min_delta", "assume_at") if k in d}
        return LossTriggeredPolicy(name, configs, description=desc, **extra)
    except TypeError as exc:  # a wrongly typed value reaching a constructor
        raise ValueError(f"policy {name!r}: bad value ({exc})") from None


def load_policy_file(path: str | Path) -> Policy:
    """A policy from a .toml or .json file (OSError if unreadable, ValueError if malformed)."""
    path = Path(path)
    if path.suffix not in (".toml", ".json"):
        raise ValueError(f"policy file must end in .toml or .json, got {path.name!r}")
    if not path.is_file():
        raise FileNotFoundError(f"policy file not found: {path}")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid {path.suffix[1:].upper()} ({str(exc).splitlines()[0]})") from None
    try:
        return policy_from_dict(data, default_name=path.stem)
    except ValueError as exc:
        said = str(exc)  # a file reached through `stages_from` may already have named itself
        raise ValueError(said if said.startswith(f"{path}: ") else f"{path}: {said}") from None


def get_policy(name_or_path: str | Policy) -> Policy:
    """A fresh policy: a preset name, any number-format name (fixed), or a .toml/.json policy file."""
    if isinstance(name_or_path, Policy):
        return name_or_path
    if not isinstance(name_or_path, str):
        raise ValueError(f"a policy name must be a string, got {type(name_or_path).__name__}")
    key = name_or_path.strip()
    if key.endswith((".toml", ".json")):
        return load_policy_file(key)
    presets = _presets()
    if key.lower() in presets:
        return policy_from_dict(presets[key.lower()], default_name=key.lower())
    try:
        fmt = get_format(key)
    except ValueError as exc:
        why = "" if str(exc).startswith("unknown number format") else f" ({exc})"  # a known family, out of range
        raise ValueError(
            f"unknown policy {name_or_path!r}{why}; valid: {', '.join(presets)}, any format name "
            f"(e.g. {', '.join(_FIXED_LISTED)}; fixedN with N = 2..32, bfpM with M = 2..24, bfpM_bB with "
            f"B = 1..4096), or a .toml/.json policy file"
        ) from None
    return FixedPolicy(fmt.name, PrecisionConfig.uniform(fmt))


def describe_configs(policy: Policy, total_steps: int = 1000) -> str:
    """The configurations a policy runs through, every field shown: "q0/q1/q2/q3/act: a/b/c/d/e -> ..."."""
    seen: list[PrecisionConfig] = []
    for config, _ in policy.timeline(total_steps):
        if config not in seen:
            seen.append(config)
    extras = {f"{k}={v}" for c in seen for k, v in (("master", c.master), ("opt", c.optimizer)) if v != "fp32"}
    body = " -> ".join("/".join((*c.points, c.activation)) for c in seen[:4]) + (" -> ..." if len(seen) > 4 else "")
    return f"q0/q1/q2/q3/act: {body}" + (f" ({', '.join(sorted(extras))})" if extras else "")


def list_policies() -> list[tuple[str, str]]:
    """(name, one-line description) of the built-in policies, for `dsqsim presets`; each description ends with the
    configurations the policy runs through, activation format included."""
    fixed = [(f, f"fixed: {f} at q0..q3 and activations for the whole run") for f in _FIXED_LISTED]
    presets = [(name, f"{d.get('description', d['kind'])} [{describe_configs(policy_from_dict(d, name))}]")
               for name, d in _presets().items()]
    return [*fixed, *presets, ("<format>", "fixed: any number format name (see formats), e.g. bfp6_b32")]
