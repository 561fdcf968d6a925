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


# -- malformed requests (issue 11): a 4xx in the API's format, never a 500 or HTML --------


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    return error


def test_an_unknown_api_address_is_a_json_404_and_a_page_keeps_html(as_user) -> None:
    client = as_user("hrbp")
    _error(client.get("/api/v1/no-such-thing"), 404, "not_found")
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_a_wrong_method_is_a_json_405_with_allow(as_user) -> None:
    client = as_user("hrbp")
    response = client.delete("/api/v1/units/EAST/attributes", headers={"Accept-Language": "en"})
    error = _error(response, 405, "method_not_allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "PUT"} <= allowed and "DELETE" not in allowed
    assert set(error["details"]["allowed"]) == allowed and error["details"]["method"] == "DELETE"
    assert error["message"].startswith("DELETE is not allowed here")
    chinese = client.delete("/api/v1/units/EAST/attributes", headers={"Accept-Language": "zh"})
    assert _error(chinese, 405, "method_not_allowed")["message"] != error["message"]
    # Anonymous callers too (routing answers before any sign-in check).
    _error(client.application.test_client().delete("/api/v1/me"), 405, "method_not_allowed")


def test_a_page_keeps_html_for_a_wrong_method(client) -> None:
    response = client.delete("/login")
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize(("body", "content_type"), [
    ('{"period": "2026Q4", "values": {"product_fit": 60}}', "text/plain"),
    ("period=2026Q4&values=1", "application/x-www-form-urlencoded"),
    ("<values/>", "application/xml"),
])
def test_a_body_that_is_not_json_is_a_415(as_user, body: str, content_type: str) -> None:
    client = as_user("head.east")
    response = client.put("/api/v1/units/EAST/attributes", data=body, content_type=content_type,
                          headers={"Accept-Language": "en"})
    error = _error(response, 415, "unsupported_media_type")
    assert error["details"] == {"content_type": content_type, "expected": "application/json"}
    assert "application/json" in error["message"]


@pytest.mark.usefixtures("inputs_open")
def test_the_same_body_as_json_is_accepted(as_user) -> None:
    client = as_user("head.east")
    response = client.put("/api/v1/units/EAST/attributes", content_type="application/json",
                          data='{"period": "2026Q4", "values": {"product_fit": 60}}')
    assert response.status_code == 200


@pytest.mark.parametrize("raw", [
    b"\xff\xfe{\x00}\x00",                              # UTF-16 with a BOM
    b'{"period": "2026Q4", "values": {"\xc3\x28": 1}}',  # an invalid UTF-8 sequence
    b'{"period": "\xed\xa0\x80"}',                      # a UTF-8 encoded surrogate
    b'{"period": "\\ud800", "values": {"product_fit": 60}}',  # an unpaired surrogate escape
    b'{"period": "2026Q4", "values": {"\\udfff": 60}}',   # one in a key
])
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=latin-1"])
def test_a_body_in_a_bad_encoding_is_a_json_400(as_user, raw: bytes, content_type: str) -> None:
    client = as_user("head.east")
    response = client.put("/api/v1/units/EAST/attributes", data=raw, content_type=content_type)
    _error(response, 400, "invalid_json")


def test_bad_bytes_in_the_address_are_a_4xx_in_the_api_format(as_user) -> None:
    client = as_user("head.east")
    for path in ("/api/v1/units/%FF%FE", "/api/v1/units/EAST/attributes?period=%FF",
                 "/api/v1/units/%C3%28/children"):
        response = client.get(path)
        assert 400 <= response.status_code < 500, path
        assert response.mimetype == "application/json" and "error" in response.get_json()


def test_a_server_error_under_the_api_answers_in_its_format(app) -> None:
    from werkzeug.exceptions import InternalServerError

    from quotaflow.http.errors import api_http_error

    with app.test_request_context("/api/v1/me", headers={"Accept-Language": "en"}):
        response = api_http_error(InternalServerError())
        assert response.status_code == 500
        assert response.get_json()["error"]["code"] == "internal_error"
    with app.test_request_context("/plans"):
        page = api_http_error(InternalServerError())
        assert isinstance(page, InternalServerError)  # pages keep their HTML
