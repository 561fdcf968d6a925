"""The data-collection form generated from the active factor model."""

from __future__ import annotations

import copy
import re

import pytest
from sqlalchemy import func, select

from quotaflow.services.forms import ensure_inputs_form
from quotaflow.services.org import set_attributes
from quotaflow.services.specs import activate, active_version, create_version
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, AuditEntry, FormSubmission, SpecVersion


def planning_period(app):
    """The period the pages collect for: the latest one."""
    with app.app_context():
        return q.periods(db.session)[-1].code


def stored(app, code: str) -> dict[str, float]:
    with app.app_context():
        unit = q.unit_by_code(db.session, code)
        period = q.period_by_code(db.session, planning_period(app))
        return q.unit_attributes(db.session, unit.id, period.id)


def text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def posted(app, code: str, **changes: str) -> dict[str, str]:
    """Form data for every field of the active model: the unit's stored value (as the
    page shows it) or a valid one where none is stored, plus ``changes``; pinned, as
    the page's form is, to the active form version."""
    with app.app_context():
        model = active_version(db.session, "factor_model", "default").content
        form = ensure_inputs_form(db.session)  # as the page does before it draws the form
    values = stored(app, code)
    data = {"form_version": str(form.version)} if form is not None else {}
    for field in model["fields"]:
        name = field["name"]
        if name in values:
            data[name] = text(values[name])
        elif field.get("type") != "boolean":
            data[name] = text(field.get("min", 1))
    data.update(changes)
    return data


def active_form(app) -> SpecVersion:
    with app.app_context():
        version = active_version(db.session, "form", "inputs")
        db.session.expunge(version)
        return version


