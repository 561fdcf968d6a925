"""Shared fixtures: one migrated, seeded database per test run (per xdist worker), and
every test that uses it isolated in a transaction that is rolled back at its end.

QUOTAFLOW_TEST_BACKEND picks the database: "sqlite" (default, a temporary file)
or "postgresql" (a fresh database on QUOTAFLOW_TEST_POSTGRES_ADMIN_URL's server,
dropped at the end).

Isolation
---------
The ``app`` fixture migrates the database and loads the demo company once.  After that,
every test that uses ``app`` (directly or through ``client``, ``as_user`` or any fixture
built on them) runs inside a transaction on one connection that is rolled back when the
test ends, so each test starts from the pristine seeded demo and may change anything:

* per test module, the connection begins a transaction (module-scoped fixtures that write,
  such as a plan several tests read, land in it);
* per test, a SAVEPOINT inside it, rolled back at the end of the test;
* ``db.session`` (the app's scoped session, in the test and in requests made through
  ``app.test_client()``) is bound to that connection with SQLAlchemy's
  ``join_transaction_mode="create_savepoint"``: code under test may ``commit()`` and
  ``rollback()`` freely; each only ends the session's own SAVEPOINT.

While a test is isolated, anything that reaches the database through another connection
(``db.engine``, another thread using ``db.session``) is refused with an error: it could
neither see the test's uncommitted rows nor be rolled back with them.

Tests that need real commits seen by several connections (threads racing for a row lock,
a worker leasing with ``SKIP LOCKED``, a subprocess or a live server reading the database)
opt out with the ``committing`` marker::

    @pytest.mark.committing
    def test_two_workers_race(app, committing_database): ...

    pytestmark = pytest.mark.committing      # a whole module

A committing test gets a throwaway copy of the pristine seeded database of its own
(``committing_database`` is its URL; ``app.config["DATABASE_URL"]`` and ``db`` point at it
for the test), commits for real, and the copy is dropped afterwards.  Module-scoped
fixtures that write are not visible to committing tests (they live in the module's
transaction on the shared database): give a committing test function-scoped fixtures.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from support import DEMO_PASSWORD, sign_in

from quotaflow.i18n import compile_catalogs

POSTGRES_ADMIN_URL = os.environ.get(
    "QUOTAFLOW_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "committing: the test commits for real, on a throwaway copy of the seeded database "
        "(see tests/conftest.py)")


def postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """PostgreSQL is part of the product's contract: CI demands it (QUOTAFLOW_REQUIRE_POSTGRES=1)."""
    if not postgres_available():
        if os.environ.get("QUOTAFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but not reachable at {POSTGRES_ADMIN_URL}")
        pytest.skip("PostgreSQL not reachable")
    return POSTGRES_ADMIN_URL


def _postgres_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def temporary_postgres_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """Create a PostgreSQL database (empty, or a copy of ``template``); drop it when the block ends."""
    name = f"qf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        copy = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield _postgres_url(admin_url, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fresh_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    with temporary_postgres_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    backend = os.environ.get("QUOTAFLOW_TEST_BACKEND", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'quotaflow.db'}"
    elif backend == "postgresql":
        if not postgres_available():
            pytest.exit(f"QUOTAFLOW_TEST_BACKEND=postgresql but {POSTGRES_ADMIN_URL} is unreachable", 3)
        with temporary_postgres_database(POSTGRES_ADMIN_URL) as url:
            yield url
    else:
        pytest.exit(f"unknown QUOTAFLOW_TEST_BACKEND {backend!r} (sqlite or postgresql)", 3)


# -- the pristine seeded database, and throwaway copies of it --------------------------------------

class Pristine:
    """A frozen copy of the freshly seeded database that committing tests copy from:
    a file beside it on SQLite, a template database on PostgreSQL."""

    def __init__(self, url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.url = url
        self.tmp_path_factory = tmp_path_factory
        if url.startswith("sqlite"):
            self.file = Path(tmp_path_factory.mktemp("pristine")) / "pristine.db"
            source = sqlite3.connect(url.removeprefix("sqlite:///"))
            target = sqlite3.connect(self.file)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
            self.template = None
        else:
            self.template = f"qf_tpl_{uuid.uuid4().hex[:12]}"
            admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.template}" TEMPLATE "{url.rsplit("/", 1)[1]}"'))
            admin.dispose()

    @contextmanager
    def copy(self) -> Iterator[str]:
        """A database of its own holding the seeded demo, removed when the block ends."""
        if self.template is None:
            target = Path(self.tmp_path_factory.mktemp("committing")) / "quotaflow.db"
            shutil.copyfile(self.file, target)
            yield f"sqlite:///{target}"
        else:
            with temporary_postgres_database(POSTGRES_ADMIN_URL, template=self.template) as url:
                yield url

    def drop(self) -> None:
        if self.template is not None:
            admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
            admin.dispose()


class Isolation:
    """The state of the isolation machinery (one per test run)."""

    def __init__(self) -> None:
        self.pristine: Pristine | None = None
        self.connection: Connection | None = None
        #: the connection ``db.session`` joins while a module transaction is open
        self.joined: Connection | None = None
        #: True while an isolated test runs: other connections to the database are refused
        self.guarding = False
        self.owner: int | None = None


ISOLATION = Isolation()

OUTSIDE_MESSAGE = (
    "this test is isolated in a transaction (tests/conftest.py) but reached the database {how}; "
    "such a connection can neither see the test's uncommitted rows nor be rolled back with "
    "them. Use db.session, or mark the test @pytest.mark.committing.")


def _refuse_outside(*_args: Any) -> None:
    if ISOLATION.guarding:
        raise RuntimeError(OUTSIDE_MESSAGE.format(how="through db.engine (another connection)"))


