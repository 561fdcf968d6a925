"""Reads of the sign-in history (``login_attempts``) that sign-in throttling decides on.

The history lives in the database, not in a worker's memory, so every gunicorn worker
sees the same failures and the same backoff.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quotaflow.store.models import LoginAttempt


@dataclass(frozen=True)
class Failures:
    """Failed attempts in a period: how many, and when the latest was."""

    count: int = 0
    last_at: dt.datetime | None = None


def _failures(session: Session, condition: object, since: dt.datetime) -> Failures:
    count, last_at = session.execute(
        select(func.count(), func.max(LoginAttempt.at))
        .where(condition, LoginAttempt.at >= since, LoginAttempt.success.is_(False))  # type: ignore[arg-type]
    ).one()
    return Failures(int(count or 0), last_at)


def account_failures(session: Session, username: str, since: dt.datetime) -> Failures:
    """Failures for ``username`` since ``since`` and after its latest successful sign-in
    (the owner's success ends a run of failures)."""
    last_success = last_success_at(session, username)
    if last_success is not None and last_success > since:
        return _failures(session, LoginAttempt.username == username, last_success)
    return _failures(session, LoginAttempt.username == username, since)


def address_failures(session: Session, remote_addr: str, since: dt.datetime) -> Failures:
    """Failures from ``remote_addr`` for any username since ``since``; a success from the
    address does not end them (an attacker could otherwise sign in to an account of his
    own to reset his address)."""
    return _failures(session, LoginAttempt.remote_addr == remote_addr, since)


def last_success_at(session: Session, username: str) -> dt.datetime | None:
    return session.scalar(
        select(func.max(LoginAttempt.at))
        .where(LoginAttempt.username == username, LoginAttempt.success.is_(True)))


def signed_in_from(session: Session, username: str, remote_addr: str, since: dt.datetime) -> bool:
    """Whether ``username`` signed in successfully from ``remote_addr`` since ``since``."""
    return session.scalar(
        select(LoginAttempt.id)
        .where(LoginAttempt.username == username, LoginAttempt.remote_addr == remote_addr,
               LoginAttempt.success.is_(True), LoginAttempt.at >= since)
        .limit(1)) is not None
