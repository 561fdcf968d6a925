"""SQL lives in store/, by aggregate: the tracking, org, emergency and spreadsheet
services build no statement and run none themselves (they call named query functions
of quotaflow/store/). Checked on the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Service modules whose SQL moved to store/ (tracking_queries, alert_queries,
#: org_queries, emergency_queries, queries).
TRACKING_ORG_MODULES: tuple[str, ...] = tuple(
    f"quotaflow/services/{name}.py" for name in (
        "tracking", "actuals", "alert_scan", "alerts", "dashboards", "whatif", "org",
        "org_import", "emergency", "emergency_reads", "spreadsheets", "uploads",
        "upload_reader", "input_check", "commands"))

#: SQLAlchemy's statement builders (``sqlalchemy`` and ``sqlalchemy.sql``, any alias).
STATEMENT_BUILDERS = frozenset({"select", "update", "delete", "insert", "text"})
#: Session methods that run a statement (``session.get``/``add`` may stay in services).
STATEMENT_RUNNERS = frozenset({"execute", "scalar", "scalars", "query", "exec_driver_sql"})


def sql_in(source: str) -> list[tuple[int, str]]:
    """(line, what) of every statement built or run in ``source``."""
    tree = ast.parse(source)
    builders: set[str] = set()      # local names bound to a statement builder
    modules: set[str] = set()       # local names bound to a sqlalchemy module
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in STATEMENT_BUILDERS:
                    builders.add(alias.asname or alias.name)
                    found.append((node.lineno, f"imports sqlalchemy {alias.name}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    modules.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in builders:
            found.append((node.lineno, f"{func.id}(...)"))
        elif isinstance(func, ast.Attribute):
            base = func.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if func.attr in STATEMENT_BUILDERS and isinstance(base, ast.Name) \
                    and base.id in modules:
                found.append((node.lineno, f"{base.id}...{func.attr}(...)"))
            elif func.attr in STATEMENT_RUNNERS:
                found.append((node.lineno, f".{func.attr}(...)"))
    return sorted(found)


@pytest.mark.parametrize("module", TRACKING_ORG_MODULES)
def test_service_module_builds_and_runs_no_sql(module: str) -> None:
    path = ROOT / module
    assert sql_in(path.read_text(encoding="utf-8")) == [], f"SQL in {module}: move it to store/"


@pytest.mark.parametrize(("source", "expected"), [
    ("from sqlalchemy import select\nrows = session.scalars(select(Unit))\n",
     [(1, "imports sqlalchemy select"), (2, ".scalars(...)"), (2, "select(...)")]),
    ("import sqlalchemy as sa\nsa.update(Unit)\n", [(2, "sa...update(...)")]),
    ("from sqlalchemy.sql import text as t\nx = t('SELECT 1')\n",
     [(1, "imports sqlalchemy text"), (2, "t(...)")]),
    ("session.execute(stmt)\n", [(1, ".execute(...)")]),
    # Not SQL: a dict's update, a local helper called text, session.get / add.
    ("d.update({1: 2})\ndef text(n): return n\ntext('x')\nsession.get(U, 1)\nsession.add(u)\n",
     []),
])
def test_the_check_sees_sql(source: str, expected: list[tuple[int, str]]) -> None:
    """The detector itself: it finds each way of building or running a statement and
    nothing else (so a clean module above is clean, not unchecked)."""
    assert sql_in(source) == expected
