"""Which period a page, the API or the CLI works on: one rule for all of them.

A ``period`` code picks a period. Without one it is the company's *planning period*, a
stored choice that HRBP or an admin makes (:func:`set_planning_period`, audited), so
adding next year's period does not move every page to it. Until a choice is made (a fresh
install) the only period is the planning period; with several and none chosen the answer
is a refusal asking for the choice. An unknown code, or no period at all, is a
:class:`NotFound`. The alert scan alone defaults to the period holding today
(:func:`current_period`).
"""

from __future__ import annotations

from typing import Any

from quotaflow import messages
from quotaflow.errors import Forbidden, NotFound
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services.auth import actor
from quotaflow.services.uow import Context, use_case
from quotaflow.store import queries
from quotaflow.store.models import Period


class PeriodNotFound(NotFound):
    domain = "periods"
    CODES = messages.register(domain, {
        "not_found": _l("There is no period %(code)s."),
        "no_periods": _l("There are no periods yet."),
        "no_planning_period": _l("No planning period is chosen and there are several periods: "
                                 "HRBP or an admin chooses one on the configuration page "
                                 "(or name a period)."),
    })


def periods(ctx: Context) -> list[Period]:
    """Every period, oldest first."""
    return queries.periods(ctx.session)


def _planning(ctx: Context, found: list[Period], pointer: str) -> Period:
    """The chosen planning period; else the only period; else a refusal asking for a choice."""
    chosen = queries.planning_period(ctx.session)
    if chosen is not None:
        return chosen
    if len(found) == 1:
        return found[0]
    raise PeriodNotFound("no_planning_period", pointer)


def chosen_period(ctx: Context, code: str | None) -> tuple[Period, list[Period]]:
    """The period named by ``code`` (else the planning period) and all periods, oldest first.

    A page's reading: an unknown code is the pages' plain 404."""
    found = queries.periods(ctx.session)
    if not found:
        raise NotFound("not_found")
    if not code:
        return _planning(ctx, found, "/period"), found
    chosen = next((p for p in found if p.code == code), None)
    if chosen is None:
        raise NotFound("not_found")
    return chosen, found


def planning_period(ctx: Context) -> Period:
    return chosen_period(ctx, None)[0]


def period(ctx: Context, code: str | None, pointer: str = "/period") -> Period:
    """The period ``code`` (else the planning period), refusing with where it was named."""
    found = queries.periods(ctx.session)
    if not found:
        raise PeriodNotFound("no_periods", pointer)
    if code is None:
        return _planning(ctx, found, pointer)
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


# -- the planning period: a company choice -------------------------------------------------

def planning_code(ctx: Context) -> str | None:
    """The chosen planning period's code (None while none is chosen): what selectors mark."""
    chosen = queries.planning_period(ctx.session)
    return chosen.code if chosen is not None else None


def planning_choice(ctx: Context) -> dict[str, Any]:
    """What the planning period is and whether it was chosen: ``{"period", "chosen",
    "periods"}`` (``period`` None when several periods wait for a choice)."""
    found = queries.periods(ctx.session)
    chosen = queries.planning_period(ctx.session)
    effective = chosen or (found[0] if len(found) == 1 else None)
    return {"period": effective.code if effective else None, "chosen": chosen is not None,
            "periods": [p.code for p in found]}


@use_case
def set_planning_period(ctx: Context, code: str | None) -> Period:
    """Make ``code`` the company's planning period (HRBP, admin); audited before/after."""
    if ctx.principal is not None and not ctx.principal.can("period.plan"):
        raise Forbidden("forbidden")
    if not isinstance(code, str) or not code.strip():
        raise PeriodNotFound("not_found", "/period", code=str(code or ""))
    chosen = period(ctx, code.strip())
    before = queries.planning_period(ctx.session)
    if before is not None and before.id == chosen.id:
        return chosen
    queries.set_planning_period(ctx.session, chosen)
    audit.record(ctx.session, actor(ctx), "set_planning_period", "company_settings", "planning_period",
                 before={"period": before.code if before else None}, after={"period": chosen.code},
                 remote_addr=ctx.remote_addr)
    return chosen
