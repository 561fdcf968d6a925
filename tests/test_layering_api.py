"""The API (quotaflow/api) and the CLI (quotaflow/cli.py) only translate HTTP or arguments:
they import no store module and never end a transaction themselves (services/ does).

Read from the source with ``ast``, so an import inside a function or under
``TYPE_CHECKING`` counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "quotaflow"
FILES = sorted([*(ROOT / "api").glob("*.py"), ROOT / "cli.py"])
#: Calls that end or open a transaction: only services/uow.py owns them.
TRANSACTION_CALLS = frozenset({"commit", "rollback", "transaction", "begin", "begin_nested"})


def _store_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[:2] == ["quotaflow", "store"]]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[:2] == ["quotaflow", "store"]:
                found.append(node.module)
            elif parts == ["quotaflow"]:
                found += [f"quotaflow.{a.name}" for a in node.names if a.name == "store"]
    return found


def _transaction_calls(tree: ast.AST) -> list[str]:
    return [f"line {node.lineno}: .{node.func.attr}()" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in TRANSACTION_CALLS]


def test_the_files_are_found() -> None:
    assert ROOT / "cli.py" in FILES and len(FILES) > 3


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_no_store_module(path: Path) -> None:
    assert _store_imports(ast.parse(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_ends_no_transaction(path: Path) -> None:
    assert _transaction_calls(ast.parse(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("source", [
    "from quotaflow.store import db",
    "import quotaflow.store.queries",
    "from quotaflow import store",
    "def f():\n    from quotaflow.store.models import User",
])
def test_the_check_sees_store_imports(source: str) -> None:
    assert _store_imports(ast.parse(source))


@pytest.mark.parametrize("source", ["db.session.commit()", "session.rollback()",
                                    "with db.transaction() as s:\n    pass"])
def test_the_check_sees_transactions(source: str) -> None:
    assert _transaction_calls(ast.parse(source))
