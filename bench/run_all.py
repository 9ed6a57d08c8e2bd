"""Run every benchmark in bench/ and write BENCHMARKS.md.

Each `bench/bench_<part>.py` exposes `run(quick: bool = False) -> str`, returning a Markdown section (a `## ` heading,
what was measured, a table). Usage: `python bench/run_all.py [--quick] [--only dram,gemm]`. With `--only`, the other
parts' sections already in BENCHMARKS.md are kept as they were (each section records when it was measured).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import re
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
    out = Path(args.out)
    kept = _sections(out.read_text()) if only and out.exists() else {}
    sections = []
    for path in sorted(HERE.glob("bench_*.py")):
        part = path.stem.removeprefix("bench_")
        if only and part not in only:
            if part in kept:
                sections.append(kept[part])
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        stamp = f"_Measured {dt.date.today().isoformat()}{' (--quick)' if args.quick else ''}; {_machine_line()}._\n"
        sections.append(f"<!-- bench:{part} -->\n" + module.run(quick=args.quick).rstrip() + "\n\n" + stamp)
    header = (
        "# Benchmarks\n\n"
        "Written by `python bench/run_all.py` (one section per `bench/bench_<part>.py`; `--only PART` re-measures\n"
        "one and keeps the rest). Do not edit by hand: rerun the script. Timings are wall-clock on the machine named\n"
        "under each section; a 2-core machine shared with other work gives noisy upper bounds.\n"
    )
    out.write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _sections(text: str) -> dict[str, str]:
    """Existing sections of BENCHMARKS.md by part name (from their `<!-- bench:part -->` markers)."""
    parts = re.split(r"(?m)^<!-- bench:(\w+) -->\n", text)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return {name: f"<!-- bench:{name} -->\n" + body.rstrip() + "\n" for name, body in pairs}


if __name__ == "__main__":
    sys.exit(main())
