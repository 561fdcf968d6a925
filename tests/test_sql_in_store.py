"""SQL lives in store/, by aggregate: the listed service modules build no statement and run
none themselves; they call named query functions of quotaflow/store/*_queries.py.

``session.get(Model, id)`` and ``session.add(obj)`` may stay in services (no SQL is
written there); ``select``/``update``/``delete``/``insert``/``text`` and running a
statement (``execute``/``scalar``/``scalars``/``query``) may not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Service modules of specs, plans, letters, confirmation and their neighbours, checked
#: to hold no SQL. Covering another module is one line.
SPEC_PLAN_LETTER_MODULES: tuple[str, ...] = tuple(
    f"quotaflow/services/{name}.py" for name in (
        "specs", "spec_kinds", "compiled", "forms", "bundle", "seeding",
        "letters", "letter_reads", "letter_pdf", "hr_export",
        "confirmation", "confirmation_reads", "alignment",
        "plans", "plan_reads", "plan_data", "simulator",
        "units", "periods", "users", "admin", "access",
    ))
STATEMENT_BUILDERS = frozenset({"select", "update", "delete", "insert", "text"})
STATEMENT_RUNNERS = frozenset({"execute", "scalar", "scalars", "query"})


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def sql_in(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of every statement builder imported from SQLAlchemy, every call of one
    (``select(...)``, ``sa.select(...)``), and every ``<x>.execute/scalar/scalars/query(...)``."""
    found: list[tuple[int, str]] = []
    builders: set[str] = set()
    sqlalchemy_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in STATEMENT_BUILDERS:
                    builders.add(alias.asname or alias.name)
                    found.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.Import):
            sqlalchemy_names |= {alias.asname or alias.name for alias in node.names
                                 if alias.name.split(".")[0] == "sqlalchemy"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in builders:
            found.append((node.lineno, f"{func.id}()"))
        elif isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            if func.attr in STATEMENT_BUILDERS and owner in sqlalchemy_names:
                found.append((node.lineno, f"{owner}.{func.attr}()"))
            elif func.attr in STATEMENT_RUNNERS:
                found.append((node.lineno, f".{func.attr}()"))
    return sorted(found)


@pytest.mark.parametrize("place", SPEC_PLAN_LETTER_MODULES)
def test_no_sql_in_service(place: str) -> None:
    path = ROOT / place
    assert path.exists(), f"{place} is listed but gone: drop it from the list"
    assert sql_in(_tree(path)) == [], (
        f"{place} writes SQL: move it to a named query function in quotaflow/store/")


def test_the_check_sees_what_it_forbids() -> None:
    """Each spelling is caught, so an empty answer above means something."""
    source = ast.parse(
        "import sqlalchemy as sa\n"
        "from sqlalchemy import select, text as sql_text\n"
        "session.scalar(select(User))\n"
        "session.execute(sql_text('x'))\n"
        "sa.update(User)\n"
        "session.get(User, 1)\n"
        "session.add(user)\n"
        "audit.update({})\n")
    assert sql_in(source) == [
        (2, "import select"), (2, "import text"), (3, ".scalar()"), (3, "select()"),
        (4, ".execute()"), (4, "sql_text()"), (5, "sa.update()")]
