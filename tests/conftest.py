"""Shared fixtures: one migrated, seeded database per test run (per xdist worker).

QUOTAFLOW_TEST_BACKEND picks the database: "sqlite" (default, a temporary file)
or "postgresql" (a fresh database on QUOTAFLOW_TEST_POSTGRES_ADMIN_URL's server,
dropped at the end).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from support import DEMO_PASSWORD, sign_in

from quotaflow.i18n import compile_catalogs

POSTGRES_ADMIN_URL = os.environ.get(
    "QUOTAFLOW_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


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


@contextmanager
def temporary_postgres_database(admin_url: str) -> Iterator[str]:
    """Create an empty PostgreSQL database; drop it when the block ends."""
    name = f"qf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
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


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory):
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
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def as_user(app):
    """A factory: ``as_user("head.east")`` gives a signed-in test client."""

    def make(username: str):
        return sign_in(app.test_client(), username)

    return make

