"""Arguments and helpers shared by several subcommands, so every command spells them the same way."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any


class LazyText:
    """A help-text value computed only when `--help` is formatted (argparse expands `%(name)s` from the action's
    attributes), so a default that lives in a heavy module is quoted from the code without importing it at start."""

    def __init__(self, compute: Callable[[], Any]):
        self.compute = compute

    def __str__(self) -> str:
        return str(self.compute())


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def add_workload_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "--workload", required=required, metavar="W",
        help="preset name (see `dsqsim presets`), a trace .json file, a Hugging Face config.json path, or "
             "path/to/model.py:FUNCTION, a PyTorch model captured on the meta device (needs dsqsim[torch]; "
             "docs/capture.md)",
    )
    parser.add_argument("--batch", type=positive_int, default=None,
                        help="override the batch size (sequences); model.py:FUNCTION default 4")
    parser.add_argument("--seq-len", type=positive_int, default=None,
                        help="override the sequence length (tokens); model.py:FUNCTION default 128")


def add_hw_arg(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--hw", required=required, metavar="H", help="machine preset name or a machine .toml file")


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def load_workload(args: argparse.Namespace, check: bool = True):
    """The Trace named by --workload with the --batch/--seq-len overrides applied; `check`: refuse sizes the models
    cannot count exactly (`sim.limits.check_trace`; `dsqsim trace` only writes shapes and skips it)."""
    from sim.limits import check_trace
    from workloads import resolve_workload

    trace = resolve_workload(args.workload, batch=args.batch, seq_len=args.seq_len)
    if check:
        check_trace(trace)  # sizes the models cannot count exactly fail here, in one line
    return trace


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, default=_json_default)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def split_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"expected a comma-separated list, got {text!r}")
    return items
