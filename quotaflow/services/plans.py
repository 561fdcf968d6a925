"""Plans: simulate the scenarios, save one as a plan pinned to its spec versions,
explain any unit's target from the stored rows, preview a draft model's impact.

A saved plan never depends on the specs being unchanged: its rows hold every
amount of every explanation, and it points at the exact model, presets and risk
rules versions it ran under (DESIGN.md, "Spec and instance are separate").
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quotaflow.errors import Forbidden, NotFound
from quotaflow.plugins import expression_functions
from quotaflow.rules import (
    ExpressionError,
    FactorModel,
    ModelError,
    PresetError,
    RiskRules,
    RiskRulesError,
    ScenarioPresets,
    ScenarioResult,
    load_model,
    load_presets,
    load_risk_rules,
    run_scenarios,
)
from quotaflow.rules.allocation import NO_UPPER
from quotaflow.rules.scoring import AllocationError
from quotaflow.services import audit, spec_kinds, specs
from quotaflow.services.compiled import compiled
from quotaflow.services.plan_data import PeriodData, PlanError, load_period_data
from quotaflow.services.uow import Context, unit_of_work, use_case
from quotaflow.store import plan_queries as pq
from quotaflow.store import queries as q
from quotaflow.store import spec_queries
from quotaflow.store.models import OrgUnit, Period, Plan, PlanUnit, SpecVersion, User

MODEL_SPEC = (spec_kinds.FACTOR_MODEL, spec_kinds.DEFAULT_MODEL_KEY)
PRESETS_SPEC = (spec_kinds.SCENARIO_PRESETS, spec_kinds.DEFAULT_MODEL_KEY)
RISKS_SPEC = (spec_kinds.RISK_RULES, spec_kinds.DEFAULT_MODEL_KEY)
NOTE_MAX = 2000
MAX_TOTAL = 1e15  # yuan; beyond this a total is a typo, and int64 sums stay exact
#: Used when no scenario presets are active: the model as published, one scenario.
MODEL_ONLY_PRESETS = {"id": "model-only", "version": 1, "presets": [
    {"key": "model", "label_en": "Model as published", "label_zh": "按发布模型"}]}
SAVE_ATTEMPTS = 3  # a concurrent save may take the same plan number; retry with the next

__all__ = [
    "ImpactPreview",
    "MetricColumn",
    "PlanError",
    "RegionImpact",
    "Simulation",
    "Specs",
    "UnitRow",
    "active_specs",
    "create_plan",
    "impact_preview",
    "parse_total",
    "plan_diff",
    "plan_diff_counts",
    "plan_explanation",
    "plan_root",
    "plan_table",
    "reallocate",
    "recompute",
    "save_scenario",
    "scope_rows",
    "simulate",
    "summary_for_scope",
    "unit_records",
]


# -- specs ---------------------------------------------------------------------------

def _first_issue(exc: ModelError | PresetError | RiskRulesError) -> dict[str, str]:
    return {"at": exc.pointer or "/", "detail": exc.message}


def compile_model(content: Mapping[str, Any]) -> FactorModel:
    try:
        return compiled((spec_kinds.FACTOR_MODEL, specs.content_hash(content)),
                        lambda: load_model(dict(content), functions=expression_functions()))
    except ModelError as exc:
        raise PlanError("model_invalid", **_first_issue(exc)) from None


def compile_presets(content: Mapping[str, Any] | None, model: FactorModel) -> ScenarioPresets:
    doc = MODEL_ONLY_PRESETS if content is None else content
    try:
        return compiled((spec_kinds.SCENARIO_PRESETS, specs.content_hash(doc), model.content_hash),
                        lambda: load_presets(dict(doc), model))
    except PresetError as exc:
        raise PlanError("presets_invalid", **_first_issue(exc)) from None


def compile_risks(content: Mapping[str, Any] | None, model: FactorModel) -> RiskRules | None:
    if content is None:
        return None
    try:
        return compiled((spec_kinds.RISK_RULES, specs.content_hash(content), model.content_hash),
                        lambda: load_risk_rules(dict(content), model))
    except RiskRulesError as exc:
        raise PlanError("risks_invalid", **_first_issue(exc)) from None


@dataclass(frozen=True, eq=False)
class Specs:
    """The spec versions a simulation runs under, and their compiled forms."""

    model_version: SpecVersion
    presets_version: SpecVersion | None
    risks_version: SpecVersion | None
    model: FactorModel
    presets: ScenarioPresets
    rules: RiskRules | None


def active_specs(session: Session, model_version: SpecVersion | None = None) -> Specs:
    """The active factor model (or ``model_version``, e.g. a draft), presets and risk rules."""
    version = model_version or specs.active_version(session, *MODEL_SPEC)
    if version is None:
        raise PlanError("no_model")
    model = compile_model(version.content)
    presets_version = specs.active_version(session, *PRESETS_SPEC)
    risks_version = specs.active_version(session, *RISKS_SPEC)
    return Specs(
        model_version=version, presets_version=presets_version, risks_version=risks_version,
        model=model,
        presets=compile_presets(presets_version.content if presets_version else None, model),
        rules=compile_risks(risks_version.content if risks_version else None, model))


# -- simulating ----------------------------------------------------------------------

def parse_total(value: Any) -> int:
    """A company total from a form or JSON: a positive number of yuan ("249,500,000" too)."""
    if isinstance(value, bool):
        raise PlanError("bad_total", "/total", total=value)
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "").replace(" ", "")
        try:
            number = float(text)
        except ValueError:
            raise PlanError("bad_total", "/total", total=value) from None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise PlanError("bad_total", "/total", total=value)
    if not (np.isfinite(number) and 0 < number < MAX_TOTAL):
        raise PlanError("bad_total", "/total", total=value)
    return int(np.floor(number + 0.5))


@dataclass(frozen=True)
class MetricColumn:
    """A derived column of the risk rules shown beside targets (e.g. load, growth)."""

    name: str
    label_en: str
    label_zh: str
    percent: bool


def metric_columns(rules: RiskRules | None) -> list[MetricColumn]:
    """The risk rules' derived columns; a column is a percentage where the rules' own
    messages format it as one (``{load:.0%}``), so the display follows the spec."""
    if rules is None:
        return []
    percent: set[str] = set()
    for rule in rules.unit_rules:
        for template in (rule.message_en, rule.message_zh):
            for _, name, spec, _ in string.Formatter().parse(template):
                if name and spec and spec.endswith("%"):
                    percent.add(name)
    return [MetricColumn(c.name, c.label_en or c.name, c.label_zh or c.label_en or c.name,
                         c.name in percent) for c in rules.columns]


@dataclass(frozen=True, eq=False)
class Simulation:
    """The scenarios for one period and total (not saved)."""

    period: Period
    total: int
    specs: Specs
    data: PeriodData
    results: dict[str, ScenarioResult]

    def regions(self, key: str) -> list[dict[str, Any]]:
        """One scenario's first level below the root: target, share, metrics, risks."""
        result = self.results[key]
        tree, plan, report = self.data.tree, result.plan, result.risks
        if tree.max_depth < 1:
            return []
        metrics = metric_columns(self.specs.rules)
        planned = max(plan.planned_total, 1)
        out = []
        for i in tree.by_depth[1].tolist():
            out.append({
                "code": str(tree.ids[i]), "unit_id": int(self.data.unit_ids[i]),
                "name_en": str(tree.labels["name_en"][i]),
                "name_zh": str(tree.labels["name_zh"][i]),
                "target": int(plan.target[i]), "share": int(plan.target[i]) / planned,
                "metrics": {m.name: float(report.columns[m.name][i]) for m in metrics}
                if report is not None else {},
                "risks": report.unit_risks(i) if report is not None else [],
            })
        return out

    def summary(self, key: str) -> dict[str, Any]:
        """What a saved plan keeps as its summary (JSON-ready)."""
        result = self.results[key]
        tree = self.data.tree
        out = result.summary()
        model = self.specs.model
        out.update({
            "company_total": self.total,
            "shortfall": self.total - result.plan.planned_total,
            "factor_keys": list(model.factor_keys),
            "levels": list(tree.levels),
            "units": tree.size,
            "model": {"id": model.id, "version": model.version,
                      "content_hash": model.content_hash},
        })
        out.setdefault("plan_risks", [])
        return out


