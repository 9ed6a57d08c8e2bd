"""Reports: tables, plots (headless matplotlib) and the self-contained HTML report. Reads results only."""
