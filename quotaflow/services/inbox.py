"""The in-app inbox and the outbox's status, as the pages use them: a person's own
messages (someone else's look absent), marking them read, deliveries and re-queueing."""

from __future__ import annotations

from quotaflow.errors import NotFound
from quotaflow.services import outbox
from quotaflow.services.auth import actor
from quotaflow.services.uow import Context, use_case
from quotaflow.store import outbox_queries
from quotaflow.store.outbox_models import InboxMessage, OutboxDelivery


def _me(ctx: Context) -> int:
    if ctx.user_id is None:
        raise NotFound("not_found")
    return ctx.user_id


def unread_count(ctx: Context) -> int:
    return outbox_queries.unread_count(ctx.session, _me(ctx))


def my_messages(ctx: Context) -> list[InboxMessage]:
    return outbox_queries.inbox_messages(ctx.session, _me(ctx))


def my_message(ctx: Context, message_id: int) -> InboxMessage:
    """One of the reader's own messages; anyone else's is NotFound, like an absent one."""
    message = outbox_queries.inbox_message(ctx.session, _me(ctx), message_id)
    if message is None:
        raise NotFound("not_found")
    return message


@use_case
def mark_read(ctx: Context, message_id: int | None = None) -> int:
    """Mark one of the reader's messages (or all of them) read; how many changed."""
    if message_id is not None:
        my_message(ctx, message_id)
    return outbox.mark_read(ctx.session, actor(ctx), message_id,
                            remote_addr=ctx.remote_addr)


def delivery_status(ctx: Context) -> tuple[list[outbox.ChannelCounts], list[OutboxDelivery]]:
    """Deliveries per channel and status, and the ones that failed or wait after an error."""
    return outbox.counts(ctx.session), outbox.problem_deliveries(ctx.session)


@use_case
def retry_delivery(ctx: Context, delivery_id: int) -> OutboxDelivery:
    """Queue a failed delivery again (``OutboxError`` if absent or delivered already)."""
    return outbox.requeue(ctx.session, delivery_id, actor(ctx),
                          remote_addr=ctx.remote_addr)
