"""The `dsqsim` command: a thin dispatcher over `sim.commands.<name>` modules.

Bad input (ValueError, OSError raised with a clear message) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from sim import __version__

# Order is the order shown by `dsqsim --help`. A module that does not exist yet is simply not offered.
COMMANDS = [
    "presets", "trace", "roofline", "compare", "simulate", "gemm", "dram_bench",
    "memory", "train", "study", "tune", "sweep", "report",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dsqsim",
        description="Simulate Transformer training under Dynamic Stashing Quantization (DSQ) on an accelerator.",
    )
    parser.add_argument("--version", action="version", version=f"dsqsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"sim.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sim.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader went away (`dsqsim ... | head`): not an error of this command
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError, AttributeError):
            pass
        return 141  # the shell's code for a process ended by SIGPIPE
    except (ValueError, OSError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"dsqsim: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dsqsim: interrupted (completed work was saved where the command supports resuming)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
