"""Shared fixtures: one migrated, seeded database per test run.

The backend comes from QUOTAFLOW_TEST_DATABASE_URL (PostgreSQL in CI's second
pass); without it, a temporary SQLite file is used.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from quotaflow.i18n import compile_catalogs
from support import DEMO_PASSWORD, sign_in

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


@pytest.fixture
def fresh_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """An empty PostgreSQL database, dropped afterwards."""
    name = f"qf_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return os.environ.get("QUOTAFLOW_TEST_DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'quotaflow.db'}"
    )


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The app over a migrated database holding the demo company."""
    from quotaflow import create_app
    from quotaflow.services.seeding import load_demo
    from quotaflow.store import db
    from quotaflow.store.migrate import downgrade, upgrade

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
    if not database_url.startswith("sqlite"):
        downgrade(database_url, "base")  # a reused CI database starts empty
    upgrade(database_url)
    with application.app_context():
        load_demo(db.session, password=DEMO_PASSWORD)
    return application


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()


@pytest.fixture
def as_user(app):  # noqa: ANN001, ANN201
    """A factory: ``as_user("head.east")`` gives a signed-in test client."""

    def make(username: str):  # noqa: ANN202
        return sign_in(app.test_client(), username)

    return make

