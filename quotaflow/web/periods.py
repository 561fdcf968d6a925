"""Which period a page shows: the rule is the service's (``services/periods.py``).

A ``period`` code in the request picks a period; without one it is the company's chosen
planning period. An unknown code, or no period at all, is a 404. Period selectors label
the planning period (``period_label``), so a reader always sees which one plans.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from flask_babel import gettext

from quotaflow.http.context import request_context
from quotaflow.services import periods as period_service


def chosen_period(code: str | None) -> tuple[Any, list[Any]]:
    """The period named by ``code`` (else the planning period) and all periods, oldest first."""
    return period_service.chosen_period(request_context(), code)


def planning_period() -> Any:
    return period_service.planning_period(request_context())


def planning_code() -> str | None:
    """The chosen planning period's code, read once per request."""
    if "planning_period_code" not in g:
        g.planning_period_code = period_service.planning_code(request_context())
    return g.planning_period_code


def period_label(period: Any) -> str:
    """A period's code as a selector shows it: the planning period says so."""
    code = period if isinstance(period, str) else period.code
    if code == planning_code():
        return gettext("%(code)s (planning period)", code=code)
    return code


def register(app: Flask) -> None:
    app.add_template_global(period_label, "period_label")
