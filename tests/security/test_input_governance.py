"""Issue 11, finding 12: the inputs behind one's own target, changed after publication.

The attack: head.east (region head of EAST) and the team leads kept editing the inputs
the model turns into their own targets (tenure, potential, headcount) after the
period's plan was published, with nobody approving. Now, once a period's plan is
published, such a change made through any write path (the collect form, the org page,
``PUT /api/v1/units/{code}/attributes``, the .xlsx upload) leaves the value unchanged and
starts an ``input_change`` flow that the HRBP approves; approval applies it (audited with
before and after), rejection does not. With the policy's
``input_changes_after_publish: "locked"`` the change is refused with the field; before
publication and for the HRBP it is applied directly, audited.

The demo quarter (2026Q4, the period the pages collect for) has a published plan; a
period of the test's own (``fresh_period``) has none.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import openpyxl
import pytest
from confirm_support import fresh_period, user
from sheet_support import PERIOD, cell_for, post_file, saved
from sqlalchemy import select

from quotaflow.flows.interpreter import Action
from quotaflow.services import flows, input_governance, specs
from quotaflow.services import forms as forms_service
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.flow_models import FlowInstance
from quotaflow.store.models import AuditEntry

API = "/api/v1"
FIELD = "avg_tenure_months"


def value(app, code: str, name: str = FIELD, period: str = PERIOD) -> float | None:
    with app.app_context():
        unit = q.unit_by_code(db.session, code)
        found = q.period_by_code(db.session, period)
        return q.unit_attributes(db.session, unit.id, found.id).get(name)


def requests_for(app, code: str) -> list[dict[str, Any]]:
    """The input change requests about ``code`` (id, status, data), oldest first."""
    with app.app_context():
        unit = q.unit_by_code(db.session, code)
        rows = db.session.scalars(select(FlowInstance).where(
            FlowInstance.subject_type == input_governance.SUBJECT,
            FlowInstance.subject_id == unit.id).order_by(FlowInstance.id))
        return [{"id": r.id, "status": r.status, "data": dict(r.state["data"])} for r in rows]


def audits(app, action: str, code: str, period: str = PERIOD) -> list[AuditEntry]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.entity_id == f"{code}@{period}")
            .order_by(AuditEntry.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def set_mode(app, mode: str) -> None:
    """Activate a confirmation policy version with ``input_changes_after_publish``."""
    with app.app_context():
        session = db.session
        active = specs.active_version(session, "confirmation_policy", "default")
        doc = copy.deepcopy(active.content)
        doc[input_governance.MODE_FIELD] = mode
        version = specs.create_version(session, "confirmation_policy", "default", doc,
                                       user(session, "hrbp"))
        specs.activate(session, version, user(session, "hrbp"))
        session.commit()


def decide(app, flow_id: int, username: str, kind: str) -> None:
    with app.app_context():
        flows.act(db.session, flow_id, user(db.session, username), Action(kind))
        db.session.commit()


def new_value(app, code: str) -> float:
    return (value(app, code) or 0.0) + 7.0


# -- one write per path, as head.east after publication ----------------------------------


def via_api(client, code: str, number: float, period: str = PERIOD) -> Any:
    return client.put(f"{API}/units/{code}/attributes",
                      json={"period": period, "values": {FIELD: number}})


def via_org_page(client, code: str, number: float, period: str = PERIOD) -> Any:
    return client.post(f"/org/{code}?period={period}", data={f"attr:{FIELD}": str(number)})


def via_collect(client, app, code: str, number: float) -> Any:
    with app.app_context():
        model = specs.active_version(db.session, "factor_model", "default").content
        unit = q.unit_by_code(db.session, code)
        period = q.period_by_code(db.session, PERIOD)
        stored = q.unit_attributes(db.session, unit.id, period.id)
        form = forms_service.ensure_inputs_form(db.session)  # the page pins its version
    data = {"form_version": str(form.version)}
    for field in model["fields"]:
        name = field["name"]
        if name in stored:
            v = stored[name]
            data[name] = str(int(v)) if float(v).is_integer() else repr(v)
    data[FIELD] = str(number)
    return client.post(f"/collect/{code}", data=data)


def via_sheet(client, code: str, number: float) -> Any:
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/sheets/inputs.xlsx?period={PERIOD}")
                                             .data))
    cell_for(book.worksheets[0], code, FIELD).value = number
    return post_file(client, "/sheets/inputs", saved(book), "inputs.xlsx", period=PERIOD)


PATHS = {
    "api": lambda client, app, code, n: via_api(client, code, n),
    "org_page": lambda client, app, code, n: via_org_page(client, code, n),
    "collect": via_collect,
    "sheet": lambda client, app, code, n: via_sheet(client, code, n),
}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("code", ["EAST", "EAST-T1"])
def test_a_change_after_publication_waits_for_the_hrbp(app, as_user, path, code) -> None:
    before = value(app, code)
    wanted = new_value(app, code)
    response = PATHS[path](as_user("head.east"), app, code, wanted)
    assert response.status_code in (200, 202, 302), response.data[:400]
    assert value(app, code) == before  # not applied
    [request] = requests_for(app, code)
    assert request["status"] == "running"
    assert request["data"]["values"] == {FIELD: wanted}
    assert request["data"]["before"] == {FIELD: before}
    assert request["data"]["source"] == {"api": "api", "org_page": "org", "collect": "form",
                                         "sheet": "sheet"}[path]
    assert audits(app, "request_input_change", code)[-1].after[FIELD] == wanted
    # The HRBP sees it in the task list.
    tasks = as_user("hrbp").get("/tasks").data.decode()
    assert f"/tasks/{request['id']}" in tasks
    # head.east cannot approve it; the HRBP does, and then it is applied and audited.
    with pytest.raises(flows.FlowRefused):
        decide(app, request["id"], "head.east", "approve")
    decide(app, request["id"], "hrbp", "approve")
    assert value(app, code) == wanted
    [applied] = audits(app, "apply_input_change", code)
    assert applied.before == {FIELD: before}
    assert applied.after[FIELD] == wanted
    assert applied.after["flow_instance"] == request["id"]


def test_the_pages_and_the_api_say_the_change_awaits_approval(app, as_user) -> None:
    client = as_user("head.east")  # zh
    response = via_api(client, "EAST", new_value(app, "EAST"))
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending_approval" and body["flow_id"]
    assert body["values"][FIELD] == value(app, "EAST")
    page = via_org_page(client, "EAST-T1", new_value(app, "EAST-T1"))
    shown = client.get(page.headers["Location"]).data.decode()
    assert "HRBP" in shown and "审批" in shown
    assert "待 HRBP 审批" in shown
    english = as_user("lead.east.t1")
    english.post("/language", data={"lang": "en"})
    response = via_collect(english, app, "EAST-T1", new_value(app, "EAST-T1") + 1)
    assert response.status_code == 302
    shown = english.get(response.headers["Location"]).data.decode()
    assert "awaits the HRBP&#39;s approval" in shown


def test_a_rejected_change_is_never_applied(app, as_user) -> None:
    before = value(app, "EAST-T2")
    via_api(as_user("lead.east.t2"), "EAST-T2", new_value(app, "EAST-T2"))
    [request] = requests_for(app, "EAST-T2")
    decide(app, request["id"], "hrbp", "reject")
    assert value(app, "EAST-T2") == before
    assert audits(app, "apply_input_change", "EAST-T2") == []
    assert audits(app, "input_change_rejected", "EAST-T2")


def test_the_approval_applies_the_values_kept_by_the_server(app, as_user) -> None:
    """An approval re-runs the field check: a model that now refuses the value refuses it."""
    via_api(as_user("head.east"), "EAST", 500.0)
    [request] = requests_for(app, "EAST")
    with app.app_context():
        session = db.session
        model = copy.deepcopy(specs.active_version(session, "factor_model", "default").content)
        for field in model["fields"]:
            if field["name"] == FIELD:
                field["max"] = 400
        version = specs.create_version(session, "factor_model", "default", model,
                                       user(session, "hrbp"))
        specs.activate(session, version, user(session, "hrbp"))
        session.commit()
    before = value(app, "EAST")
    with pytest.raises(Exception, match="at most 400"):
        decide(app, request["id"], "hrbp", "approve")
    assert value(app, "EAST") == before
    assert requests_for(app, "EAST")[0]["status"] == "running"


@pytest.mark.parametrize("path", sorted(PATHS))
def test_locked_refuses_the_change_with_the_field(app, as_user, path) -> None:
    set_mode(app, "locked")
    before = value(app, "EAST-T1")
    response = PATHS[path](as_user("head.east"), app, "EAST-T1", new_value(app, "EAST-T1"))
    assert response.status_code in (400, 422), response.status_code
    assert value(app, "EAST-T1") == before
    assert requests_for(app, "EAST-T1") == []
    text = response.data.decode()
    if path == "api":
        assert response.get_json()["error"]["details"]["pointer"] == f"/values/{FIELD}"
    else:
        assert "HRBP" in text


def test_open_applies_directly(app, as_user) -> None:
    set_mode(app, "open")
    wanted = new_value(app, "EAST")
    assert via_api(as_user("head.east"), "EAST", wanted).status_code == 200
    assert value(app, "EAST") == wanted
    assert requests_for(app, "EAST") == []


def test_before_publication_the_change_applies_directly(app, as_user) -> None:
    with app.app_context():
        period = fresh_period(db.session).code
    client = as_user("head.east")
    response = via_api(client, "EAST", 123.0, period)
    assert response.status_code == 200 and response.get_json()["status"] == "applied"
    assert value(app, "EAST", period=period) == 123.0
    assert via_org_page(client, "EAST-T1", 45.0, period).status_code == 302
    assert value(app, "EAST-T1", period=period) == 45.0
    assert requests_for(app, "EAST") == requests_for(app, "EAST-T1") == []
    [entry] = audits(app, "set_attributes", "EAST", period)
    assert entry.after == {FIELD: 123.0}


@pytest.mark.parametrize("path", ["api", "org_page", "sheet"])
def test_the_hrbp_changes_directly_and_is_audited(app, as_user, path) -> None:
    before = value(app, "EAST")
    wanted = new_value(app, "EAST")
    response = PATHS[path](as_user("hrbp"), app, "EAST", wanted)
    assert response.status_code in (200, 302)
    assert value(app, "EAST") == wanted
    assert requests_for(app, "EAST") == []
    if path == "sheet":
        [entry] = [e for e in audits_of(app, "import_inputs")
                   if {"unit": "EAST", "name": FIELD, "before": before, "after": wanted}
                   in e.after["changes"]]
    else:
        [entry] = audits(app, "set_attributes", "EAST")
        assert entry.before == {FIELD: before} and entry.after == {FIELD: wanted}


def test_a_free_form_attribute_is_not_governed(app, as_user) -> None:
    """Only the factor model's inputs move a target."""
    response = as_user("head.east").put(f"{API}/units/EAST/attributes",
                                        json={"period": PERIOD, "values": {"api_check": 1}})
    assert response.status_code == 200
    assert value(app, "EAST", "api_check") == 1.0


def test_a_units_outside_ones_own_target_line_is_not_governed() -> None:
    gate = input_governance.Gate(input_governance.APPROVAL, ("/1/4/",))
    assert gate.governs("/1/4/") and gate.governs("/1/4/9/") and gate.governs("/1/")
    assert not gate.governs("/1/5/")
    assert not input_governance.Gate(input_governance.OPEN, ("/1/4/",)).governs("/1/4/")


def audits_of(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                       .order_by(AuditEntry.id)))
        for row in rows:
            db.session.expunge(row)
        return rows
