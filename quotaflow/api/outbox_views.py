"""The outbox and the inbox in the API: delivery status and re-queueing (admins, HR), and
one's own in-app messages (list, read one, read all). The twins of the /outbox and /inbox
pages, calling the same use cases (services/outbox.py)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from quotaflow.api import api_blueprint
from quotaflow.http.context import request_context
from quotaflow.http.guard import requires
from quotaflow.services import inbox as inbox_service


def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def delivery_json(delivery: Any) -> dict[str, Any]:
    return {"id": delivery.id, "event_id": delivery.event_id, "topic": delivery.event.topic,
            "channel": delivery.channel, "status": delivery.status,
            "attempts": delivery.attempts, "last_error": delivery.last_error,
            "next_attempt_at": _when(delivery.next_attempt_at),
            "delivered_at": _when(delivery.delivered_at), "created_at": _when(delivery.created_at)}


def message_json(message: Any) -> dict[str, Any]:
    return {"id": message.id, "topic": message.topic, "title_en": message.title_en,
            "title_zh": message.title_zh, "body_en": message.body_en,
            "body_zh": message.body_zh, "url": message.url,
            "created_at": _when(message.created_at), "read_at": _when(message.read_at)}


@api_blueprint.get("/outbox")
@requires("outbox.read")
def outbox_status() -> Any:
    counts, problems = inbox_service.delivery_status(request_context())
    return jsonify({
        "channels": [{"channel": c.channel, "pending": c.pending, "delivered": c.delivered,
                      "failed": c.failed, "waiting_with_error": c.waiting_with_error}
                     for c in counts],
        "problems": [delivery_json(d) for d in problems]})


@api_blueprint.post("/outbox/deliveries/<int:delivery_id>/retry")
@requires("outbox.read")
def retry_delivery(delivery_id: int) -> Any:
    """Re-queue a dead or waiting delivery: due now, attempts reset."""
    delivery = inbox_service.retry_delivery(request_context(), delivery_id)
    return jsonify(delivery_json(delivery))


@api_blueprint.get("/inbox")
@requires("unit.read")
def inbox() -> Any:
    ctx = request_context()
    return jsonify({"unread": inbox_service.unread_count(ctx),
                    "messages": [message_json(m) for m in inbox_service.my_messages(ctx)]})


@api_blueprint.post("/inbox/<int:message_id>/read")
@requires("unit.read")
def read_message(message_id: int) -> Any:
    return jsonify({"read": inbox_service.mark_read(request_context(), message_id)})


@api_blueprint.post("/inbox/read-all")
@requires("unit.read")
def read_all() -> Any:
    return jsonify({"read": inbox_service.mark_read(request_context())})
