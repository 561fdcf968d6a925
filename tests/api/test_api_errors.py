"""The API's one error handler: a refused use case answers with its kind's status, its
stable code, its words in the caller's language and its details."""

from __future__ import annotations

import pytest
from plan_support import OWN_PERIOD, own_period

from quotaflow.store import db

TOTAL = 249_500_000


@pytest.fixture(autouse=True)
def _own_period(app):
    with app.app_context():
        own_period(db.session)


def _refuse_scenario(client, language: str | None):
    headers = {"Accept-Language": language} if language else {}
    return client.post("/api/v1/plans", headers=headers, json={
        "period": OWN_PERIOD, "scenario": "no_such_scenario", "total": TOTAL})


def test_a_refusal_reads_in_the_caller_s_language(as_user) -> None:
    client = as_user("hrbp")
    english = _refuse_scenario(client, "en")
    chinese = _refuse_scenario(client, "zh-CN,zh;q=0.9")
    assert english.status_code == chinese.status_code == 422
    en, zh = english.get_json()["error"], chinese.get_json()["error"]
    assert en["code"] == zh["code"] == "unknown_scenario"
    assert en["message"] == "Unknown scenario “no_such_scenario”."
    assert zh["message"] != en["message"] and "no_such_scenario" in zh["message"]
    assert en["details"]["pointer"] == "/scenario"
    assert en["details"]["scenario"] == "no_such_scenario"


def test_without_accept_language_the_account_s_language_is_used(as_user, app) -> None:
    from quotaflow.store.queries import user_by_username

    with app.app_context():
        locale = user_by_username(db.session, "hrbp").locale
    client = as_user("hrbp")
    plain = _refuse_scenario(client, None).get_json()["error"]["message"]
    assert plain == _refuse_scenario(client, locale).get_json()["error"]["message"]


def test_a_conflict_is_409_with_its_code(as_user) -> None:
    client = as_user("hrbp")
    specs = client.get("/api/v1/specs").get_json()["specs"]
    active = next(s["active"] for s in specs if s["active"] is not None)
    response = client.post(
        f"/api/v1/specs/{active['kind']}/{active['key']}/versions/{active['version']}/activate",
        headers={"Accept-Language": "en"})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "already_active"
    assert error["message"] == f"Version {active['version']} is already active."
