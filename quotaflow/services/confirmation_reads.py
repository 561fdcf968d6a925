"""Reads of the two-way confirmation for pages: the item a head answers for, an appeal
the reader may see, a period's appeals. Anything out of reach is NotFound (no probing)."""

from __future__ import annotations

from quotaflow.errors import NotFound
from quotaflow.services import confirmation
from quotaflow.services.access import readable
from quotaflow.services.auth import actor
from quotaflow.services.uow import Context
from quotaflow.store import confirmation_queries
from quotaflow.store.confirmation_models import Appeal, ConfirmationItem


def item(ctx: Context, item_id: int) -> ConfirmationItem | None:
    return confirmation_queries.item(ctx.session, item_id)


def my_item(ctx: Context, item_id: int) -> ConfirmationItem:
    """The item, if the reader answers for it (the unit's acting head); else NotFound."""
    found = confirmation_queries.item(ctx.session, item_id)
    me = actor(ctx)
    if found is None or me is None or not confirmation.can_act(ctx.session, found, me):
        raise NotFound("not_found")
    return found


def appeal_bounds(ctx: Context, item: ConfirmationItem) -> confirmation.AppealBounds:
    """The range an appeal of ``item`` may ask for now (see :func:`confirmation.appeal_bounds`)."""
    return confirmation.appeal_bounds(ctx.session, item)


def item_for_unit(ctx: Context, period_id: int, unit_id: int) -> ConfirmationItem | None:
    return confirmation_queries.item_for_unit(ctx.session, period_id, unit_id)


def readable_appeal(ctx: Context, appeal_id: int) -> Appeal:
    """The appeal if the reader may read its unit; else NotFound."""
    found = confirmation_queries.appeal(ctx.session, appeal_id)
    return readable(ctx.principal, found)


def period_appeals(ctx: Context, period_id: int) -> list[Appeal]:
    return confirmation_queries.period_appeals(ctx.session, period_id)
