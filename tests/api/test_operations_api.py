"""The alert scan, actuals by file, the outbox and the inbox through the API, by role and
scope: the same use cases as the CLI and the pages."""

from __future__ import annotations

import io

import pytest
from api_support import day
from support import sign_in

API = "/api/v1"


def api(app, username: str):
    return sign_in(app.test_client(), username)


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("ceo", 403), ("head.east", 403), ("lead.east.t1", 403),
    ("sales.p0001", 403)])
def test_the_alert_scan_is_for_admins_and_hr(app, username, status) -> None:
    response = api(app, username).post(f"{API}/alerts/scan",
                                       json={"period": "2026Q4", "week": 6})
    assert response.status_code == status
    if status == 200:
        body = response.get_json()
        assert (body["period"], body["week"]) == ("2026Q4", 6) and body["units"] > 0


def test_the_alert_scan_refuses_bad_input(app) -> None:
    client = api(app, "hrbp")
    bad_week = client.post(f"{API}/alerts/scan", json={"period": "2026Q4", "week": 40})
    assert bad_week.status_code == 422 and bad_week.get_json()["error"]["code"] == "bad_week"
    unknown = client.post(f"{API}/alerts/scan", json={"period": "1066Q4"})
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["details"]["pointer"] == "/period"


def _file(rows: str, name: str = "actuals.csv") -> dict:
    return {"data": {"file": (io.BytesIO(("unit_code,date,value,source_id\n" + rows).encode()),
                              name)}, "content_type": "multipart/form-data"}


def test_actuals_by_file_within_the_writers_scope(app, world) -> None:
    rows = f"P0001,{day(world.period, 6)},1200,api-file-1\n"
    assert api(app, "sales.p0001").post(f"{API}/actuals/import", **_file(rows)
                                        ).status_code == 403
    outside = api(app, "head.north").post(f"{API}/actuals/import", **_file(rows))
    assert outside.status_code == 422
    issues = outside.get_json()["error"]["details"]["issues"]
    # Out of scope looks unknown, as on the page.
    assert [i["code"] for i in issues] == ["unit.unknown"] and issues[0]["row"] == 2
    head = api(app, "head.east")
    stored = head.post(f"{API}/actuals/import", **_file(rows))
    assert stored.status_code == 200 and stored.get_json()["records"] == 1
    again = head.post(f"{API}/actuals/import", **_file(rows)).get_json()
    assert (again["inserted"], again["unchanged"]) == (0, 1)
    bad = head.post(f"{API}/actuals/import", **_file("P0001,not-a-date,5,x\n"))
    assert bad.status_code == 422 and bad.get_json()["error"]["details"]["issues"][0][
        "column"] == "B"
    assert head.post(f"{API}/actuals/import", data={},
                     content_type="multipart/form-data").status_code == 400
    template = head.get(f"{API}/actuals/template", query_string={"format": "csv"})
    assert template.status_code == 200 and b"unit_code,date,value" in template.data


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("ceo", 403), ("head.east", 403), ("sales.p0001", 403)])
def test_the_outbox_is_for_admins_and_hr(app, username, status) -> None:
    assert api(app, username).get(f"{API}/outbox").status_code == status


def test_retrying_a_delivery(app, world) -> None:
    hrbp = api(app, "hrbp")
    assert hrbp.post(f"{API}/outbox/deliveries/999999999/retry").status_code == 404
    assert api(app, "head.east").post(
        f"{API}/outbox/deliveries/{world.delivery_id}/retry").status_code == 403
    done = hrbp.post(f"{API}/outbox/deliveries/{world.delivery_id}/retry")
    assert done.status_code in (200, 409)
    if done.status_code == 200:
        assert (done.get_json()["status"], done.get_json()["attempts"]) == ("pending", 0)


def test_the_inbox_is_ones_own(app, world) -> None:
    reader = api(app, "head.north")
    listing = reader.get(f"{API}/inbox").get_json()
    assert world.message_id in [m["id"] for m in listing["messages"]]
    other = api(app, "head.east")
    assert world.message_id not in [m["id"] for m in other.get(f"{API}/inbox").get_json()[
        "messages"]]
    assert other.post(f"{API}/inbox/{world.message_id}/read").status_code == 404
    assert reader.post(f"{API}/inbox/{world.message_id}/read").get_json() == {"read": 1}
    assert reader.post(f"{API}/inbox/{world.message_id}/read").get_json() == {"read": 0}
    assert reader.post(f"{API}/inbox/read-all").status_code == 200
    assert reader.get(f"{API}/inbox").get_json()["unread"] == 0