def simulate(session: Session, period: Period, total: Any, scenario: str | None = None,
             model_version: SpecVersion | None = None) -> Simulation:
    """Run the scenarios (all, or only ``scenario``) on the period's data. Saves nothing."""
    amount = parse_total(total)
    chosen = active_specs(session, model_version)
    if scenario is not None and scenario not in chosen.presets.keys:
        raise PlanError("unknown_scenario", "/scenario", scenario=scenario,
                        known=", ".join(chosen.presets.keys))
    data = load_period_data(session, period, chosen.model)
    try:
        results = run_scenarios(chosen.model, data.tree, amount, chosen.presets,
                                risks=chosen.rules,
                                only=None if scenario is None else [scenario])
    except AllocationError as exc:
        raise PlanError("allocation", detail=str(exc)) from None
    return Simulation(period=period, total=amount, specs=chosen, data=data, results=results)


# -- saving --------------------------------------------------------------------------

def _clean_note(note: str | None) -> str | None:
    text = (note or "").strip()
    if len(text) > NOTE_MAX:
        raise PlanError("note_too_long", "/note", max=NOTE_MAX)
    return text or None


def create_plan(session: Session, actor: User | None, period: Period, scenario: str, total: Any,
                note: str | None, *, remote_addr: str | None = None) -> Plan:
    """Compute one scenario and save it as the period's next plan (see save_scenario)."""
    _clean_note(note)
    sim = simulate(session, period, total, scenario=scenario)
    return save_scenario(session, actor, sim, scenario, note, remote_addr=remote_addr)


