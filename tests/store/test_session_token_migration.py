"""Migration 0011 on a database with accounts and tokens in it: tokens made before
expiry existed expire 90 days after their creation, every session version starts at 0,
and the downgrade works while other rows refer to ``users`` (SQLite cannot copy it)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from quotaflow.store.migrate import downgrade, upgrade


def _upgrade_with_a_token(url: str) -> tuple[list, list]:
    upgrade(url, "0010")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (username, display_name, password_hash, "
                              "locale, active, created_at) VALUES ('erp.owner', 'Owner', 'x', "
                              "'zh', true, '2026-01-01 00:00:00')"))
            owner = conn.execute(text("SELECT id FROM users")).scalar_one()
            conn.execute(text("INSERT INTO api_tokens (user_id, name, token_hash, created_at) "
                              "VALUES (:owner, 'old', 'h', '2026-01-02 03:04:05')"),
                         {"owner": owner})
        upgrade(url, "head")
        with engine.begin() as conn:
            tokens = [tuple(r) for r in conn.execute(text("SELECT name, expires_at FROM api_tokens"))]
            versions = [r[0] for r in conn.execute(text("SELECT session_version FROM users"))]
    finally:
        engine.dispose()
    downgrade(url, "0010")
    upgrade(url, "head")
    return tokens, versions


def _as_datetime(value: object) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_old_tokens_get_an_expiry_and_the_downgrade_works(tmp_path, request,
                                                          backend: str) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    tokens, versions = _upgrade_with_a_token(url)
    assert [(name, _as_datetime(at)) for name, at in tokens] == [
        ("old", dt.datetime(2026, 4, 2, 3, 4, 5))]
    assert versions == [0]
