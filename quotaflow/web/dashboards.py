"""Dashboards per role: ``/dashboard`` opens the viewer's own one.

* ``/dashboard/unit/<code>``: the dashboard of a unit in the viewer's scope; which one
  depends on the unit (:func:`quotaflow.services.dashboards.view_kind`): the company
  gets the executive view, a region the region head's, a team the team lead's, a person
  the sales person's. Rows link one level down, so anyone drills within their scope.
* ``/dashboard/operations``: the HRBP's (configuration health, flows waiting, outbox).

Charts are drawn by ``static/dashboards.js`` (Chart.js, vendored) from JSON data islands
(``<script type="application/json">``: data, never executed, so the CSP holds); every
chart has a sortable table beside it with the same numbers.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_babel import format_decimal, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from quotaflow.http.context import request_context
from quotaflow.http.guard import current_principal, requires
from quotaflow.services import dashboards as service
from quotaflow.services import units as unit_service
from quotaflow.services.access import ROLES
from quotaflow.services.plans import OrgUnit
from quotaflow.web.config_pages import kind_label
from quotaflow.web.context import current_locale as _locale
from quotaflow.web.filters import ROLE_LABELS
from quotaflow.web.periods import chosen_period

blueprint = Blueprint("dashboards", __name__)

CHART_LIBRARY = "vendor/chart-4.6.1.umd.min.js"
KIND_TITLES = {
    "executive": _l("Executive dashboard"),
    "region": _l("Region dashboard"),
    "team": _l("Team dashboard"),
    "person": _l("Sales dashboard"),
}
SEVERITY_LABELS = {"high": _l("High"), "medium": _l("Medium"), "low": _l("Low")}
SOURCE_LABELS = {"published": _l("published plan"), "latest": _l("draft plan, not published yet")}
LETTER_STATUS = {"issued": _l("waiting for your signature"), "signed": _l("signed by you"),
                 "countersigned": _l("signed by both sides"), "superseded": _l("superseded")}
CHANNEL_STATUS = {"pending": _l("Waiting to be sent"), "delivered": _l("Delivered"),
                  "failed": _l("Dead")}
RISK_RULE_LABELS = {"overload": _l("Over capacity"), "near_capacity": _l("Near capacity"),
                    "steep_growth": _l("Steep growth"), "no_history": _l("No history")}
#: Why a dashboard has no figures (the service's ``status``), in the viewer's language.
EMPTY_MESSAGES = {
    "no_plan": _l("This period has no plan yet, so there is no target to track. Create one under Plans."),
    "no_published_plan": _l("No published plan yet for %(period)s: targets are shown once "
                            "a plan is published."),
    "no_weeks": _l("Period %(period)s has no weeks, so there is nothing to track."),
    "inactive": _l("%(unit)s is no longer an active unit, so it has no figures."),
}


# ---------------------------------------------------------------------------- formatting



def compact(value: float | None, locale: str = "en") -> str:
    """A large amount in a few characters: 2.50亿 / 1,115.8万 in Chinese, 249.5M in English."""
    if value is None:
        return ""
    v = float(value)
    sign, a = ("-" if v < 0 else ""), abs(v)
    if locale.startswith("zh"):
        if a >= 1e8:
            return f"{sign}{a / 1e8:,.2f}亿"
        if a >= 1e4:
            return f"{sign}{a / 1e4:,.1f}万"
        return f"{sign}{a:,.0f}"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= limit:
            return f"{sign}{a / limit:,.1f}{suffix}"
    return f"{sign}{a:,.0f}"


@blueprint.app_template_filter("dash_compact")
def _compact_filter(value: float | None) -> str:
    return compact(value, _locale())


@blueprint.app_template_filter("dash_pct")
def _pct_filter(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return format_decimal(float(value) * 100, format="#,##0." + "0" * digits) + "%"


@blueprint.app_template_filter("dash_name")
def _name_filter(row: Any) -> str:
    """A row's name (``name_zh``/``name_en``) in the viewer's language."""
    zh = _locale().startswith("zh")
    get = row.get if isinstance(row, dict) else lambda k, d=None: getattr(row, k, d)
    return str(get("name_zh") if zh and get("name_zh") else get("name_en") or get("code", ""))


@blueprint.app_template_filter("dash_text")
def _text_filter(row: Any, field: str) -> str:
    """``row[field + '_zh']`` or ``row[field + '_en']`` in the viewer's language."""
    zh = _locale().startswith("zh")
    return str(row.get(f"{field}_zh") if zh and row.get(f"{field}_zh")
               else row.get(f"{field}_en", ""))


