"""Remedies for alerts: a catalogue spec, ranked and made concrete for every hit.

Each remedy has an applicability condition and a priority expression over the alerted
unit's metrics (as of the alert's week) plus context columns the catalogue declares
(numbers such as ``best_sibling_pace`` or ``open_leads``, texts such as
``best_sibling_name_en`` that only messages show). Every condition and priority is
evaluated once over all hits; each hit gets its top remedies, highest priority first
(catalogue order breaks ties), with their messages filled in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quotaflow.rules.alerts import METRIC_FIELDS, AlertHit, check_message
from quotaflow.rules.expressions import CompiledExpression, ExpressionError
from quotaflow.rules.functions import FunctionRegistry
from quotaflow.rules.model import compile_at
from quotaflow.rules.specs import SpecError, SpecIssue, pointer, read_json, schema_issues

HIT_TEXT = ("unit", "name_en", "name_zh", "level", "rule")
TOP = 3


class RemedyError(SpecError):
    kind = "remedy catalogue"


@dataclass(frozen=True)
class Remedy:
    key: str
    when_source: str
    when: CompiledExpression
    priority_source: str
    priority: CompiledExpression
    label_en: str
    label_zh: str
    message_en: str
    message_zh: str
    rules: tuple[str, ...] | None = None
    levels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RemedyCatalogue:
    id: str
    version: int
    remedies: tuple[Remedy, ...]
    numbers: tuple[str, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class RemedySuggestion:
    """One remedy made concrete for one alert."""

    key: str
    priority: float
    label_en: str
    label_zh: str
    message_en: str
    message_zh: str


@dataclass(frozen=True, eq=False)
class RemedyContext:
    """Context columns per unit: ``numbers`` and ``texts`` map a name to an array."""

    codes: np.ndarray
    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[str, np.ndarray] = field(default_factory=dict)

    def rows(self, units: Sequence[str]) -> np.ndarray:
        index = {str(c): i for i, c in enumerate(self.codes.tolist())}
        missing = [u for u in units if u not in index]
        if missing:
            raise ValueError(f"no remedy context for unit {missing[0]!r}")
        return np.array([index[u] for u in units], dtype=np.int64)


def load_remedies(source: str | Path | Mapping[str, Any], *,
                  extra_fields: Collection[str] = (),
                  functions: FunctionRegistry | None = None) -> RemedyCatalogue:
    """Validate and compile a remedy catalogue; ``extra_fields`` are more metric columns."""
    doc = read_json(source if not isinstance(source, Mapping) else dict(source))
    issues = schema_issues("remedies", doc)
    if issues:
        raise RemedyError(issues)
    types = {name: "number" for name in (*METRIC_FIELDS, *extra_fields, "run")}
    numbers: list[str] = []
    texts: list[str] = []
    for i, c in enumerate(doc.get("context", [])):
        name = c["name"]
        if name in types or name in texts or name in HIT_TEXT:
            issues.append(SpecIssue(pointer("context", i, "name"),
                                    f"context column {name!r} already exists", "duplicate"))
        elif c["type"] == "number":
            types[name] = "number"
            numbers.append(name)
        else:
            texts.append(name)
    allowed = set(types) | set(texts) | set(HIT_TEXT) | {"priority"}
    remedies = []
    keys: set[str] = set()
    for i, r in enumerate(doc["remedies"]):
        ptr = pointer("remedies", i)
        if r["key"] in keys:
            issues.append(SpecIssue(f"{ptr}/key", f"duplicate remedy key {r['key']!r}",
                                    "duplicate"))
        keys.add(r["key"])
        when = compile_at(r["when"], types, f"{ptr}/when", issues, expect="boolean",
                          functions=functions)
        priority = compile_at(r["priority"], types, f"{ptr}/priority", issues,
                              expect="number", functions=functions)
        for lang in ("en", "zh"):
            check_message(r[f"message_{lang}"], allowed, f"{ptr}/message_{lang}", issues)
        remedies.append(Remedy(
            r["key"], r["when"], when, r["priority"], priority, r["label_en"], r["label_zh"],
            r["message_en"], r["message_zh"],
            tuple(r["rules"]) if "rules" in r else None,
            tuple(r["levels"]) if "levels" in r else None))
    if issues:
        raise RemedyError(issues)
    return RemedyCatalogue(doc["id"], doc["version"], tuple(remedies), tuple(numbers),
                           tuple(texts))


def rank_remedies(catalogue: RemedyCatalogue, hits: Sequence[AlertHit],
                  context: RemedyContext, *, limit: int = TOP
                  ) -> list[tuple[RemedySuggestion, ...]]:
    """The top ``limit`` applicable remedies for each hit, in the order of ``hits``."""
    if not hits:
        return []
    rows = context.rows([h.unit for h in hits])
    for name in (*catalogue.numbers, *catalogue.texts):
        if name not in (context.numbers if name in catalogue.numbers else context.texts):
            raise ValueError(f"the remedy context has no column {name!r}")
    columns = _columns(catalogue, hits, context, rows)
    n, k = len(hits), len(catalogue.remedies)
    priority = np.full((n, k), -np.inf)
    rule_keys = np.array([h.rule for h in hits], dtype=object)
    levels = np.array([h.level for h in hits], dtype=object)
    for j, remedy in enumerate(catalogue.remedies):
        ok = np.ones(n, dtype=bool)
        if remedy.rules is not None:
            ok &= np.isin(rule_keys, remedy.rules)
        if remedy.levels is not None:
            ok &= np.isin(levels, remedy.levels)
        where = np.flatnonzero(ok)
        if where.size:
            applies = _run(remedy.when, columns, where, j, "when", hits)
            where = where[applies]
        if where.size:
            priority[where, j] = _run(remedy.priority, columns, where, j, "priority", hits)
    # Stable sort on -priority: equal priorities keep catalogue order.
    order = np.argsort(-priority, axis=1, kind="stable")[:, :limit]
    out = []
    for i, hit in enumerate(hits):
        chosen = [j for j in order[i].tolist() if np.isfinite(priority[i, j])]
        out.append(tuple(_suggest(catalogue.remedies[j], float(priority[i, j]), hit, context,
                                  int(rows[i])) for j in chosen))
    return out


def _columns(catalogue: RemedyCatalogue, hits: Sequence[AlertHit], context: RemedyContext,
             rows: np.ndarray) -> dict[str, np.ndarray]:
    names = {name for r in catalogue.remedies for name in (*r.when.names, *r.priority.names)}
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name in context.numbers:
            out[name] = np.asarray(context.numbers[name], dtype=np.float64)[rows]
        elif name == "run":
            out[name] = np.array([h.run for h in hits], dtype=np.float64)
        else:
            out[name] = np.array([h.values[name] for h in hits], dtype=np.float64)
    return out


def _run(expr: CompiledExpression, columns: dict[str, np.ndarray], where: np.ndarray,
         index: int, part: str, hits: Sequence[AlertHit]) -> np.ndarray:
    try:
        return expr.evaluate({k: columns[k][where] for k in expr.names}, size=len(where))
    except ExpressionError as exc:
        unit = f" (unit {hits[int(where[exc.row])].unit})" if exc.row is not None else ""
        raise RemedyError(SpecIssue(pointer("remedies", index, part), f"{exc.message}{unit}",
                                    f"expression.{exc.code}", exc.column)) from exc


def _suggest(remedy: Remedy, priority: float, hit: AlertHit, context: RemedyContext,
             row: int) -> RemedySuggestion:
    fill: dict[str, Any] = dict(hit.values)
    fill.update({name: float(v[row]) for name, v in context.numbers.items()})
    fill.update({name: str(v[row]) for name, v in context.texts.items()})
    fill.update({"unit": hit.unit, "level": hit.level, "rule": hit.rule, "run": hit.run,
                 "name_en": hit.name_en, "name_zh": hit.name_zh, "priority": priority})
    return RemedySuggestion(remedy.key, priority, remedy.label_en, remedy.label_zh,
                            remedy.message_en.format_map(fill),
                            remedy.message_zh.format_map(fill))


def sibling_context(codes: Sequence[str] | np.ndarray, parents: Sequence[str] | np.ndarray,
                    pace: np.ndarray, *, names_en: Sequence[str] | None = None,
                    names_zh: Sequence[str] | None = None) -> RemedyContext:
    """For every unit, its sibling (same parent, not itself) furthest ahead of pace.

    Numbers: best_sibling_pace (0 without a sibling), best_sibling_ahead (pace - 1,
    0 without a sibling). Texts: best_sibling_code, best_sibling_name_en/_zh ("" without).
    """
    codes_a = np.asarray(codes, dtype=object)
    n = len(codes_a)
    p = np.asarray(pace, dtype=np.float64)
    _, group = np.unique(np.asarray(parents, dtype=object).astype(str), return_inverse=True)
    order = np.lexsort((np.arange(n), -p, group))  # by parent, then pace descending
    g_sorted = group[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    n_groups = int(group.max()) + 1 if n else 0
    best = np.full(n_groups, -1)
    second = np.full(n_groups, -1)
    best[g_sorted[starts]] = order[starts]
    has_second = (starts + 1 < n) & (g_sorted[np.minimum(starts + 1, n - 1)] == g_sorted[starts])
    second[g_sorted[starts[has_second]]] = order[starts[has_second] + 1]
    sib = np.where(best[group] == np.arange(n), second[group], best[group])
    found = sib >= 0
    safe = np.where(found, sib, 0)
    sib_pace = np.where(found, p[safe], 0.0)

    def text(values: Sequence[str] | np.ndarray | None) -> np.ndarray:
        v = codes_a if values is None else np.asarray(values, dtype=object)
        return np.where(found, v[safe], "").astype(object)

    return RemedyContext(codes_a, {"best_sibling_pace": sib_pace,
                                   "best_sibling_ahead": np.where(found, sib_pace - 1, 0.0)},
                         {"best_sibling_code": text(None), "best_sibling_name_en": text(names_en),
                          "best_sibling_name_zh": text(names_zh)})
