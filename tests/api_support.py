"""Helpers of the API tests (importable as ``api_support``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update

from quotaflow.store import db
from quotaflow.store.models import User

#: The source ids of the actuals the API tests send (removed after each module).
ACTUALS_SOURCE_IDS = ("openapi-check", "openapi-file", "api-file-1", "x")


def day(period_code: str, day_of_period: int = 5) -> str:
    """A date inside a test period (``fresh_period`` makes Q3: July to September), so the
    demo's own 2026Q4 actuals stay as other tests expect them."""
    return f"{period_code[:4]}-07-{day_of_period:02d}"


def deactivate(app, usernames: Iterable[str]) -> None:
    """Switch off accounts a test made: grants of inactive users count nowhere (heads,
    alert recipients), so the shared demo company is as it was for the other tests."""
    with app.app_context():
        db.session.execute(update(User).where(User.username.in_(list(usernames)))
                           .values(active=False))
        db.session.commit()


def remove_actuals(app, source_ids: Iterable[str]) -> None:
    """Delete the actuals a test stored (by their source ids): results in the tests' own
    periods would otherwise become the history the demo's pacing curve is learnt from."""
    from sqlalchemy import delete

    from quotaflow.store.tracking_models import Actual

    with app.app_context():
        db.session.execute(delete(Actual).where(Actual.source_id.in_(list(source_ids))))
        db.session.commit()
