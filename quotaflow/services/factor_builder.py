"""The factor builder's use cases: check an expression on real data, save a draft model.

An HRBP adds or edits a factor in pages, never in JSON. While they type, the
expression is compiled against the model's fields plus the ones being added, and run
over one level's units for the planning period (columns, no loop per unit) to show
sample values and the distribution. Saving makes a new draft version of the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import Forbidden, NotFound, QuotaFlowError
from quotaflow.messages import _l
from quotaflow.plugins import expression_functions
from quotaflow.rules import CompiledExpression, ExpressionError, compile_expression
from quotaflow.rules.model_edit import ModelEditError, set_weights, upsert_factor
from quotaflow.services import periods as period_service
from quotaflow.services import specs
from quotaflow.services.auth import actor
from quotaflow.services.uow import Context, use_case
from quotaflow.store import plan_queries as pq
from quotaflow.store import queries as q
from quotaflow.store import spec_queries
from quotaflow.store.models import Period, SpecVersion, User

MODEL_KEY = "default"
SAMPLE_SIZE = 8
EXPRESSION_TYPES = {"number": "number", "integer": "integer", "boolean": "boolean"}


class BuilderError(QuotaFlowError):
    """A factor-model edit that cannot apply: a stable code and where in the model (a
    JSON pointer such as ``/weights/store_count``)."""

    domain = "builder"
    CODES = messages.register(domain, {
        "missing_key": _l("Give the factor a key."),
        "weight_range": _l("A weight lies between 0 and 100."),
        "weights_total": _l("The weights must total 100%."),
        "unknown_factor": _l("This names a factor the model does not have."),
        "missing_weight": _l("Every factor needs a weight."),
        "last_factor": _l("A model needs at least one factor."),
        "bad_field_name": _l("Field names are lower-case letters, digits and _, starting with a letter."),
        "duplicate_key": _l("A factor with this key exists already."),
    })


@dataclass(frozen=True)
class SampleValue:
    code: str
    name_en: str
    name_zh: str
    value: float | None


@dataclass(frozen=True)
class ExpressionPreview:
    """What the builder shows under the expression box."""

    error: ExpressionError | None = None
    level: str = ""
    samples: list[SampleValue] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)
    defaulted: dict[str, int] = field(default_factory=dict)  # field -> units without a value


def active_model(session: Session) -> SpecVersion | None:
    return specs.active_version(session, specs.FACTOR_MODEL_KIND, MODEL_KEY)


def latest_model(session: Session) -> SpecVersion | None:
    """What the builder edits: the newest draft saved after the active version (drafts
    build on each other), else the active version. Retired versions are history."""
    active = active_model(session)
    for version in spec_queries.versions(session, specs.FACTOR_MODEL_KIND, MODEL_KEY):
        if version.status == "draft" and (active is None or version.version > active.version):
            return version
    return active


def valid_field_name(name: str) -> bool:
    """A new input field's name: lower-case letters, digits and _, starting with a letter."""
    return name.isidentifier() and name[0].isalpha() and name.lower() == name


def _edits_models(ctx: Context) -> SpecVersion:
    """The model the builder edits, if the principal may edit specs (else refused)."""
    if ctx.principal is None or not ctx.principal.has("spec.write"):
        raise Forbidden("forbidden")
    version = latest_model(ctx.session)
    if version is None:
        raise NotFound("not_found")
    return version


def declared_fields(doc: Mapping[str, Any], new_fields: Sequence[Mapping[str, Any]] = ()) -> dict[str, Mapping[str, Any]]:
    fields = {f["name"]: f for f in doc.get("fields", [])}
    fields.update({f["name"]: f for f in new_fields if f.get("name")})
    return fields


def compile_factor_expression(doc: Mapping[str, Any], text: str,
                              new_fields: Sequence[Mapping[str, Any]] = ()) -> CompiledExpression:
    """Compile a measure expression against the model's fields and the new ones."""
    fields = {name: EXPRESSION_TYPES.get(f.get("type"), "number")
              for name, f in declared_fields(doc, new_fields).items()}
    return compile_expression(text, fields=fields, functions=expression_functions(), expect="number")


def preview_expression(session: Session, doc: Mapping[str, Any], text: str, period: Period,
                       level_depth: int, new_fields: Sequence[Mapping[str, Any]] = ()) -> ExpressionPreview:
    """Run ``text`` over the units at ``level_depth``: sample values and a distribution.

    Units without a value for a field read its default (0 when none is set), as the
    allocation does for optional fields; the count of such units is reported.
    """
    try:
        expression = compile_factor_expression(doc, text, new_fields)
    except ExpressionError as error:
        return ExpressionPreview(error=error)
    units = pq.active_unit_columns(session)
    at_level = units.depth == level_depth
    ids = units.ids[at_level]
    level = next((lv.key for lv in q.levels(session) if lv.depth == level_depth), "")
    if len(ids) == 0:
        return ExpressionPreview(level=level)
    declared = declared_fields(doc, new_fields)
    columns: dict[str, np.ndarray] = {}
    defaulted: dict[str, int] = {}
    for name in expression.names:
        column = q.load_attribute_column(session, period.id, name, ids)
        missing = np.isnan(column)
        if missing.any():
            defaulted[name] = int(missing.sum())
            default = declared[name].get("default")
            column[missing] = float(default) if default is not None else 0.0
        columns[name] = column
    try:
        values = expression.evaluate(columns, size=len(ids))
    except ExpressionError as error:
        return ExpressionPreview(error=error, level=level, defaulted=defaulted)
    values = values.astype(float)
    codes, name_en, name_zh = (units.codes[at_level], units.name_en[at_level], units.name_zh[at_level])
    picks = np.unique(np.linspace(0, len(ids) - 1, min(SAMPLE_SIZE, len(ids))).astype(int))
    samples = [SampleValue(str(codes[i]), str(name_en[i]), str(name_zh[i]), float(values[i])) for i in picks]
    quartiles = np.percentile(values, [0, 25, 50, 75, 100])
    summary = {
        "count": float(len(values)), "min": float(quartiles[0]), "p25": float(quartiles[1]),
        "median": float(quartiles[2]), "p75": float(quartiles[3]), "max": float(quartiles[4]),
        "negative": float((values < 0).sum()), "zero": float((values == 0).sum()),
    }
    return ExpressionPreview(level=level, samples=samples, summary=summary, defaulted=defaulted)


