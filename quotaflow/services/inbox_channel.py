"""The in-app inbox channel, built in: registered before any plugin (see
:func:`quotaflow.plugins.discover`), so a custom plugin path never switches it off.

Writes one :class:`InboxMessage` per (recipient, event) through the worker's session, in
the same transaction that records the delivery as done. A repeated delivery (a worker
that crashed before recording success, a re-queued row) finds the message already there
and adds nothing, so each person sees each event once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quotaflow.channels import INBOX, Delivery, PermanentError
from quotaflow.store import outbox_queries
from quotaflow.store.models import utcnow
from quotaflow.store.outbox_models import InboxMessage

MAX_TITLE = 300
MAX_URL = 500


def app_path(url: str) -> str | None:
    """``url`` if it is a path inside the app, else None: a payload cannot turn the inbox
    into a link elsewhere. Browsers read ``\\`` as ``/``, so ``/\\evil.example`` (like
    ``//evil.example``) is another site; control characters and white space are refused too."""
    if (not url.startswith("/") or len(url) > MAX_URL or url[1:2] in ("/", "\\")
            or "\\" in url or any(ord(ch) < 33 or ord(ch) == 127 for ch in url)):
        return None
    return url


class InboxChannel:
    """Needs no settings: the inbox lives in the app database."""

    def deliver(self, delivery: Delivery) -> None:
        if delivery.session is None:
            raise PermanentError("the inbox channel needs the worker's database session")
        if delivery.recipient is None:
            raise PermanentError("an inbox delivery needs a recipient")
        session = delivery.session
        if outbox_queries.inbox_message_id_for_event(
                session, delivery.recipient.user_id, delivery.event_id) is not None:
            return
        session.add(InboxMessage(
            user_id=delivery.recipient.user_id, event_id=delivery.event_id, topic=delivery.topic,
            title_en=delivery.title("en")[:MAX_TITLE], title_zh=delivery.title("zh")[:MAX_TITLE],
            body_en=delivery.body("en"), body_zh=delivery.body("zh"),
            url=app_path(delivery.url),
            created_at=utcnow()))
        session.flush()

    @classmethod
    def from_settings(cls, _settings: Mapping[str, Any]) -> InboxChannel:
        return cls()


def register(registry: Any) -> None:  # the PluginRegistry
    registry.add_channel(INBOX, InboxChannel.from_settings, per_recipient=True, needs_config=False)
