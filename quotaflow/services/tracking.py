"""Progress during the quarter: targets, actuals, red line, pace and forecast per unit.

The one entry point dashboards, the alert scan and the API call::

    from quotaflow.services import tracking

    p = tracking.progress(session, period, week)      # week 1..len(period.weeks)
    p.targets_source                                  # "published" or "latest" (a draft)
    p.plan_id, p.plan_number, p.plan_status           # the plan the targets come from
    p.curve_kind, p.curve.values                      # "seasonal" / "linear", C(0..weeks)
    p.metrics                                         # rules.pacing.WeeklyMetrics,
                                                      # units x weeks 1..week
    p.now("pace")                                     # one column at ``week``, per unit
    p.forecast_point / forecast_low / forecast_high   # quarter forecast per unit
    p.wmape, p.wmape_now                              # backtest error per week, at week
    p.unit("NORTH-T4")                                # a dict for one unit (JSON-ready)
    p.series("NORTH-T4")                              # per-week lists for a chart
    p.rows_in(principal.scope_paths("unit.read"))     # row indexes within a scope
    p.children_rows("NORTH")                          # a unit's children, in code order

Every array is over the active units in id order (``unit_ids``, ``codes``, ``levels``,
``names_en``, ``names_zh``, ``paths``, ``parent_row``, ``depth``); ``p.row(code)``
finds one. Nothing is stored: persons' actuals (by date) are bucketed into the
period's weeks (ISO weeks clipped to the period) and summed up the tree with numpy.

Targets come from the period's latest published plan, else its latest plan (the result
says which) for those who may read drafts; with no plan at all :class:`TrackingError`
("no_plan") is raised, and for anyone else with no published plan "no_published_plan".

The red line follows the active ``pacing_curve`` spec: linear in days, or seasonal from
past quarters' results: every past period's actuals are pooled into the spec's weeks
(7-day blocks from the period's start, the last one taking the remaining days), their
mean cumulative share by block is the curve, and it is resampled to this period's weeks
by the days elapsed at each week's end. The forecast is the seasonality-adjusted run
rate (result to date / share due) with a band of past quarters' final / run-rate
quantiles, and the backtest WMAPE (company, pooled) says how good that was in the past.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.rules.forecast import backtest, forecast_band, run_rate
from quotaflow.rules.pacing import (
    DEFAULT_WEEKS,
    PacingCurve,
    WeeklyMetrics,
    load_pacing_curve,
    pacing_metrics,
    weekly_matrix,
)
from quotaflow.services import actuals as actuals_service
from quotaflow.services import specs
from quotaflow.services.plan_reads import sees_drafts
from quotaflow.services.uow import Context
from quotaflow.store import confirmation_queries, org_columns, plan_queries, tracking_queries
from quotaflow.store.models import Period, Plan

PACING_KIND = "pacing_curve"
SPEC_KEY = "default"


class TrackingError(QuotaFlowError):
    """Progress cannot be computed; ``code``: no_plan, no_published_plan, bad_week,
    no_weeks."""

    domain = "tracking"
    CODE_KINDS = code_kinds(no_plan="not_found", no_published_plan="not_found")
    CODES = messages.register(domain, {
        "no_weeks": _l("Period %(period)s has no weeks."),
        "no_plan": _l("Period %(period)s has no plan yet: create one in the target simulator "
                      "to track progress against it."),
        "no_published_plan": _l("Period %(period)s has no published plan yet: progress is "
                                "tracked once a plan is published."),
        "bad_week": _l("%(period)s has weeks 1..%(weeks)s, not %(week)s."),
    })

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, "/week" if code == "bad_week" else "", **params)


@dataclass(frozen=True, eq=False)
class UnitTree:
    """The active units as columns, in id order."""

    ids: np.ndarray
    codes: np.ndarray
    levels: np.ndarray
    names_en: np.ndarray
    names_zh: np.ndarray
    paths: np.ndarray
    parent_row: np.ndarray
    depth: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ids)


def unit_tree(session: Session) -> UnitTree:
    units = org_columns.org_columns(session, paths=True)
    return UnitTree(
        ids=units.ids, codes=units.codes.astype(object), levels=units.level.astype(object),
        names_en=units.name_en.astype(object), names_zh=units.name_zh.astype(object),
        paths=units.paths.astype(object), parent_row=units.parent_row, depth=units.depth)


@dataclass(frozen=True, eq=False)
class Progress:
    """Pacing metrics, forecast and backtest of every active unit at one week."""

    period_id: int
    period_code: str
    week: int
    weeks: int
    week_start: dt.date
    week_end: dt.date
    targets_source: str
    plan_id: int
    plan_number: int
    plan_status: str
    curve: PacingCurve
    curve_kind: str
    pacing_version_id: int | None
    tree: UnitTree
    has_target: np.ndarray
    metrics: WeeklyMetrics
    forecast_point: np.ndarray
    forecast_low: np.ndarray
    forecast_high: np.ndarray
    band_quantiles: tuple[float, float]
    history_quarters: tuple[str, ...]
    wmape: np.ndarray  # per block week of the pacing spec (index 0 = week 1)
    wmape_now: float | None
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index.update({str(c): i for i, c in enumerate(self.tree.codes.tolist())})

    # -- arrays ------------------------------------------------------------------------
    @property
    def unit_ids(self) -> np.ndarray:
        return self.tree.ids

    @property
    def codes(self) -> np.ndarray:
        return self.tree.codes

    @property
    def levels(self) -> np.ndarray:
        return self.tree.levels

    def now(self, column: str) -> np.ndarray:
        """One metric column at the scanned week, per unit."""
        return self.metrics.columns[column][:, self.week - 1]

    # -- lookups -----------------------------------------------------------------------
    def __contains__(self, code: object) -> bool:
        return code in self._index

    def row(self, code: str) -> int:
        """The row of a unit; KeyError if it is not an active unit."""
        return self._index[code]

    def rows_in(self, paths: Sequence[str]) -> np.ndarray:
        """Rows of the units inside any of the subtrees ``paths`` (a viewer's scope)."""
        if not paths:
            return np.zeros(0, dtype=np.int64)
        inside = np.zeros(self.tree.size, dtype=bool)
        for path in paths:
            inside |= np.char.startswith(self.tree.paths.astype(str), path)
        return np.flatnonzero(inside)

    def children_rows(self, code: str) -> np.ndarray:
        """Rows of a unit's children, in code order."""
        rows = np.flatnonzero(self.tree.parent_row == self.row(code))
        return rows[np.argsort(self.tree.codes[rows].astype(str), kind="stable")]

    # -- one unit ----------------------------------------------------------------------
    def unit(self, code: str) -> dict[str, Any]:
        """One unit's figures at the week (JSON-ready)."""
        i = self.row(code)
        at = {k: float(v[i, self.week - 1]) for k, v in self.metrics.columns.items()}
        return {
            "code": code, "level": str(self.tree.levels[i]),
            "name_en": str(self.tree.names_en[i]), "name_zh": str(self.tree.names_zh[i]),
            "has_target": bool(self.has_target[i]),
            "target": at["target"], "actual": at["actual"], "week_actual": at["week_actual"],
            "red_line": at["red_line"], "gap": at["gap"], "attainment": at["attainment"],
            "pace": at["pace"], "streak": int(at["streak"]),
            "forecast": _num(self.forecast_point[i]), "forecast_low": _num(self.forecast_low[i]),
            "forecast_high": _num(self.forecast_high[i]),
        }

    def series(self, code: str) -> dict[str, list[float]]:
        """Per-week lists (weeks 1..week) of one unit, for charts."""
        i = self.row(code)
        names = ("week_actual", "actual", "red_line", "pace", "attainment", "gap")
        return {"week": list(range(1, self.week + 1)),
                **{k: self.metrics.columns[k][i, :].tolist() for k in names}}

    def summary(self) -> dict[str, Any]:
        """Where the numbers come from (JSON-ready)."""
        return {
            "period": self.period_code, "week": self.week, "weeks": self.weeks,
            "week_start": self.week_start.isoformat(), "week_end": self.week_end.isoformat(),
            "targets": {"source": self.targets_source, "plan_id": self.plan_id,
                        "plan_number": self.plan_number, "plan_status": self.plan_status},
            "curve": {"kind": self.curve_kind, "spec_version_id": self.pacing_version_id,
                      "due_now": float(self.curve.values[self.week]),
                      "history_quarters": list(self.history_quarters)},
            "forecast": {"band_quantiles": list(self.band_quantiles),
                         "backtest_wmape_now": self.wmape_now},
        }


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ---------------------------------------------------------------------------- choosing


def current_week(period: Period, today: dt.date | None = None) -> int:
    """The period's week holding ``today``: 1 before the period, the last one after it."""
    today = today or dt.date.today()
    weeks = period.weeks
    if not weeks:
        raise TrackingError("no_weeks", period=period.code)
    for w in weeks:
        if w.start_date <= today <= w.end_date:
            return w.week_no
    return weeks[0].week_no if today < weeks[0].start_date else weeks[-1].week_no


def target_plan(session: Session, period: Period, *, drafts: bool = True) -> tuple[Plan, str]:
    """The latest published plan of the period, else (only when ``drafts``: for those who
    may read drafts, and the system) its latest plan; and which it is. Without ``drafts``
    an unpublished plan is as good as none: "no_published_plan"."""
    published = confirmation_queries.published_plan(session, period.id)
    if published is not None:
        return published, "published"
    latest = plan_queries.latest_plan(session, period.id)
    if latest is None:
        raise TrackingError("no_plan", period=period.code)
    if not drafts:
        raise TrackingError("no_published_plan", period=period.code)
    return latest, "latest"


def _place(ids: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``keys`` among ``ids`` (vectorised): (rows of the known keys, known mask)."""
    if not len(ids) or not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(len(keys), dtype=bool)
    order = np.argsort(ids, kind="stable")
    pos = np.minimum(np.searchsorted(ids[order], keys), len(ids) - 1)
    known = ids[order][pos] == keys
    return order[pos[known]], known


def _targets(session: Session, plan: Plan, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's target in ``plan`` (0 where it has none) and whether it has one."""
    units, values = tracking_queries.plan_targets(session, plan.id)
    targets = np.zeros(len(ids))
    has = np.zeros(len(ids), dtype=bool)
    at, known = _place(ids, units)
    targets[at] = values[known]
    has[at] = True
    return targets, has


# ---------------------------------------------------------------------------- curve


def history_matrix(session: Session, period: Period, weeks: int = DEFAULT_WEEKS
                   ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Past periods' actuals pooled over units: weeks x quarters (7-day blocks)."""
    all_w: list[np.ndarray] = []
    all_q: list[np.ndarray] = []
    all_v: list[np.ndarray] = []
    for past in tracking_queries.periods_before(session, period):
        _units, days, values = actuals_service.actual_rows(session, past.start_date,
                                                           past.end_date)
        if not len(days):
            continue
        offset = days - past.start_date.toordinal()
        all_w.append(np.minimum(offset // 7 + 1, weeks))
        all_q.append(np.full(len(days), past.code, dtype=object))
        all_v.append(values)
    if not all_w:
        return np.zeros((weeks, 0)), ()
    matrix, labels = weekly_matrix(np.concatenate(all_w), np.concatenate(all_q).astype(str),
                                   np.concatenate(all_v), weeks)
    return matrix, tuple(str(q) for q in labels)


def _week_end_days(period: Period) -> np.ndarray:
    """Days elapsed at the end of each of the period's weeks."""
    start = period.start_date.toordinal()
    return np.array([w.end_date.toordinal() - start + 1 for w in period.weeks], dtype=float)


def resample(block_curve: PacingCurve, period: Period) -> PacingCurve:
    """A curve over 7-day blocks (the last taking the rest) at this period's weeks."""
    total = period.end_date.toordinal() - period.start_date.toordinal() + 1
    w = block_curve.weeks
    xs = np.array([0.0, *[7.0 * t for t in range(1, w)], float(max(total, 7 * (w - 1) + 1))])
    values = np.concatenate(([0.0], np.interp(_week_end_days(period), xs, block_curve.values)))
    values = np.minimum(np.maximum.accumulate(values), 1.0)
    values[-1] = 1.0
    return PacingCurve(block_curve.kind, values)


def linear_in_days(period: Period) -> PacingCurve:
    total = period.end_date.toordinal() - period.start_date.toordinal() + 1
    values = np.concatenate(([0.0], _week_end_days(period) / total))
    values[-1] = 1.0
    return PacingCurve("linear", values)


@dataclass(frozen=True, eq=False)
class CurveChoice:
    curve: PacingCurve  # over the period's weeks
    block_curve: PacingCurve | None  # over the spec's weeks (seasonal only)
    kind: str
    version_id: int | None
    history: np.ndarray
    quarters: tuple[str, ...]


def pacing_curve(session: Session, period: Period) -> CurveChoice:
    """The active pacing curve for ``period`` (linear without a spec or a history)."""
    version = specs.active_version(session, PACING_KIND, SPEC_KEY)
    doc = dict(version.content) if version is not None else {"kind": "linear"}
    weeks = int(doc.get("weeks", DEFAULT_WEEKS))
    history, quarters = history_matrix(session, period, weeks)
    vid = version.id if version is not None else None
    if doc.get("kind") == "seasonal" and history.shape[1] and history.sum() > 0:
        block = load_pacing_curve(doc, history=history)
        return CurveChoice(resample(block, period), block, "seasonal", vid, history, quarters)
    kind = "linear" if doc.get("kind") != "seasonal" else "linear (no history)"
    return CurveChoice(linear_in_days(period), None, kind, vid, history, quarters)


def _block_week(period: Period, week: int, weeks: int) -> int:
    days = _week_end_days(period)[week - 1]
    return int(min(max(round(days / 7), 1), weeks))


# ---------------------------------------------------------------------------- progress


def attribute_columns(session: Session, period: Period, ids: np.ndarray,
                      names: Sequence[str]) -> dict[str, np.ndarray]:
    """Attribute values of the period by name, per unit (only names that have values)."""
    if not names:
        return {}
    out: dict[str, np.ndarray] = {}
    rows = tracking_queries.attribute_rows(session, period.id, names)
    if not rows:
        return out
    n = len(rows)
    row_names = np.array([r[0] for r in rows], dtype=object)
    units = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n)
    values = np.fromiter((r[2] for r in rows), dtype=np.float64, count=n)
    for name in names:
        mine = row_names == name
        if not mine.any():
            continue
        col = np.zeros(len(ids))
        at, known = _place(ids, units[mine])
        col[at] = values[mine][known]
        out[name] = col
    return out


def progress(session: Session, period: Period, week: int | None = None, *,
             today: dt.date | None = None, drafts: bool = True) -> Progress:
    """Every active unit's pacing metrics for weeks 1..``week`` of ``period``, forecast
    and backtest (``week`` defaults to the current week). ``drafts``: whether targets may
    come from an unpublished plan (see :func:`target_plan`); readers' calls go through
    :func:`readable_progress`, which decides it from the principal."""
    if not period.weeks:
        raise TrackingError("no_weeks", period=period.code)
    week = current_week(period, today) if week is None else int(week)
    n_weeks = len(period.weeks)
    if not 1 <= week <= n_weeks:
        raise TrackingError("bad_week", period=period.code, weeks=n_weeks, week=week)
    plan, source = target_plan(session, period, drafts=drafts)
    tree = unit_tree(session)
    targets, has_target = _targets(session, plan, tree.ids)
    own = actuals_service.weekly_columns(session, period, tree.ids)
    weekly = actuals_service.rollup(tree.parent_row, tree.depth, own)
    choice = pacing_curve(session, period)
    metrics = pacing_metrics(tree.codes, tree.levels, targets, weekly[:, :week], choice.curve,
                             names_en=tree.names_en, names_zh=tree.names_zh)
    cumulative = metrics.columns["actual"][:, week - 1]
    point = run_rate(cumulative, week, choice.curve)
    low, high, quantiles = point.copy(), point.copy(), (0.1, 0.9)
    wmape = np.zeros(0)
    wmape_now: float | None = None
    if choice.block_curve is not None:
        band = forecast_band(choice.history, choice.block_curve)
        b = _block_week(period, week, choice.block_curve.weeks)
        low, high, quantiles = point * band.low[b - 1], point * band.high[b - 1], band.quantiles
        if choice.history.shape[1] >= 2:
            wmape = backtest(choice.history).wmape
            value = wmape[b - 1]
            wmape_now = float(value) if np.isfinite(value) else None
    week_row = period.weeks[week - 1]
    return Progress(
        period_id=period.id, period_code=period.code, week=week, weeks=n_weeks,
        week_start=week_row.start_date, week_end=week_row.end_date, targets_source=source,
        plan_id=plan.id, plan_number=plan.number, plan_status=plan.status,
        curve=choice.curve, curve_kind=choice.kind, pacing_version_id=choice.version_id,
        tree=tree, has_target=has_target & (targets > 0), metrics=metrics,
        forecast_point=point, forecast_low=low, forecast_high=high, band_quantiles=quantiles,
        history_quarters=choice.quarters, wmape=wmape, wmape_now=wmape_now)


def readable_progress(ctx: Context, period: Period, week: int | None = None, *,
                      today: dt.date | None = None) -> Progress:
    """:func:`progress` as the context's principal may read it: targets from a draft only
    for those who may read drafts (plan makers); anyone else sees "no_published_plan"
    until a plan is published, never an unpublished target."""
    return progress(ctx.session, period, week, today=today,
                    drafts=sees_drafts(ctx.principal))


# ---------------------------------------------------------------------------- demo seed


def seed_demo(session: Session, seed_dir: Any, unit_ids: dict[str, int],
              periods: dict[str, Period]) -> int:
    """The demo's actuals (first weeks of the planning period) and the weekly history of
    past quarters, by date (no commit)."""
    return actuals_service.seed_rows(session, unit_ids, seed_dir / "actuals.csv",
                                     seed_dir / "weekly_history.csv", periods)


def seed_demo_plan(session: Session, seed_dir: Any, actor: Any = None) -> Plan | None:
    """The demo quarter's plan #1 (the default scenario at the company's suggested
    target, ``company_target_<period>`` in company.json), published: progress has targets
    to track against from the start (drafts saved later do not move them), and the region
    heads find their targets waiting for confirmation. Commits (as publishing does)."""
    import json

    from quotaflow.services import plans
    from quotaflow.store.queries import period_by_code

    company = json.loads((seed_dir / "company.json").read_text(encoding="utf-8"))
    code = company.get("planning_period")
    total = company.get(f"company_target_{code}")
    period = period_by_code(session, code) if code else None
    if period is None or not total:
        return None
    presets = plans.active_specs(session).presets
    scenario = presets.default or presets.keys[0]
    sim = plans.simulate(session, period, total, scenario=scenario)
    from quotaflow.services import confirmation

    plan = plans.save_scenario(session, actor, sim, scenario,
                               "Demo plan: the suggested target")
    return confirmation.publish(session, plan, actor)
