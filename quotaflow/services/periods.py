"""Which period a page shows: one rule for every page.

The planning period is the latest one (by start date); a ``period`` code picks another.
An unknown code, or no period at all, is a :class:`NotFound`.
"""

from __future__ import annotations

from quotaflow.errors import NotFound
from quotaflow.services.uow import Context
from quotaflow.store import queries
from quotaflow.store.models import Period


def periods(ctx: Context) -> list[Period]:
    """Every period, oldest first."""
    return queries.periods(ctx.session)


def chosen_period(ctx: Context, code: str | None) -> tuple[Period, list[Period]]:
    """The period named by ``code`` (else the planning period) and all periods, oldest first."""
    found = queries.periods(ctx.session)
    if not found:
        raise NotFound("not_found")
    if not code:
        return found[-1], found
    chosen = next((p for p in found if p.code == code), None)
    if chosen is None:
        raise NotFound("not_found")
    return chosen, found


def planning_period(ctx: Context) -> Period:
    return chosen_period(ctx, None)[0]
