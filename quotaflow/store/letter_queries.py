"""Reads of commitment letters that pages and use cases share."""

from __future__ import annotations

from sqlalchemy.orm import Session

from quotaflow.store.letter_models import CommitmentLetter


def letter(session: Session, letter_id: int) -> CommitmentLetter | None:
    return session.get(CommitmentLetter, letter_id)
