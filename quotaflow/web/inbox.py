"""The in-app inbox (everyone's own messages, a bell with the unread count) and the
HRBP's Outbox page (deliveries per channel and status, dead ones with a Retry button)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from quotaflow.http.context import request_context
from quotaflow.http.guard import requires
from quotaflow.services import inbox as inbox_service
from quotaflow.services import outbox
from quotaflow.web.context import is_htmx as _htmx

blueprint = Blueprint("inbox", __name__)

STATUS_LABELS = {"pending": _l("Waiting to be sent"), "delivered": _l("Delivered"), "failed": _l("Failed")}
CHANNEL_LABELS = {"inbox": _l("In-app inbox"), "email": _l("E-mail"), "wecom": _l("WeCom"),
                  "dingtalk": _l("DingTalk"), "hr_webhook": _l("HR system (webhook)"),
                  "export": _l("Export file")}


def channel_label(name: str) -> str:
    return str(CHANNEL_LABELS.get(name, name))



def _badge() -> str:
    return render_template("inbox/_badge.html",
                           unread=inbox_service.unread_count(request_context()))


@blueprint.route("/inbox")
@requires("unit.read")
def inbox_page() -> Any:
    messages = inbox_service.my_messages(request_context())
    unread = sum(1 for m in messages if m.read_at is None)
    return render_template("inbox/inbox.html", messages=messages, unread=unread)


@blueprint.route("/inbox/badge")
@requires("unit.read")
def badge() -> Any:
    """The bell in the page header, loaded with hx-get so pages stay fast."""
    return _badge()


@blueprint.route("/inbox/<int:message_id>/read", methods=["POST"])
@requires("unit.read")
def mark_read(message_id: int) -> Any:
    ctx = request_context()
    # Someone else's message looks the same as an absent one (NotFound: 404).
    inbox_service.mark_read(ctx, message_id)
    if _htmx():
        message = inbox_service.my_message(ctx, message_id)
        response = render_template("inbox/_message.html", m=message)
        # The bell updates itself out of band.
        return response + render_template("inbox/_badge.html", oob=True,
                                          unread=inbox_service.unread_count(ctx))
    return redirect(url_for("inbox.inbox_page"))


@blueprint.route("/inbox/read-all", methods=["POST"])
@requires("unit.read")
def mark_all_read() -> Any:
    ctx = request_context()
    count = inbox_service.mark_read(ctx)
    if _htmx():
        messages = inbox_service.my_messages(ctx)
        return render_template("inbox/_list.html", messages=messages, unread=0) + \
            render_template("inbox/_badge.html", oob=True, unread=0)
    flash(gettext("%(count)s messages marked as read.", count=count), "success")
    return redirect(url_for("inbox.inbox_page"))


@blueprint.route("/outbox")
@requires("outbox.read")
def outbox_status() -> Any:
    counts, problems = inbox_service.delivery_status(request_context())
    return render_template("inbox/outbox.html", counts=counts, problems=problems,
                           channel_label=channel_label, status_labels=STATUS_LABELS)


@blueprint.route("/outbox/deliveries/<int:delivery_id>/retry", methods=["POST"])
@requires("outbox.read")
def retry(delivery_id: int) -> Any:
    try:
        channel = inbox_service.retry_delivery(request_context(), delivery_id).channel
    except outbox.OutboxError as exc:
        if exc.code == "not_found":
            abort(404)
        flash(gettext("Delivery #%(id)s was delivered already.", id=delivery_id), "error")
        return redirect(url_for("inbox.outbox_status"))
    flash(gettext("Delivery #%(id)s (%(channel)s) is queued again.", id=delivery_id,
                  channel=channel_label(channel)), "success")
    return redirect(url_for("inbox.outbox_status"))
