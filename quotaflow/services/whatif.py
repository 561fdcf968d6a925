"""What-if for region heads: try other inputs and weights in a sandbox, see the targets move.

The sandbox starts from a plan (the period's latest published plan, else its latest
plan) and one unit below the root (a region). The unit's target stays at its plan
target: a what-if only redistributes it among the unit's teams and people. Within the
active what-if policy (a spec of kind ``whatif_policy``) the user may

- move each factor weight up to ``weight_band`` points either side of the plan's
  weight (the weights are then shifted equally, within their bands, to total 100), and
- change the listed input fields of the units below, within the field's min/max from
  the plan's factor model and, when the policy says so, within ``max_change`` of the
  current value.

Only the unit's subtree is recomputed: its inputs are loaded once per (plan, unit,
database state) and kept in a small cache, so a request patches a few columns and
re-runs the allocation of a few hundred rows (numpy, no Python loop over people).
Nothing is saved, except an evidence snapshot the user asks for
(:func:`snapshot_upload`), which is stored as an upload for an appeal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import NotFound, QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.rules import FactorModel, SpecError, SpecIssue, TreeError, UnitTree, build_tree
from quotaflow.rules.allocation import allocate, scores_for
from quotaflow.rules.model import FieldSpec
from quotaflow.rules.scoring import AllocationError, Scores, factor_measures
from quotaflow.rules.specs import pointer, schema_issues
from quotaflow.services import audit, plan_reads, specs
from quotaflow.services import periods as period_service
from quotaflow.services import plans as plan_service
from quotaflow.services.plan_data import PlanError, field_problem
from quotaflow.services.uow import Context, use_case
from quotaflow.services.uploads import store_upload
from quotaflow.store import confirmation_queries, org_columns, tracking_queries
from quotaflow.store import plan_queries as pq
from quotaflow.store.models import OrgUnit, Period, Plan, Upload, User

POLICY_KIND = "whatif_policy"
POLICY_SPEC = (POLICY_KIND, "default")
NUMERIC_TYPES = ("number", "integer")
CACHE_MAX = 16
WEIGHT_DIGITS = 6  # effective weights are rounded to this many decimals of a point

__all__ = [
    "Change",
    "FieldLimit",
    "PlanInfo",
    "Sandbox",
    "SandboxBase",
    "UnitInfo",
    "WhatIfError",
    "WhatIfPolicy",
    "WhatIfPolicyError",
    "balance_weights",
    "clear_cache",
    "compute",
    "load_policy",
    "open_base",
    "run",
    "sandbox_plan",
    "snapshot",
    "snapshot_upload",
]



class WhatIfError(QuotaFlowError):
    """A what-if cannot be run: a stable code and its parameters."""

    domain = "whatif"
    CODE_KINDS = code_kinds(no_plan="not_found", not_in_plan="not_found", unknown_unit="not_found")
    CODES = messages.register(domain, {
        "no_plan": _l("Period %(period)s has no plan yet: a what-if starts from a plan."),
        "no_policy": _l("No what-if policy is active. Ask an administrator to activate one."),
        "policy_invalid": _l("The what-if policy is not valid at %(at)s: %(detail)s"),
        "not_a_branch": _l("%(unit)s has no units below it to redistribute its target to."),
        "is_root": _l("%(unit)s is the top of the organisation: its target is the company total, "
                      "which a what-if does not change."),
        "not_in_plan": _l("%(unit)s is not in plan %(plan)s."),
        "unknown_unit": _l("%(unit)s is not below %(root)s."),
        "unknown_field": _l("“%(field)s” is not an input a what-if may change."),
        "unknown_factor": _l("“%(factor)s” is not a factor of the plan's model."),
        "not_a_number": _l("“%(value)s” is not a number (%(unit)s, %(field)s)."),
        "missing_values": _l("%(count)s units below %(root)s have no value for “%(field)s”: "
                             "%(units)s."),
        "allocation": _l("The model cannot run on these inputs: %(detail)s"),
    })

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, "", **params)


# -- the policy ----------------------------------------------------------------------

class WhatIfPolicyError(SpecError):
    kind = "what-if policy"


@dataclass(frozen=True)
class FieldLimit:
    """An input field a what-if may change, and how far (a fraction of the value)."""

    name: str
    max_change: float | None = None


@dataclass(frozen=True)
class WhatIfPolicy:
    weight_band: float
    fields: tuple[FieldLimit, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def load_policy(doc: Mapping[str, Any], model: FactorModel) -> WhatIfPolicy:
    """Validate a what-if policy against its schema and ``model``; raise
    :class:`WhatIfPolicyError` listing every problem with its JSON pointer."""
    issues = schema_issues("whatif-policy", doc)
    if issues:
        raise WhatIfPolicyError(issues)
    known = {f.name: f for f in model.fields}
    seen: set[str] = set()
    out = []
    for i, raw in enumerate(doc["fields"]):
        name = raw["name"]
        ptr = pointer("fields", i, "name")
        if name in seen:
            issues.append(SpecIssue(ptr, f"field {name!r} is listed twice", "duplicate"))
        seen.add(name)
        spec = known.get(name)
        if spec is None:
            issues.append(SpecIssue(ptr, f"the factor model has no input field {name!r}",
                                    "unknown_field"))
        elif spec.type not in NUMERIC_TYPES:
            issues.append(SpecIssue(ptr, f"field {name!r} is {spec.type}; a what-if changes "
                                         "numbers only", "not_numeric"))
        out.append(FieldLimit(name, raw.get("max_change")))
    if issues:
        raise WhatIfPolicyError(issues)
    return WhatIfPolicy(float(doc["weight_band"]), tuple(out))


def _active_policy(session: Session, model: FactorModel) -> WhatIfPolicy:
    version = specs.active_version(session, *POLICY_SPEC)
    if version is None:
        raise WhatIfError("no_policy")
    try:
        return load_policy(version.content, model)
    except WhatIfPolicyError as exc:
        first = exc.issues[0]
        raise WhatIfError("policy_invalid", at=first.pointer or "/",
                          detail=first.message) from None


# -- weights -------------------------------------------------------------------------

def weight_bands(base: np.ndarray, band: float) -> tuple[np.ndarray, np.ndarray]:
    """Each weight's allowed interval: the plan's weight +- ``band`` points, in [0, 100]."""
    base = np.asarray(base, dtype=float)
    return np.clip(base - band, 0.0, 100.0), np.clip(base + band, 0.0, 100.0)


def _shift(e: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``e`` with the ``mask`` weights moved by one common shift ``t``, each within its
    band, as near as they can come to a total of 100.

    The total is piecewise linear and non-decreasing in ``t`` with breakpoints where a
    weight reaches an end of its band: evaluate it at every breakpoint at once, then
    interpolate inside the bracket that holds 100 (exact, no iteration).
    """
    fixed = float(e[~mask].sum())
    em, lm, hm = e[mask], lo[mask], hi[mask]
    points = np.unique(np.r_[lm - em, hm - em])
    totals = np.clip(em[None, :] + points[:, None], lm, hm).sum(axis=1) + fixed
    k = int(np.searchsorted(totals, 100.0))
    if k == 0:
        t = points[0]
    elif k == len(points):
        t = points[-1]
    else:
        f0, f1 = totals[k - 1], totals[k]
        t = points[k - 1] + (100.0 - f0) * (points[k] - points[k - 1]) / (f1 - f0)
    out = e.copy()
    out[mask] = np.clip(em + t, lm, hm)
    return out


