"""Reads of approval flow instances that pages and use cases share."""

from __future__ import annotations

from sqlalchemy.orm import Session

from quotaflow.store.flow_models import FlowInstance


def instance(session: Session, instance_id: int, *, fresh: bool = False) -> FlowInstance | None:
    """One instance; ``fresh`` reloads it from the database (after a step elsewhere)."""
    return session.get(FlowInstance, instance_id, populate_existing=fresh)
