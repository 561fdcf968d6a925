"""Dashboards: per-role view models assembled from the other services (pure data).

Nothing here renders or commits; every function returns plain dicts and lists of
str/int/float/bool/None (JSON-ready) that the pages turn into charts and tables::

    from quotaflow.services import dashboards

    kind = dashboards.view_kind(session, unit)        # executive/region/team/person
    week = dashboards.default_week(session, period)   # the latest week with results
    view = dashboards.unit_dashboard(ctx, period, unit, week=week,
                                     with_alignment=principal.has("alignment.read"))
    ops = dashboards.operations(ctx, principal.scope_paths("unit.read"))

The view of a unit depends on its place in the tree: the root gets the executive view
(company and its regions, resources, risks, alignment), a unit whose children are
units gets the region view (ranking of its children, gap warnings, alerts), the level
just above the people gets the team view and a person the person view (my target, how
it was derived, my progress vs the red line). Targets (and the alerts raised against
them) come from a draft plan only for those who may read drafts; anyone else sees
"no_published_plan" until a plan is published. The operations view is the HRBP's:
configuration health, flows waiting, the outbox.

Money is rounded to whole yuan here so that a chart and the table beside it show the
same numbers. The forecast to quarter end follows the pacing curve from the week's
cumulative result to the forecast (and its band): at week ``t >= w`` it is
``A_w + (F - A_w) * (C(t) - C(w)) / (1 - C(w))``, which for the run-rate forecast
``F = A_w / C(w)`` is exactly ``F * C(t)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from quotaflow.rules import SpecIssue
from quotaflow.services import alerts as alert_service
from quotaflow.services import alignment as alignment_service
from quotaflow.services import specs, tracking
from quotaflow.services.plan_reads import sees_drafts
from quotaflow.services.uow import Context
from quotaflow.store import queries, tracking_queries
from quotaflow.store.models import OrgUnit, Period, Plan, utcnow

#: Attribute values of the period compared with targets in the executive view.
RESOURCE_ATTRIBUTES = ("headcount", "cost")
ALERT_LIMIT = 50
LIST_LIMIT = 20
SEVERITIES = ("high", "medium", "low")
VIEW_KINDS = ("executive", "region", "team", "person")


def _yuan(value: float | None) -> int | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value))


def _ratio(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 4)


# ---------------------------------------------------------------------------- choosing


def leaf_depth(session: Session) -> int:
    return queries.leaf_depth(session)


def view_kind(session: Session, unit: OrgUnit) -> str:
    """Which dashboard a unit gets: by its depth in the tree."""
    deepest = leaf_depth(session)
    if unit.depth == 0:
        return "executive"
    if unit.depth >= deepest:
        return "person"
    if unit.depth == deepest - 1:
        return "team"
    return "region"


def home(principal: Any) -> tuple[str, str | None] | None:
    """The viewer's own dashboard: ("operations", None) for admins and HRBPs, else
    ("unit", code of the unit of their most senior grant); None: no grant, nothing to show."""
    from quotaflow.services.access import ROLES

    if principal.roles & {"admin", "hrbp"}:
        return "operations", None
    grants = sorted(principal.grants, key=lambda gr: ROLES.index(gr.role)
                    if gr.role in ROLES else len(ROLES))
    return ("unit", grants[0].unit_code) if grants else None


def default_week(session: Session, period: Period) -> int:
    """The week holding the period's latest result (week 1 when there is none), so the
    dashboard opens on the newest figures rather than on weeks not reported yet."""
    last = tracking_queries.last_actual_date(session, period.start_date, period.end_date)
    weeks = period.weeks
    if not weeks:
        raise tracking.TrackingError("no_weeks", period=period.code)
    if last is None:
        return weeks[0].week_no
    for w in weeks:
        if w.start_date <= last <= w.end_date:
            return w.week_no
    return weeks[-1].week_no


# ---------------------------------------------------------------------------- pieces


def forecast_curve(p: tracking.Progress, code: str) -> dict[str, Any]:
    """A unit's attainment forecast curve over weeks 0..N of the period: cumulative
    result to the week, the red line and the target for the whole quarter, and the
    forecast with its band from the week to quarter end (None where not drawn)."""
    i = p.row(code)
    n, w = p.weeks, p.week
    c = np.asarray(p.curve.values, dtype=float)
    target = float(p.metrics.columns["target"][i, 0])
    cumulative = p.metrics.columns["actual"][i, :w]
    actual: list[int | None] = [0, *[_yuan(v) for v in cumulative]] + [None] * (n - w)
    red_line = [_yuan(target * c[t]) for t in range(n + 1)]
    a_w = float(cumulative[w - 1])
    due = float(c[w])

    def path(end: float) -> list[int | None]:
        out: list[int | None] = [None] * (n + 1)
        if not np.isfinite(end):
            return out
        for t in range(w, n + 1):
            share = 1.0 if due >= 1.0 else (float(c[t]) - due) / (1.0 - due)
            out[t] = _yuan(a_w + (end - a_w) * share)
        return out

    return {
        "code": code, "name_en": str(p.tree.names_en[i]), "name_zh": str(p.tree.names_zh[i]),
        "weeks": list(range(n + 1)), "week": w,
        "actual": actual, "red_line": red_line, "target": [_yuan(target)] * (n + 1),
        "forecast": path(float(p.forecast_point[i])),
        "forecast_low": path(float(p.forecast_low[i])),
        "forecast_high": path(float(p.forecast_high[i])),
    }


def unit_figures(p: tracking.Progress, code: str) -> dict[str, Any]:
    """One unit's figures at the week, money in whole yuan."""
    u = p.unit(code)
    target = u["target"]
    forecast = u["forecast"]
    return {
        "code": code, "level": u["level"], "name_en": u["name_en"], "name_zh": u["name_zh"],
        "has_target": u["has_target"], "target": _yuan(target), "actual": _yuan(u["actual"]),
        "week_actual": _yuan(u["week_actual"]), "red_line": _yuan(u["red_line"]),
        "gap": _yuan(u["gap"]), "attainment": _ratio(u["attainment"]),
        "pace": _ratio(u["pace"]), "streak": u["streak"],
        "forecast": _yuan(forecast), "forecast_low": _yuan(u["forecast_low"]),
        "forecast_high": _yuan(u["forecast_high"]),
        "forecast_attainment": _ratio(forecast / target) if forecast is not None and target
        else None,
    }


