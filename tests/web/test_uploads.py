"""Uploads: size and type checks by content, random storage names, scoped downloads."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from quotaflow.services.uploads import DEFAULT_MAX_BYTES, UploadError, check_file
from quotaflow.store import db
from quotaflow.store.models import AuditEntry, Upload

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(40))
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
CSV = "unit,value\nEAST-T1,12\n华东,3\n".encode()


def xlsx() -> bytes:
    book = Workbook()
    book.active["A1"] = "unit"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    return out.getvalue()


def upload(client, unit: str, name: str, content: bytes):
    return client.post("/uploads", data={"unit": unit, "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def stored_files(app) -> set[str]:
    folder = Path(app.instance_path) / "uploads"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.mark.parametrize(("name", "content", "content_type"), [
    ("chart.png", PNG, "image/png"),
    ("photo.JPG", JPEG, "image/jpeg"),
    ("letter.pdf", PDF, "application/pdf"),
    ("inputs.xlsx", xlsx(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("pool.csv", CSV, "text/csv; charset=utf-8"),
    ("note.txt", "新客户名单\n".encode(), "text/plain; charset=utf-8"),
])
def test_allowed_files_are_stored_under_random_names(as_user, app, name, content, content_type) -> None:
    before = stored_files(app)
    response = upload(as_user("lead.east.t1"), "EAST-T1", name, content)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["name"], body["size"], body["content_type"]) == (name, len(content), content_type)
    new = stored_files(app) - before
    assert len(new) == 1
    storage_name = new.pop()
    assert re.fullmatch(r"[0-9a-f]{32}", storage_name)
    assert (Path(app.instance_path) / "uploads" / storage_name).read_bytes() == content
    with app.app_context():
        row = db.session.get(Upload, body["id"])
        assert (row.storage_name, row.unit.code, row.original_name) == (storage_name, "EAST-T1", name)
        assert row.sha256 == body["sha256"] and len(row.sha256) == 64
        assert db.session.scalar(select(AuditEntry.action).where(
            AuditEntry.entity_type == "upload", AuditEntry.entity_id == str(row.id))) == "upload_file"


@pytest.mark.parametrize(("name", "content", "code"), [
    ("tool.exe", b"MZ\x90\x00" + bytes(60), "type_not_allowed"),
    ("page.html", b"<script>alert(1)</script>", "type_not_allowed"),
    ("noext", CSV, "type_not_allowed"),
    ("data.csv", b"a,b\n\x00\x01\x02", "content_not_allowed"),
    ("data.txt", b"\xff\xfe\xfa not utf-8", "content_not_allowed"),
    ("book.xlsx", plain_zip(), "content_not_allowed"),
    ("photo.png", CSV, "mismatch"),
    ("photo.jpg", PNG, "mismatch"),
    ("scan.pdf", JPEG, "mismatch"),
    ("inputs.csv", xlsx(), "mismatch"),
    ("empty.txt", b"", "empty"),
])
def test_wrong_types_and_mismatches_are_refused(as_user, app, name, content, code) -> None:
    before = stored_files(app)
    response = upload(as_user("head.east"), "EAST", name, content)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]
    assert stored_files(app) == before


def test_oversize_files_are_refused_with_a_clear_message(as_user, app) -> None:
    client = as_user("head.east")
    client.post("/language", data={"lang": "en", "next": "/"})
    before = stored_files(app)
    response = upload(client, "EAST", "big.txt", b"a" * (DEFAULT_MAX_BYTES + 1))
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "too_large"
    assert error["message"] == "The file is too large: at most 10 MB is accepted."
    assert upload(client, "EAST", "fits.txt", b"a" * 1000).status_code == 201
    assert len(stored_files(app) - before) == 1


def test_the_size_limit_is_configurable(as_user, app) -> None:
    client = as_user("head.east")
    app.config["UPLOAD_MAX_BYTES"] = 100
    try:
        assert upload(client, "EAST", "small.txt", b"a" * 101).status_code == 413
        assert upload(client, "EAST", "small.txt", b"a" * 100).status_code == 201
    finally:
        del app.config["UPLOAD_MAX_BYTES"]


def test_content_is_checked_not_the_claimed_type() -> None:
    assert check_file("x.PNG", PNG) == "png"
    with pytest.raises(UploadError) as caught:
        check_file("x.png", b"GIF89a\x01\x00\x01\x00\x80\xff")
    assert caught.value.code == "content_not_allowed"


def test_uploading_outside_the_write_scope_is_refused(as_user, app) -> None:
    before = stored_files(app)
    assert upload(as_user("head.south"), "EAST-T1", "a.png", PNG).status_code == 404
    assert upload(as_user("head.south"), "NOPE", "a.png", PNG).status_code == 404
    assert upload(as_user("ceo"), "EAST-T1", "a.png", PNG).status_code == 403
    assert upload(as_user("sales.p0001"), "P0001", "a.png", PNG).status_code == 403
    response = as_user("head.east").post("/uploads", data={"unit": "EAST"})
    assert response.get_json()["error"]["code"] == "no_file"
    assert stored_files(app) == before


def test_only_users_who_may_see_the_unit_get_the_file(as_user, app, client) -> None:
    body = upload(as_user("lead.east.t1"), "EAST-T1", "客户池 pool.png", PNG).get_json()
    url = f"/uploads/{body['id']}"
    assert url == body["url"]
    for owner in ("lead.east.t1", "head.east", "admin", "ceo"):
        response = as_user(owner).get(url)
        assert response.status_code == 200, owner
        assert response.data == PNG
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "pool.png" in response.headers["Content-Disposition"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    for outsider in ("head.south", "lead.east.t2", "sales.p0001"):
        response = as_user(outsider).get(url)
        assert response.status_code == 404, outsider
        assert response.data != PNG
    assert as_user("admin").get("/uploads/999999999").status_code == 404
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.location


def test_a_file_widget_stores_the_upload_id(as_user, app) -> None:
    from flask_login import login_user

    from quotaflow.store.queries import unit_by_code, user_by_username
    from quotaflow.web.uploads import form_items_with_files

    spec = {"key": "evidence", "title_en": "E", "title_zh": "E", "ui": {"widgets": {"proof": "file"}},
            "schema": {"type": "object", "properties": {"proof": {"type": "integer"},
                                                        "note": {"type": "string"}}}}
    south_id = upload(as_user("head.south"), "SOUTH", "s.png", PNG).get_json()["id"]
    east_id = upload(as_user("head.east"), "EAST", "e.png", PNG).get_json()["id"]

    def submit(data):
        with app.test_request_context("/", method="POST", data=data,
                                      content_type="multipart/form-data"):
            login_user(user_by_username(db.session, "head.east"))
            return form_items_with_files(spec, unit_by_code(db.session, "EAST-T2"))

    items, errors = submit({"note": "n", "proof": (io.BytesIO(PDF), "proof.pdf")})
    assert errors == {}
    with app.app_context():
        new = db.session.get(Upload, int(items["proof"]))
        assert (new.original_name, new.unit.code) == ("proof.pdf", "EAST-T2")
    assert submit({"proof": str(east_id)}) == ({"proof": str(east_id)}, {})
    items, errors = submit({"proof": str(south_id)})  # someone else's file: refused
    assert "proof" not in items and list(errors) == ["/proof"]
    items, errors = submit({"proof": (io.BytesIO(b"MZ"), "x.exe")})
    assert list(errors) == ["/proof"] and "proof" not in items