def submissions(app, code: str) -> list[FormSubmission]:
    with app.app_context():
        unit = q.unit_by_code(db.session, code)
        rows = list(db.session.scalars(select(FormSubmission).where(FormSubmission.unit_id == unit.id)
                                       .order_by(FormSubmission.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def listed(html: str) -> list[str]:
    return re.findall(r'<tr data-unit="([^"]+)"', html)


def test_region_head_lists_their_region_and_teams(as_user) -> None:
    response = as_user("head.east").get("/collect")
    assert response.status_code == 200
    assert listed(response.data.decode()) == ["EAST"] + [f"EAST-T{i}" for i in range(1, 7)]
    assert 'href="/collect"' in response.data.decode()  # in the menu


def test_team_lead_lists_only_their_team(as_user) -> None:
    assert listed(as_user("lead.east.t1").get("/collect").data.decode()) == ["EAST-T1"]


def test_admin_lists_everything(as_user) -> None:
    units = listed(as_user("admin").get("/collect").data.decode())
    assert units[0] == "HQ" and "SOUTH-T1" in units and "P0001" in units


@pytest.mark.parametrize("username", ["ceo", "sales.p0001"])
def test_read_only_roles_are_refused(as_user, username) -> None:
    client = as_user(username)
    assert client.get("/collect").status_code == 403
    assert 'href="/collect"' not in client.get("/").data.decode()


def test_executive_may_not_open_or_post_a_unit_form(as_user, app) -> None:
    client = as_user("ceo")
    before = stored(app, "EAST-T2")
    assert client.get("/collect/EAST-T2").status_code == 403
    assert client.post("/collect/EAST-T2", data=posted(app, "EAST-T2", product_fit="1")).status_code == 403
    assert stored(app, "EAST-T2") == before


def test_another_regions_unit_is_not_found(as_user, app) -> None:
    client = as_user("head.east")
    before = stored(app, "SOUTH-T1")
    assert client.get("/collect/SOUTH-T1").status_code == 404
    assert client.post("/collect/SOUTH-T1", data=posted(app, "EAST-T2", product_fit="1")).status_code == 404
    assert stored(app, "SOUTH-T1") == before
    assert as_user("lead.east.t1").get("/collect/EAST-T2").status_code == 404


def test_levels_outside_the_roles_collection_are_not_found(as_user) -> None:
    assert as_user("head.east").get("/collect/P0001").status_code == 404
    assert as_user("lead.east.t1").get("/collect/EAST-T1").status_code == 200
    assert as_user("admin").get("/collect/P0001").status_code == 200


def test_the_form_is_prefilled_with_the_units_inputs(as_user, app) -> None:
    with app.app_context():
        unit = q.unit_by_code(db.session, "EAST-T3")
        set_attributes(db.session, q.user_by_username(db.session, "admin"), unit,
                       q.period_by_code(db.session, planning_period(app)), {"headcount": 17.0})
    html = as_user("head.east").get("/collect/EAST-T3").data.decode()
    headcount = re.search(r'<input type="number" id="f-headcount" name="headcount" value="(\d+)"', html)
    assert headcount.group(1) == "17"
    assert re.search(r'<label for="f-headcount">人数', html)
    shown = re.search(r'data-testid="form-version">([^<]+)<', html).group(1)
    assert str(active_form(app).version) in shown


@pytest.mark.usefixtures("inputs_open")
def test_region_head_saves_a_units_inputs_pinned_to_the_form_version(as_user, app) -> None:
    client = as_user("head.east")
    count = len(submissions(app, "EAST-T3"))
    data = posted(app, "EAST-T3", product_fit="63.25", avg_tenure_months="41")
    response = client.post("/collect/EAST-T3", data=data)
    assert response.status_code == 302
    assert response.location.endswith("/collect/EAST-T3?period=2026Q4")  # where it was read
    after = stored(app, "EAST-T3")
    assert after["product_fit"] == 63.25 and after["avg_tenure_months"] == 41
    assert {k: after[k] for k in data if k != "form_version"} == {
        k: float(v) for k, v in data.items() if k != "form_version"}
    subs = submissions(app, "EAST-T3")
    assert len(subs) == count + 1
    form = active_form(app)
    assert subs[-1].form_version_id == form.id
    assert subs[-1].data["product_fit"] == 63.25 and subs[-1].data["headcount"] == after["headcount"]
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id.desc())
                                          .limit(2)))
    assert set(actions) == {"submit_form", "set_attributes"}
    assert "63.25" in client.get("/collect/EAST-T3").data.decode()


def test_a_form_filled_against_an_older_version_is_refused_with_a_conflict(as_user, app) -> None:
    client = as_user("head.east")
    html = client.get("/collect/EAST-T3").data.decode()
    pinned = re.search(r'name="form_version" value="(\d+)"', html).group(1)
    assert pinned == str(active_form(app).version)
    before, count = stored(app, "EAST-T3"), len(submissions(app, "EAST-T3"))
    stale = posted(app, "EAST-T3", product_fit="12", form_version=str(int(pinned) - 1))
    response = client.post("/collect/EAST-T3", data=stale)
    assert response.status_code == 409
    assert f'name="form_version" value="{pinned}"' in response.data.decode()  # the current form
    missing = posted(app, "EAST-T3", product_fit="12")
    del missing["form_version"]
    assert client.post("/collect/EAST-T3", data=missing).status_code == 409
    assert stored(app, "EAST-T3") == before and len(submissions(app, "EAST-T3")) == count


