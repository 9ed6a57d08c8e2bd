"""`dsqsim report`: one self-contained HTML report from a study directory or a sweep table."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write a self-contained HTML report (plots embedded) from a study directory or a sweep table",
        description="Render the plots (PNG and SVG) and tables of RESULTS into one HTML file.",
    )
    p.add_argument("results", metavar="RESULTS", help="a study directory (dsqsim study --out) or a sweep .parquet/.csv")
    p.add_argument("--out", default="report.html", help="HTML file to write (default %(default)s)")
    p.add_argument("--title", default=None, help="report title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reports.html import write_report

    path = write_report(args.results, args.out, title=args.title)
    print(f"report: {path}")
    return 0
