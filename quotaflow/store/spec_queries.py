"""SQL for spec versions: numbering, the active version of a key, history, retirement."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from quotaflow.store.models import SpecVersion


def latest_number(session: Session, kind: str, key: str) -> int | None:
    """The highest version number of ``kind``/``key`` (None before the first)."""
    return session.scalar(
        select(func.max(SpecVersion.version)).where(SpecVersion.kind == kind, SpecVersion.key == key))


def active(session: Session, kind: str, key: str) -> SpecVersion | None:
    return session.scalar(select(SpecVersion).where(
        SpecVersion.kind == kind, SpecVersion.key == key, SpecVersion.status == "active"))


def active_of_kind(session: Session, kind: str) -> list[SpecVersion]:
    """The active version of every key of ``kind``, by key."""
    return list(session.scalars(select(SpecVersion).where(
        SpecVersion.kind == kind, SpecVersion.status == "active").order_by(SpecVersion.key)))


def active_keys(session: Session, kind: str) -> set[str]:
    return set(session.scalars(select(SpecVersion.key).where(
        SpecVersion.kind == kind, SpecVersion.status == "active")))


def all_active(session: Session) -> list[SpecVersion]:
    return list(session.scalars(select(SpecVersion).where(SpecVersion.status == "active")))


def latest(session: Session, kind: str, key: str) -> SpecVersion | None:
    return session.scalar(select(SpecVersion).where(SpecVersion.kind == kind, SpecVersion.key == key)
                          .order_by(SpecVersion.version.desc()).limit(1))


def version(session: Session, kind: str, key: str, number: int) -> SpecVersion | None:
    return session.scalar(select(SpecVersion).where(
        SpecVersion.kind == kind, SpecVersion.key == key, SpecVersion.version == number))


def versions(session: Session, kind: str, key: str) -> list[SpecVersion]:
    """All versions of one spec, newest first."""
    return list(session.scalars(select(SpecVersion).where(
        SpecVersion.kind == kind, SpecVersion.key == key).order_by(SpecVersion.version.desc())))


def latest_with_hash(session: Session, kind: str, key: str, content_hash: str) -> SpecVersion | None:
    """The newest version of ``kind``/``key`` whose content hashes to ``content_hash``."""
    return session.scalar(select(SpecVersion).where(
        SpecVersion.kind == kind, SpecVersion.key == key, SpecVersion.content_hash == content_hash)
        .order_by(SpecVersion.version.desc()).limit(1))


def version_counts(session: Session) -> list[tuple[str, str, int, int]]:
    """(kind, key, number of versions, latest version number) of every spec."""
    rows = session.execute(select(SpecVersion.kind, SpecVersion.key, func.count(),
                                  func.max(SpecVersion.version))
                           .group_by(SpecVersion.kind, SpecVersion.key)).all()
    return [(kind, key, count, last) for kind, key, count, last in rows]


def retire(session: Session, spec_id: int) -> None:
    """Mark a version retired in the database (the caller expires any loaded copy)."""
    session.execute(update(SpecVersion).where(SpecVersion.id == spec_id).values(status="retired"))


def factor_model_versions(session: Session) -> list[SpecVersion]:
    """Every factor-model version, newest first (for choosing one to preview)."""
    return list(session.scalars(select(SpecVersion).where(SpecVersion.kind == "factor_model")
                                .order_by(SpecVersion.key, SpecVersion.version.desc())))
