"""Which period a page shows: one rule for every page.

The planning period is the latest one (by start date); a ``period`` code in the request
picks another. An unknown code, or no period at all, is a 404.
"""

from __future__ import annotations

from flask import abort

from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import Period


def chosen_period(code: str | None) -> tuple[Period, list[Period]]:
    """The period named by ``code`` (else the planning period) and all periods, oldest first."""
    periods = q.periods(db.session)
    if not periods:
        abort(404)
    if not code:
        return periods[-1], periods
    chosen = next((p for p in periods if p.code == code), None)
    if chosen is None:
        abort(404)
    return chosen, periods


def planning_period() -> Period:
    return chosen_period(None)[0]
