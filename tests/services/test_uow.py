"""The unit of work: the outermost block commits or rolls back; nested blocks are savepoints."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from quotaflow.errors import Conflict, Invalid, NotFound
from quotaflow.services.uow import Context, in_unit_of_work, unit_of_work, use_case
from quotaflow.store.db import make_engine


@pytest.fixture
def session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'uow.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    with Session(engine) as s:
        yield s
    engine.dispose()


def values(session: Session) -> list[int]:
    return [row[0] for row in session.execute(text("SELECT v FROM t ORDER BY v"))]


@use_case
def add(ctx: Context, value: int, *, fail: bool = False) -> int:
    ctx.session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
    if fail:
        raise Invalid("bad_value", "/v", value=value)
    return value


@use_case
def add_two(ctx: Context, first: int, second: int, *, fail_second: bool) -> None:
    add(ctx, first)
    with contextlib.suppress(Invalid):  # the caller handles the refusal: only its part is undone
        add(ctx, second, fail=fail_second)


def test_use_case_commits_on_success(session):
    ctx = Context(session=session)
    assert add(ctx, 1) == 1
    assert not in_unit_of_work(session)
    session.rollback()  # nothing left to undo: it was committed
    assert values(session) == [1]


def test_use_case_rolls_back_on_error(session):
    ctx = Context(session=session)
    with pytest.raises(Invalid) as refused:
        add(ctx, 2, fail=True)
    assert refused.value.pointer == "/v" and refused.value.status == 422
    assert values(session) == []


def test_nested_use_case_is_a_savepoint(session):
    add_two(Context(session=session), 3, 4, fail_second=True)
    assert values(session) == [3]
    add_two(Context(session=session), 5, 6, fail_second=False)
    assert values(session) == [3, 5, 6]


def test_outer_failure_undoes_inner_success(session):
    with pytest.raises(RuntimeError), unit_of_work(session):
        add(Context(session=session), 7)
        raise RuntimeError("boom")
    assert values(session) == []


def test_error_kinds_have_their_status():
    assert NotFound("not_found").status == 404
    assert Conflict("already_decided").status == 409
    assert Invalid("x").status == 422
