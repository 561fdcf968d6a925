"""Invariants the ORM enforces before anything reaches the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from quotaflow.store.models import AuditEntry, SpecVersion

SPEC_IMMUTABLE_COLUMNS = ("kind", "key", "version", "content", "content_hash", "author_id")


class ImmutableRecordError(RuntimeError):
    """Raised when code tries to change a record that must never change."""


@event.listens_for(Session, "before_flush")
def _refuse_immutable_changes(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.dirty:
        if isinstance(obj, AuditEntry):
            raise ImmutableRecordError("the audit log is append-only")
        if isinstance(obj, SpecVersion):
            state = inspect(obj)
            changed = [c for c in SPEC_IMMUTABLE_COLUMNS if state.attrs[c].history.has_changes()]
            if changed:
                raise ImmutableRecordError(
                    f"spec version {obj.kind}/{obj.key} v{obj.version} is immutable; "
                    f"save a new version instead of changing {', '.join(changed)}"
                )
    for obj in session.deleted:
        if isinstance(obj, AuditEntry | SpecVersion):
            raise ImmutableRecordError(f"{type(obj).__name__} records are never deleted")
