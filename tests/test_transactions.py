"""One transaction owner: only the unit of work (services/uow.py) commits or rolls back."""

from __future__ import annotations

import ast
from pathlib import Path

import quotaflow

ROOT = Path(quotaflow.__file__).parent
OWNER = Path("services/uow.py")
#: Alembic's migration environment runs its own transaction, outside the application.
OUTSIDE = {Path("store/migrations/env.py")}


def _calls(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in names]


def test_only_the_unit_of_work_commits_or_rolls_back():
    found = [call for path in sorted(ROOT.rglob("*.py"))
             if path.relative_to(ROOT) not in {OWNER, *OUTSIDE}
             for call in _calls(path, {"commit", "rollback"})]
    assert found == []


def test_the_scan_sees_the_owner_s_own_calls():
    # The walk finds calls however they are spelt (session.commit(), sp.rollback(), ...).
    assert len(_calls(ROOT / OWNER, {"commit", "rollback"})) >= 2


def test_nobody_opens_a_raw_transaction():
    found = [call for path in sorted(ROOT.rglob("*.py"))
             if path.relative_to(ROOT) not in OUTSIDE
             for call in _calls(path, {"transaction", "begin_nested"})
             if path.relative_to(ROOT) != OWNER]
    assert found == []
