"""Dependencies point one way: `workloads` (the model and trace data) and `hwmodels` import nothing from `sim` or
`reports`. Checked on the sources with `ast`, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("sim", "reports")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; relative imports stay inside the package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _offenders(package: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in sorted((ROOT / package).rglob("*.py"))
            for line, module in _imported_modules(path)
            if module.split(".")[0] in FORBIDDEN]


@pytest.mark.parametrize("package", ["workloads", "hwmodels"])
def test_package_imports_nothing_from_sim_or_reports(package: str) -> None:
    assert list((ROOT / package).rglob("*.py")), f"no sources found under {package}/"
    assert _offenders(package) == []


def test_the_check_sees_lazy_and_from_imports(tmp_path: Path) -> None:
    """Guards the test above: both import forms, inside a function, are found."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    import sim.formats\n    from reports.html import x\n    from . import y\n")
    assert [m for _, m in _imported_modules(src)] == ["sim.formats", "reports.html"]


def test_no_reference_package_left_under_workloads() -> None:
    assert not (ROOT / "workloads" / "reference").exists()
