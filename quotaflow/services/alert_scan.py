"""The alert scan: evaluate the active alert rules on every unit at one week, store the
new alerts with their top remedies and tell the people concerned.

One scan is one transaction (:func:`scan` commits whole or not at all):

1. :func:`quotaflow.services.tracking.progress` gives every unit's weekly metrics;
   units without a target in the plan are left out.
2. The active ``alert_rules`` spec is evaluated for all units at once
   (:func:`quotaflow.rules.alerts.evaluate_alerts`); hits whose unit and rule already
   alerted within the rule's cooldown (alerts stored for earlier weeks, or this week)
   are skipped, so scanning the same week again adds nothing (the unique key
   (rule, unit, period, week) guards against a concurrent scan).
3. The active ``remedies`` catalogue ranks remedies for every hit with a concrete
   context: the sibling furthest ahead of pace under the same parent, and number
   columns (e.g. ``open_leads``, ``product_gap``) from the period's attribute values
   where they exist; remedies that need a column nobody supplies do not apply.
4. Each alert row pins the rule, remedy and pacing spec versions and the plan, and an
   ``alert.raised`` outbox event (none while the plan is a draft: it would carry the
   unpublished target) goes to the recipients by relation: users holding the
   rule's roles (team_lead, region_head, hrbp, executive) over the unit, and for
   ``self`` the person's own account.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import Forbidden, QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.rules.alerts import (
    AlertHit,
    AlertRules,
    evaluate_alerts,
    load_alert_rules,
    placeholders,
)
from quotaflow.rules.pacing import WeeklyMetrics
from quotaflow.rules.remedies import (
    RemedyCatalogue,
    RemedyContext,
    RemedySuggestion,
    load_remedies,
    rank_remedies,
    sibling_context,
)
from quotaflow.services import audit, specs, tracking
from quotaflow.services.plan_reads import DRAFT
from quotaflow.services.uow import Context, unit_of_work
from quotaflow.store import tracking_queries
from quotaflow.store.models import OrgUnit, Period, User, utcnow
from quotaflow.store.tracking_models import Alert, ScanRun

RULES_KIND = "alert_rules"
REMEDIES_KIND = "remedies"
SPEC_KEY = "default"
TOPIC = "alert.raised"
#: Relations of a rule's recipients that are roles held over the unit.
ROLE_RELATIONS = ("team_lead", "region_head", "hrbp", "executive")


class ScanError(QuotaFlowError):
    domain = "alert_scan"
    CODE_KINDS = code_kinds(concurrent="conflict")
    CODES = messages.register(domain, {
        "no_rules": _l("No alert rules are active: activate an alert rules spec."),
        "concurrent": _l("Another scan of %(period)s week %(week)s stored its alerts first; "
                         "nothing was saved. Run it again: it adds only what is missing."),
    })


@dataclass(frozen=True)
class ScanResult:
    run_id: int
    period: str
    week: int
    units: int
    hits: int
    raised: tuple[int, ...]  # ids of the alerts created
    existing: int  # already stored for this week
    suppressed: int  # in cooldown after an earlier week's alert
    targets_source: str
    plan_number: int

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "period": self.period, "week": self.week,
                "units": self.units, "hits": self.hits, "raised": len(self.raised),
                "alert_ids": list(self.raised), "existing": self.existing,
                "suppressed": self.suppressed, "targets_source": self.targets_source,
                "plan_number": self.plan_number}


def _rules(session: Session) -> tuple[AlertRules, int]:
    from quotaflow.plugins import expression_functions

    version = specs.active_version(session, RULES_KIND, SPEC_KEY)
    if version is None:
        raise ScanError("no_rules")
    return load_alert_rules(version.content, functions=expression_functions()), version.id


def _remedies(session: Session) -> tuple[RemedyCatalogue | None, int | None]:
    from quotaflow.plugins import expression_functions

    version = specs.active_version(session, REMEDIES_KIND, SPEC_KEY)
    if version is None:
        return None, None
    return load_remedies(version.content, functions=expression_functions()), version.id


def _subset(m: WeeklyMetrics, rows: np.ndarray) -> WeeklyMetrics:
    return WeeklyMetrics(m.codes[rows], m.levels[rows],
                         {k: v[rows] for k, v in m.columns.items()},
                         None if m.names_en is None else m.names_en[rows],
                         None if m.names_zh is None else m.names_zh[rows])


def remedy_context(session: Session, p: tracking.Progress, rows: np.ndarray,
                   catalogue: RemedyCatalogue) -> tuple[RemedyCatalogue, RemedyContext]:
    """The context of ``rows`` and the catalogue limited to remedies it can serve."""
    tree = p.tree
    parents = np.where(tree.parent_row[rows] >= 0, tree.codes[np.maximum(tree.parent_row[rows], 0)],
                       "")
    context = sibling_context(tree.codes[rows], parents, p.now("pace")[rows],
                              names_en=tree.names_en[rows], names_zh=tree.names_zh[rows])
    missing_numbers = [n for n in catalogue.numbers if n not in context.numbers]
    found = tracking.attribute_columns(session, _period(session, p), tree.ids, missing_numbers)
    for name, column in found.items():
        context.numbers[name] = column[rows]
    have = set(context.numbers) | set(context.texts)
    declared = set(catalogue.numbers) | set(catalogue.texts)

    def servable(remedy: Any) -> bool:
        used = {*remedy.when.names, *remedy.priority.names}
        for template in (remedy.message_en, remedy.message_zh):
            used.update(placeholders(template))
        return not ((used & declared) - have)

    kept = tuple(r for r in catalogue.remedies if servable(r))
    limited = dataclasses.replace(
        catalogue, remedies=kept, numbers=tuple(n for n in catalogue.numbers if n in have),
        texts=tuple(t for t in catalogue.texts if t in have))
    return limited, context


def _period(session: Session, p: tracking.Progress) -> Period:
    period = session.get(Period, p.period_id)
    assert period is not None
    return period


def _previous(session: Session, period_id: int, week: int) -> list[tuple[str, str, int]]:
    return tracking_queries.alert_keys_until(session, period_id, week)


#: Subtree path -> (user id, role) of the grants held over that subtree.
Grants = dict[str, list[tuple[int, str]]]


@dataclass(frozen=True)
class UnitRef:
    """What an alert needs of its unit, taken from the progress' columns (no query)."""

    id: int
    code: str
    path: str
    name_en: str
    name_zh: str


