"""How far a period's targets are agreed, from the confirmation's own records: time to
align (publish -> every commitment letter signed by both sides), dispute rate (appeals /
units) per level, groups open and settled, appeals by outcome."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from quotaflow.services.uow import Context
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import letter_queries, queries
from quotaflow.store.models import utcnow


@dataclass(frozen=True)
class LevelStats:
    level: str
    units: int
    items: int
    accepted: int
    pending: int
    appealed: int
    appeals: int
    dispute_rate: float | None
    groups_open: int
    groups_settled: int


@dataclass(frozen=True)
class Alignment:
    period_code: str
    published_at: dt.datetime | None
    aligned_at: dt.datetime | None
    elapsed: dt.timedelta | None  # to alignment, or so far
    levels: list[LevelStats]
    appeals_by_status: dict[str, int]
    letters: dict[str, int]


def period_alignment(ctx: Context, period: Any) -> Alignment:
    """The period's alignment as of now (pages and the API)."""
    return alignment(ctx.session, period)


def alignment(session: Session, period: Any, now: dt.datetime | None = None) -> Alignment:
    """How far the period's targets are agreed: from publishing to every commitment letter
    signed by both sides (from the records), dispute rate per level, groups, appeals."""
    now = now or utcnow()
    groups = cq.groups(session, period.id)
    items = cq.period_items(session, period.id)
    appeals = cq.period_appeals(session, period.id)
    plan = cq.published_plan(session, period.id)
    published_at = min((g.opened_at for g in groups), default=None)
    level_keys = [lv.key for lv in queries.levels(session)]
    per_depth = cq.units_per_depth(session, plan.id) if plan else {}
    by_level: list[LevelStats] = []
    for depth, key in enumerate(level_keys):
        if depth == 0:
            continue
        its = [i for i in items if i.group.level == key]
        gs = [g for g in groups if g.level == key]
        aps = [a for a in appeals if a.level == key]
        units = per_depth.get(depth, 0)
        by_level.append(LevelStats(
            level=key, units=units, items=len(its),
            accepted=sum(i.status == "accepted" for i in its),
            pending=sum(i.status == "pending" for i in its),
            appealed=sum(i.status == "appealed" for i in its),
            appeals=len(aps), dispute_rate=len(aps) / units if units else None,
            groups_open=sum(g.status == "open" for g in gs),
            groups_settled=sum(g.status == "settled" for g in gs)))
    statuses = {s: 0 for s in ("open", "approved", "rejected", "withdrawn")}
    for a in appeals:
        statuses[a.status] = statuses.get(a.status, 0) + 1
    letters = letter_queries.letter_counts(session, period.id, plan.id if plan else None)
    aligned_at = None
    if plan is not None and letters["people"] and letters["countersigned"] == letters["people"]:
        aligned_at = letters["last_signed_at"]
    end = aligned_at or now
    elapsed = (end - published_at) if published_at else None
    return Alignment(period_code=period.code, published_at=published_at, aligned_at=aligned_at,
                     elapsed=elapsed, levels=by_level, appeals_by_status=statuses,
                     letters={k: v for k, v in letters.items() if k != "last_signed_at"})
