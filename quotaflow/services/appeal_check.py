"""The live range check of an appeal (pages and API): what the caller's item may ask for
and whether a requested target fits. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quotaflow.services import confirmation, confirmation_reads
from quotaflow.services.confirmation import AppealBounds, ConfirmationError
from quotaflow.services.uow import Context


@dataclass(frozen=True)
class AppealCheck:
    """The item's bounds, the requested amount (None: nothing entered or refused), the
    change from the allocated target, and why the request is refused (None: it fits)."""

    bounds: AppealBounds
    requested: int | None
    change: int | None
    error: ConfirmationError | None


def appeal_check(ctx: Context, item_id: int, requested: Any) -> AppealCheck:
    """Check ``requested`` against the range of the caller's own item (NotFound when the
    caller does not answer for it)."""
    item = confirmation_reads.my_item(ctx, item_id)
    bounds = confirmation.appeal_bounds(ctx.session, item)
    try:
        amount = confirmation.check_amount(bounds, requested)
    except ConfirmationError as exc:
        return AppealCheck(bounds, None, None, exc)
    return AppealCheck(bounds, amount, None if amount is None else amount - bounds.allocated,
                       None)