# ---------------------------------------------------------------------------- charts


def _name(row: dict[str, Any]) -> str:
    return _name_filter(row)


def curve_chart(view: dict[str, Any]) -> dict[str, Any]:
    """The attainment forecast curve as chart data (labels translated here)."""
    c = view["curve"]
    return {
        "type": "line", "id": "curve",
        "labels": [gettext("W%(week)s", week=w) for w in c["weeks"]],
        "datasets": [
            {"key": "actual", "label": gettext("Actual (cumulative)"), "data": c["actual"]},
            {"key": "red_line", "label": gettext("Red line"), "data": c["red_line"]},
            {"key": "target", "label": gettext("Target"), "data": c["target"]},
            {"key": "forecast_low", "label": gettext("Forecast, low end"),
             "data": c["forecast_low"]},
            {"key": "forecast_high", "label": gettext("Forecast, high end"),
             "data": c["forecast_high"]},
            {"key": "forecast", "label": gettext("Forecast"), "data": c["forecast"]},
        ],
    }


def resource_chart(view: dict[str, Any]) -> dict[str, Any]:
    rows = view["resources"]
    return {
        "type": "bar", "id": "resources",
        "labels": [_name(r) for r in rows], "codes": [r["code"] for r in rows],
        "datasets": [
            {"key": "target", "label": gettext("Target"), "data": [r["target"] for r in rows]},
            {"key": "actual", "label": gettext("Actual to date"),
             "data": [r["actual"] for r in rows]},
            {"key": "cost", "label": gettext("Cost"), "data": [r["cost"] for r in rows]},
            {"key": "headcount", "label": gettext("Headcount"), "axis": "count",
             "data": [r["headcount"] for r in rows]},
        ],
    }


def progress_chart(view: dict[str, Any]) -> dict[str, Any]:
    bars = view["progress_bars"]
    names = bars["names_zh"] if _locale().startswith("zh") else bars["names_en"]
    return {
        "type": "bar", "id": "progress", "labels": list(names), "codes": bars["codes"],
        "datasets": [
            {"key": "actual", "label": gettext("Actual to date"), "data": bars["actual"]},
            {"key": "red_line", "label": gettext("Red line"), "data": bars["red_line"]},
            {"key": "target", "label": gettext("Target"), "data": bars["target"]},
        ],
    }


def outbox_chart(ops: dict[str, Any]) -> dict[str, Any]:
    rows = ops["outbox"]["channels"]
    return {
        "type": "bar", "id": "outbox", "stacked": True, "money": False,
        "labels": [r["channel"] for r in rows],
        "datasets": [{"key": status, "label": str(CHANNEL_STATUS[status]),
                      "data": [r[status] for r in rows]}
                     for status in ("delivered", "pending", "failed")],
    }


# ---------------------------------------------------------------------------- switching


def _switcher(current: str) -> list[dict[str, Any]]:
    """The dashboards this viewer may switch between: operations (HRBP, admin) and the
    dashboard of each unit their roles are held over."""
    principal = current_principal()
    links: list[dict[str, Any]] = []
    if principal.has("spec.read"):
        links.append({"href": url_for("dashboards.operations"), "label": gettext("Operations"),
                      "current": current == "operations"})
    seen: set[str] = set()
    for grant in sorted(principal.grants, key=lambda gr: ROLES.index(gr.role)
                        if gr.role in ROLES else len(ROLES)):
        if grant.unit_code in seen:
            continue
        seen.add(grant.unit_code)
        links.append({"href": url_for("dashboards.unit", code=grant.unit_code),
                      "label": f"{ROLE_LABELS.get(grant.role, grant.role)} · {grant.unit_code}",
                      "current": current == grant.unit_code})
    return links