def balance_weights(entered: Sequence[float], base: Sequence[float], band: float
                    ) -> np.ndarray:
    """Weights within their bands (the plan's weight +- ``band``) that total 100.

    The weights the user moved keep their (clipped) value while the others shift by
    one common amount, each within its band; only when those cannot make up the total
    are the moved weights shifted too. The plan's weights always fit, so this succeeds.
    """
    base_arr = np.asarray(base, dtype=float)
    lo, hi = weight_bands(base_arr, band)
    e = np.clip(np.asarray(entered, dtype=float), lo, hi)
    moved = np.abs(e - base_arr) > 1e-9
    out = _shift(e, lo, hi, ~moved) if (~moved).any() else e
    if abs(out.sum() - 100.0) > 1e-7:
        out = _shift(out, lo, hi, moved if moved.any() else np.ones(len(e), dtype=bool))
    out = np.round(out, WEIGHT_DIGITS)
    # Put the last float crumbs on the weight with the most room, so the sum is 100.
    gap = round(100.0 - float(out.sum()), WEIGHT_DIGITS)
    if gap:
        room = (hi - out) if gap > 0 else (out - lo)
        k = int(np.argmax(room))
        out[k] = round(out[k] + gap, WEIGHT_DIGITS)
    return out


# -- the base of a sandbox (cached) --------------------------------------------------