def test_bad_values_are_shown_beside_the_fields_and_nothing_is_saved(as_user, app) -> None:
    client = as_user("head.east")
    client.post("/language", data={"lang": "en", "next": "/"})
    before = stored(app, "EAST-T4")
    count = len(submissions(app, "EAST-T4"))
    response = client.post("/collect/EAST-T4", data=posted(
        app, "EAST-T4", product_fit="120", headcount="3.5", hist_sales="", market_potential="lots",
        new_city_share="-0.1"))
    assert response.status_code == 400
    html = response.data.decode()
    errors = dict(re.findall(r'data-testid="error-(\w+)">([^<]+)<', html))
    assert errors == {
        "product_fit": "Enter 100 or less.",
        "headcount": "Enter a whole number.",
        "hist_sales": "This field is required.",
        "market_potential": "Enter a number.",
        "new_city_share": "Enter 0 or more.",
    }
    field = re.search(r'<input type="number" id="f-product_fit"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="f-product_fit-error' in field
    assert 'value="120"' in field  # shown as typed
    assert stored(app, "EAST-T4") == before
    assert len(submissions(app, "EAST-T4")) == count


def test_an_unchanged_model_makes_no_new_form_version(as_user, app) -> None:
    client = as_user("head.east")
    client.get("/collect")
    first = active_form(app)
    client.get("/collect/EAST-T5")
    client.get("/collect")
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(SpecVersion)
                                  .where(SpecVersion.kind == "form"))
        assert db.session.scalar(select(func.max(SpecVersion.version))
                                 .where(SpecVersion.kind == "form")) == total
    assert active_form(app).id == first.id


CROSS_BORDER = {"name": "cross_border_capability", "type": "number", "min": 0, "max": 100,
                "label_en": "Cross-border service capability (0-100)",
                "label_zh": "跨境服务能力（0-100）", "help": "How well the unit serves customers abroad."}


@pytest.mark.usefixtures("inputs_open")
def test_a_new_factor_field_appears_in_the_form_with_a_new_version(as_user, app) -> None:
    client = as_user("head.east")
    client.get("/collect")
    old_form = active_form(app)
    with app.app_context():
        admin = q.user_by_username(db.session, "admin")
        original = active_version(db.session, "factor_model", "default")
        doc = copy.deepcopy(original.content)
        doc["fields"].append(CROSS_BORDER)
        doc["factors"].append({"key": "cross_border", "label_en": "Cross-border", "label_zh": "跨境",
                               "fields": ["cross_border_capability", "headcount"],
                               "expression": "cross_border_capability", "normalisation": "score",
                               "scale": "headcount"})
        doc["weights"] = {k: w * 0.9 for k, w in doc["weights"].items()} | {"cross_border": 10}
        grown = create_version(db.session, "factor_model", "default", doc, admin)
        activate(db.session, grown, admin)
        db.session.commit()
        original_id = original.id
    try:
        listing = client.get("/collect").data.decode()
        row = re.search(r'<tr data-unit="EAST-T6">.*?</tr>', listing, re.S).group(0)
        assert f"/ {len(doc['fields'])}" in row  # one more field, not yet filled
        html = client.get("/collect/EAST-T6").data.decode()
        assert 'name="cross_border_capability"' in html and "跨境服务能力（0-100）" in html
        new_form = active_form(app)
        assert new_form.version == old_form.version + 1
        assert "cross_border_capability" in new_form.content["schema"]["properties"]
        data = posted(app, "EAST-T6")
        del data["cross_border_capability"]
        response = client.post("/collect/EAST-T6", data=data)
        assert response.status_code == 400  # the new input is required
        assert 'data-testid="error-cross_border_capability"' in response.data.decode()
        response = client.post("/collect/EAST-T6", data=posted(app, "EAST-T6", cross_border_capability="80"))
        assert response.status_code == 302
        assert stored(app, "EAST-T6")["cross_border_capability"] == 80
        assert submissions(app, "EAST-T6")[-1].form_version_id == new_form.id
    finally:
        with app.app_context():
            original = db.session.get(SpecVersion, original_id)
            activate(db.session, original, None)
            unit = q.unit_by_code(db.session, "EAST-T6")
            db.session.query(AttributeValue).filter_by(
                unit_id=unit.id, name="cross_border_capability").delete()
            db.session.commit()
    assert 'name="cross_border_capability"' not in client.get("/collect/EAST-T6").data.decode()
    assert active_form(app).content == old_form.content