def save_scenario(session: Session, actor: User | None, sim: Simulation, scenario: str,
                  note: str | None, *, remote_addr: str | None = None) -> Plan:
    """Save one simulated scenario as the period's next plan, in one transaction.

    The plan row is pinned to the model, presets and risk-rules versions; every unit
    gets its row (target, bounds, factor amounts, adjustments, risks) in one bulk insert.
    """
    text = _clean_note(note)
    attempt = 0
    while True:
        try:
            with unit_of_work(session):
                row = _insert_plan(session, actor, sim, scenario, text, status="draft",
                                   remote_addr=remote_addr)
                return row
        except IntegrityError:
            attempt += 1
            if attempt == SAVE_ATTEMPTS:
                raise


def _insert_plan(session: Session, actor: User | None, sim: Simulation, scenario: str,
                 text: str | None, *, status: str, based_on: Plan | None = None,
                 extra_summary: Mapping[str, Any] | None = None,
                 remote_addr: str | None = None) -> Plan:
    """Write one simulated scenario as the period's next plan (no commit)."""
    if scenario not in sim.results:
        raise PlanError("unknown_scenario", "/scenario", scenario=scenario,
                        known=", ".join(sim.results))
    result = sim.results[scenario]
    plan, tree = result.plan, sim.data.tree
    summary = sim.summary(scenario)
    summary.update(extra_summary or {})
    risks: dict[int, list[dict[str, Any]]] = {}
    if result.risks is not None:
        flagged = set()
        for rows in result.risks.unit_hits.values():
            flagged.update(rows.tolist())
        risks = {i: result.risks.unit_risks(i) for i in sorted(flagged)}
    columns = {
        "unit_ids": sim.data.unit_ids, "target": plan.target, "lower": plan.lower,
        "upper": plan.upper, "locked": plan.locked, "factor_amounts": plan.factor_amounts,
        "bounds": plan.bounds_adjustment, "rounding": plan.rounding_adjustment, "risks": risks,
    }
    chosen = sim.specs
    period_id, period_code = sim.period.id, sim.period.code
    row = Plan(
        period_id=period_id, number=pq.next_plan_number(session, period_id),
        scenario=scenario, company_total=sim.total, planned_total=plan.planned_total,
        model_version_id=chosen.model_version.id,
        presets_version_id=chosen.presets_version.id if chosen.presets_version else None,
        risks_version_id=chosen.risks_version.id if chosen.risks_version else None,
        based_on_id=based_on.id if based_on is not None else None,
        status=status, summary=summary, note=text,
        created_by_id=actor.id if actor else None)
    session.add(row)
    session.flush()
    pq.insert_plan_units(session, row.id, **columns)
    audit.record(session, actor, "create_plan", "plan", f"{period_code}#{row.number}",
                 after={"id": row.id, "scenario": scenario, "status": status,
                        "based_on_id": row.based_on_id,
                        "company_total": sim.total,
                        "planned_total": plan.planned_total, "units": tree.size,
                        "model_version_id": row.model_version_id,
                        "presets_version_id": row.presets_version_id,
                        "risks_version_id": row.risks_version_id},
                 remote_addr=remote_addr)
    return row


