"""Approval flows: specs, assignee resolution and a pure interpreter.

Imports neither Flask nor SQLAlchemy: a service stores :class:`FlowState` as JSON and
delivers the returned events.
"""

from quotaflow.flows.assignees import Directory, resolve
from quotaflow.flows.interpreter import (
    ACTIONS,
    ENDED,
    STATUSES,
    SYSTEM,
    Action,
    Entry,
    Event,
    FlowError,
    FlowState,
    Task,
    new_instance,
    step,
)
from quotaflow.flows.permitted import AvailableActions, available_actions
from quotaflow.flows.spec import FlowSpec, FlowSpecError, Node, load_flow

__all__ = [
    "ACTIONS",
    "ENDED",
    "STATUSES",
    "SYSTEM",
    "Action",
    "AvailableActions",
    "Directory",
    "Entry",
    "Event",
    "FlowError",
    "FlowSpec",
    "FlowSpecError",
    "FlowState",
    "Node",
    "Task",
    "available_actions",
    "load_flow",
    "new_instance",
    "resolve",
    "step",
]