def save_draft(session: Session, actor: User, doc: Mapping[str, Any], note: str,
               remote_addr: str | None = None) -> SpecVersion:
    """Store ``doc`` as the next draft version of the factor model (validated; commits).

    The document's own ``version`` follows the spec version number so plans pinned to
    it say which model they ran. Raises ``specs.SpecValidationError`` (JSON pointers)
    or ``specs.SpecServiceError`` ("unchanged"); nothing is written then.
    """
    newest = specs.latest_version(session, specs.FACTOR_MODEL_KIND, MODEL_KEY)
    content = dict(doc)
    content["version"] = (newest.version if newest else 0) + 1
    return specs.save_version(session, specs.FACTOR_MODEL_KIND, MODEL_KEY, content, actor, note,
                              remote_addr=remote_addr)


# -- the builder's actions (pages and API alike) ---------------------------------------


@use_case
def check_expression(ctx: Context, text: str, level_depth: int = 2,
                     new_fields: Sequence[Mapping[str, Any]] = ()) -> ExpressionPreview:
    """The builder's expression check: ``text`` compiled against the edited model (plus
    ``new_fields``) and run over one level's units of the planning period."""
    version = _edits_models(ctx)
    for i, new in enumerate(new_fields):
        if not valid_field_name(str(new.get("name", ""))):
            raise BuilderError("bad_field_name", f"/new_fields/{i}/name")
    period = period_service.planning_period(ctx)
    return preview_expression(ctx.session, version.content, text, period, level_depth, new_fields)


@use_case
def save_weights(ctx: Context, weights: Mapping[str, float], note: str) -> SpecVersion:
    """Set every factor's weight (they total 100) as a new draft of the edited model."""
    version = _edits_models(ctx)
    try:
        doc = set_weights(version.content, dict(weights))
    except ModelEditError as error:
        raise BuilderError(error.code, error.pointer) from None
    return save_draft(ctx.session, actor(ctx), doc, note, ctx.remote_addr)


#: What a factor being written says of itself (the rest is derived or the model's).
FACTOR_TEXTS = ("key", "label_zh", "label_en", "expression", "scale", "help")


def factor_document(doc: Mapping[str, Any], typed: Mapping[str, Any],
                    new_fields: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A factor as the model stores it, from what the builder typed: the fields it reads
    are derived from its expressions (never typed twice); ``scale`` counts for a score
    only; blank help is left out."""
    texts = {name: str(typed.get(name) or "").strip() for name in FACTOR_TEXTS}
    names: list[str] = []
    for text in (texts["expression"], texts["scale"]):
        if text:
            # An invalid expression is reported by the model's validation, with its position.
            with suppress(ExpressionError):
                names += compile_factor_expression(doc, text, new_fields).names
    factor: dict[str, Any] = {
        "key": texts["key"], "label_zh": texts["label_zh"], "label_en": texts["label_en"],
        "fields": sorted(set(names)), "expression": texts["expression"],
        "normalisation": typed.get("normalisation") or "share",
    }
    if texts["scale"] and factor["normalisation"] == "score":
        factor["scale"] = texts["scale"]
    if texts["help"]:
        factor["help"] = texts["help"]
    return factor


@use_case
def save_factor(ctx: Context, key: str | None, typed: Mapping[str, Any], weight: float,
                new_fields: Sequence[Mapping[str, Any]] = (), *, rebalance_others: bool = True,
                note: str = "") -> SpecVersion:
    """Add a factor (``key`` None) or rewrite factor ``key`` with its weight (the others
    rebalanced to 100 unless told not to) and any new input fields, as a new draft of
    the edited model. Refusals carry the pointer of what to correct."""
    version = _edits_models(ctx)
    doc = version.content
    if key is not None and not any(f["key"] == key for f in doc["factors"]):
        raise NotFound("not_found", "/key")
    for i, new in enumerate(new_fields):
        if not valid_field_name(str(new.get("name", ""))):
            raise BuilderError("bad_field_name", f"/new_fields/{i}/name")
    factor = factor_document(doc, typed, new_fields)
    if key is None and any(f["key"] == factor["key"] for f in doc["factors"]):
        raise BuilderError("duplicate_key", "/key")
    if key is not None:
        factor["key"] = key
    try:
        new_doc = upsert_factor(doc, factor, weight, new_fields, rebalance_others=rebalance_others)
    except ModelEditError as error:
        raise BuilderError(error.code, error.pointer) from None
    return save_draft(ctx.session, actor(ctx), new_doc, note or f"Factor {factor['key']}",
                      ctx.remote_addr)