def sandbox_plan(session: Session, period: Period) -> Plan | None:
    """The plan a what-if starts from: the period's latest published plan, else its
    latest plan."""
    published = confirmation_queries.published_plan(session, period.id)
    return published or pq.latest_plan(session, period.id)


def chosen_plan(ctx: Context, plan_id: int | None, period_code: str | None) -> Plan:
    """The plan a what-if runs on (pages and API): the one named by id (NotFound when
    absent), else the sandbox plan of the chosen period (the planning period by default)."""
    if plan_id is not None:
        return plan_reads.plan(ctx, plan_id)
    period, _periods = period_service.chosen_period(ctx, period_code)
    plan = sandbox_plan(ctx.session, period)
    # A draft is not shown to those who may not see drafts: no plan for them yet.
    if plan is None or not plan_reads.visible(ctx, plan):
        raise WhatIfError("no_plan", period=period.code)
    return plan


@dataclass(frozen=True)
class PlanInfo:
    """What a sandbox keeps of its plan (plain values: the base outlives the session)."""

    id: int
    number: int
    period_id: int
    period: str
    scenario: str
    status: str


@dataclass(frozen=True)
class UnitInfo:
    id: int
    code: str
    name_en: str
    name_zh: str


@dataclass(frozen=True, eq=False)
class SandboxBase:
    """A plan's subtree below one unit, loaded once: tree, inputs, plan targets, limits.

    Row 0 of ``tree`` is the unit itself (the sandbox root); ``plan_target`` is -1
    for units that are not in the plan (added after it was made).
    """

    plan: PlanInfo
    root: UnitInfo
    model: FactorModel
    policy: WhatIfPolicy
    factor_keys: tuple[str, ...]
    factor_labels: tuple[tuple[str, str], ...]  # (en, zh)
    base_weights: np.ndarray
    tree: UnitTree
    unit_ids: np.ndarray
    plan_target: np.ndarray
    locks: Mapping[str, int]
    region_target: int
    scores: Scores
    field_specs: tuple[FieldSpec, ...]  # the editable fields, in the policy's order
    limits: Mapping[str, tuple[np.ndarray, np.ndarray]]  # per editable field: lo, hi per row
    baseline: np.ndarray  # the subtree recomputed with nothing changed
    codes_sorted: np.ndarray
    codes_order: np.ndarray

    @property
    def drift(self) -> bool:
        """Whether the inputs changed since the plan: nothing-changed differs from it."""
        known = self.plan_target >= 0
        return bool((self.baseline[known] != self.plan_target[known]).any())

    @property
    def band(self) -> tuple[np.ndarray, np.ndarray]:
        return weight_bands(self.base_weights, self.policy.weight_band)

    def rows_of(self, codes: Sequence[str]) -> np.ndarray:
        """Tree rows of unit codes (-1 where a code is not in the subtree), vectorised."""
        arr = np.asarray(list(codes), dtype=str)
        if not len(arr):
            return np.zeros(0, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.codes_sorted, arr), 0, len(self.codes_sorted) - 1)
        rows = self.codes_order[pos]
        return np.where(self.codes_sorted[pos] == arr, rows, -1)

    def children(self, row: int) -> np.ndarray:
        """Rows of a unit's children, in code order."""
        kids = np.flatnonzero(self.tree.parent == row)
        return kids[np.argsort(self.tree.ids[kids], kind="stable")]


_CACHE: OrderedDict[tuple[int, int, int, int], SandboxBase] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def _stamp(session: Session) -> int:
    """The database's state as far as a sandbox cares: every change writes an audit
    entry, so the newest entry's id moves whenever inputs, units or specs change."""
    return tracking_queries.newest_audit_id(session)


def open_base(session: Session, unit: OrgUnit, plan: Plan) -> SandboxBase:
    """The sandbox base of ``unit`` in ``plan``, from the cache when nothing changed."""
    key = (plan.id, unit.id, _stamp(session), id(session.get_bind()))
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    base = _load_base(session, unit, plan)
    with _CACHE_LOCK:
        _CACHE[key] = base
        while len(_CACHE) > CACHE_MAX:
            _CACHE.popitem(last=False)
    return base