# -- new versions of a published plan ---------------------------------------------------

def pinned_specs(session: Session, plan: Plan) -> Specs:
    """The spec versions a plan ran under, compiled (never the active ones)."""
    model = compile_model(plan.model_version.content)
    presets_version = pq.spec_version(session, plan.presets_version_id)
    risks_version = pq.spec_version(session, plan.risks_version_id)
    return Specs(
        model_version=plan.model_version, presets_version=presets_version,
        risks_version=risks_version, model=model,
        presets=compile_presets(presets_version.content if presets_version else None, model),
        rules=compile_risks(risks_version.content if risks_version else None, model))


def recompute(session: Session, plan: Plan, locks: Mapping[int, int], *,
              total: Any = None) -> tuple[Simulation, int]:
    """``plan`` re-run under its pinned spec versions on the period's current data, with
    ``locks`` (unit id -> yuan) kept exactly, for the plan's company total or ``total``
    (a new one). Returns the simulation (only the plan's scenario) and how many locks
    applied (units no longer in the data are skipped). Writes nothing."""
    chosen = pinned_specs(session, plan)
    if plan.scenario not in chosen.presets.keys:
        raise PlanError("unknown_scenario", "/scenario", scenario=plan.scenario,
                        known=", ".join(chosen.presets.keys))
    amount = int(plan.company_total) if total is None else parse_total(total)
    data = load_period_data(session, plan.period, chosen.model)
    index = data.tree.index
    units = pq.units_by_ids(session, list(locks))
    by_code = {units[uid].code: int(value) for uid, value in locks.items()
               if uid in units and units[uid].code in index}
    try:
        results = run_scenarios(chosen.model, data.tree, amount, chosen.presets,
                                risks=chosen.rules, locks=by_code, only=[plan.scenario])
    except AllocationError as exc:
        raise PlanError("allocation", detail=str(exc)) from None
    sim = Simulation(period=plan.period, total=amount, specs=chosen, data=data,
                     results=results)
    return sim, len(by_code)


def reallocate(session: Session, plan: Plan, locks: Mapping[int, int], actor: User | None,
               note: str | None, *, remote_addr: str | None = None, total: Any = None,
               simulation: Simulation | None = None,
               extra_summary: Mapping[str, Any] | None = None) -> Plan:
    """The next version of a published ``plan``: the same period, scenario, company total
    (or ``total``, a new one) and pinned spec versions, re-run with ``locks`` (unit id ->
    yuan) so those units keep exactly that target and the model re-spreads the rest over
    the unlocked units (see :func:`recompute`; ``simulation``: its result, already run).

    The new plan is "published" and based on ``plan``, which becomes "superseded".
    Every sum stays exact (the cascade splits each parent's target exactly); a lock set
    that leaves a group nothing to absorb with is reported in the summary's
    infeasibilities, as for any plan. Nothing is committed: the caller's unit of work
    decides.
    """
    text = _clean_note(note)
    if simulation is None:
        sim, locked = recompute(session, plan, locks, total=total)
    else:
        sim, locked = simulation, len(locks)
    plan.status = "superseded"
    session.flush()
    return _insert_plan(session, actor, sim, plan.scenario, text, status="published",
                        based_on=plan, extra_summary={"based_on_number": plan.number,
                                                      "locked_units": locked,
                                                      **(extra_summary or {})},
                        remote_addr=remote_addr)


@dataclass(frozen=True)
class DiffRow:
    """One unit's target in two plan versions."""

    unit: OrgUnit
    old: int | None  # None: not in the old version
    new: int | None

    @property
    def change(self) -> int:
        return (self.new or 0) - (self.old or 0)

    @property
    def change_pct(self) -> float | None:
        return self.change / self.old if self.old else None

    @property
    def changed(self) -> bool:
        return self.old != self.new


def plan_diff(session: Session, old: Plan, new: Plan, paths: Sequence[str], *,
              limit: int | None = None) -> list[DiffRow]:
    """The units in ``paths`` with their target in ``old`` and ``new``: changed units first
    (largest change first), then the unchanged ones in tree order; at most ``limit``."""
    from quotaflow.store import confirmation_queries as cq

    return [DiffRow(unit, o, n)
            for unit, o, n in cq.diff_rows(session, old.id, new.id, paths, limit=limit)]