def ranking(p: tracking.Progress, code: str) -> list[dict[str, Any]]:
    """A unit's children, best pace first (rank 1), with their figures."""
    rows = [unit_figures(p, str(p.codes[i])) for i in p.children_rows(code).tolist()]
    rows.sort(key=lambda r: (not r["has_target"], -(r["pace"] or 0.0), r["code"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def gap_warnings(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Children behind their red line (gap > 0), the largest gap first."""
    behind = [r for r in rows if r["has_target"] and (r["gap"] or 0) > 0]
    return sorted(behind, key=lambda r: (-(r["gap"] or 0), r["code"]))


def progress_bars(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Children's result vs red line vs target, in code order (a bar chart's data)."""
    ordered = sorted(rows, key=lambda r: r["code"])
    return {"codes": [r["code"] for r in ordered],
            "names_en": [r["name_en"] for r in ordered],
            "names_zh": [r["name_zh"] for r in ordered],
            "actual": [r["actual"] for r in ordered],
            "red_line": [r["red_line"] for r in ordered],
            "target": [r["target"] for r in ordered]}


def resources(session: Session, period: Period, p: tracking.Progress,
              rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Headcount and cost (attribute values of the period) against target, result to
    date and forecast, per child unit."""
    ordered = sorted(rows, key=lambda r: r["code"])
    idx = np.array([p.row(r["code"]) for r in ordered], dtype=np.int64)
    cols = tracking.attribute_columns(session, period, p.unit_ids[idx], RESOURCE_ATTRIBUTES)
    out = []
    for j, r in enumerate(ordered):
        heads = float(cols["headcount"][j]) if "headcount" in cols else None
        cost = _yuan(cols["cost"][j]) if "cost" in cols else None
        target, actual = r["target"] or 0, r["actual"] or 0
        out.append({
            "code": r["code"], "name_en": r["name_en"], "name_zh": r["name_zh"],
            "headcount": None if heads is None else (int(heads) if heads.is_integer() else heads),
            "cost": cost, "target": r["target"], "actual": r["actual"],
            "forecast": r["forecast"],
            "target_per_head": _yuan(target / heads) if heads else None,
            "actual_per_head": _yuan(actual / heads) if heads else None,
            "cost_to_target": _ratio(cost / target) if cost is not None and target else None,
        })
    return out


def alert_rows(session: Session, paths: Sequence[str], period: Period,
               limit: int = ALERT_LIMIT, *, drafts: bool = True) -> list[dict[str, Any]]:
    """Open alerts of the units under ``paths`` with their remedies (without ``drafts``,
    none raised against a draft plan)."""
    rows = alert_service.alerts_in_scope(session, paths, period_id=period.id, status="open",
                                         limit=limit, drafts=drafts)
    return [{"id": a.id, "rule": a.rule, "unit": a.unit.code, "unit_name_en": a.unit.name_en,
             "unit_name_zh": a.unit.name_zh, "level": a.level, "week": a.week,
             "severity": a.severity, "run": a.run, "label_en": a.label_en,
             "label_zh": a.label_zh, "message_en": a.message_en, "message_zh": a.message_zh,
             "remedies": [{"key": str(r.get("key", "")),
                           "message_en": str(r.get("message_en", "")),
                           "message_zh": str(r.get("message_zh", r.get("message_en", "")))}
                          for r in (a.remedies or []) if isinstance(r, dict)]}
            for a in rows]


def alert_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for a in rows:
        counts[a["severity"]] = counts.get(a["severity"], 0) + 1
    return counts


def plan_risks(session: Session, plan_id: int) -> dict[str, Any]:
    """The plan's own risks (plan-level findings and flagged units per rule)."""
    plan = session.get(Plan, plan_id)
    summary = dict(plan.summary or {}) if plan is not None else {}
    return {
        "plan_risks": [{"rule": str(r.get("rule", "")), "severity": str(r.get("severity", "")),
                        "message_en": str(r.get("message_en", "")),
                        "message_zh": str(r.get("message_zh", r.get("message_en", "")))}
                       for r in summary.get("plan_risks", []) if isinstance(r, dict)],
        "unit_risk_counts": {str(k): int(v) for k, v in
                             (summary.get("unit_risk_counts") or {}).items() if v},
        "shortfall": _yuan(summary.get("shortfall")) or 0,
    }


def forecast_risks(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Children whose forecast band lies wholly below their target (likely to miss)."""
    out = [r for r in rows if r["has_target"] and r["forecast_high"] is not None
           and r["target"] and r["forecast_high"] < r["target"]]
    return sorted(out, key=lambda r: (r["forecast_attainment"] or 0.0, r["code"]))


def alignment_figures(session: Session, period: Period) -> dict[str, Any]:
    """The confirmation step's figures: time to align, dispute rate per level, letters."""
    a = alignment_service.alignment(session, period)
    hours = a.elapsed.total_seconds() / 3600 if a.elapsed is not None else None
    units = sum(lv.units for lv in a.levels)
    appeals = sum(lv.appeals for lv in a.levels)
    return {
        "published_at": a.published_at.isoformat() + "Z" if a.published_at else None,
        "aligned_at": a.aligned_at.isoformat() + "Z" if a.aligned_at else None,
        "aligned": a.aligned_at is not None,
        "elapsed_hours": round(hours, 1) if hours is not None else None,
        "elapsed_days": round(hours / 24, 1) if hours is not None else None,
        "dispute_rate": _ratio(appeals / units) if units else None,
        "levels": [{"level": lv.level, "units": lv.units, "items": lv.items,
                    "accepted": lv.accepted, "pending": lv.pending, "appealed": lv.appealed,
                    "appeals": lv.appeals, "dispute_rate": _ratio(lv.dispute_rate)}
                   for lv in a.levels],
        "appeals_by_status": dict(a.appeals_by_status),
        "letters": dict(a.letters),
    }


def explanation(session: Session, plan_id: int, unit: OrgUnit) -> dict[str, Any] | None:
    """How the unit's target was derived in the plan the targets come from."""
    from quotaflow.services import plans
    from quotaflow.services.plan_data import PlanError

    plan = session.get(Plan, plan_id)
    if plan is None:
        return None
    try:
        ex = plans.plan_explanation(session, plan, unit)
    except PlanError:
        return None
    return {
        "plan_id": plan.id, "plan_number": plan.number, "plan_status": plan.status,
        "target": ex["target"], "is_root": ex["is_root"], "requested": ex["requested"],
        "parent": ex["parent"],
        "factors": [{"key": f["key"], "label_en": f["label_en"], "label_zh": f["label_zh"],
                     "weight_percent": f["weight_percent"], "amount": f["amount"],
                     "share": _ratio(f["share"])} for f in ex["factors"]],
        "bounds_adjustment": ex["bounds_adjustment"],
        "rounding_adjustment": ex["rounding_adjustment"], "adds_up": ex["adds_up"],
    }


def letter_info(session: Session, unit: OrgUnit) -> dict[str, Any] | None:
    """The person's current commitment letter, if one was issued."""
    from quotaflow.services import letters

    letter = letters.current_letter(session, unit.id)
    if letter is None:
        return None
    return {"id": letter.id, "version": letter.version, "status": letter.status,
            "plan_id": letter.plan_id}


# ---------------------------------------------------------------------------- views


def unit_dashboard(ctx: Context, period: Period, unit: OrgUnit, *, week: int | None = None,
                   curve_code: str | None = None, with_alignment: bool = False
                   ) -> dict[str, Any]:
    """The dashboard of ``unit`` (which must lie in the viewer's scope: everything shown
    is inside its subtree, except the alignment figures, which are the period's).

    On a period without weeks or plan the result has ``status`` "no_plan"/"no_weeks"
    and a ``message`` instead of the figures; "no_published_plan" for a viewer who may
    not read drafts when the period's only plans are drafts."""
    session = ctx.session
    drafts = sees_drafts(ctx.principal)
    kind = view_kind(session, unit)
    base: dict[str, Any] = {"kind": kind, "period": period.code, "unit_code": unit.code,
                            "unit_name_en": unit.name_en, "unit_name_zh": unit.name_zh}
    try:
        week = default_week(session, period) if week is None else week
        p = tracking.readable_progress(ctx, period, week)
    except tracking.TrackingError as exc:
        return {**base, "status": exc.code, "message": exc.message}
    if unit.code not in p:
        return {**base, "status": "inactive", "message": f"{unit.code} is not an active unit"}
    rows = ranking(p, unit.code)
    child_codes = {r["code"] for r in rows}
    chosen = curve_code if curve_code in child_codes else unit.code
    alerts = alert_rows(session, [unit.path], period, drafts=drafts)
    view: dict[str, Any] = {
        **base, "status": "ok", "week": p.week, "weeks": p.weeks,
        "week_start": p.week_start.isoformat(), "week_end": p.week_end.isoformat(),
        "plan": {"id": p.plan_id, "number": p.plan_number, "status": p.plan_status,
                 "source": p.targets_source},
        "curve_kind": p.curve_kind, "wmape_now": _ratio(p.wmape_now),
        "band_quantiles": [float(q) for q in p.band_quantiles],
        "history_quarters": list(p.history_quarters),
        "unit": unit_figures(p, unit.code),
        "curve_choices": [{"code": unit.code, "name_en": unit.name_en,
                           "name_zh": unit.name_zh}]
        + [{"code": r["code"], "name_en": r["name_en"], "name_zh": r["name_zh"]}
           for r in sorted(rows, key=lambda r: r["code"])] if kind == "executive"
        else [{"code": unit.code, "name_en": unit.name_en, "name_zh": unit.name_zh}],
        "curve": forecast_curve(p, chosen if kind == "executive" else unit.code),
        "children": rows,
        "gap_warnings": gap_warnings(rows),
        "progress_bars": progress_bars(rows),
        "alerts": alerts, "alert_counts": alert_counts(alerts),
    }
    if kind == "executive":
        view["resources"] = resources(session, period, p, rows)
        view["risks"] = {**plan_risks(session, p.plan_id), "forecast": forecast_risks(rows)}
        view["alignment"] = alignment_figures(session, period) if with_alignment else None
    if kind in ("team", "person"):
        view["explanation"] = explanation(session, p.plan_id, unit)
    if kind == "person":
        view["letter"] = letter_info(session, unit)
    return view


def operations(ctx: Context, scope_paths: Sequence[str], *,
               now: dt.datetime | None = None, flows: bool = True, outbox: bool = True
               ) -> dict[str, Any]:
    """The HRBP's dashboard: configuration health, flows waiting (within the scope),
    the outbox (when ``outbox``)."""
    session = ctx.session
    now = now or utcnow()
    out: dict[str, Any] = {"config": config_health(session)}
    out["flows"] = flows_waiting(session, scope_paths, now) if flows else None
    out["outbox"] = outbox_status(session) if outbox else None
    return out


def config_health(session: Session) -> dict[str, Any]:
    """Per spec kind: active versions, drafts newer than the active one, and the
    validation problems of the active versions (checked again now)."""
    from quotaflow.services import spec_kinds

    rows = tracking_queries.spec_version_rows(session)
    active: dict[tuple[str, str], int] = {(k, key): v for k, key, v, s, _ in rows
                                          if s == "active"}
    kinds: dict[str, dict[str, Any]] = {}
    order = {k.name: i for i, k in enumerate(spec_kinds.kinds())}
    for name in [k.name for k in spec_kinds.kinds()] + sorted({r[0] for r in rows}):
        kinds.setdefault(name, {"kind": name, "active": 0, "keys": 0, "drafts": 0,
                                "problems": 0})
    keys: dict[str, set[str]] = {}
    drafts: list[dict[str, Any]] = []
    for kind, key, version, status, created_at in rows:
        keys.setdefault(kind, set()).add(key)
        if status == "active":
            kinds[kind]["active"] += 1
        elif status == "draft" and version > active.get((kind, key), 0):
            kinds[kind]["drafts"] += 1
            drafts.append({"kind": kind, "key": key, "version": version,
                           "created_at": created_at.isoformat() + "Z" if created_at else None})
    for kind, found in keys.items():
        kinds[kind]["keys"] = len(found)
    problems: list[dict[str, Any]] = []
    for spec in specs.active_versions(session):
        if spec_kinds.get(spec.kind) is None:
            # Active but nothing can check it (e.g. the plugin that defined it is gone).
            issues = [SpecIssue("", f"no spec kind {spec.kind!r} is registered to check "
                                    "this version", "unknown_kind")]
        else:
            issues = specs.validate_content(session, spec.kind, spec.key, spec.content)
        for issue in issues:
            kinds[spec.kind]["problems"] += 1
            problems.append({"kind": spec.kind, "key": spec.key, "version": spec.version,
                             "pointer": issue.pointer or "/", "code": issue.code,
                             "message": issue.message})
    return {
        "kinds": sorted(kinds.values(), key=lambda k: (order.get(k["kind"], len(order)),
                                                       k["kind"])),
        "active_total": len(active),
        "drafts": sorted(drafts, key=lambda d: (order.get(d["kind"], len(order)), d["kind"],
                                                d["key"], d["version"])),
        "problems": problems,
    }


def flows_waiting(session: Session, scope_paths: Sequence[str],
                  now: dt.datetime) -> dict[str, Any]:
    """Open flow instances and pending tasks about units in scope; overdue tasks."""
    from quotaflow.store import flow_queries

    open_rows = flow_queries.open_instances(session, scope_paths, limit=1000)
    by_flow: dict[str, dict[str, Any]] = {}
    for inst in open_rows:
        entry = by_flow.setdefault(inst.flow_key, {"flow_key": inst.flow_key, "running": 0,
                                                   "draft": 0, "pending_tasks": 0,
                                                   "overdue_tasks": 0})
        entry[inst.status] = entry.get(inst.status, 0) + 1
    tasks = tracking_queries.pending_tasks(session, scope_paths)
    users = tracking_queries.users_by_ids(session, {t.user_id for t in tasks})
    overdue = []
    for t in tasks:
        entry = by_flow.setdefault(t.instance.flow_key, {
            "flow_key": t.instance.flow_key, "running": 0, "draft": 0, "pending_tasks": 0,
            "overdue_tasks": 0})
        entry["pending_tasks"] += 1
        if t.due_at is not None and t.due_at < now:
            entry["overdue_tasks"] += 1
            who = users.get(t.user_id)
            overdue.append({
                "instance_id": t.instance_id, "flow_key": t.instance.flow_key,
                "node": t.node, "unit": t.instance.unit.code,
                "assignee": who.username if who else None,
                "assignee_name": who.display_name if who else None,
                "due_at": t.due_at.isoformat() + "Z",
                "overdue_hours": round((now - t.due_at).total_seconds() / 3600, 1)})
    return {
        "open_instances": len(open_rows), "pending_tasks": len(tasks),
        "overdue_tasks": len(overdue),
        "by_flow": sorted(by_flow.values(), key=lambda e: e["flow_key"]),
        "overdue": overdue[:LIST_LIMIT],
    }


def outbox_status(session: Session) -> dict[str, Any]:
    """Deliveries per channel and status, and the dead (or failing) deliveries."""
    from quotaflow.services import outbox as outbox_service

    channels = [{"channel": c.channel, "pending": c.pending, "delivered": c.delivered,
                 "failed": c.failed, "waiting_with_error": c.waiting_with_error,
                 "total": c.total} for c in outbox_service.counts(session)]
    problems = outbox_service.problem_deliveries(session, limit=LIST_LIMIT)
    return {
        "channels": channels,
        "totals": {k: sum(c[k] for c in channels)
                   for k in ("pending", "delivered", "failed", "waiting_with_error", "total")},
        "problems": [{"id": d.id, "channel": d.channel, "status": d.status,
                      "topic": d.event.topic if d.event is not None else None,
                      "attempts": d.attempts, "last_error": d.last_error,
                      "created_at": d.created_at.isoformat() + "Z" if d.created_at else None}
                     for d in problems],
    }