def _plan_model(session: Session, plan: Plan) -> FactorModel:
    """The model the plan's scenario ran: the pinned model, its preset's policy overrides,
    and the weights the plan records."""
    model = plan_service.compile_model(plan.model_version.content)
    presets_version = pq.spec_version(session, plan.presets_version_id)
    try:
        presets = plan_service.compile_presets(
            presets_version.content if presets_version else None, model)
    except PlanError:
        presets = None
    if presets is not None and plan.scenario in presets.keys:
        model = presets.get(plan.scenario).model
    weights = (plan.summary or {}).get("weights")
    if weights:
        model = model.derive(weight_percent=tuple(float(weights.get(k, 0))
                                                  for k in model.factor_keys))
    return model


def _subtree_model(model: FactorModel, codes: set[str]) -> FactorModel:
    """``model`` keeping only the locks of units in the subtree (allocate refuses locks
    of units it does not see)."""
    policies = {}
    for level, pol in model.policies.items():
        locks = {k: v for k, v in pol.locks.items() if k in codes}
        policies[level] = replace(pol, locks=MappingProxyType(locks))
    return replace(model, policies=MappingProxyType(policies))


def _load_base(session: Session, unit: OrgUnit, plan: Plan) -> SandboxBase:
    if unit.parent_id is None:
        raise WhatIfError("is_root", unit=unit.code)
    model = _plan_model(session, plan)
    policy = _active_policy(session, model)
    units = org_columns.org_columns(session)
    # The subtree: the unit, then every active unit whose parent is in it (level by level).
    inside = units.ids == unit.id
    if not inside.any():
        raise WhatIfError("not_in_plan", unit=unit.code, plan=plan.number)
    while True:
        grown = inside | np.isin(units.parent_ids, units.ids[inside])
        if grown.sum() == inside.sum():
            break
        inside = grown
    rows = np.flatnonzero(inside)
    if len(rows) < 2:
        raise WhatIfError("not_a_branch", unit=unit.code)
    ids, codes = units.ids[rows], units.codes[rows]
    # Row 0 is the sandbox root.
    order = np.r_[np.flatnonzero(ids == unit.id), np.flatnonzero(ids != unit.id)]
    ids, codes = ids[order], codes[order]
    parent_ids = units.parent_ids[rows][order]
    sort = np.argsort(ids)
    pos = np.clip(np.searchsorted(ids[sort], parent_ids), 0, len(ids) - 1)
    parent = np.where(ids[sort][pos] == parent_ids, sort[pos], -1)
    parent[0] = -1
    level = units.level[rows][order]
    columns = {}
    for spec in model.fields:
        col = org_columns.input_column(session, plan.period_id, spec.name, ids)
        missing = np.isnan(col)
        missing[0] = False  # the root's own inputs are not used
        if spec.needs_value and missing.any():
            bad = np.flatnonzero(missing)
            raise WhatIfError("missing_values", count=len(bad), root=unit.code,
                              field=spec.name, units=", ".join(codes[bad[:5]].tolist()))
        col = spec.filled(col)
        if np.isnan(col[0]):  # any in-range value will do
            col[0] = float(spec.default if spec.default is not None else np.ceil(spec.min or 0))
        # The one field check: what the planner refuses, what-if refuses.
        if (error := field_problem(spec, col, codes, plan.period.code)) is not None:
            raise error
        columns[spec.name] = col
    tree = build_tree(codes, parent, columns, level=level,
                      labels={"name_en": units.name_en[rows][order],
                              "name_zh": units.name_zh[rows][order]})
    tree.prepare()  # the base is shared between requests: build its indexes once, now
    plan_rows = tracking_queries.plan_targets_locked(session, plan.id, ids.tolist())
    target = np.full(len(ids), -1, dtype=np.int64)
    locked = np.zeros(len(ids), dtype=bool)
    if plan_rows:
        got = np.array(plan_rows, dtype=np.int64)
        where = sort[np.searchsorted(ids[sort], got[:, 0])]
        target[where] = got[:, 1]
        locked[where] = got[:, 2].astype(bool)
    if target[0] < 0:
        raise WhatIfError("not_in_plan", unit=unit.code, plan=plan.number)
    locked[0] = False
    locks = MappingProxyType({str(codes[i]): int(target[i])
                              for i in np.flatnonzero(locked & (target >= 0)).tolist()})
    model = _subtree_model(model, set(codes.tolist()))
    try:
        scores = scores_for(model, tree)
        baseline = allocate(model, tree, int(target[0]), locks=locks, scores=scores).target
    except (AllocationError, TreeError) as exc:
        raise WhatIfError("allocation", detail=str(exc)) from None
    editable = tuple(model.field(f.name) for f in policy.fields)
    limits = {}
    for spec, lim in zip(editable, policy.fields, strict=True):
        v = tree.fields[spec.name]
        lo = np.full(len(v), -np.inf if spec.min is None else float(spec.min))
        hi = np.full(len(v), np.inf if spec.max is None else float(spec.max))
        if lim.max_change is not None:
            lo = np.maximum(lo, v - np.abs(v) * lim.max_change)
            hi = np.minimum(hi, v + np.abs(v) * lim.max_change)
        if spec.type == "integer":
            lo, hi = np.ceil(lo), np.floor(hi)
        # The current value is always allowed (it may sit outside a later-tightened range).
        limits[spec.name] = (np.minimum(lo, v), np.maximum(hi, v))
    code_order = np.argsort(codes, kind="stable")
    return SandboxBase(
        plan=PlanInfo(plan.id, plan.number, plan.period_id, plan.period.code, plan.scenario,
                      plan.status),
        root=UnitInfo(unit.id, unit.code, unit.name_en, unit.name_zh), model=model,
        policy=policy, factor_keys=model.factor_keys,
        factor_labels=tuple((f.label_en, f.label_zh) for f in model.factors),
        base_weights=np.asarray(model.weight_percent, dtype=float), tree=tree, unit_ids=ids,
        plan_target=target, locks=locks, region_target=int(target[0]), scores=scores,
        field_specs=editable, limits=MappingProxyType(limits), baseline=baseline,
        codes_sorted=codes[code_order], codes_order=code_order)