def role_grants(session: Session) -> Grants:
    """Every active user's grants of the roles alerts go to, by the grant's subtree."""
    out: Grants = {}
    for uid, role, path in tracking_queries.active_grants(session, ROLE_RELATIONS):
        out.setdefault(path, []).append((uid, role))
    return out


def person_users(session: Session, unit_ids: Sequence[int]) -> dict[int, int]:
    """Person unit id -> the active user who is that person (queried in chunks: a scan
    may alert on more people than a statement takes parameters)."""
    return tracking_queries.person_users(session, unit_ids)


def recipients(unit: UnitRef | OrgUnit, relations: Sequence[str], grants: Grants,
               selves: Mapping[int, int]) -> list[int]:
    """Users by relation: holders of the relations' roles over the unit (grants on the
    unit or an ancestor: looked up by each prefix of its path); ``self``."""
    wanted = set(relations)
    parts = unit.path.strip("/").split("/")
    found: set[int] = set()
    for k in range(1, len(parts) + 1):
        for uid, role in grants.get("/" + "/".join(parts[:k]) + "/", ()):
            if role in wanted:
                found.add(uid)
    ids = sorted(found)
    if "self" in wanted and unit.id in selves and selves[unit.id] not in found:
        ids.append(selves[unit.id])
    return ids


def _remedies_json(suggestions: Sequence[RemedySuggestion]) -> list[dict[str, Any]]:
    return [{"key": s.key, "priority": round(s.priority, 4), "label_en": s.label_en,
             "label_zh": s.label_zh, "message_en": s.message_en, "message_zh": s.message_zh}
            for s in suggestions]


def _metrics_json(hit: AlertHit) -> dict[str, Any]:
    return {k: (round(float(v), 6) if np.isfinite(v) else None) for k, v in hit.values.items()}


def scan(session: Session, period: Period, week: int | None = None, *, trigger: str = "cli",
         actor: User | None = None, today: dt.date | None = None) -> ScanResult:
    """Scan one week of ``period`` (default: the current week); commit whole."""
    started = utcnow()
    try:
        with unit_of_work(session):
            result = _scan(session, period, week, trigger, actor, today, started)
    except IntegrityError:
        raise ScanError("concurrent", "", period=period.code,
                        week=str(week or "now")) from None
    return result


