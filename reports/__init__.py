"""Reports: tables, plots (headless matplotlib) and the self-contained HTML report. Reads results only.

`from reports import write_report, load_results` (imported lazily: `import reports` stays light).
"""

__all__ = ["load_results", "write_report"]


def __getattr__(name: str):
    if name == "write_report":
        from reports.html import write_report

        return write_report
    if name == "load_results":
        from reports.load import load_results

        return load_results
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
