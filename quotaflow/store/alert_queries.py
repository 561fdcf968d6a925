"""Reads of stored alerts (the tracking aggregate) that pages and use cases share."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from quotaflow.store.tracking_models import Alert


def alert(session: Session, alert_id: int) -> Alert | None:
    """One alert with its unit and period loaded."""
    return session.scalar(select(Alert).options(joinedload(Alert.unit), joinedload(Alert.period))
                          .where(Alert.id == alert_id))
