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
    import sys
    from pathlib import Path

    from reports.files import slug
    from reports.html import plots_folder, write_report
    from reports.load import load_results

    res = load_results(args.results)
    if res.kind == "study" and Path(args.out).suffix.lower() in (".html", ".htm") and Path(args.out).parent.is_dir():
        plots = plots_folder(res, args.out)
        policies = list(res.tables["summary"]["policy"])
        if not all((plots / f"roofline_{slug(p)}.png").is_file() for p in policies):
            from sim.study.output import draw_rooflines

            try:  # the rooflines need the model: redraw them from the study's workload, machine and configs
                draw_rooflines(res.info, res.tables["configs"], plots)
            except (ValueError, OSError) as exc:
                print(f"dsqsim: note: roofline plots not redrawn: {str(exc).splitlines()[0]}", file=sys.stderr)
    path = write_report(res, args.out, title=args.title)
    print(f"report: {path}")
    return 0