def plan_diff_counts(session: Session, old: Plan, new: Plan, paths: Sequence[str]
                     ) -> tuple[int, int]:
    """(units, changed units) of two plan versions inside ``paths``."""
    from quotaflow.store import confirmation_queries as cq

    return cq.diff_counts(session, old.id, new.id, paths)


# -- reading -------------------------------------------------------------------------

def _pinned_model(plan: Plan) -> FactorModel:
    return compile_model(plan.model_version.content)


def _weights(plan: Plan) -> dict[str, float]:
    weights = (plan.summary or {}).get("weights")
    return dict(weights) if weights else dict(plan.model_version.content["weights"])


def _unit_json(unit: OrgUnit) -> dict[str, Any]:
    return {"code": unit.code, "name_en": unit.name_en, "name_zh": unit.name_zh,
            "level": unit.level.key, "level_name_en": unit.level.name_en,
            "level_name_zh": unit.level.name_zh}


def plan_explanation(session: Session, plan: Plan, unit: OrgUnit) -> dict[str, Any]:
    """How one unit's target was derived, from its stored row and the pinned model.

    Lines: one amount per factor (with its weight and the unit's share among its
    siblings), then the bounds adjustment and the rounding adjustment; they add up
    exactly to the target. The root's lines start from the requested total instead.
    """
    row = pq.plan_unit(session, plan.id, unit.id)
    if row is None:
        raise PlanError("unit_not_in_plan", unit=unit.code)
    version = plan.model_version
    weights = _weights(plan)
    parent_row = pq.plan_unit(session, plan.id, unit.parent_id) if unit.parent_id else None
    parent_target = parent_row.target if parent_row is not None else None
    amounts = [int(a) for a in row.factor_amounts]
    factors = []
    for factor, amount in zip(version.content["factors"], amounts, strict=True):
        weight = float(weights.get(factor["key"], 0))
        base = (parent_target or 0) * weight / 100
        factors.append({
            "key": factor["key"], "label_en": factor.get("label_en", factor["key"]),
            "label_zh": factor.get("label_zh", factor.get("label_en", factor["key"])),
            "weight_percent": weight,
            # The factor's amount is parent target x weight x share, rounded to the yuan.
            "share": amount / base if base > 0 else None,
            "amount": amount,
        })
    is_root = unit.parent_id is None
    requested = int((plan.summary or {}).get("requested_total", plan.company_total))
    start = requested if is_root else sum(amounts)
    children = [{"code": u.code, "name_en": u.name_en, "name_zh": u.name_zh,
                 "target": int(pu.target), "share": pu.target / row.target if row.target else None}
                for pu, u in pq.plan_rows(session, plan.id, parent_id=unit.id)]
    return {
        "plan": {"id": plan.id, "number": plan.number, "period": plan.period.code,
                 "scenario": plan.scenario},
        "unit": _unit_json(unit),
        "parent": None if parent_row is None else {
            "code": unit.parent.code, "name_en": unit.parent.name_en,
            "name_zh": unit.parent.name_zh, "target": int(parent_target)},
        "model": {"version_id": version.id, "key": version.key, "version": version.version,
                  "content_hash": version.content_hash},
        "is_root": is_root,
        "requested": requested if is_root else None,
        "factors": [] if is_root else factors,
        "factors_total": None if is_root else sum(amounts),
        "bounds_adjustment": int(row.bounds_adjustment),
        "rounding_adjustment": int(row.rounding_adjustment),
        "target": int(row.target),
        "adds_up": start + row.bounds_adjustment + row.rounding_adjustment == row.target,
        "lower": row.lower, "upper": row.upper, "locked": bool(row.locked),
        "risks": list(row.risks or []),
        "children": children,
    }


def in_scope(path: str, paths: Sequence[str]) -> bool:
    return any(path.startswith(p) for p in paths)


def plan_root(session: Session, plan: Plan) -> OrgUnit | None:
    """The unit at the top of a plan (the company)."""
    rows = pq.plan_rows(session, plan.id, depth=0, limit=1)
    return rows[0][1] if rows else None