def _scan(session: Session, period: Period, week: int | None, trigger: str,
          actor: User | None, today: dt.date | None, started: dt.datetime) -> ScanResult:
    from quotaflow.services import outbox  # built beside this feature; imported when used

    rules, rules_vid = _rules(session)
    catalogue, remedies_vid = _remedies(session)
    p = tracking.progress(session, period, week, today=today)
    week = p.week
    rows = np.flatnonzero(p.has_target)
    m = _subset(p.metrics, rows)
    everything = _evaluate(rules, m, week, ())
    previous = _previous(session, period.id, week)
    hits = _evaluate(rules, m, week, previous)
    stored_now = {(u, r) for u, r, w in previous if w == week}
    existing = sum(1 for h in everything if (h.unit, h.rule) in stored_now)
    suppressed = len(everything) - len(hits) - existing

    ranked: list[tuple[RemedySuggestion, ...]] = [() for _ in hits]
    if catalogue is not None and hits:
        limited, context = remedy_context(session, p, rows, catalogue)
        if limited.remedies:
            ranked = rank_remedies(limited, hits, context)

    run = ScanRun(period_id=period.id, week=week, started_at=started, trigger=trigger,
                  triggered_by_id=actor.id if actor else None, units=len(rows),
                  hits=len(everything), raised=len(hits), existing=existing,
                  suppressed=suppressed, summary=p.summary())
    session.add(run)
    session.flush()
    tree = p.tree
    units: dict[str, UnitRef] = {}
    for code in {h.unit for h in hits}:
        i = p.row(code)
        units[code] = UnitRef(int(tree.ids[i]), code, str(tree.paths[i]),
                              str(tree.names_en[i]), str(tree.names_zh[i]))
    grants = role_grants(session) if hits else {}
    selves = person_users(session, [u.id for u in units.values()]) if hits else {}
    labels = {r.key: (r.label_en, r.label_zh) for r in rules.rules}
    created: list[Alert] = []
    for hit, suggestions in zip(hits, ranked, strict=True):
        unit = units[hit.unit]
        alert = Alert(
            rule=hit.rule, unit_id=unit.id, period_id=period.id, week=week, level=hit.level,
            severity=hit.severity, run=hit.run, metrics=_metrics_json(hit),
            label_en=labels[hit.rule][0][:200], label_zh=labels[hit.rule][1][:200],
            message_en=hit.message_en, message_zh=hit.message_zh,
            remedies=_remedies_json(suggestions), rules_version_id=rules_vid,
            remedies_version_id=remedies_vid, pacing_version_id=p.pacing_version_id,
            plan_id=p.plan_id, scan_run_id=run.id, status="open", created_at=utcnow())
        session.add(alert)
        created.append(alert)
    session.flush()
    rule_of = {r.key: r for r in rules.rules}
    # Alerts against a draft plan stay on the pages of those who may read drafts: a
    # notification would carry the unpublished target to its recipients and channels.
    notified = p.plan_status != DRAFT
    for alert, hit in zip(created if notified else [], hits if notified else [], strict=True):
        unit = units[hit.unit]
        rule = rule_of[hit.rule]
        to_users = recipients(unit, rule.recipients, grants, selves)
        outbox.emit(session, TOPIC, _payload(alert, unit, period, rule.channels),
                    to_users=to_users, unit_id=unit.id, key=f"{TOPIC}:{alert.id}",
                    channels=rule.channels)
    run.finished_at = utcnow()
    audit.record(session, actor, "alert_scan", "scan_run", str(run.id), after={
        "period": period.code, "week": week, "trigger": trigger, "units": run.units,
        "hits": run.hits, "raised": run.raised, "existing": existing,
        "suppressed": suppressed, "alert_ids": [a.id for a in created][:200]})
    return ScanResult(run.id, period.code, week, run.units, run.hits,
                      tuple(a.id for a in created), existing, suppressed, p.targets_source,
                      p.plan_number)


def _evaluate(rules: AlertRules, m: WeeklyMetrics, week: int,
              previous: Sequence[tuple[str, str, int]]) -> list[AlertHit]:
    return evaluate_alerts(rules, m, week=week, previous_alerts=previous)


def _payload(alert: Alert, unit: UnitRef, period: Period, channels: Sequence[str]
             ) -> dict[str, Any]:
    remedies_en = "; ".join(r["message_en"] for r in alert.remedies)
    remedies_zh = "；".join(r["message_zh"] for r in alert.remedies)
    return {
        "title_en": f"{alert.label_en}: {unit.code} {unit.name_en}",
        "title_zh": f"{alert.label_zh}：{unit.code} {unit.name_zh}",
        "body_en": alert.message_en + (f". Suggested: {remedies_en}" if remedies_en else ""),
        "body_zh": alert.message_zh + (f"。建议：{remedies_zh}" if remedies_zh else ""),
        "url": f"/alerts/?period={period.code}#alert-{alert.id}",
        "alert_id": alert.id, "rule": alert.rule, "unit": unit.code, "period": period.code,
        "week": alert.week, "severity": alert.severity, "run": alert.run,
        "channels": list(channels), "remedies": alert.remedies,
    }


def run_scan(ctx: Context, period_code: str | None = None, week: int | None = None, *,
             trigger: str = "api") -> ScanResult:
    """Scan a week (default: the current week) of the period ``period_code`` (default: the
    one holding today, else the latest) as the caller (alerts.scan); commits whole."""
    from quotaflow.services.periods import current_period

    if ctx.principal is not None and not ctx.principal.can("alerts.scan"):
        raise Forbidden("forbidden")
    period = current_period(ctx, period_code)
    actor = ctx.session.get(User, ctx.user_id) if ctx.user_id is not None else None
    return scan(ctx.session, period, week, trigger=trigger, actor=actor)
