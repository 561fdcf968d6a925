"""Alert rules over weekly pacing metrics, evaluated for all units at once.

An alert-rules spec lists rules: a boolean condition over a unit's weekly metrics
(attainment, pace, gap, red_line, actual, target, week, streak, ...), a window (the
condition must hold for N consecutive weeks ending at the scanned week), the level it
applies to, a severity, recipients by relation, channels, a cooldown in weeks and
bilingual messages with ``{placeholders}`` over the metrics.

The condition is computed for every unit of the level and every week up to the scanned
one as one flat array; the window is a run length from cumulative sums. No Python loop
runs over units: only over rules, and over the hits to build their records.
"""

from __future__ import annotations

import string
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quotaflow.rules.expressions import CompiledExpression, ExpressionError
from quotaflow.rules.functions import FunctionRegistry
from quotaflow.rules.model import compile_at
from quotaflow.rules.pacing import WeeklyMetrics
from quotaflow.rules.specs import SpecError, SpecIssue, pointer, read_json, schema_issues

#: The metrics every condition and message can read (numbers, per unit and week).
METRIC_FIELDS = ("target", "week", "curve", "red_line", "week_actual", "actual", "gap",
                 "attainment", "pace", "streak")
#: Text values messages may show besides the numbers; ``run`` is the window's run length.
HIT_TEXT = ("unit", "name_en", "name_zh", "level", "rule")
HIT_NUMBERS = ("run", "window")


class AlertRulesError(SpecError):
    kind = "alert rules"


@dataclass(frozen=True)
class AlertRule:
    key: str
    source: str
    when: CompiledExpression
    window: int
    level: str
    severity: str
    recipients: tuple[str, ...]
    channels: tuple[str, ...]
    cooldown_weeks: int
    label_en: str
    label_zh: str
    message_en: str
    message_zh: str


@dataclass(frozen=True)
class AlertRules:
    id: str
    version: int
    rules: tuple[AlertRule, ...]
    fields: tuple[str, ...]


@dataclass(frozen=True)
class AlertHit:
    """One alert: a rule that held for a unit over its window, ending at ``week``.

    ``run`` counts the consecutive weeks the condition held up to ``week``; ``values``
    are the unit's metrics at ``week``. Messages are filled in when first read.
    """

    rule: str
    unit: str
    level: str
    week: int
    severity: str
    run: int
    window: int
    recipients: tuple[str, ...]
    channels: tuple[str, ...]
    values: Mapping[str, float]
    name_en: str
    name_zh: str
    templates: tuple[str, str] = field(repr=False)

    @property
    def key(self) -> tuple[str, str, int]:
        """(unit, rule, week): what makes an alert unique."""
        return (self.unit, self.rule, self.week)

    def _fill(self) -> dict[str, Any]:
        return {**self.values, "unit": self.unit, "level": self.level, "rule": self.rule,
                "name_en": self.name_en, "name_zh": self.name_zh, "run": self.run,
                "window": self.window}

    @property
    def message_en(self) -> str:
        return self.templates[0].format_map(self._fill())

    @property
    def message_zh(self) -> str:
        return self.templates[1].format_map(self._fill())