# -- running a what-if ---------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One input the sandbox changed: unit, field, current and what-if value; ``asked``
    differs from ``value`` when the request was outside the limits and was clipped."""

    unit: str
    field: str
    current: float
    value: float
    asked: float

    @property
    def clipped(self) -> bool:
        return self.asked != self.value


@dataclass(frozen=True, eq=False)
class Sandbox:
    """One what-if: the base, what changed, and the recomputed targets of the subtree."""

    base: SandboxBase
    weights: np.ndarray  # effective weights in percent (total 100)
    entered_weights: np.ndarray
    changes: tuple[Change, ...]
    fields: Mapping[str, np.ndarray]  # the patched input columns
    target: np.ndarray
    lower: np.ndarray  # effective bounds of every row (the allocation's)
    upper: np.ndarray
    planned: int  # what the subtree allocates (the root's target unless bounds stop it)
    infeasible: tuple[dict[str, Any], ...] = field(default=())

    @property
    def shortfall(self) -> int:
        return self.base.region_target - self.planned

    @property
    def moved(self) -> tuple[Change, ...]:
        """The inputs whose what-if value differs from the current one."""
        return tuple(c for c in self.changes if c.value != c.current)

    @property
    def weights_changed(self) -> bool:
        return bool(np.any(np.abs(self.weights - self.base.base_weights) > 1e-9))

    def row(self, i: int) -> dict[str, Any]:
        b = self.base
        plan = int(b.plan_target[i])
        new = int(self.target[i])
        at_bound = None
        if self.lower[i] == self.upper[i] or str(b.tree.ids[i]) in b.locks:
            at_bound = "fixed"
        elif new >= self.upper[i]:
            at_bound = "upper"
        elif new <= self.lower[i]:
            at_bound = "lower"
        return {
            "row": i, "code": str(b.tree.ids[i]), "name_en": str(b.tree.labels["name_en"][i]),
            "name_zh": str(b.tree.labels["name_zh"][i]), "level": str(b.tree.level[i]),
            "plan": None if plan < 0 else plan, "whatif": new,
            "diff": None if plan < 0 else new - plan,
            "pct": None if plan <= 0 else (new - plan) / plan,
            "locked": str(b.tree.ids[i]) in b.locks,
            "at_bound": at_bound,
            "lower": float(self.lower[i]),
            "upper": None if not np.isfinite(self.upper[i]) else float(self.upper[i]),
            "children": int(b.tree.n_children[i]),
        }

    def rows(self, parent_row: int = 0) -> list[dict[str, Any]]:
        """The children of a row (the root's: the teams), plan vs what-if."""
        return [self.row(int(i)) for i in self.base.children(parent_row)]

    def changed_rows(self) -> set[int]:
        """Rows whose what-if target differs from the plan."""
        b = self.base
        return set(np.flatnonzero((b.plan_target >= 0) & (self.target != b.plan_target))
                   .tolist())


def _rescore(base: SandboxBase, tree: UnitTree, moved: set[str]) -> Scores:
    """The base's factor scores with only the factors that read a changed field scored
    again (inline: a subtree is too small to pay for the thread pool)."""
    model = base.model
    old = base.scores
    measures, raw = old.measures_by_factor.copy(), old.raw_by_factor.copy()
    shares, fallback = old.shares_by_factor.copy(), old.fallback_by_factor.copy()
    bp = tree.bin_parent
    n = tree.size
    siblings = np.append(tree.n_children, 1).astype(float)[bp]
    for j, factor in enumerate(model.factors):
        if not moved.intersection(factor.fields):
            continue
        m, r = factor_measures(factor, tree)
        measures[j], raw[j] = m, r
        gsum = np.bincount(bp, weights=m, minlength=n + 1)[bp]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            s = np.divide(m, gsum)
        zero = gsum <= 0
        zero[tree.root] = False
        s = np.where(zero, 1.0 / siblings, s)
        s[tree.root] = 1.0
        shares[j], fallback[j] = s, zero
    return Scores(measures, raw, shares, fallback)


def _parse(value: Any, unit: str, name: str) -> float:
    if isinstance(value, bool):
        raise WhatIfError("not_a_number", value=value, unit=unit, field=name)
    try:
        number = float(str(value).strip().replace(",", "")) if isinstance(value, str) \
            else float(value)
    except (TypeError, ValueError):
        raise WhatIfError("not_a_number", value=value, unit=unit, field=name) from None
    if not np.isfinite(number):
        raise WhatIfError("not_a_number", value=value, unit=unit, field=name)
    return number


def run(session: Session, unit: OrgUnit, plan: Plan, *,
        inputs: Mapping[tuple[str, str], Any] | None = None,
        weights: Mapping[str, Any] | None = None) -> Sandbox:
    """Recompute ``unit``'s subtree of ``plan`` with other ``inputs`` ((unit code, field)
    -> value; blank values are ignored) and ``weights`` (factor key -> percent).

    Values outside their limits are clipped (and reported in ``changes``); units or
    fields outside the sandbox are refused with :class:`WhatIfError`. Saves nothing.
    """
    base = open_base(session, unit, plan)
    return compute(base, inputs or {}, weights or {})


def sandbox(ctx: Context, unit: OrgUnit, plan: Plan, *,
            inputs: Mapping[tuple[str, str], Any] | None = None,
            weights: Mapping[str, Any] | None = None) -> Sandbox:
    """:func:`run` for pages and API (the unit and plan already checked by the caller)."""
    return run(ctx.session, unit, plan, inputs=inputs, weights=weights)


def sandbox_base(ctx: Context, unit: OrgUnit, plan: Plan) -> SandboxBase:
    """:func:`open_base` for pages and API."""
    return open_base(ctx.session, unit, plan)


def compute(base: SandboxBase, inputs: Mapping[tuple[str, str], Any],
            weights: Mapping[str, Any]) -> Sandbox:
    """The pure part of :func:`run`, on a loaded base."""
    tree = base.tree
    # Weights: entered within the band, balanced to 100.
    index = {k: j for j, k in enumerate(base.factor_keys)}
    entered = base.base_weights.copy()
    for key, raw in weights.items():
        if key not in index:
            raise WhatIfError("unknown_factor", factor=key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        entered[index[key]] = _parse(raw, "*", key)
    effective = balance_weights(entered, base.base_weights, base.policy.weight_band)
    # Inputs: grouped by field, placed with one vectorised lookup per field.
    by_field: dict[str, tuple[list[str], list[Any]]] = {}
    allowed = set(base.policy.field_names)
    for (code, name), raw in inputs.items():
        if name not in allowed:
            raise WhatIfError("unknown_field", field=name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        codes, values = by_field.setdefault(name, ([], []))
        codes.append(code)
        values.append(raw)
    fields = dict(tree.fields)
    changes: list[Change] = []
    for spec in base.field_specs:
        if spec.name not in by_field:
            continue
        codes, raw_values = by_field[spec.name]
        rows = base.rows_of(codes)
        if (rows <= 0).any():  # not in the subtree, or the root itself
            bad = codes[int(np.flatnonzero(rows <= 0)[0])]
            raise WhatIfError("unknown_unit", unit=bad, root=base.root.code)
        try:  # numpy parses numbers and numeric strings in C; anything odd, one by one
            if any(isinstance(v, bool) for v in raw_values):
                raise TypeError
            asked = np.asarray(raw_values, dtype=float)
        except (TypeError, ValueError):
            asked = np.array([_parse(v, c, spec.name) for v, c in zip(raw_values, codes,
                                                                      strict=True)])
        if not np.isfinite(asked).all():
            k = int(np.flatnonzero(~np.isfinite(asked))[0])
            raise WhatIfError("not_a_number", value=raw_values[k], unit=codes[k],
                              field=spec.name)
        lo, hi = base.limits[spec.name]
        value = np.clip(asked, lo[rows], hi[rows])
        if spec.type == "integer":
            value = np.clip(np.round(value), lo[rows], hi[rows])
        current = tree.fields[spec.name][rows]
        moved = value != current
        if moved.any() or (asked != value).any():
            col = fields[spec.name].copy()
            col[rows] = value
            fields[spec.name] = col
            for k in np.flatnonzero(moved | (asked != value)).tolist():
                changes.append(Change(codes[k], spec.name, float(current[k]), float(value[k]),
                                      float(asked[k])))
    moved_fields = {c.field for c in changes if c.value != c.current}
    model = base.model.derive(weight_percent=tuple(effective.tolist()))
    try:
        if moved_fields:
            patched = replace(tree, fields=fields)
            for key in ("index", "id_rank", "by_depth", "sibling_groups", "n_children",
                        "nonroot", "bin_parent", "pos_in_level", "_has_children"):
                if key in tree.__dict__:
                    patched.__dict__[key] = tree.__dict__[key]
            scores = _rescore(base, patched, moved_fields)
            plan = allocate(model, patched, base.region_target, locks=base.locks, scores=scores)
        else:
            plan = allocate(model, tree, base.region_target, locks=base.locks,
                            scores=base.scores)
    except AllocationError as exc:
        raise WhatIfError("allocation", detail=str(exc)) from None
    changes.sort(key=lambda c: (c.unit, c.field))
    return Sandbox(base=base, weights=effective, entered_weights=entered,
                   changes=tuple(changes), fields=MappingProxyType(fields), target=plan.target,
                   lower=plan.lower, upper=plan.upper, planned=plan.planned_total,
                   infeasible=tuple(x.as_dict() for x in plan.infeasible))


# -- evidence ------------------------------------------------------------------------

def snapshot(sandbox: Sandbox, user: User | None = None) -> dict[str, Any]:
    """A frozen, JSON-ready record of a what-if: plan, unit, weights, changed inputs and
    every unit's plan and what-if target (plain numbers: it never changes afterwards)."""
    b = sandbox.base
    units = []
    for i in range(1, b.tree.size):
        r = sandbox.row(i)
        units.append({"code": r["code"], "name_en": r["name_en"], "name_zh": r["name_zh"],
                      "level": r["level"],
                      "parent": str(b.tree.ids[int(b.tree.parent[i])]),
                      "plan": r["plan"], "whatif": r["whatif"], "diff": r["diff"]})
    return {
        "kind": "whatif_snapshot",
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "created_by": user.username if user else None,
        "plan": {"id": b.plan.id, "number": b.plan.number, "period": b.plan.period,
                 "scenario": b.plan.scenario, "status": b.plan.status},
        "unit": {"code": b.root.code, "name_en": b.root.name_en, "name_zh": b.root.name_zh,
                 "target": b.region_target},
        "planned": sandbox.planned,
        "shortfall": sandbox.shortfall,
        "weight_band": b.policy.weight_band,
        "weights": [{"factor": k, "label_en": en, "label_zh": zh, "plan": float(w0),
                     "whatif": float(w)}
                    for k, (en, zh), w0, w in zip(b.factor_keys, b.factor_labels,
                                                  b.base_weights, sandbox.weights, strict=True)],
        "changes": [{"unit": c.unit, "field": c.field, "current": c.current, "whatif": c.value}
                    for c in sandbox.changes if c.value != c.current],
        "units": units,
    }


def snapshot_csv(snap: Mapping[str, Any]) -> bytes:
    """The snapshot as a small CSV (UTF-8 with BOM for spreadsheet programs): one line per
    unit, then the changed inputs and weights, then the snapshot's SHA-256."""
    from quotaflow.services import export_writer

    out = io.StringIO()
    w = export_writer.csv_writer(out, lineterminator="\n")
    plan, unit = snap["plan"], snap["unit"]
    w.writerow(["what-if", plan["period"], f"plan {plan['number']}", plan["scenario"],
                unit["code"], unit["target"], snap["created_by"] or "", snap["created_at"]])
    w.writerow(["code", "name_en", "name_zh", "level", "parent", "plan_target",
                "whatif_target", "difference"])
    for u in snap["units"]:
        w.writerow([u["code"], u["name_en"], u["name_zh"], u["level"], u["parent"],
                    "" if u["plan"] is None else u["plan"], u["whatif"],
                    "" if u["diff"] is None else u["diff"]])
    w.writerow([])
    w.writerow(["changed_unit", "field", "current", "whatif"])
    for c in snap["changes"]:
        w.writerow([c["unit"], c["field"], f"{c['current']:g}", f"{c['whatif']:g}"])
    w.writerow([])
    w.writerow(["factor", "plan_weight", "whatif_weight"])
    for x in snap["weights"]:
        w.writerow([x["factor"], f"{x['plan']:g}", f"{x['whatif']:g}"])
    w.writerow([])
    w.writerow(["snapshot_sha256", snapshot_hash(snap)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def snapshot_hash(snap: Mapping[str, Any]) -> str:
    canonical = json.dumps(snap, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def snapshot_upload(session: Session, sandbox: Sandbox, user: User | None, *,
                    storage_dir: Path, remote_addr: str | None = None) -> Upload:
    """Freeze ``sandbox`` as evidence: a CSV stored as an upload of the sandbox's unit
    (seen by whoever may read that unit), its JSON snapshot kept in the audit entry.
    One transaction (``store_upload`` commits it, or writes nothing)."""
    snap = snapshot(sandbox, user)
    data = snapshot_csv(snap)
    b = sandbox.base
    name = f"whatif-{b.root.code}-{b.plan.period}-plan{b.plan.number}.csv"
    unit = session.get(OrgUnit, b.root.id)
    if unit is None:
        raise WhatIfError("unknown_unit", unit=b.root.code, root=b.root.code)
    audit.record(session, user, "whatif_snapshot", "unit", b.root.code,
                 after={"snapshot": snap, "sha256": snapshot_hash(snap)},
                 remote_addr=remote_addr)
    return store_upload(session, user, unit, name, io.BytesIO(data),
                        storage_dir=Path(storage_dir), remote_addr=remote_addr)


# -- one team's people (the sandbox page's people rows and their API twin) ------------


@dataclass(frozen=True)
class TeamPeople:
    """The input rows of one team's people in a sandbox: the editable fields (in the
    policy's order) and, per person, each field's value and the policy's limits."""

    team: str
    fields: tuple[FieldSpec, ...]
    rows: list[dict[str, Any]]


def input_rows(base: SandboxBase, rows: Any) -> list[dict[str, Any]]:
    """Per unit row: code, names, its number of children and each editable field's value
    with its limits (None where the policy sets none)."""
    tree = base.tree
    out = []
    for i in rows:
        i = int(i)
        cells = []
        for f in base.field_specs:
            lo, hi = base.limits[f.name]
            cells.append({"name": f.name, "value": float(tree.fields[f.name][i]),
                          "min": None if not (lo[i] > -1e300) else float(lo[i]),
                          "max": None if not (hi[i] < 1e300) else float(hi[i])})
        out.append({"code": str(tree.ids[i]), "name_en": str(tree.labels["name_en"][i]),
                    "name_zh": str(tree.labels["name_zh"][i]),
                    "children": int(tree.n_children[i]), "cells": cells})
    return out


@use_case
def team_people(ctx: Context, unit: OrgUnit, plan: Plan, team: str) -> TeamPeople:
    """The people of ``team`` (a unit with children below ``unit``) as what-if input rows.

    NotFound when ``unit`` is outside the principal's what-if scope, or ``team`` is not a
    unit with people strictly below ``unit`` in ``plan``."""
    if ctx.principal is None or not ctx.principal.can("plan.whatif", unit.path):
        raise NotFound("not_found")
    base = open_base(ctx.session, unit, plan)
    row = int(base.rows_of([team])[0])
    if row <= 0 or not int(base.tree.n_children[row]):
        raise WhatIfError("unknown_unit", unit=team, root=unit.code)
    return TeamPeople(team=str(base.tree.ids[row]), fields=base.field_specs,
                      rows=input_rows(base, base.children(row)))