def summary_for_scope(ctx: Context, plan: Plan, paths: Sequence[str]) -> dict[str, Any]:
    """A plan's summary as a user with read scope ``paths`` may see it.

    Plan-level risks name units anywhere in the company, so only users who can read
    the plan's root see them; infeasibilities are kept for the units in scope.
    """
    session = ctx.session
    summary = dict(plan.summary or {})
    root = plan_root(session, plan)
    if root is not None and in_scope(root.path, paths):
        return summary
    for key in ("plan_risks", "unit_risk_counts", "values"):
        summary.pop(key, None)
    note = summary.get("version_note")
    if isinstance(note, Mapping) and note.get("unit"):
        found = pq.units_by_codes(session, [str(note["unit"])]).get(str(note["unit"]))
        if found is None or not in_scope(found.path, paths):
            # Which unit appealed, and its amounts, are for those who may read it.
            summary["version_note"] = {k: v for k, v in note.items()
                                       if k not in ("unit", "old", "new")}
    issues = summary.get("infeasible", [])
    units = pq.units_by_codes(session, sorted({x["unit"] for x in issues}))
    summary["infeasible"] = [x for x in issues
                             if x["unit"] in units and in_scope(units[x["unit"]].path, paths)]
    return summary


def scope_rows(session: Session, plan: Plan, paths: Sequence[str]
               ) -> list[tuple[PlanUnit, OrgUnit]]:
    """The rows a plan page opens with: the regions for a company-wide scope, else each
    scope root with the units right below it (a sales person: their own row)."""
    root = plan_root(session, plan)
    if root is not None and in_scope(root.path, paths):
        return pq.plan_rows(session, plan.id, parent_id=root.id)
    rows: list[tuple[PlanUnit, OrgUnit]] = []
    tops = q.units_at(session, paths)
    for top_row in pq.plan_rows(session, plan.id, unit_ids=[u.id for u in tops]):
        rows.append(top_row)
        rows.extend(pq.plan_rows(session, plan.id, parent_id=top_row[1].id))
    return rows


