"""Spec versions as data: validation with pointers, immutable versions, activation,
rollback, dependents checked on activation, readable diffs, audit entries."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quotaflow.services import spec_kinds
from quotaflow.services import specs as spec_service
from quotaflow.services.specs import (
    Change,
    SpecServiceError,
    SpecValidationError,
    diff_versions,
    save_version,
)
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store.models import AuditEntry, SpecVersion, User

SEED = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data" / "specs"


def seed_spec(name: str) -> dict:
    return json.loads((SEED / f"{name}.json").read_text(encoding="utf-8"))


def count_versions(session, kind: str | None = None, key: str | None = None) -> int:
    query = select(func.count()).select_from(SpecVersion)
    if kind is not None:
        query = query.where(SpecVersion.kind == kind, SpecVersion.key == key)
    return session.scalar(query)


def count_audit(session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry))


def without_product_fit(model: dict) -> dict:
    """The seed model minus its product_fit factor (its weight moved to competitor coverage)."""
    changed = copy.deepcopy(model)
    changed["factors"] = [f for f in changed["factors"] if f["key"] != "product_fit"]
    weights = changed["weights"]
    weights["competitor_coverage"] += weights.pop("product_fit")
    return changed


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def hrbp(session) -> User:
    return session.scalar(select(User).where(User.username == "hrbp"))


def test_an_invalid_spec_is_refused_with_pointers_and_nothing_is_saved(session, hrbp) -> None:
    key = "t-invalid"
    model = seed_spec("factor_model")
    model["weights"]["product_fit"] = 5  # total 90%
    model["factors"][0]["expression"] = "hist_sales +* 2"
    model["weights"]["nonexistent"] = 0
    before, audit_before = count_versions(session), count_audit(session)
    with pytest.raises(SpecValidationError) as caught:
        save_version(session, "factor_model", key, model, hrbp, "broken")
    by_pointer = {i.pointer: i for i in caught.value.issues}
    assert by_pointer["/weights"].code == "weights_total"
    assert "90" in by_pointer["/weights"].message
    assert by_pointer["/factors/0/expression"].code == "expression.syntax"
    assert by_pointer["/factors/0/expression"].column is not None
    assert by_pointer["/weights/nonexistent"].code == "unknown_factor"
    assert all(p.kind == "factor_model" and p.key == key for p in caught.value.problems)
    assert count_versions(session) == before
    assert count_audit(session) == audit_before


def test_schema_errors_carry_the_pointer_of_the_value(session, hrbp) -> None:
    model = seed_spec("factor_model")
    model["weights"]["team_maturity"] = "twenty"
    model["factors"][1]["normalisation"] = "sideways"
    with pytest.raises(SpecValidationError) as caught:
        save_version(session, "factor_model", "t-schema", model, hrbp)
    codes = {i.pointer: i.code for i in caught.value.issues}
    assert codes["/weights/team_maturity"] == "schema.type"
    assert codes["/factors/1/normalisation"] == "schema.enum"


def test_a_spec_must_be_an_object_of_a_known_kind_under_a_valid_key(session, hrbp) -> None:
    with pytest.raises(SpecValidationError) as caught:
        save_version(session, "factor_model", "t-list", [1, 2], hrbp)
    assert caught.value.issues[0].code == "not_object"
    with pytest.raises(SpecServiceError) as unknown:
        save_version(session, "no_such_kind", "default", {}, hrbp)
    assert unknown.value.code == "unknown_kind"
    with pytest.raises(SpecServiceError) as bad_key:
        save_version(session, "factor_model", "Bad Key/..", seed_spec("factor_model"), hrbp)
    assert bad_key.value.code == "bad_key"


def test_identical_content_to_the_latest_version_is_refused(session, hrbp) -> None:
    key = "t-same"
    model = seed_spec("factor_model")
    first = save_version(session, "factor_model", key, model, hrbp, "first")
    assert (first.version, first.status) == (1, "draft")
    with pytest.raises(SpecServiceError) as caught:
        save_version(session, "factor_model", key, copy.deepcopy(model), hrbp, "again")
    assert caught.value.code == "unchanged"
    assert "identical to version 1" in caught.value.message
    assert count_versions(session, "factor_model", key) == 1


def test_activate_and_roll_back_retire_the_previous_version_and_are_audited(session, hrbp) -> None:
    key = "t-roll"
    model = seed_spec("factor_model")
    v1 = save_version(session, "factor_model", key, model, hrbp, "v1", activate=True,
                      remote_addr="10.0.0.9")
    model["name_en"] = "Second"
    v2 = save_version(session, "factor_model", key, model, hrbp, "v2")
    assert (v1.status, v2.status) == ("active", "draft")

    spec_service.activate_version(session, "factor_model", key, 2, hrbp)
    session.expire_all()
    assert [v.status for v in spec_service.versions(Context(session), "factor_model", key)] == [
        "active", "retired"]

    spec_service.activate_version(session, "factor_model", key, 1, hrbp)  # roll back
    session.expire_all()
    assert [v.status for v in spec_service.versions(Context(session), "factor_model", key)] == [
        "retired", "active"]
    assert spec_service.active_version(session, "factor_model", key).version == 1

    with pytest.raises(SpecServiceError) as again:
        spec_service.activate_version(session, "factor_model", key, 1, hrbp)
    assert again.value.code == "already_active"
    with pytest.raises(SpecServiceError) as missing:
        spec_service.activate_version(session, "factor_model", key, 9, hrbp)
    assert missing.value.code == "not_found"

    entries = session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "factor_model",
                                                       AuditEntry.entity_id.like(f"{key}@%"))
                              .order_by(AuditEntry.id)).all()
    assert [(e.action, e.entity_id) for e in entries] == [
        ("create_spec_version", f"{key}@v1"), ("activate_spec_version", f"{key}@v1"),
        ("create_spec_version", f"{key}@v2"), ("activate_spec_version", f"{key}@v2"),
        ("rollback_spec_version", f"{key}@v1"),
    ]
    assert all(e.actor_name == "hrbp" for e in entries)
    assert entries[0].remote_addr == "10.0.0.9"
    assert entries[0].after == {"hash": v1.content_hash, "note": "v1"}
    assert (entries[4].before, entries[4].after["active"]) == ({"active": 2}, 1)


def test_activating_a_model_that_breaks_its_presets_is_refused(session, hrbp) -> None:
    key = "t-dep"
    model = seed_spec("factor_model")
    save_version(session, "factor_model", key, model, hrbp, activate=True)
    presets = seed_spec("scenario_presets")
    presets["presets"][0]["weight_tilt"] = {"product_fit": 5, "historical_performance": -5}
    save_version(session, "scenario_presets", key, presets, hrbp, activate=True)

    smaller = without_product_fit(model)
    draft = save_version(session, "factor_model", key, smaller, hrbp, "drops product fit")
    assert draft.status == "draft"  # a draft is checked on its own
    with pytest.raises(SpecValidationError) as caught:
        spec_service.activate_version(session, "factor_model", key, draft.version, hrbp)
    problems = [(p.kind, p.key, p.issue.pointer, p.issue.code) for p in caught.value.problems]
    assert ("scenario_presets", key, "/presets/0/weight_tilt/product_fit",
            "unknown_factor") in problems
    session.expire_all()
    assert spec_service.active_version(session, "factor_model", key).version == 1

    smaller["name_en"] = "Smaller"
    before = count_versions(session, "factor_model", key)
    with pytest.raises(SpecValidationError):
        save_version(session, "factor_model", key, smaller, hrbp, activate=True)
    assert count_versions(session, "factor_model", key) == before


def test_presets_and_risks_are_checked_against_the_active_model(session, hrbp) -> None:
    # No factor model under this key: the "default" model is the one that counts.
    presets = seed_spec("scenario_presets")
    presets["presets"][0]["weight_tilt"] = {"cross_border": 5, "historical_performance": -5}
    with pytest.raises(SpecValidationError) as caught:
        save_version(session, "scenario_presets", "t-presets", presets, hrbp)
    assert [(i.pointer, i.code) for i in caught.value.issues] == [
        ("/presets/0/weight_tilt/cross_border", "unknown_factor")]

    risks = seed_spec("risk_rules")
    risks["unit_rules"][0]["when"] = "no_such_field > 1"
    with pytest.raises(SpecValidationError) as risk_error:
        save_version(session, "risk_rules", "t-risks", risks, hrbp)
    issue = risk_error.value.issues[0]
    assert (issue.pointer, issue.code, issue.column) == (
        "/unit_rules/0/when", "expression.unknown_name", 1)


def test_a_model_with_its_own_key_is_used_by_presets_of_that_key(session, hrbp) -> None:
    key = "t-own"
    model = seed_spec("factor_model")
    model["fields"].append({"name": "cross_border", "type": "number", "min": 0, "max": 10})
    model["factors"].append({"key": "cross_border", "fields": ["cross_border"],
                             "expression": "cross_border", "normalisation": "score"})
    model["weights"] = {**model["weights"], "historical_performance": 20, "cross_border": 10}
    save_version(session, "factor_model", key, model, hrbp, activate=True)
    presets = seed_spec("scenario_presets")
    presets["presets"][0]["weight_tilt"] = {"cross_border": 5, "historical_performance": -5}
    saved = save_version(session, "scenario_presets", key, presets, hrbp)
    assert saved.version == 1


def test_diff_matches_keyed_items_and_reports_pointers() -> None:
    old = seed_spec("factor_model")
    new = copy.deepcopy(old)
    new["factors"].reverse()  # moving factors is not a change
    assert diff_versions(old, new) == []

    moved_index = next(i for i, f in enumerate(new["factors"]) if f["key"] == "team_maturity")
    new["factors"][moved_index]["expression"] = "avg_tenure_months * 2"
    new["weights"]["team_maturity"] = 15
    new["weights"]["product_fit"] = 20
    new["fields"].append({"name": "cross_border", "type": "number"})
    del new["description"]
    changes = diff_versions(old, new)
    assert Change(f"/factors/{moved_index}/expression", "changed",
                  old["factors"][2]["expression"], "avg_tenure_months * 2",
                  "factors[team_maturity].expression") in changes
    assert Change("/weights/team_maturity", "changed", 20, 15, "weights.team_maturity") in changes
    assert Change("/weights/product_fit", "changed", 15, 20, "weights.product_fit") in changes
    added = Change(f"/fields/{len(new['fields']) - 1}", "added", None,
                   {"name": "cross_border", "type": "number"}, "fields[cross_border]")
    assert added in changes
    assert Change("/description", "removed", old["description"], None, "description") in changes
    assert len(changes) == 5

    removed = diff_versions(old, without_product_fit(old))
    assert Change("/factors/3", "removed", old["factors"][3], None,
                  "factors[product_fit]") in removed
    assert ("/weights/product_fit", "removed") in {(c.pointer, c.kind) for c in removed}
    # Arrays without identities compare by position.
    assert diff_versions({"levels": ["a", "b"]}, {"levels": ["a", "c", "d"]}) == [
        Change("/levels/1", "changed", "b", "c", "levels[1]"),
        Change("/levels/2", "added", None, "d", "levels[2]"),
    ]


def test_diff_accepts_versions(session, hrbp) -> None:
    key = "t-diff"
    model = seed_spec("factor_model")
    a = save_version(session, "factor_model", key, model, hrbp)
    model["name_zh"] = "新模型"
    b = save_version(session, "factor_model", key, model, hrbp)
    assert [(c.pointer, c.kind, c.new) for c in diff_versions(a, b)] == [
        ("/name_zh", "changed", "新模型")]


def test_registry_orders_dependencies_first() -> None:
    names = [k.name for k in spec_kinds.kinds()]
    assert names.index("factor_model") < names.index("scenario_presets")
    assert names.index("factor_model") < names.index("risk_rules")
    assert {k.name for k in spec_kinds.dependents("factor_model")} >= {
        "scenario_presets", "risk_rules"}
    assert spec_kinds.get("risk_rules").schema == "risk-rules"


@pytest.mark.skipif(importlib.util.find_spec("quotaflow.forms.spec") is None,
                    reason="the form engine (quotaflow.forms.spec) has not landed yet")
def test_form_specs_are_checked_by_the_form_engine(session, hrbp) -> None:
    with pytest.raises(SpecValidationError) as caught:
        save_version(session, "form", "t-form", {"schema": "not a schema"}, hrbp)
    assert caught.value.issues
    assert all(i.pointer is not None for i in caught.value.issues)