def _refuse_other_threads(*_args: Any) -> None:
    if ISOLATION.guarding and threading.get_ident() != ISOLATION.owner:
        raise RuntimeError(OUTSIDE_MESSAGE.format(how="from another thread"))


def _configure(url: str) -> None:
    """Point ``db`` at ``url`` (a new engine), guarded against use during isolated tests."""
    from quotaflow.store import db

    db.configure(url)
    event.listen(db.engine, "before_cursor_execute", _refuse_outside)


def _join(connection: Connection | None) -> None:
    """Bind ``db.session`` to ``connection`` (its sessions work in SAVEPOINTs), or, given None,
    back to ``db.engine``."""
    from quotaflow.store import db

    db.session.remove()
    if connection is None:
        db.session.session_factory.kw.pop("join_transaction_mode", None)  # the app's default
        db.session.configure(bind=db.engine)
    else:
        db.session.configure(bind=connection, join_transaction_mode="create_savepoint")


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app over a migrated database holding the demo company."""
    from quotaflow import create_app
    from quotaflow.services.seeding import load_demo
    from quotaflow.store import db
    from quotaflow.store.migrate import upgrade

    compile_catalogs()
    instance = tmp_path_factory.mktemp("instance")
    os.environ["QUOTAFLOW_INSTANCE_PATH"] = str(instance)
    application = create_app({
        "DATABASE_URL": database_url,
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "LOGIN_MAX_FAILURES": 5,
    })
    upgrade(database_url)
    with application.app_context():
        load_demo(db.session, password=DEMO_PASSWORD)
    db.session.remove()
    db.engine.dispose()  # a PostgreSQL template must have no connections
    ISOLATION.pristine = Pristine(database_url, tmp_path_factory)
    _configure(database_url)
    try:
        yield application
    finally:
        ISOLATION.pristine.drop()
        ISOLATION.pristine = None


def _begin_explicitly(engine: Engine) -> None:
    """pysqlite begins transactions on its own terms and breaks SAVEPOINTs; take BEGIN over
    (SQLAlchemy's pysqlite recipe "Serializable isolation / Savepoints / Transactional DDL")."""

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


@pytest.fixture(scope="session")
def _isolation_connection(app: Any, database_url: str) -> Iterator[Connection]:
    """The one connection isolated tests run on."""
    from quotaflow.store.db import make_engine

    engine = make_engine(database_url)
    if database_url.startswith("sqlite"):
        _begin_explicitly(engine)
    event.listen(engine, "before_cursor_execute", _refuse_other_threads)
    connection = engine.connect()
    ISOLATION.connection = connection
    try:
        yield connection
    finally:
        ISOLATION.connection = None
        connection.close()
        engine.dispose()


def _uses_database(item: pytest.Item) -> bool:
    return "app" in getattr(item, "fixturenames", ())


def _committing(item: pytest.Item) -> bool:
    return item.get_closest_marker("committing") is not None


@pytest.fixture(scope="module", autouse=True)
def _module_transaction(request: pytest.FixtureRequest) -> Iterator[None]:
    """A transaction for the module's tests (and its module-scoped fixtures), rolled back after."""
    if not any(_uses_database(item) for item in request.session.items if item.path == request.path):
        yield
        return
    connection = request.getfixturevalue("_isolation_connection")
    outer = connection.begin()
    ISOLATION.joined = connection
    ISOLATION.owner = threading.get_ident()
    _join(connection)
    try:
        yield
    finally:
        _join(None)
        ISOLATION.joined = None
        outer.rollback()


@pytest.fixture(autouse=True)
def _test_transaction(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test that uses the database runs in a SAVEPOINT rolled back at its end
    (a ``committing`` test gets a database of its own instead)."""
    if not _uses_database(request.node):
        yield
        return
    if _committing(request.node):
        request.getfixturevalue("committing_database")
        yield
        return
    from quotaflow.store import db

    connection = ISOLATION.joined
    assert connection is not None, "the module transaction is missing"
    savepoint = connection.begin_nested()
    _join(connection)
    ISOLATION.guarding = True
    try:
        yield
    finally:
        ISOLATION.guarding = False
        db.session.remove()
        if savepoint.is_active:
            savepoint.rollback()


@pytest.fixture
def committing_database(app: Any) -> Iterator[str]:
    """For ``committing`` tests: the URL of a throwaway copy of the pristine seeded database,
    which ``db`` and ``app.config["DATABASE_URL"]`` point at for the test."""
    assert ISOLATION.pristine is not None
    shared = app.config["DATABASE_URL"]
    with ISOLATION.pristine.copy() as url:
        _join(None)
        _configure(url)
        app.config["DATABASE_URL"] = url
        _join(None)
        try:
            yield url
        finally:
            app.config["DATABASE_URL"] = shared
            _configure(shared)
            _join(ISOLATION.joined)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def as_user(app):
    """A factory: ``as_user("head.east")`` gives a signed-in test client."""

    def make(username: str):
        return sign_in(app.test_client(), username)

    return make


@pytest.fixture
def inputs_open(app):
    """Input changes apply directly after publication as well (the confirmation policy's
    ``input_changes_after_publish: "open"``), for tests of a write path itself: the demo
    quarter has a published plan, so a region head's or team lead's change of their own
    inputs would otherwise await approval (tests/security/test_input_governance.py)."""
    import copy

    from quotaflow.services import input_governance, specs
    from quotaflow.store import db

    with app.app_context():
        active = specs.active_version(db.session, "confirmation_policy", "default")
        doc = copy.deepcopy(active.content)
        doc[input_governance.MODE_FIELD] = input_governance.OPEN
        specs.activate(db.session, specs.create_version(
            db.session, "confirmation_policy", "default", doc, None), None)
        db.session.commit()
