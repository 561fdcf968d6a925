"""Which period a page shows: one rule for every page.

The planning period is the latest one (by start date); a ``period`` code picks another.
An unknown code, or no period at all, is a :class:`NotFound`.
"""

from __future__ import annotations

from quotaflow import messages
from quotaflow.errors import NotFound
from quotaflow.messages import _l
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


# -- a period named in an API request or a command ------------------------------------------

class PeriodNotFound(NotFound):
    domain = "periods"


messages.register("periods", {
    "not_found": _l("There is no period %(code)s."),
    "no_periods": _l("There are no periods yet."),
})


def period(ctx: Context, code: str | None, pointer: str = "/period") -> Period:
    """The period ``code`` (else the planning period), refusing with where it was named."""
    found = queries.periods(ctx.session)
    if not found:
        raise PeriodNotFound("no_periods", pointer)
    if code is None:
        return found[-1]
    chosen = next((p for p in found if p.code == code), None)
    if chosen is None:
        raise PeriodNotFound("not_found", pointer, code=code)
    return chosen


def current_period(ctx: Context, code: str | None = None) -> Period:
    """The period ``code``, else the one holding today, else the latest (the alert scan)."""
    if code:
        return period(ctx, code)
    today = ctx.now.date()
    found = queries.periods(ctx.session)
    chosen = next((p for p in found if p.start_date <= today <= p.end_date),
                  found[-1] if found else None)
    if chosen is None:
        raise PeriodNotFound("no_periods", "/period")
    return chosen
