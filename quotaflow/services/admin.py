"""The Flask-Admin pages' door to the store: their model views are built here (the
records and the session come from ``store/admin_models.py``), and the steps their forms
take on a record (a new unit's place, a period's weeks, the audit snapshot) are these
functions, so ``web/admin.py`` imports neither models nor a session.

Flask-Admin's own views commit each form they save (its design); every change is audited
in that same transaction by ``web/admin.py``'s hooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from quotaflow.services.seeding import period_weeks
from quotaflow.store import admin_models


def add_model_views(admin: Any, views: Sequence[tuple[str, type[Any], dict[str, Any]]]) -> None:
    """Add ``view_class(model, session, **options)`` to ``admin`` for each
    ``(model name, view class, options)``; names are those of ``admin_models.MODELS``."""
    session = admin_models.session()
    for name, view_class, options in views:
        admin.add_view(view_class(admin_models.MODELS[name], session, **options))


def snapshot(model: Any, secret: Iterable[str] = ()) -> dict[str, Any]:
    """A record's columns as JSON-ready values for the audit log, secrets left out."""
    return admin_models.snapshot(model, secret)


def table_name(model_class: type[Any]) -> str:
    return admin_models.table_name(model_class)


def identity(model: Any) -> str:
    return admin_models.identity(model)


def place_new_unit(session: Session, unit: Any) -> bool:
    """A new unit's depth and path below its parent; False if no org level lies below."""
    return admin_models.place_new_unit(session, unit)


def set_period_weeks(session: Session, period: Any) -> None:
    """The period's ISO weeks rebuilt from its dates (unchanged if they still match)."""
    admin_models.set_weeks(session, period, period_weeks(period.start_date, period.end_date))
