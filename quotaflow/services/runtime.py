"""The database's lifecycle for the CLI and scripts, so that cli.py imports no store module.

``configure(url)`` binds the session factory to a database, ``open_session()`` gives the
session a command works on (pass it to :func:`quotaflow.services.uow.system_context`),
``close_session()`` ends it; ``upgrade``/``downgrade``/``current`` run the migrations.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from quotaflow.services.uow import Context, system_context
from quotaflow.store import db, migrate


def configure(url: str) -> None:
    db.configure(url)


def open_session() -> Session:
    """The current (scoped) session: the request's in the app, the command's in the CLI."""
    return db.session()


def close_session() -> None:
    db.session.remove()


def system(now: dt.datetime | None = None, **kwargs: object) -> Context:
    """A system context on the current session (CLI commands, schedulers)."""
    return system_context(open_session(), now, **kwargs)  # type: ignore[arg-type]


def upgrade(url: str, revision: str = "head") -> None:
    migrate.upgrade(url, revision)


def downgrade(url: str, revision: str) -> None:
    migrate.downgrade(url, revision)


def current(url: str) -> None:
    migrate.current(url)


def is_empty(ctx: Context) -> bool:
    """Whether the database holds no org unit yet (nothing seeded)."""
    from quotaflow.services.units import root_unit

    return root_unit(ctx) is None
