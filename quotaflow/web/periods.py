"""Which period a page shows: the rule is the service's (``services/periods.py``).

The planning period is the latest one (by start date); a ``period`` code in the request
picks another. An unknown code, or no period at all, is a 404.
"""

from __future__ import annotations

from typing import Any

from quotaflow.http.context import request_context
from quotaflow.services import periods as period_service


def chosen_period(code: str | None) -> tuple[Any, list[Any]]:
    """The period named by ``code`` (else the planning period) and all periods, oldest first."""
    return period_service.chosen_period(request_context(), code)


def planning_period() -> Any:
    return period_service.planning_period(request_context())
