"""Jinja filters for numbers and labels, in the user's language."""

from __future__ import annotations

from flask import Flask
from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l

ROLE_LABELS = {
    "admin": _l("Administrator"),
    "hrbp": _l("HR business partner"),
    "executive": _l("Executive"),
    "region_head": _l("Region head"),
    "team_lead": _l("Team lead"),
    "sales": _l("Sales"),
}
METRIC_LABELS = {"sales": _l("Sales")}


def number(value: float | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return format_decimal(int(value), format="#,##0")
    return format_decimal(value, format="#,##0.####")


def plain_number(value: float | None) -> str:
    """A number as typed into an input: no grouping, no trailing .0."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def register(app: Flask) -> None:
    app.add_template_filter(number)
    app.add_template_filter(plain_number)
    app.add_template_filter(lambda role: ROLE_LABELS.get(role, role), "role_label")
    app.add_template_filter(lambda metric: METRIC_LABELS.get(metric, metric), "metric_label")
