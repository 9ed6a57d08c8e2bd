"""Run every benchmark in bench/ and write BENCHMARKS.md.

Each `bench/bench_<part>.py` exposes `run(quick: bool = False) -> str`, returning a Markdown section (a `## ` heading,
what was measured, a table). Usage: `python bench/run_all.py [--quick] [--only dram,gemm]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _machine_line() -> str:
    import numpy as np

    return (
        f"{platform.python_implementation()} {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", default="", help="comma-separated part names (bench_<part>.py)")
    parser.add_argument("--out", default=str(HERE.parent / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    sections = []
    for path in sorted(HERE.glob("bench_*.py")):
        part = path.stem.removeprefix("bench_")
        if only and part not in only:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        sections.append(module.run(quick=args.quick).rstrip() + "\n")
    header = (
        "# Benchmarks\n\n"
        f"Written by `python bench/run_all.py{' --quick' if args.quick else ''}` on "
        f"{dt.date.today().isoformat()} ({_machine_line()}). Do not edit by hand: rerun the script.\n"
    )
    Path(args.out).write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
