"""Configuration pages (/config) and the spec API (/api/v1/specs)."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quotaflow.services import specs as spec_service
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store.models import AuditEntry, SpecVersion

SEED = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data" / "specs"
OUTSIDERS = ("ceo", "head.east", "lead.east.t1", "sales.p0001")


def seed_spec(name: str) -> dict:
    return json.loads((SEED / f"{name}.json").read_text(encoding="utf-8"))


def count_versions(app, kind: str, key: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(SpecVersion).where(
            SpecVersion.kind == kind, SpecVersion.key == key))


def statuses(app, kind: str, key: str) -> dict[int, str]:
    with app.app_context():
        return {v.version: v.status for v in spec_service.versions(Context(db.session), kind, key)}


def save(client, kind: str, key: str, content, action: str = "save", note: str = ""):
    return client.post(f"/config/{kind}/{key}/new",
                       data={"content": json.dumps(content), "action": action, "note": note})


@pytest.fixture
def hrbp(as_user):
    client = as_user("hrbp")
    client.post("/language", data={"lang": "en", "next": "/"})
    return client


def test_index_lists_kinds_keys_and_active_versions(hrbp) -> None:
    page = hrbp.get("/config").data.decode()
    assert 'data-testid="specs"' in page
    for kind in ("factor_model", "scenario_presets", "risk_rules"):
        assert f'href="/config/{kind}/default"' in page
    assert 'href="/config/bundle.json"' in page
    assert 'enctype="multipart/form-data"' in page


def test_config_is_for_admin_and_hrbp_only(app, as_user, client) -> None:
    assert as_user("admin").get("/config").status_code == 200
    for username in OUTSIDERS:
        user = as_user(username)
        assert user.get("/config").status_code == 403, username
        assert user.get("/config/factor_model/default").status_code == 403
        assert user.post("/config/factor_model/default/versions/1/activate").status_code == 403
    anonymous = client.get("/config/factor_model/default")
    assert anonymous.status_code == 302
    assert "/login" in anonymous.location


def test_unknown_kinds_keys_and_versions_are_404(hrbp) -> None:
    assert hrbp.get("/config/workflow/default").status_code == 404
    assert hrbp.get("/config/factor_model/no-such-key").status_code == 404
    assert hrbp.get("/config/factor_model/default/versions/999").status_code == 404
    assert hrbp.get("/config/workflow/default/new").status_code == 404
    assert hrbp.get("/config/factor_model/Bad Key/new").status_code == 404
    assert hrbp.post("/config/factor_model/default/versions/999/activate").status_code == 404
    assert hrbp.get("/config/factor_model/default?a=1&b=999").status_code == 404


def test_editor_is_prefilled_and_refuses_errors_with_pointers(app, hrbp) -> None:
    editor = hrbp.get("/config/factor_model/default/new").data.decode()
    assert "historical_performance" in editor  # the active content, in the textarea
    key = "t-page"
    model = seed_spec("factor_model")
    model["weights"]["product_fit"] = 5
    model["factors"][0]["expression"] = "hist_sales +* 2"
    response = save(hrbp, "factor_model", key, model)
    assert response.status_code == 422
    page = response.data.decode()
    pointers = re.findall(r'data-testid="issue-pointer">([^<]*)<', page)
    assert "/weights" in pointers
    assert "/factors/0/expression" in pointers
    assert "The weights must total 100%." in page  # translated summary
    assert "weights total 90%, not 100%" in page  # with the English detail
    assert "hist_sales +* 2" in page  # the text stays in the editor
    assert count_versions(app, "factor_model", key) == 0

    broken = hrbp.post(f"/config/factor_model/{key}/new",
                       data={"content": '{"id": "x",\n "fields": [}', "action": "save"})
    assert broken.status_code == 422
    assert "This is not valid JSON." in broken.data.decode()
    assert count_versions(app, "factor_model", key) == 0


def test_editor_saves_drafts_and_activates(app, hrbp) -> None:
    key = "t-page"
    model = seed_spec("factor_model")
    first = save(hrbp, "factor_model", key, model, note="first draft")
    assert first.status_code == 302
    assert first.location.endswith(f"/config/factor_model/{key}")
    assert statuses(app, "factor_model", key) == {1: "draft"}
    same = save(hrbp, "factor_model", key, model)
    assert same.status_code == 422
    assert "identical to version 1" in same.data.decode()
    model["name_en"] = "Activated at once"
    assert save(hrbp, "factor_model", key, model, action="activate").status_code == 302
    assert statuses(app, "factor_model", key) == {1: "draft", 2: "active"}
    page = hrbp.get(f"/config/factor_model/{key}").data.decode()
    assert "first draft" in page
    assert 'data-version="2"' in page


def test_compare_shows_a_readable_diff(app, hrbp) -> None:
    key = "t-diff"
    model = seed_spec("factor_model")
    save(hrbp, "factor_model", key, model)
    model["factors"].reverse()
    model["weights"]["team_maturity"] = 15
    model["weights"]["product_fit"] = 20
    save(hrbp, "factor_model", key, model)
    page = hrbp.get(f"/config/factor_model/{key}?a=1&b=2").data.decode()
    table = page.split('data-testid="diff"')[1].split("</table>")[0]
    assert table.count("<tr class=\"change-changed\">") == 2  # moving factors is no change
    assert "weights.team_maturity" in table
    assert "/weights/product_fit" in table
    same = hrbp.get(f"/config/factor_model/{key}?a=2&b=2").data.decode()
    assert "The two versions have the same content." in same


def test_activate_and_roll_back_buttons(app, hrbp) -> None:
    key = "t-roll"
    model = seed_spec("factor_model")
    save(hrbp, "factor_model", key, model, action="activate")
    model["name_en"] = "v2"
    save(hrbp, "factor_model", key, model, action="activate")
    page = hrbp.get(f"/config/factor_model/{key}").data.decode()
    assert "Roll back to this version" in page
    rolled = hrbp.post(f"/config/factor_model/{key}/versions/1/activate")
    assert rolled.status_code == 302
    assert statuses(app, "factor_model", key) == {1: "active", 2: "retired"}
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.entity_id == f"{key}@v1").order_by(AuditEntry.id)).all()
    assert actions == ["create_spec_version", "activate_spec_version", "rollback_spec_version"]


def test_activation_that_breaks_dependents_shows_their_pointers(app, hrbp) -> None:
    key = "t-dep"
    model = seed_spec("factor_model")
    save(hrbp, "factor_model", key, model, action="activate")
    presets = seed_spec("scenario_presets")
    presets["presets"][0]["weight_tilt"] = {"product_fit": 5, "historical_performance": -5}
    assert save(hrbp, "scenario_presets", key, presets, action="activate").status_code == 302
    model["factors"] = [f for f in model["factors"] if f["key"] != "product_fit"]
    model["weights"]["competitor_coverage"] += model["weights"].pop("product_fit")
    assert save(hrbp, "factor_model", key, model).status_code == 302
    refused = hrbp.post(f"/config/factor_model/{key}/versions/2/activate")
    assert refused.status_code == 422
    page = refused.data.decode()
    assert f"scenario_presets/{key}" in page
    assert "/presets/0/weight_tilt/product_fit" in page
    assert statuses(app, "factor_model", key) == {1: "active", 2: "draft"}


def test_new_key_from_the_index(app, hrbp) -> None:
    key = "t-new"
    opened = hrbp.get(f"/config/new?kind=scenario_presets&key={key}")
    assert opened.status_code == 302
    assert opened.location.endswith(f"/config/scenario_presets/{key}/new")
    editor = hrbp.get(opened.location).data.decode()
    assert "&#34;balanced&#34;" in editor  # starts from the default key's active content
    assert hrbp.get("/config/new?kind=scenario_presets&key=Bad Key").status_code == 302
    assert count_versions(app, "scenario_presets", "Bad Key") == 0


def test_bundle_download_and_upload(app, hrbp) -> None:
    download = hrbp.get("/config/bundle.json")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    bundle = json.loads(download.data)
    assert {s["kind"] for s in bundle["specs"]} >= {"factor_model", "scenario_presets"}

    ok = hrbp.post("/config/bundle", data={"bundle": (io.BytesIO(download.data), "b.json")},
                   content_type="multipart/form-data")
    assert ok.status_code == 302

    bad = copy.deepcopy(bundle)
    at = next(i for i, s in enumerate(bad["specs"]) if s["kind"] == "factor_model")
    bad["specs"][at]["content"]["weights"]["product_fit"] = 1
    del bad["specs"][at]["content_hash"]
    before = count_versions(app, "factor_model", "default")
    refused = hrbp.post("/config/bundle",
                        data={"bundle": (io.BytesIO(json.dumps(bad).encode()), "bad.json")},
                        content_type="multipart/form-data")
    assert refused.status_code == 422
    assert f"/specs/{at}/content/weights" in refused.data.decode()
    assert count_versions(app, "factor_model", "default") == before
    missing = hrbp.post("/config/bundle", data={}, content_type="multipart/form-data")
    assert missing.status_code == 302


def test_config_pages_in_chinese(as_user) -> None:
    client = as_user("hrbp")
    client.post("/language", data={"lang": "zh", "next": "/"})
    page = client.get("/config").data.decode()
    assert 'lang="zh-CN"' in page


# -- API ------------------------------------------------------------------------------------------

def test_api_lists_specs_and_versions(hrbp) -> None:
    listing = hrbp.get("/api/v1/specs").get_json()
    by_key = {(s["kind"], s["key"]): s for s in listing["specs"]}
    active = by_key[("factor_model", "default")]["active"]
    assert active["status"] == "active"
    assert len(active["content_hash"]) == 64
    assert "factor_model" in listing["kinds"]
    versions = hrbp.get("/api/v1/specs/factor_model/default").get_json()["versions"]
    assert versions[0]["version"] >= versions[-1]["version"]
    one = hrbp.get(f"/api/v1/specs/factor_model/default/versions/{active['version']}").get_json()
    assert one["content"]["weights"]
    assert hrbp.get("/api/v1/specs/factor_model/nope").status_code == 404
    assert hrbp.get("/api/v1/specs/nope/default").get_json()["error"]["code"] == "not_found"
    assert hrbp.get("/api/v1/specs/factor_model/default/versions/999").status_code == 404


def test_api_refuses_invalid_specs_with_issues_and_saves_nothing(app, hrbp) -> None:
    key = "t-api"
    model = seed_spec("factor_model")
    model["weights"]["product_fit"] = 5
    response = hrbp.post(f"/api/v1/specs/factor_model/{key}/versions",
                         json={"content": model, "note": "bad"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_spec"
    issue = error["details"]["issues"][0]
    assert {"pointer", "message", "code", "column"} <= set(issue)
    assert (issue["pointer"], issue["code"]) == ("/weights", "weights_total")
    assert count_versions(app, "factor_model", key) == 0
    assert hrbp.post(f"/api/v1/specs/factor_model/{key}/versions", json={"note": "x"}).status_code == 400


def test_api_creates_and_activates_versions(app, hrbp) -> None:
    key = "t-api"
    model = seed_spec("factor_model")
    created = hrbp.post(f"/api/v1/specs/factor_model/{key}/versions",
                        json={"content": model, "note": "from the API"})
    assert created.status_code == 201
    body = created.get_json()
    assert (body["version"], body["status"], body["note"], body["author"]) == (
        1, "draft", "from the API", "hrbp")
    again = hrbp.post(f"/api/v1/specs/factor_model/{key}/versions", json={"content": model})
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "unchanged")
    activated = hrbp.post(f"/api/v1/specs/factor_model/{key}/versions/1/activate")
    assert (activated.status_code, activated.get_json()["status"]) == (200, "active")
    twice = hrbp.post(f"/api/v1/specs/factor_model/{key}/versions/1/activate")
    assert twice.status_code == 409
    assert hrbp.post(f"/api/v1/specs/factor_model/{key}/versions/7/activate").status_code == 404


def test_api_spec_permissions(as_user, client) -> None:
    for username in OUTSIDERS:
        user = as_user(username)
        assert user.get("/api/v1/specs").status_code == 403
        denied = user.post("/api/v1/specs/factor_model/default/versions", json={"content": {}})
        assert denied.get_json()["error"]["code"] == "forbidden"
    assert client.get("/api/v1/specs").status_code == 401
