"""Spec versions: save (immutable, hashed, numbered), activate, read labels."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from quotaflow.services import audit
from quotaflow.store.models import SpecVersion, User

FACTOR_MODEL_KIND = "factor_model"


def content_hash(content: Any) -> str:
    """SHA-256 of the canonical JSON text (sorted keys, no spaces)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def create_version(
    session: Session, kind: str, key: str, content: Any, author: User | None, note: str | None = None
) -> SpecVersion:
    """Append the next version of a spec as a draft (the caller commits)."""
    latest = session.scalar(
        select(func.max(SpecVersion.version)).where(SpecVersion.kind == kind, SpecVersion.key == key)
    )
    spec = SpecVersion(
        kind=kind, key=key, version=(latest or 0) + 1, content=content,
        content_hash=content_hash(content), author=author, status="draft", note=note,
    )
    session.add(spec)
    session.flush()
    audit.record(session, author, "create_spec_version", kind, f"{key}@v{spec.version}",
                 after={"hash": spec.content_hash})
    return spec


def activate(session: Session, spec: SpecVersion, actor: User | None) -> None:
    """Make ``spec`` the active version of its key, retiring the previous one."""
    previous = session.scalar(
        select(SpecVersion).where(SpecVersion.kind == spec.kind, SpecVersion.key == spec.key,
                                  SpecVersion.status == "active")
    )
    if previous is spec:
        return
    if previous is not None:
        session.execute(update(SpecVersion).where(SpecVersion.id == previous.id).values(status="retired"))
        session.expire(previous)
    # Flush the retirement first so the one-active unique index never sees two.
    session.flush()
    spec.status = "active"
    session.flush()
    audit.record(session, actor, "activate_spec_version", spec.kind, f"{spec.key}@v{spec.version}",
                 before={"active": previous.version if previous else None}, after={"active": spec.version})


def active_version(session: Session, kind: str, key: str) -> SpecVersion | None:
    return session.scalar(
        select(SpecVersion).where(SpecVersion.kind == kind, SpecVersion.key == key,
                                  SpecVersion.status == "active")
    )


def field_labels(session: Session) -> dict[str, dict[str, str]]:
    """Labels of input fields from the active factor models: name -> {"en": .., "zh": ..}."""
    labels: dict[str, dict[str, str]] = {}
    specs = session.scalars(
        select(SpecVersion).where(SpecVersion.kind == FACTOR_MODEL_KIND, SpecVersion.status == "active")
    )
    for spec in specs:
        for field in spec.content.get("fields", []):
            name = field.get("name")
            if name:
                labels[name] = {"en": field.get("label_en", name), "zh": field.get("label_zh", name)}
    return labels
