"""The SQL of accounts' credentials: users by id, API tokens by hash, owner or id."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from quotaflow.store.models import ApiToken, User


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))


def token_by_id(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    """A user's tokens, newest first (revoked and expired ones too: the page shows why)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_live_tokens(session: Session, user_id: int, now: dt.datetime) -> list[str]:
    """Revoke every token of the user not yet revoked nor expired; their names."""
    live = ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now
    names = list(session.scalars(select(ApiToken.name).where(*live).order_by(ApiToken.id)))
    session.execute(update(ApiToken).where(*live).values(revoked_at=now)
                    .execution_options(synchronize_session="fetch"))
    return names
