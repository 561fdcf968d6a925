"""The use-case context of the current request: what web/ and api/ pass to services/."""

from __future__ import annotations

from flask import g, has_request_context, request
from flask_babel import get_locale
from sqlalchemy.orm import Session

from quotaflow.http.guard import current_principal
from quotaflow.services.uow import Context, utcnow
from quotaflow.store import db


def request_locale() -> str:
    """The caller's language: the page's choice, the account's setting, Accept-Language."""
    return str(get_locale() or "zh")


def request_session() -> Session:
    """The request's database session (the one every use case of the request runs on)."""
    return db.session()


def session_context() -> Context:
    """A context without a principal, for what runs before anyone is known (the user
    loaders of Flask-Login): asking for the principal or the user's language there would
    load the user again."""
    return Context(session=request_session(), now=utcnow())


def request_context() -> Context:
    """The context for a use case run by this request (one per request, same ``now``)."""
    if "qf_context" not in g:
        g.qf_context = Context(
            session=request_session(),
            principal=current_principal(),
            now=utcnow(),
            locale=request_locale(),
            remote_addr=request.remote_addr if has_request_context() else None,
        )
    return g.qf_context