def placeholders(template: str) -> list[str]:
    """The ``{name}`` placeholders of a message template."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def check_message(template: str, allowed: Collection[str], ptr: str,
                  issues: list[SpecIssue]) -> None:
    """Record an issue for a malformed template or an unknown placeholder."""
    try:
        names = placeholders(template)
    except ValueError as exc:
        issues.append(SpecIssue(ptr, f"bad message template: {exc}", "message"))
        return
    for name in names:
        # Plain names only: "{x.attr}" or "{x[0]}" would reach into Python objects.
        if name not in allowed:
            issues.append(SpecIssue(ptr, f"unknown placeholder {{{name}}}", "message"))


def load_alert_rules(source: str | Path | Mapping[str, Any], *,
                     extra_fields: Collection[str] = (),
                     functions: FunctionRegistry | None = None) -> AlertRules:
    """Validate and compile an alert-rules spec; ``extra_fields`` are more metric columns."""
    doc = read_json(source if not isinstance(source, Mapping) else dict(source))
    issues = schema_issues("alert-rules", doc)
    if issues:
        raise AlertRulesError(issues)
    names = tuple(dict.fromkeys((*METRIC_FIELDS, *extra_fields)))
    types = {name: "number" for name in names}
    allowed = set(names) | set(HIT_TEXT) | set(HIT_NUMBERS)
    rules = []
    keys: set[str] = set()
    for i, r in enumerate(doc["rules"]):
        ptr = pointer("rules", i)
        if r["key"] in keys:
            issues.append(SpecIssue(f"{ptr}/key", f"duplicate rule key {r['key']!r}",
                                    "duplicate"))
        keys.add(r["key"])
        when = compile_at(r["when"], types, f"{ptr}/when", issues, expect="boolean",
                          functions=functions)
        for lang in ("en", "zh"):
            check_message(r[f"message_{lang}"], allowed, f"{ptr}/message_{lang}", issues)
        rules.append(AlertRule(
            r["key"], r["when"], when, int(r.get("window", 1)), r["level"], r["severity"],
            tuple(r["recipients"]), tuple(r["channels"]), int(r.get("cooldown_weeks", 0)),
            r["label_en"], r["label_zh"], r["message_en"], r["message_zh"]))
    if issues:
        raise AlertRulesError(issues)
    return AlertRules(doc["id"], doc["version"], tuple(rules), names)


PreviousAlert = tuple[str, str, int]


def evaluate_alerts(rules: AlertRules, metrics_by_week: WeeklyMetrics, *, week: int,
                    levels: Collection[str] | None = None,
                    previous_alerts: Iterable[PreviousAlert | AlertHit] = ()
                    ) -> list[AlertHit]:
    """The alerts raised at ``week`` (1-based), rule by rule, units in input order.

    ``levels`` limits the scan to rules of those levels (all when None);
    ``previous_alerts`` are earlier alerts as (unit, rule, week): a hit is suppressed
    when the same unit and rule alerted at a week w with 0 <= week - w <= cooldown
    (so an alert already raised for this week is never raised again).
    """
    m = metrics_by_week
    if not 1 <= week <= m.weeks:
        raise ValueError(f"week must be within 1..{m.weeks}, not {week}")
    latest = _latest_previous(previous_alerts, week)
    hits: list[AlertHit] = []
    for i, rule in enumerate(rules.rules):
        if levels is not None and rule.level not in levels:
            continue
        rows = np.flatnonzero(m.levels == rule.level)
        if rows.size == 0:
            continue
        missing = [name for name in rule.when.names if name not in m.columns]
        if missing:
            raise ValueError(f"rule {rule.key!r} reads {missing[0]!r}, which the metrics lack")
        # Weeks 1..week, so ``run`` is the whole run, not just the window.
        columns = {name: m.columns[name][rows, :week] for name in rule.when.names}
        run = _final_run(_evaluate(rule, i, columns, m, rows, week))
        fired = run >= rule.window
        hit_rows, fired_run = rows[fired], run[fired]
        recent = [u for (u, k), w in latest.items()
                  if k == rule.key and week - w <= rule.cooldown_weeks]
        if hit_rows.size and recent:
            keep = ~np.isin(m.codes[hit_rows].astype(str), recent)
            hit_rows, fired_run = hit_rows[keep], fired_run[keep]
        hits.extend(_hits(rule, m, hit_rows, fired_run, week))
    return hits


def _final_run(flags: np.ndarray) -> np.ndarray:
    """Consecutive True values at the end of each row (the run up to the last week)."""
    misses = ~flags[:, ::-1]
    return np.where(misses.any(axis=1), misses.argmax(axis=1), flags.shape[1])


def _latest_previous(previous: Iterable[PreviousAlert | AlertHit], week: int
                     ) -> dict[tuple[str, str], int]:
    latest: dict[tuple[str, str], int] = {}
    for item in previous:
        unit, rule, w = item.key if isinstance(item, AlertHit) else item
        w = int(w)
        if w <= week and w > latest.get((str(unit), str(rule)), -(10 ** 9)):
            latest[(str(unit), str(rule))] = w
    return latest


def _evaluate(rule: AlertRule, index: int, columns: dict[str, np.ndarray], m: WeeklyMetrics,
              rows: np.ndarray, week: int) -> np.ndarray:
    shape = (len(rows), week)
    flat = {k: v.ravel() for k, v in columns.items()}
    try:
        out = rule.when.evaluate(flat, size=shape[0] * shape[1])
    except ExpressionError as exc:
        where = ""
        if exc.row is not None:
            unit = m.codes[rows[exc.row // shape[1]]]
            where = f" (unit {unit}, week {exc.row % shape[1] + 1})"
        raise AlertRulesError(SpecIssue(pointer("rules", index, "when"),
                                        f"{exc.message}{where}", f"expression.{exc.code}",
                                        exc.column)) from exc
    return out.reshape(shape)


def _hits(rule: AlertRule, m: WeeklyMetrics, rows: np.ndarray, runs: np.ndarray,
          week: int) -> list[AlertHit]:
    if rows.size == 0:
        return []
    names = list(m.columns)
    at = np.column_stack([m.columns[k][rows, week - 1] for k in names]).tolist()
    codes = m.codes[rows].astype(str).tolist()
    en = codes if m.names_en is None else m.names_en[rows].astype(str).tolist()
    zh = codes if m.names_zh is None else m.names_zh[rows].astype(str).tolist()
    templates = (rule.message_en, rule.message_zh)
    return [AlertHit(rule.key, code, rule.level, week, rule.severity, run, rule.window,
                     rule.recipients, rule.channels, dict(zip(names, row, strict=True)),
                     name_en, name_zh, templates)
            for code, run, row, name_en, name_zh in zip(codes, runs.tolist(), at, en, zh,
                                                        strict=True)]
