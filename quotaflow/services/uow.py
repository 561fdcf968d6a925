"""The one door's frame: a use case's context and the unit of work that owns its transaction.

Every state change and every read a page, the API or the CLI makes is a function in
``services/`` that takes a :class:`Context` first and is decorated with
:func:`use_case`::

    @use_case
    def acknowledge_alert(ctx: Context, alert_id: int) -> Alert:
        alert = tracking_store.alert(ctx.session, alert_id)   # SQL lives in store/
        if alert is None or not ctx.principal.can("unit.read", alert.unit.path):
            raise NotFound("not_found")                        # one error type
        ...                                                   # audit + outbox here too
        return alert

The outermost unit of work commits when the function returns and rolls back on any
error; audit entries and outbox events added in it commit with the change they describe.
A use case called from another joins it as a SAVEPOINT, so a refusal the caller catches
undoes only the inner part. Nothing outside this module calls ``commit`` or ``rollback``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import wraps
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from quotaflow.store.db import begin_write

if TYPE_CHECKING:
    from quotaflow.services.access import Principal

P = ParamSpec("P")
R = TypeVar("R")
_DEPTH = "quotaflow.uow_depth"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Context:
    """Who acts, when, in which language, on which session: what every use case takes."""

    session: Session
    principal: Principal | None = None
    now: dt.datetime = field(default_factory=utcnow)
    locale: str = "zh"
    remote_addr: str | None = None

    @property
    def user_id(self) -> int | None:
        return self.principal.user_id if self.principal is not None else None

    @property
    def username(self) -> str:
        return self.principal.username if self.principal is not None else "system"

    def as_system(self) -> Context:
        """The same session and time, acting as the system (schedulers, flow actions)."""
        return replace(self, principal=None)


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """Commit the block as one transaction, or none of it; nested blocks are SAVEPOINTs."""
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        if depth:
            begin_write(session)
            with session.begin_nested():
                yield session
        else:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        session.info[_DEPTH] = depth


@contextmanager
def discarded(session: Session) -> Iterator[Session]:
    """Run the block and undo whatever it wrote (a preview, a what-if): a SAVEPOINT rolled
    back inside a unit of work, else the session's whole transaction."""
    if session.info.get(_DEPTH, 0):
        savepoint = session.begin_nested()
        try:
            yield session
        finally:
            savepoint.rollback()
    else:
        try:
            yield session
        finally:
            session.rollback()


def in_unit_of_work(session: Session) -> bool:
    return session.info.get(_DEPTH, 0) > 0


def use_case(fn: Callable[Concatenate[Context, P], R]) -> Callable[Concatenate[Context, P], R]:
    """Run ``fn(ctx, ...)`` in one unit of work on ``ctx.session``."""

    @wraps(fn)
    def run(ctx: Context, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with unit_of_work(ctx.session):
            return fn(ctx, *args, **kwargs)

    run.qf_use_case = True  # type: ignore[attr-defined]
    return run


def system_context(session: Session, now: dt.datetime | None = None, **kwargs: Any) -> Context:
    """A context for the CLI, schedulers and workers that act as the system."""
    return Context(session=session, principal=None, now=now or utcnow(), **kwargs)
