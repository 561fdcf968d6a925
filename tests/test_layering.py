"""The one door, checked on the source: pages (and, as they are converted, the API and
the CLI) import no store module and never end a transaction themselves.

Each rule lists the folders (or files) it covers: covering another one is one line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Where no module may import ``quotaflow.store`` (SQL lives in store/, reached via services/).
NO_STORE_IMPORTS: tuple[str, ...] = (
    "quotaflow/web",
    "quotaflow/api",
    "quotaflow/cli.py",
)
#: Where nothing calls ``commit()``, ``rollback()`` or ``db.transaction()``: use cases do.
NO_TRANSACTION_CALLS: tuple[str, ...] = (
    "quotaflow/web",
    "quotaflow/api",
    "quotaflow/cli.py",
)
TRANSACTION_METHODS = frozenset({"commit", "rollback", "transaction"})
#: Service modules whose SQL has moved to store/ query modules (by aggregate): they build
#: no statement themselves. Add a module here once it is clean.
CLEAN_OF_SQL: tuple[str, ...] = tuple(f"quotaflow/services/{name}.py" for name in (
    # flows, outbox, inbox, jobs, audit
    "audit", "flow_actions", "flow_reads", "flows", "inbox", "inbox_channel", "jobs",
    "outbox", "outbox_worker",
    # specs, plans, letters, confirmation and their neighbours
    "specs", "spec_kinds", "compiled", "forms", "bundle", "seeding", "letters",
    "letter_reads", "letter_pdf", "hr_export", "confirmation", "confirmation_reads",
    "alignment", "plans", "plan_reads", "plan_data", "simulator", "units", "periods",
    "users", "admin", "access",
    # tracking, alerts, org, emergency, spreadsheets
    "tracking", "actuals", "alert_scan", "alerts", "dashboards", "whatif", "org",
    "org_import", "emergency", "emergency_reads", "spreadsheets", "uploads",
    "upload_reader", "input_check", "commands",
    # accounts and input governance
    "auth", "account", "input_governance",
))
SQL_BUILDERS = frozenset({"select", "update", "delete", "insert", "text"})
#: Session methods that run a statement (``session.get`` and ``session.add`` may stay).
STATEMENT_RUNNERS = frozenset({"execute", "scalar", "scalars", "query", "exec_driver_sql"})


def modules(*places: str) -> Iterator[Path]:
    for place in places:
        path = ROOT / place
        yield from ([path] if path.suffix == ".py" else sorted(path.rglob("*.py")))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


#: The API stands beside the pages, not on top of them: what both need lives in http/ or
#: services/. Each rule: (folders, the package they must not import).
NOT_ON_EACH_OTHER: tuple[tuple[tuple[str, ...], str], ...] = (
    (("quotaflow/api", "quotaflow/http", "quotaflow/services", "quotaflow/cli.py"),
     "quotaflow.web"),
    (("quotaflow/web", "quotaflow/http", "quotaflow/services"), "quotaflow.api"),
)


def store_imports(tree: ast.AST, package: str = "quotaflow.store") -> list[tuple[int, str]]:
    """(line, module) of every import of ``package`` or a module inside it."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, n) for n in names
                  if n == package or n.startswith(f"{package}.")][:1]
    return found


def transaction_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, method) of every call ``<anything>.commit()``, ``.rollback()``, ``.transaction()``."""
    return [(node.lineno, node.func.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in TRANSACTION_METHODS]


def sql_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every call of a statement builder (select, update, delete, insert,
    text) imported from sqlalchemy: by name (``from sqlalchemy import select as s``) or
    through the module (``import sqlalchemy as sa; sa.select(...)``)."""
    builders: dict[str, str] = {}  # local name -> builder
    modules_: set[str] = set()  # local names bound to sqlalchemy or a module inside it
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "sqlalchemy" or node.module.startswith("sqlalchemy.")):
            for alias in node.names:
                if alias.name in SQL_BUILDERS:
                    builders[alias.asname or alias.name] = alias.name
                else:
                    modules_.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy" or alias.name.startswith("sqlalchemy."):
                    modules_.add(alias.asname or alias.name.split(".")[0])
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in builders:
            found.append((node.lineno, builders[func.id]))
        elif isinstance(func, ast.Attribute) and func.attr in SQL_BUILDERS:
            base = func.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules_:
                found.append((node.lineno, func.attr))
    return sorted(found)


def statement_runs(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, method) of every call ``<anything>.execute/scalar/scalars/query(...)``."""
    return [(node.lineno, node.func.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in STATEMENT_RUNNERS]


@pytest.mark.parametrize("path", list(modules(*CLEAN_OF_SQL)),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_clean_services_build_no_sql(path: Path) -> None:
    tree = _tree(path)
    assert sql_calls(tree) == [], (
        f"{path.relative_to(ROOT)} builds SQL: move the statement to a store/ query module")
    assert statement_runs(tree) == [], (
        f"{path.relative_to(ROOT)} runs a statement: call a named store/ query function")


@pytest.mark.parametrize("path", list(modules(*NO_STORE_IMPORTS)),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_store_imports(path: Path) -> None:
    assert store_imports(_tree(path)) == [], (
        f"{path.relative_to(ROOT)} imports the store: go through a function in services/")


@pytest.mark.parametrize(("path", "package"), [
    (path, package) for places, package in NOT_ON_EACH_OTHER for path in modules(*places)],
    ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v)
def test_pages_and_api_stand_beside_each_other(path: Path, package: str) -> None:
    assert store_imports(_tree(path), package) == [], (
        f"{path.relative_to(ROOT)} imports {package}: move what both need to http/ or services/")


@pytest.mark.parametrize("path", list(modules(*NO_TRANSACTION_CALLS)),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_transaction_calls(path: Path) -> None:
    assert transaction_calls(_tree(path)) == [], (
        f"{path.relative_to(ROOT)} ends a transaction: make the change a @use_case in services/")


def test_the_checks_see_what_they_forbid() -> None:
    """The rules catch each spelling, so an empty answer above means something."""
    source = ast.parse(
        "import quotaflow.store.models\n"
        "from quotaflow.store import db\n"
        "from quotaflow import store\n"
        "from quotaflow.services import plans\n"
        "db.session.commit()\n"
        "session.rollback()\n"
        "with db.transaction() as s: pass\n")
    assert [line for line, _ in store_imports(source)] == [1, 2, 3]
    assert transaction_calls(source) == [(5, "commit"), (6, "rollback"), (7, "transaction")]
    assert list(modules(*NO_STORE_IMPORTS)), "the folders exist"
    sql = ast.parse(
        "from sqlalchemy import select, update as upd\n"
        "import sqlalchemy as sa\n"
        "from sqlalchemy.dialects import postgresql\n"
        "def f(session):\n"
        "    from sqlalchemy import text\n"
        "    session.execute(select(X))\n"
        "    upd(X)\n"
        "    sa.delete(X)\n"
        "    postgresql.insert(X)\n"
        "    text('SELECT 1')\n"
        "    session.get(X, 1); outbox.select(1); delete(X)\n")
    assert sql_calls(sql) == [(6, "select"), (7, "update"), (8, "delete"), (9, "insert"),
                              (10, "text")]
    assert statement_runs(sql) == [(6, "execute")]
    assert all((ROOT / place).is_file() for place in CLEAN_OF_SQL), "the modules exist"