def unit_records(ctx: Context, plan: Plan, paths: Sequence[str], *, offset: int = 0,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """The plan's rows inside ``paths`` as plain records, in tree order (API, export)."""
    session = ctx.session
    keys = [f["key"] for f in plan.model_version.content["factors"]]
    levels = {level.depth: level.key for level in q.levels(session)}
    out = []
    for (code, name_en, name_zh, depth, parent, target, lower, upper, locked, amounts, bounds,
         rounding, risks) in pq.plan_row_columns(session, plan.id, paths, offset=offset,
                                                 limit=limit):
        out.append({
            "code": code, "name_en": name_en, "name_zh": name_zh,
            "level": levels.get(depth, str(depth)), "parent": parent, "target": int(target),
            "lower": lower, "upper": upper, "locked": bool(locked),
            "factor_amounts": dict(zip(keys, (int(a) for a in amounts), strict=True)),
            "bounds_adjustment": int(bounds), "rounding_adjustment": int(rounding),
            "risks": list(risks or []),
        })
    return out


@dataclass(frozen=True)
class UnitRow:
    """One unit's line in a plan table."""

    unit: OrgUnit
    target: int
    share: float | None  # of the parent's target
    lower: float | None
    upper: float | None
    locked: bool
    metrics: dict[str, float | None] = field(default_factory=dict)
    risks: list[dict[str, Any]] = field(default_factory=list)


def plan_table(ctx: Context, plan: Plan, rows: Sequence[tuple[PlanUnit, OrgUnit]]
               ) -> tuple[list[MetricColumn], list[UnitRow]]:
    """Rows of a plan with share of parent and the pinned risk rules' derived columns
    (capacity, load, growth in the demo), evaluated on the period's inputs now."""
    if not rows:
        return [], []
    session = ctx.session
    model = _pinned_model(plan)
    rules = compile_risks(plan_risks_content(session, plan), model)
    metrics = metric_columns(rules)
    requested = int((plan.summary or {}).get("requested_total", plan.company_total))
    parent_ids = {u.parent_id for _, u in rows if u.parent_id is not None}
    parents = {u.id: pu.target for pu, u in pq.plan_rows(session, plan.id, unit_ids=parent_ids)}
    parent_target = np.array([parents.get(u.parent_id, 0) if u.parent_id else requested
                              for _, u in rows], dtype=float)
    target = np.array([pu.target for pu, _ in rows], dtype=float)
    share = np.divide(target, parent_target, out=np.full(len(rows), np.nan),
                      where=parent_target > 0)
    values = _metric_values(session, plan, model, rules, rows, target, parent_target, share)
    out = []
    for k, (pu, u) in enumerate(rows):
        out.append(UnitRow(
            unit=u, target=int(pu.target),
            share=None if np.isnan(share[k]) else float(share[k]),
            lower=pu.lower, upper=pu.upper, locked=bool(pu.locked),
            metrics={m.name: values[m.name][k] for m in metrics},
            risks=list(pu.risks or [])))
    return metrics, out


def plan_risks_content(session: Session, plan: Plan) -> Mapping[str, Any] | None:
    version = pq.spec_version(session, plan.risks_version_id)
    return None if version is None else version.content


def _metric_values(session: Session, plan: Plan, model: FactorModel, rules: RiskRules | None,
                   rows: Sequence[tuple[PlanUnit, OrgUnit]], target: np.ndarray,
                   parent_target: np.ndarray, share: np.ndarray
                   ) -> dict[str, list[float | None]]:
    """The derived columns for a page of rows (a few dozen): inputs from the period,
    plan columns from the stored rows. A row whose inputs are missing shows nothing."""
    n = len(rows)
    if rules is None:
        return {}
    ids = [u.id for _, u in rows]
    inputs = pq.attribute_rows(session, plan.period_id, ids, model.field_names)
    cols: dict[str, np.ndarray] = {}
    for spec in model.fields:
        default = np.nan if spec.default is None else float(spec.default)
        cols[spec.name] = np.array([inputs[i].get(spec.name, default) for i in ids], dtype=float)
    unbounded = np.array([sum(pu.factor_amounts or []) for pu, _ in rows], dtype=float)
    cols.update({
        "target": target,
        "lower": np.array([pu.lower if pu.lower is not None else 0.0 for pu, _ in rows]),
        "upper": np.array([pu.upper if pu.upper is not None else NO_UPPER for pu, _ in rows]),
        "parent_target": parent_target,
        "share_of_parent": np.nan_to_num(share),
        "unbounded": unbounded,
        "weighted_share": np.divide(unbounded, parent_target, out=np.zeros(n),
                                    where=parent_target > 0),
        "locked": np.array([bool(pu.locked) for pu, _ in rows]),
        "depth": np.array([u.depth for _, u in rows], dtype=float),
    })
    out: dict[str, list[float | None]] = {}
    for column in rules.columns:
        try:
            values = column.expression.evaluate(cols, size=n).astype(float)
            out[column.name] = values.tolist()
        except ExpressionError:
            # Some row cannot be evaluated (a missing input): evaluate row by row.
            one = []
            for k in range(n):
                try:
                    one.append(float(column.expression.evaluate(
                        {name: cols[name][k:k + 1] for name in column.expression.names},
                        size=1)[0]))
                except ExpressionError:
                    one.append(None)
            values = np.array([np.nan if v is None else v for v in one])
            out[column.name] = one
        cols[column.name] = values
    return out


# -- impact of a draft model ----------------------------------------------------------

@dataclass(frozen=True)
class RegionImpact:
    code: str
    name_en: str
    name_zh: str
    old_target: int
    new_target: int
    delta: int
    delta_pct: float | None  # of the old target; None when it was 0


def _impact(code: str, name_en: str, name_zh: str, old: int, new: int) -> RegionImpact:
    return RegionImpact(code, name_en, name_zh, old, new, new - old,
                        (new - old) / old if old else None)


@dataclass(frozen=True)
class ImpactPreview:
    """A plan recomputed under another model: region by region, and the company."""

    plan_id: int
    scenario: str
    regions: list[RegionImpact]
    company: RegionImpact
    old_factors: list[str]
    new_factors: list[str]


def impact_preview(ctx: Context, draft: SpecVersion | Mapping[str, Any], plan: Plan
                   ) -> ImpactPreview:
    """``plan`` recomputed under ``draft`` (a spec version or a model document): the same
    period's current data, the same scenario (from the plan's pinned presets) and total.
    Old targets are the plan's stored ones."""
    session = ctx.session
    content = draft.content if isinstance(draft, SpecVersion) else draft
    model = compile_model(content)
    presets_version = pq.spec_version(session, plan.presets_version_id)
    presets = compile_presets(presets_version.content if presets_version else None, model)
    if plan.scenario not in presets.keys:
        presets = compile_presets(None, model)
    key = plan.scenario if plan.scenario in presets.keys else presets.keys[0]
    data = load_period_data(session, plan.period, model)
    try:
        result = run_scenarios(model, data.tree, plan.company_total, presets, only=[key])[key]
    except AllocationError as exc:
        raise PlanError("allocation", detail=str(exc)) from None
    tree, new_plan = data.tree, result.plan
    new_targets: dict[str, tuple[int, str, str]] = {}
    if tree.max_depth >= 1:
        for i in tree.by_depth[1].tolist():
            new_targets[str(tree.ids[i])] = (int(new_plan.target[i]),
                                             str(tree.labels["name_en"][i]),
                                             str(tree.labels["name_zh"][i]))
    root = plan_root(session, plan)
    old_rows = [] if root is None else pq.plan_rows(session, plan.id, parent_id=root.id)
    regions = []
    seen = set()
    for pu, u in old_rows:
        new = new_targets.get(u.code, (0, u.name_en, u.name_zh))[0]
        regions.append(_impact(u.code, u.name_en, u.name_zh, int(pu.target), new))
        seen.add(u.code)
    for code, (new, name_en, name_zh) in sorted(new_targets.items()):
        if code not in seen:  # a region that did not exist when the plan was made
            regions.append(_impact(code, name_en, name_zh, 0, new))
    top = str(tree.ids[tree.root])
    company = _impact(top, str(tree.labels["name_en"][tree.root]),
                      str(tree.labels["name_zh"][tree.root]), int(plan.planned_total),
                      new_plan.planned_total)
    return ImpactPreview(plan_id=plan.id, scenario=key, regions=regions, company=company,
                         old_factors=[f["key"] for f in plan.model_version.content["factors"]],
                         new_factors=list(model.factor_keys))



# -- a plan's rows and versions as the reader may see them (the API) -----------------------------

def scope_paths(ctx: Context) -> tuple[str, ...]:
    return ctx.principal.scope_paths("unit.read") if ctx.principal is not None else ("/",)


def count_scope_rows(ctx: Context, plan: Plan) -> int:
    """How many of the plan's unit rows lie in the caller's read scope."""
    return pq.count_plan_rows(ctx.session, plan.id, scope_paths(ctx))


@dataclass(frozen=True)
class PlanComparison:
    """Two versions of a period's plan, unit by unit, inside the caller's scope."""

    old: Plan
    new: Plan
    rows: list[DiffRow]
    total: int  # units compared
    changed: int  # of which changed
    versions: list[Plan]  # the period's other versions (to compare against)


def compare_plans(ctx: Context, plan_id: int, against: int | None = None, *,
                  limit: int | None = None) -> PlanComparison:
    """Plan ``plan_id`` against ``against`` (default: the version it was based on)."""
    from quotaflow.services.plan_reads import plan, plans

    new = plan(ctx, plan_id)
    against = against or new.based_on_id
    if against is None:
        raise NotFound("not_found", "/against")
    old = plan(ctx, against)
    if old.period_id != new.period_id:
        raise NotFound("not_found", "/against")
    paths = scope_paths(ctx)
    total, changed = plan_diff_counts(ctx.session, old, new, paths)
    return PlanComparison(old, new, plan_diff(ctx.session, old, new, paths, limit=limit),
                          total, changed,
                          [p for p in plans(ctx, new.period_id) if p.id != new.id])


@use_case
def impact_of_model(ctx: Context, plan: Plan, model_version_id: int) -> ImpactPreview:
    """What changing a plan's inputs (its factor model version) does to its targets: the
    plan recomputed under factor-model version ``model_version_id`` (configuration
    readers only; a version that is not a factor model is NotFound)."""
    if ctx.principal is None or not ctx.principal.has("spec.read"):
        raise Forbidden("forbidden")
    version = next((v for v in spec_queries.factor_model_versions(ctx.session) if v.id == model_version_id),
                   None)
    if version is None:
        raise NotFound("not_found", "/model_version")
    return impact_preview(ctx, version, plan)
