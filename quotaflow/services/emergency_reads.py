"""The emergency recompute pages' reads: a request and its approval, the period's
requests, and a preview that never writes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from quotaflow.errors import NotFound
from quotaflow.services import emergency
from quotaflow.services.uow import Context, discarded
from quotaflow.store import flow_queries
from quotaflow.store.emergency_models import EmergencyRecompute
from quotaflow.store.flow_models import FlowInstance
from quotaflow.store.models import Period


def request_detail(ctx: Context, request_id: int
                   ) -> tuple[EmergencyRecompute, FlowInstance | None]:
    """A request and its approval instance (NotFound if there is no such request)."""
    try:
        found = emergency.get(ctx.session, request_id)
    except emergency.EmergencyError as exc:
        raise NotFound("not_found") from exc
    instance = (flow_queries.instance(ctx.session, found.flow_instance_id)
                if found.flow_instance_id else None)
    return found, instance


def requests(ctx: Context, period_id: int | None = None) -> list[EmergencyRecompute]:
    return emergency.requests(ctx.session, period_id)


def cities(ctx: Context) -> list[tuple[str, str]]:
    return emergency.cities(ctx.session)


def preview(ctx: Context, period: Period, *, cities: Iterable[Any] | None = None,
            unit_codes: Iterable[Any] | None = None, total: Any = None) -> emergency.Preview:
    """The recompute as it would be; whatever computing it wrote is undone."""
    with discarded(ctx.session):
        return emergency.preview(ctx.session, period, cities=cities, unit_codes=unit_codes,
                                 total=total)
