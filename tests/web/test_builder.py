"""The factor builder: an HRBP adds the cross-border factor with no JSON and no code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from quotaflow.services import specs
from quotaflow.store import db
from quotaflow.store.models import SpecVersion

CROSS_BORDER_FORM = {
    "key": "cross_border", "label_zh": "跨境服务能力", "label_en": "Cross-border service capability",
    "normalisation": "score", "expression": "cross_border_rating", "scale": "headcount",
    "weight": "10", "rebalance": "on", "level": "2",
    "field-0-name": "cross_border_rating", "field-0-type": "number", "field-0-min": "0",
    "field-0-max": "100", "field-0-default": "50", "field-0-label_zh": "跨境服务能力评分",
    "field-0-label_en": "Cross-border capability rating",
}


def model_versions(app) -> list[SpecVersion]:
    with app.app_context():
        return list(db.session.scalars(
            select(SpecVersion).where(SpecVersion.kind == "factor_model", SpecVersion.key == "default")
            .order_by(SpecVersion.version)))


@pytest.fixture
def restore_model(app) -> Iterator[None]:
    """Tests share one database: put the seeded model back as the active one afterwards."""
    with app.app_context():
        active = specs.active_version(db.session, "factor_model", "default")
        before = active.version
    yield
    with app.app_context():
        current = specs.active_version(db.session, "factor_model", "default")
        if current.version != before:
            specs.activate_version(db.session, "factor_model", "default", before, None)


def test_only_configuration_roles_reach_the_builder(as_user) -> None:
    assert as_user("hrbp").get("/builder/").status_code == 200
    assert as_user("admin").get("/builder/").status_code == 200
    for user in ("head.east", "ceo", "lead.east.t1", "sales.p0001"):
        assert as_user(user).get("/builder/").status_code == 403, user


def test_overview_lists_factors_with_their_weights(as_user) -> None:
    page = as_user("hrbp").get("/builder/").data.decode()
    assert page.count('data-testid="factor-row"') == 5
    assert 'name="weight-historical_performance" value="30"' in page


def test_expression_check_points_at_the_error(as_user) -> None:
    client = as_user("hrbp")
    bad = client.post("/builder/check", data={"expression": "min(100, cross_border_ratin)", "level": "2"})
    html = bad.data.decode()
    assert 'data-testid="expr-error"' in html
    assert "cross_border_ratin" in html
    assert "^" in html.split('class="caret"')[1]  # the caret under the column
    # The same name becomes valid once it is declared as a new field on the page.
    good = client.post("/builder/check", data={**CROSS_BORDER_FORM, "expression": "min(100, cross_border_rating)"})
    html = good.data.decode()
    assert 'data-testid="expr-preview"' in html
    assert "have no value for cross_border_rating yet" in html or "尚无" in html


def test_expression_preview_runs_on_real_units(as_user) -> None:
    html = as_user("hrbp").post("/builder/check", data={"expression": "headcount", "level": "2"}).data.decode()
    assert 'data-testid="expr-preview"' in html
    assert "32" in html  # the demo company has 32 teams


def test_adding_a_factor_saves_a_draft_that_adds_up(app, as_user) -> None:
    before = model_versions(app)
    response = as_user("hrbp").post("/builder/factor", data=CROSS_BORDER_FORM)
    assert response.status_code == 302
    after = model_versions(app)
    assert len(after) == len(before) + 1
    draft = after[-1]
    assert draft.status == "draft"
    assert draft.content["version"] == draft.version
    assert draft.content["weights"]["cross_border"] == 10
    assert sum(draft.content["weights"].values()) == 100
    factor = draft.content["factors"][-1]
    assert factor["fields"] == ["cross_border_rating", "headcount"]
    rating = next(f for f in draft.content["fields"] if f["name"] == "cross_border_rating")
    assert rating["required"] is False and rating["default"] == 50
    page = as_user("hrbp").get("/builder/").data.decode()
    assert 'data-testid="draft-badge"' in page


def test_an_invalid_factor_is_refused_with_its_pointer(app, as_user) -> None:
    before = len(model_versions(app))
    form = {**CROSS_BORDER_FORM, "key": "broken", "expression": "cross_border_rating + nope"}
    response = as_user("hrbp").post("/builder/factor", data=form)
    assert response.status_code == 400
    html = response.data.decode()
    assert 'data-testid="issues"' in html
    assert "/factors/" in html and "/expression" in html
    assert len(model_versions(app)) == before
    duplicate = as_user("hrbp").post("/builder/factor", data={**CROSS_BORDER_FORM, "key": "product_fit"})
    assert duplicate.status_code == 400
    assert len(model_versions(app)) == before


def test_weights_must_total_100(app, as_user) -> None:
    before = len(model_versions(app))
    client = as_user("hrbp")
    doc = model_versions(app)[-1].content
    weights = {f"weight-{k}": str(v) for k, v in doc["weights"].items()}
    first = next(iter(weights))
    response = client.post("/builder/weights", data={**weights, first: "1"}, follow_redirects=True)
    assert "100" in response.data.decode()
    assert len(model_versions(app)) == before


def test_activating_the_draft_makes_it_the_model(app, as_user, restore_model) -> None:
    client = as_user("hrbp")
    client.post("/builder/factor", data={**CROSS_BORDER_FORM, "key": "cross_border_b"})
    draft = model_versions(app)[-1]
    response = client.post(f"/builder/activate/{draft.version}", follow_redirects=True)
    assert response.status_code == 200
    with app.app_context():
        active = specs.active_version(db.session, "factor_model", "default")
        assert active.version == draft.version
        assert db.session.scalar(select(func.count()).select_from(SpecVersion).where(
            SpecVersion.kind == "factor_model", SpecVersion.key == "default",
            SpecVersion.status == "active")) == 1
