"""Engine and session lifecycle, shared by the web app, the CLI and scripts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside a writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings QuotaFlow relies on for each backend."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class Database:
    """Owns the engine and a scoped session; ``init_app`` ties it to Flask."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session: scoped_session[Session] = scoped_session(
            sessionmaker(expire_on_commit=False)
        )

    def configure(self, url: str) -> None:
        if self.engine is not None:
            self.session.remove()
            self.engine.dispose()
        self.engine = make_engine(url)
        self.session.configure(bind=self.engine)

    def init_app(self, app: Any) -> None:
        self.configure(app.config["DATABASE_URL"])

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            self.session.remove()


def begin_write(session: Session) -> None:
    """Make sure the session's connection is inside a real transaction before a SAVEPOINT.

    pysqlite begins lazily, at the first write; a SAVEPOINT outside a transaction would
    start one that its RELEASE commits, out of the caller's hands. Beginning IMMEDIATE
    takes the write lock now (waiting up to busy_timeout) rather than upgrading a read
    snapshot later, which SQLite refuses at once when another writer went first.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.driver_connection
    if raw is not None and not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


db = Database()
