"""Each test that uses the database runs in a transaction rolled back at its end
(tests/conftest.py): what one test commits, the next one never sees.  The tests run in
file order and depend on it on purpose; they pass on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, func, select

from quotaflow.services.seeding import add_period
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import Period, User

CODE = "1999Q1"  # a period the demo does not have


@pytest.fixture(scope="module")
def module_user(app) -> str:
    """Written by a module-scoped fixture: kept for the module's tests, gone after it."""
    with app.app_context():
        db.session.add(User(username="isolation.module", display_name="Module", password_hash="x"))
        db.session.commit()
    return "isolation.module"


def _periods() -> int:
    return db.session.scalar(select(func.count()).select_from(Period))


def test_a_test_commits_a_period_and_a_request_renames_a_user(app, as_user) -> None:
    with app.app_context():
        before = _periods()
        add_period(db.session, CODE, dt.date(1999, 1, 1), dt.date(1999, 3, 31))
        db.session.commit()
        db.session.rollback()  # ends nothing but the session's own savepoint
        assert q.period_by_code(db.session, CODE) is not None
        assert _periods() == before + 1
    client = as_user("admin")  # a request in the same test sees the commit, and can write
    assert client.get("/").status_code == 200
    with app.app_context():
        user = q.user_by_username(db.session, "head.east")
        user.display_name = "Renamed by a test"
        db.session.commit()
    with app.app_context():
        assert q.user_by_username(db.session, "head.east").display_name == "Renamed by a test"


def test_the_next_test_starts_from_the_seeded_demo(app) -> None:
    with app.app_context():
        assert q.period_by_code(db.session, CODE) is None
        assert q.user_by_username(db.session, "head.east").display_name != "Renamed by a test"


def test_the_shared_database_never_saw_the_commit(app, database_url) -> None:
    """Another connection (outside the isolation machinery) reads what is really committed."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(Period.id).where(Period.code == CODE)) is None
    finally:
        engine.dispose()


def test_a_module_fixture_is_seen_by_each_test_of_its_module(app, module_user) -> None:
    with app.app_context():
        user = q.user_by_username(db.session, module_user)
        assert user is not None
        db.session.delete(user)
        db.session.commit()


def test_and_a_test_deleting_it_does_not_take_it_from_the_next(app, module_user) -> None:
    with app.app_context():
        assert q.user_by_username(db.session, module_user) is not None


@pytest.mark.committing
def test_a_committing_test_commits_to_a_copy_of_its_own(app, committing_database, database_url) -> None:
    assert committing_database != database_url
    assert app.config["DATABASE_URL"] == committing_database
    with app.app_context():
        assert q.user_by_username(db.session, "isolation.module") is None  # not in the copy
        add_period(db.session, CODE, dt.date(1999, 1, 1), dt.date(1999, 3, 31))
        db.session.commit()
    engine = create_engine(committing_database)  # another connection sees the commit
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(Period.id).where(Period.code == CODE)) is not None
    finally:
        engine.dispose()


def test_after_a_committing_test_the_isolated_tests_are_back_on_the_shared_database(app) -> None:
    with app.app_context():
        assert q.period_by_code(db.session, CODE) is None


def test_an_isolated_test_may_not_reach_the_database_another_way(app) -> None:
    with app.app_context(), pytest.raises(RuntimeError, match="committing"), db.engine.connect() as conn:
        conn.scalar(select(func.count()).select_from(Period))
