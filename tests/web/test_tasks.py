"""The task pages and API: my tasks, an instance's page and its htmx actions, who may
see and act, flows in the configuration pages, and the CLI tick."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from quotaflow.services import flows, registry
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.flow_models import FlowInstance
from quotaflow.store.models import utcnow

SUBJECT = "flow_test"
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def handled(monkeypatch):
    calls: list[int] = []
    monkeypatch.setitem(registry._loaded, registry.FLOW_ACTIONS["apply_adjustment"],
                        lambda session, instance: calls.append(instance.id))
    return calls


def start(app, change_pct: float = 2.0, *, now: dt.datetime | None = None) -> int:
    with app.app_context():
        session = db.session
        instance = flows.start(
            session, "appeal", unit=q.unit_by_code(session, "EAST"),
            initiator=q.user_by_username(session, "head.east"),
            data={"allocated": 1000.0, "requested": 1000.0 * (1 + change_pct / 100),
                  "change_pct": change_pct, "reason": "a new competitor"},
            subject_type=SUBJECT, subject_id=1, now=now)
        session.commit()
        return instance.id


def load(app, instance_id: int) -> FlowInstance:
    with app.app_context():
        instance = db.session.get(FlowInstance, instance_id)
        db.session.expunge(instance)
        return instance


def post(client, instance_id: int, headers=None, **form):
    return client.post(f"/tasks/{instance_id}/act", data=form, headers=headers or {})


def test_my_tasks_lists_pending_and_started_with_a_count_in_the_menu(app, as_user) -> None:
    instance_id = start(app)
    cfo = as_user("cfo")
    page = cfo.get("/tasks")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="pending-tasks"' in html
    assert f'href="/tasks/{instance_id}"' in html
    assert 'data-testid="task-count"' in html  # the menu shows how many wait
    started = as_user("head.east").get("/tasks").get_data(as_text=True)
    assert 'data-testid="started-instances"' in started
    assert f'href="/tasks/{instance_id}"' in started
    nobody = as_user("sales.p0082").get("/tasks")
    assert nobody.status_code == 200
    assert 'data-testid="no-pending"' in nobody.get_data(as_text=True)


def test_instance_page_shows_data_history_path_and_the_viewers_buttons(app, as_user) -> None:
    instance_id = start(app, 3.0)
    approver = as_user("cfo").get(f"/tasks/{instance_id}").get_data(as_text=True)
    for marker in ('data-testid="flow-data"', 'data-testid="flow-history"',
                   'data-testid="flow-path"', 'data-testid="approve"', 'data-testid="reject"',
                   'data-testid="return-form"', 'data-testid="transfer-form"',
                   'data-testid="add-approver-form"', 'data-testid="edit-form"',
                   'name="field:requested"', "a new competitor", f'hx-post="/tasks/{instance_id}/act"'):
        assert marker in approver, marker
    assert 'name="field:reason"' not in approver  # not editable at this node
    initiator = as_user("head.east").get(f"/tasks/{instance_id}").get_data(as_text=True)
    assert 'data-testid="withdraw"' in initiator and 'data-testid="urge"' in initiator
    assert 'data-testid="approve"' not in initiator


def test_htmx_approve_then_the_other_approver_is_told_it_is_decided(app, as_user,
                                                                     handled) -> None:
    instance_id = start(app, 1.0)  # any one of HRBP and CFO
    revision = load(app, instance_id).revision
    done = post(as_user("cfo"), instance_id, HX, action="approve", comment="fine",
                revision=revision)
    assert done.status_code == 200
    html = done.get_data(as_text=True)
    assert 'data-testid="flow-done"' in html and html.lstrip().startswith("<section")
    assert 'data-testid="instance-status" class="status-approved"' in html
    assert handled == [instance_id]
    assert 'id="task-count" hx-swap-oob="true"' in html  # the menu's count follows
    late = post(as_user("hrbp"), instance_id, HX, action="approve", revision=revision)
    assert late.status_code == 200  # htmx swaps it in: the error is in the panel
    assert 'data-testid="flow-error" data-code="already_decided"' in late.get_data(as_text=True)
    instance = load(app, instance_id)
    assert instance.status == "approved" and instance.revision == revision + 1
    history = [e["action"] for e in instance.state["history"]]
    assert history.count("approve") == 1
    # Without htmx the page itself comes back with the error and 409.
    plain = post(as_user("hrbp"), instance_id, action="approve", revision=revision)
    assert plain.status_code == 409
    assert 'data-code="already_decided"' in plain.get_data(as_text=True)


def test_edit_comment_transfer_and_withdraw(app, as_user) -> None:
    instance_id = start(app, 4.0)
    hrbp = as_user("hrbp")
    edited = post(hrbp, instance_id, HX, action="edit", **{"field:requested": "1,030"})
    assert 'data-testid="flow-done"' in edited.get_data(as_text=True)
    # The history names the changed field as the form does, not by its key.
    changed = re.findall(r'<span class="muted">([^<=]+) = 1030\.0</span>',
                         edited.get_data(as_text=True))
    assert changed and "requested" not in changed
    assert load(app, instance_id).data["requested"] == 1030.0
    bad = post(hrbp, instance_id, HX, action="edit", **{"field:requested": "lots"})
    assert 'data-code="bad_value"' in bad.get_data(as_text=True)
    said = post(as_user("head.east"), instance_id, HX, action="comment", comment="evidence sent")
    assert "evidence sent" in said.get_data(as_text=True)
    empty = post(as_user("head.east"), instance_id, HX, action="comment", comment=" ")
    assert 'data-code="empty_comment"' in empty.get_data(as_text=True)
    moved = post(as_user("cfo"), instance_id, HX, action="transfer", target="ceo")
    assert 'data-testid="flow-done"' in moved.get_data(as_text=True)
    assert 'data-testid="approve"' in as_user("ceo").get(f"/tasks/{instance_id}").get_data(
        as_text=True)
    returned = post(as_user("ceo"), instance_id, HX, action="return", target="initiator",
                    comment="more evidence please")
    assert 'data-testid="instance-status" class="status-draft"' in returned.get_data(
        as_text=True)
    page = as_user("head.east").get(f"/tasks/{instance_id}").get_data(as_text=True)
    assert 'data-testid="resubmit-form"' in page and 'name="field:reason"' in page
    again = post(as_user("head.east"), instance_id, HX, action="submit",
                 **{"field:reason": "evidence attached", "field:requested": "1040",
                    "field:allocated": "1000", "field:change_pct": "4"})
    assert 'data-testid="instance-status" class="status-running"' in again.get_data(
        as_text=True)
    post(as_user("hrbp"), instance_id, HX, action="approve")
    late = post(as_user("head.east"), instance_id, action="withdraw")
    assert late.status_code == 422
    assert 'data-code="ended"' in late.get_data(as_text=True)
    assert load(app, instance_id).data["reason"] == "evidence attached"


def test_withdraw_without_htmx_redirects(app, as_user) -> None:
    instance_id = start(app, 6.0)
    response = post(as_user("head.east"), instance_id, action="withdraw", comment="mistake")
    assert response.status_code == 302
    assert response.location.endswith(f"/tasks/{instance_id}")
    assert load(app, instance_id).status == "withdrawn"


def test_others_instances_are_404_and_overseers_look_without_acting(app, as_user,
                                                                     client) -> None:
    instance_id = start(app, 2.0)
    for name in ("sales.p0082", "lead.east.t1", "head.north"):
        stranger = as_user(name)
        assert stranger.get(f"/tasks/{instance_id}").status_code == 404, name
        assert post(stranger, instance_id, action="approve").status_code == 404, name
        assert stranger.get(f"/api/v1/flows/{instance_id}").status_code == 404, name
    assert client.get(f"/tasks/{instance_id}").status_code == 302  # sign in first
    admin = as_user("admin")
    page = admin.get(f"/tasks/{instance_id}")
    assert page.status_code == 200
    assert 'data-testid="nothing-to-do"' in page.get_data(as_text=True)
    assert post(admin, instance_id, action="approve").status_code == 403
    assert admin.post(f"/api/v1/flows/{instance_id}/actions",
                      json={"action": "approve"}).status_code == 403
    assert as_user("hrbp").get("/tasks/987654321").status_code == 404
    assert load(app, instance_id).revision == 1


def test_api_lists_tasks_and_acts(app, as_user) -> None:
    instance_id = start(app, 1.0)
    cfo = as_user("cfo")
    tasks = cfo.get("/api/v1/tasks").get_json()["tasks"]
    mine = [t for t in tasks if t["instance_id"] == instance_id]
    assert mine and mine[0]["node"] == "any_one" and mine[0]["instance"]["flow"] == "appeal"
    started = as_user("head.east").get("/api/v1/tasks").get_json()["started"]
    assert instance_id in {i["id"] for i in started}
    shown = cfo.get(f"/api/v1/flows/{instance_id}").get_json()
    assert shown["status"] == "running" and shown["data"]["change_pct"] == 1.0
    assert [e["action"] for e in shown["history"]] == ["create", "submit"]
    bad = cfo.post(f"/api/v1/flows/{instance_id}/actions", json={"action": "dance"})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_action"
    done = cfo.post(f"/api/v1/flows/{instance_id}/actions",
                    json={"action": "approve", "comment": "ok", "revision": shown["revision"]})
    assert done.status_code == 200 and done.get_json()["status"] == "approved"
    again = as_user("hrbp").post(f"/api/v1/flows/{instance_id}/actions",
                                 json={"action": "approve", "revision": shown["revision"]})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "already_decided"


def test_api_says_what_the_caller_may_do_next(app, as_user, client) -> None:
    instance_id = start(app, 1.0)  # any one of HRBP and CFO, "requested" editable
    cfo = as_user("cfo").get(f"/api/v1/flows/{instance_id}").get_json()
    assert cfo["available_actions"] == ["approve", "reject", "return", "transfer",
                                        "add_approver", "edit", "comment"]
    assert cfo["editable_fields"] == ["requested"]
    assert cfo["return_targets"] == ["initiator"]
    assert "head.east" not in cfo["assignable"] and "cfo" not in cfo["assignable"]
    initiator = as_user("head.east").get(f"/api/v1/flows/{instance_id}").get_json()
    assert initiator["available_actions"] == ["withdraw", "urge", "comment"]
    assert initiator["editable_fields"] == []
    overseer = as_user("admin").get(f"/api/v1/flows/{instance_id}").get_json()
    assert overseer["available_actions"] == [] and overseer["editable_fields"] == []
    # After the action, the answer is about the instance as it now is.
    done = as_user("cfo").post(f"/api/v1/flows/{instance_id}/actions",
                               json={"action": "return", "comment": "more, please"})
    assert done.status_code == 200
    assert done.get_json()["available_actions"] == ["comment"]
    back = as_user("head.east").get(f"/api/v1/flows/{instance_id}").get_json()
    assert back["available_actions"] == ["submit", "withdraw", "comment"]
    # change_pct is derived by the server (the spec's "derived"): never the client's to set
    assert back["editable_fields"] == ["allocated", "requested", "reason"]
    documented = client.get("/api/v1/openapi.json").get_json()["paths"][
        "/flows/{instance_id}"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"]
    described = json.dumps(documented)
    assert '"available_actions"' in described and '"editable_fields"' in described


def test_a_task_cannot_go_to_the_initiator_who_would_approve_it(app, as_user) -> None:
    """The known attack: the approver transfers the task to the initiator, who approves
    their own appeal. Refused by the page and the API alike, and not offered."""
    instance_id = start(app, 1.0)
    page = as_user("cfo").get(f"/tasks/{instance_id}").get_data(as_text=True)
    assert '<option value="head.east">' not in page  # not suggested
    moved = post(as_user("cfo"), instance_id, HX, action="transfer", target="head.east")
    assert 'data-code="initiator_as_approver"' in moved.get_data(as_text=True)
    added = as_user("cfo").post(f"/api/v1/flows/{instance_id}/actions",
                                json={"action": "add_approver", "target": "head.east",
                                      "position": "before"})
    assert added.status_code == 422
    assert added.get_json()["error"]["code"] == "initiator_as_approver"
    assert load(app, instance_id).revision == 1
    # A state from before the refusal (the initiator holds a task) still cannot approve.
    with app.app_context():
        instance = db.session.get(FlowInstance, instance_id)
        doc = json.loads(json.dumps(instance.state))
        for task in doc["tasks"]:
            if task["assignee"] == "cfo":
                task["assignee"] = "head.east"
        instance.state = doc
        db.session.commit()
    initiator = as_user("head.east")
    shown = initiator.get(f"/api/v1/flows/{instance_id}").get_json()
    assert "approve" not in shown["available_actions"] and "reject" in shown[
        "available_actions"]
    refused = initiator.post(f"/api/v1/flows/{instance_id}/actions", json={"action": "approve"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "self_approval"
    assert load(app, instance_id).status == "running"


def test_every_flow_route_is_documented(app, client) -> None:
    documented = {f"/api/v1{path}": set(ops) for path, ops in
                  client.get("/api/v1/openapi.json").get_json()["paths"].items()}
    seen = 0
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        if not (path.startswith("/api/v1/tasks") or path.startswith("/api/v1/flows")):
            continue
        seen += 1
        assert path in documented, path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in documented[path], (method, path)
    assert seen == 3


def test_flows_in_the_configuration_pages(app, as_user) -> None:
    hrbp = as_user("hrbp")
    assert hrbp.get("/config/flow/appeal").status_code == 200
    with app.app_context():
        content = dict(flows.active_flow(db.session, "appeal").content)
    broken = json.loads(json.dumps(content))
    broken["nodes"][1]["default"] = "nowhere"
    refused = hrbp.post("/config/flow/appeal-web-test/new",
                        data={"content": json.dumps(broken), "note": "broken"})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert '<code data-testid="issue-pointer">/nodes/1/default</code>' in html
    saved = hrbp.post("/config/flow/appeal-web-test/new",
                      data={"content": json.dumps(content), "note": "draft"})
    assert saved.status_code == 302
    activated = hrbp.post("/config/flow/appeal-web-test/versions/1/activate")
    assert activated.status_code == 302
    with app.app_context():
        assert flows.active_flow(db.session, "appeal-web-test").version == 1
    assert "appeal-web-test" in hrbp.get("/config").get_data(as_text=True)


def test_cli_tick(app) -> None:
    instance_id = start(app, 1.0, now=utcnow() - dt.timedelta(hours=72))
    from quotaflow.cli import flows_group

    result = app.test_cli_runner().invoke(flows_group, ["tick"])
    assert result.exit_code == 0, result.output
    assert "ticked" in result.output
    instance = load(app, instance_id)
    assert instance.state["history"][-1]["action"] == "tick"
    bad = app.test_cli_runner().invoke(flows_group, ["tick", "--now", "yesterday"])
    assert bad.exit_code != 0


def test_a_handlers_refusal_and_what_a_tick_did_read_in_words(app, as_user,
                                                               monkeypatch) -> None:
    """Both used to show raw text: the handler's English message alone, and the
    interpreter's codes ("reminded") in the history."""
    from quotaflow.services.flows import FlowRefused

    def locked(session, instance):
        raise FlowRefused("adjustment_failed", "the plan is locked")

    instance_id = start(app, 1.0, now=utcnow() - dt.timedelta(hours=72))
    with app.app_context():
        assert flows.tick(db.session, only=[instance_id]).ticked == [instance_id]
        db.session.commit()
    cfo = as_user("cfo")
    cfo.post("/language", data={"lang": "en", "next": "/"})
    page = cfo.get(f"/tasks/{instance_id}").get_data(as_text=True)
    assert '<span class="muted">reminder sent</span>' in page
    assert '<span class="muted">reminded</span>' not in page
    monkeypatch.setitem(registry._loaded, registry.FLOW_ACTIONS["apply_adjustment"], locked)
    refused = post(cfo, instance_id, action="approve")
    assert refused.status_code == 422
    assert ("The approved target could not be applied, so nothing was changed: the plan is "
            "locked") in refused.get_data(as_text=True)
    assert load(app, instance_id).status == "running"
