"""Approval flow instances as pages see them: one instance if the reader may see it
(its people and overseers of its unit; anyone else: NotFound, like an absent one), the
reader's task lists, and acting on a task as one unit of work."""

from __future__ import annotations

from quotaflow.errors import NotFound
from quotaflow.flows import Action
from quotaflow.services import flows
from quotaflow.services.auth import actor
from quotaflow.services.uow import Context
from quotaflow.store import flow_queries
from quotaflow.store.flow_models import FlowInstance, FlowTask


def visible(ctx: Context, instance: FlowInstance | None) -> bool:
    return (instance is not None and ctx.principal is not None
            and flows.visible_to(instance, ctx.principal, ctx.username))


def instance_if_visible(ctx: Context, instance_id: int | None) -> FlowInstance | None:
    """The instance if there is one and the reader may see it (a link shown or not)."""
    if instance_id is None:
        return None
    found = flow_queries.instance(ctx.session, instance_id)
    return found if visible(ctx, found) else None


def instance(ctx: Context, instance_id: int | None) -> FlowInstance | None:
    """The instance behind a subject the reader was already allowed to open (an
    emergency request's, an appeal's); None if there is none."""
    return flow_queries.instance(ctx.session, instance_id) if instance_id else None


def visible_instance(ctx: Context, instance_id: int, *, fresh: bool = False) -> FlowInstance:
    """The instance if the reader may see it; NotFound otherwise (no probing)."""
    found = flow_queries.instance(ctx.session, instance_id, fresh=fresh)
    if not visible(ctx, found):
        raise NotFound("not_found")
    return found


def pending_count(ctx: Context) -> int:
    return flow_queries.open_task_count(ctx.session, ctx.user_id) if ctx.user_id is not None else 0


def my_lists(ctx: Context) -> tuple[list[FlowTask], list[FlowInstance], list[FlowInstance]]:
    """The reader's pending tasks, the instances they started and, for overseers, the
    open instances in their scope."""
    me = actor(ctx)
    if me is None:
        return [], [], []
    overseen: list[FlowInstance] = []
    if ctx.principal is not None and ctx.principal.has("flow.oversee"):
        overseen = flow_queries.open_instances(ctx.session,
                                               ctx.principal.scope_paths("unit.read"))
    return (flow_queries.open_tasks(ctx.session, me.id), flow_queries.started_by(ctx.session, me.id),
            overseen)


def act(ctx: Context, instance_id: int, action: Action, *, revision: int | None = None
        ) -> FlowInstance:
    """The reader acts on an instance (``FlowRefused`` if the flow refuses: nothing kept).

    Not wrapped in another unit of work: ``flows.act`` owns its own, so that on SQLite it
    can read again from scratch when another decision committed first.
    """
    return flows.act(ctx.session, instance_id, actor(ctx), action, revision=revision,
                     remote_addr=ctx.remote_addr)
