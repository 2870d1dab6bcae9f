"""Reporting sits above billing and generation: only the pages and the URL configuration
may import it, so a rollup can never become something money or jobs depend on."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The apps reporting reads; none of them may read it back.
BELOW = ("common", "accounts", "billing", "webhooks", "generation")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_nothing_below_reporting_imports_it():
    offenders = [
        str(path.relative_to(ROOT))
        for app in BELOW
        for path in (ROOT / app).rglob("*.py")
        if any(name.split(".")[0] == "reporting" for name in _imports(path))
    ]
    assert offenders == []


def test_billing_no_longer_reads_generation():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "billing").rglob("*.py")
        if any(name.split(".")[0] == "generation" for name in _imports(path))
    ]
    assert offenders == []