def _home_for(principal: Any) -> str:
    home = service.home(principal)
    if home is None:
        abort(403)
    kind, code = home
    if kind == "operations":
        return url_for("dashboards.operations")
    return url_for("dashboards.unit", code=code)


# ---------------------------------------------------------------------------- pages


@blueprint.route("/dashboard")
@requires("unit.read")
def index() -> Any:
    """The viewer's own dashboard, by their most senior role."""
    target = _home_for(current_principal())
    period = request.args.get("period")
    if period:
        target += ("&" if "?" in target else "?") + "period=" + period
    return redirect(target)


def _week_arg() -> int | None:
    raw = request.args.get("week", "")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        abort(404)


@blueprint.route("/dashboard/unit/<code>")
@requires("unit.read")
def unit(code: str) -> Any:
    unit: OrgUnit = g.unit
    ctx = request_context()
    principal = ctx.principal
    period, periods = chosen_period(request.args.get("period"))
    view = service.unit_dashboard(ctx, period, unit, week=_week_arg(),
                                  curve_code=request.args.get("curve") or None,
                                  with_alignment=principal.has("alignment.read"))
    if view.get("status") == "bad_week":
        abort(404)
    ancestors = unit_service.readable_ancestors(ctx, unit)
    charts: dict[str, Any] = {}
    empty = None
    if view["status"] in EMPTY_MESSAGES:
        empty = str(EMPTY_MESSAGES[view["status"]]) % {"period": period.code, "unit": unit.code}
    elif view["status"] != "ok":
        empty = gettext("No figures for this period: %(reason)s", reason=view["message"])
    if view["status"] == "ok":
        charts["curve"] = curve_chart(view)
        if view["children"]:
            charts["progress"] = progress_chart(view)
        if view.get("resources"):
            charts["resources"] = resource_chart(view)
    whatif = None
    if view["kind"] in ("executive", "region") and principal.can("plan.whatif", unit.path):
        whatif = (url_for("whatif.sandbox", code=unit.code, period=period.code)
                  if view["kind"] == "region" else url_for("whatif.index", period=period.code))
    own_person = current_user.person_unit_id == unit.id
    return render_template(
        "dashboards/unit.html", view=view, unit=unit, period=period, periods=periods,
        charts=charts, ancestors=ancestors, whatif=whatif, own_person=own_person, empty=empty,
        title=gettext("My dashboard") if own_person else str(KIND_TITLES[view["kind"]]),
        switcher=_switcher(unit.code), severity_labels=SEVERITY_LABELS,
        source_labels=SOURCE_LABELS, letter_status=LETTER_STATUS,
        risk_rule_labels=RISK_RULE_LABELS, chart_library=CHART_LIBRARY,
        level_names={lv.key: lv.name_zh if _locale().startswith("zh") else lv.name_en
                     for lv in unit_service.levels(ctx)})


@blueprint.route("/dashboard/operations")
@requires("spec.read")
def operations() -> Any:
    ctx = request_context()
    principal = ctx.principal
    ops = service.operations(ctx, principal.scope_paths("unit.read"),
                             flows=principal.has("flow.oversee"),
                             outbox=principal.has("outbox.read"))
    charts = {"outbox": outbox_chart(ops)} if ops["outbox"] and ops["outbox"]["channels"] else {}
    return render_template("dashboards/operations.html", ops=ops, charts=charts,
                           switcher=_switcher("operations"), kind_label=kind_label,
                           channel_status=CHANNEL_STATUS, chart_library=CHART_LIBRARY)
