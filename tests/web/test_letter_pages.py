"""Commitment letter pages: my card and "I commit", the team lead's countersign, the
PDF (Chinese labels extractable), and nobody else seeing or signing a card."""

from __future__ import annotations

import io
import re

import pytest
from plan_support import own_period
from pypdf import PdfReader

from quotaflow.services import letters, plans
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.letter_models import CommitmentLetter

PERSON = "P0001"  # sales.p0001, in EAST-T1 led by lead.east.t1
HX = {"HX-Request": "true"}


@pytest.fixture
def letter_id(app) -> int:
    """A fresh card for P0001 (a new plan of the tests' own period)."""
    with app.app_context():
        session = db.session
        period = own_period(session)
        plan = plans.create_plan(session, None, period, "balanced", 249_500_000, None)
        (letter,) = letters.issue_letters(session, plan, [q.unit_by_code(session, PERSON).id],
                                          None)
        session.commit()
        return letter.id


def _letter(app, letter_id: int) -> CommitmentLetter:
    with app.app_context():
        letter = db.session.get(CommitmentLetter, letter_id)
        db.session.expunge(letter)
        return letter


def _target(app, letter_id: int) -> int:
    with app.app_context():
        return db.session.get(CommitmentLetter, letter_id).content["target"]


def _text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_my_commitment_shows_the_current_card_and_i_commit_signs_it(app, as_user, letter_id
                                                                     ) -> None:
    client = as_user("sales.p0001")
    page = client.get("/letters")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-letter-id="{letter_id}"' in html
    assert 'data-testid="sign"' in html
    target = _target(app, letter_id)
    assert f"{target:,}" in html
    assert 'data-testid="letter-months"' in html and 'data-testid="letter-weeks"' in html
    assert 'data-testid="letter-derivation"' in html
    assert 'data-testid="team-letters"' not in html  # a sales person sees their own only

    signed = client.post(f"/letters/{letter_id}/sign", data={"view": "card"}, headers=HX)
    assert signed.status_code == 200
    part = signed.get_data(as_text=True)
    assert 'data-status="signed"' in part and 'data-testid="sign"' not in part
    letter = _letter(app, letter_id)
    assert letter.status == "signed"
    assert letter.signature("person").content_sha256 == letter.content_sha256
    assert letter.content_sha256 in part

    again = client.post(f"/letters/{letter_id}/sign", data={"view": "card"}, headers=HX)
    assert again.status_code == 200 and 'data-testid="letter-error"' in again.get_data(
        as_text=True)
    # Without htmx: a redirect back to the card.
    plain = client.post(f"/letters/{letter_id}/sign")
    assert plain.status_code == 302 and plain.headers["Location"].endswith(
        f"/letters/{letter_id}")


def test_the_team_lead_countersigns_only_after_the_person(app, as_user, letter_id) -> None:
    lead = as_user("lead.east.t1")
    page = lead.get("/letters").get_data(as_text=True)
    row = re.search(rf'<tr data-letter-id="{letter_id}".*?</tr>', page, re.S).group(0)
    assert 'data-testid="countersign"' not in row  # not signed by the person yet
    early = lead.post(f"/letters/{letter_id}/countersign", data={"view": "row"}, headers=HX)
    # lead.east.t1 reads Chinese: "the person has not signed this letter yet".
    assert early.status_code == 200 and "本人尚未签署此责任书" in early.get_data(as_text=True)
    assert _letter(app, letter_id).status == "issued"

    assert as_user("sales.p0001").post(f"/letters/{letter_id}/sign").status_code == 302
    page = lead.get("/letters").get_data(as_text=True)
    row = re.search(rf'<tr data-letter-id="{letter_id}".*?</tr>', page, re.S).group(0)
    assert 'data-testid="countersign"' in row
    done = lead.post(f"/letters/{letter_id}/countersign", data={"view": "row"}, headers=HX)
    assert done.status_code == 200
    assert done.get_data(as_text=True).lstrip().startswith(f'<tr data-letter-id="{letter_id}"')
    letter = _letter(app, letter_id)
    assert letter.status == "countersigned"
    assert letter.signature("manager").user.username == "lead.east.t1"
    card = lead.get(f"/letters/{letter_id}").get_data(as_text=True)
    assert 'data-status="countersigned"' in card and "lead.east.t1" in card


def test_others_cannot_see_or_sign_someone_elses_card(app, as_user, letter_id) -> None:
    for username in ("sales.p0082", "lead.east.t2", "head.north"):
        client = as_user(username)
        assert client.get(f"/letters/{letter_id}").status_code == 404
        assert client.get(f"/letters/{letter_id}.pdf").status_code == 404
        assert client.post(f"/letters/{letter_id}/sign").status_code == 404
        assert f'data-letter-id="{letter_id}"' not in client.get("/letters").get_data(
            as_text=True)
    # In scope but not the person: may read, may not sign.
    for username in ("lead.east.t1", "head.east", "hrbp"):
        client = as_user(username)
        assert client.get(f"/letters/{letter_id}").status_code == 200
        assert client.post(f"/letters/{letter_id}/sign", headers=HX).status_code == 403
    assert as_user("sales.p0001").post(f"/letters/{letter_id}/sign").status_code == 302
    # Signed now: only the team lead of the person's team countersigns.
    assert as_user("head.east").post(f"/letters/{letter_id}/countersign").status_code == 403
    assert as_user("sales.p0001").post(f"/letters/{letter_id}/countersign").status_code == 403
    assert as_user("lead.east.t2").post(f"/letters/{letter_id}/countersign").status_code == 404
    assert _letter(app, letter_id).status == "signed"
    assert as_user("admin").get("/letters/999999999").status_code == 404


def test_the_pdf_downloads_with_chinese_labels_and_the_target(app, as_user, letter_id) -> None:
    client = as_user("sales.p0001")
    assert client.post(f"/letters/{letter_id}/sign").status_code == 302
    response = client.get(f"/letters/{letter_id}.pdf")
    assert response.status_code == 200
    assert response.content_type == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert "attachment" in response.headers["Content-Disposition"]
    text = _text(response.data)
    compact = re.sub(r"\s+", "", text)  # some CJK fonts extract with spaces between glyphs
    for label in ("目标责任书", "目标", "月度分解", "周分解", "目标推导", "签字"):
        assert label in compact, label
    letter = _letter(app, letter_id)
    assert f"{letter.content['target']:,}" in compact
    assert letter.content_sha256 in compact
    assert "sales.p0001" in text  # the signer


def test_the_card_page_is_bilingual_and_printable(app, as_user, letter_id) -> None:
    english = as_user("sales.p0001").get(f"/letters/{letter_id}")  # locale en
    chinese = as_user("lead.east.t1").get(f"/letters/{letter_id}")  # locale zh
    assert english.status_code == chinese.status_code == 200
    assert "Cheng Chenlei" in english.get_data(as_text=True)
    html = chinese.get_data(as_text=True)
    assert "程晨磊" in html and "上海1组" in html  # names from the frozen card
    assert "2001年10月" in html  # months in the viewer's language
    assert "@media print" in html
    assert f'href="/letters/{letter_id}.pdf"' in html


def test_a_missing_font_is_a_clear_error(app, as_user, letter_id, tmp_path) -> None:
    app.config["PDF_FONT"] = str(tmp_path / "nope.ttf")
    try:
        response = as_user("sales.p0001").get(f"/letters/{letter_id}.pdf")
    finally:
        app.config.pop("PDF_FONT")
    assert response.status_code == 503
    assert "fonts-wqy-zenhei" in response.get_data(as_text=True)


def test_signature_times_say_their_zone(app) -> None:
    """Shown in the app's zone (Asia/Shanghai) with the offset, so the page and the PDF's
    UTC time read as the same moment."""
    import datetime as dt

    from quotaflow.web.letters import letter_time

    with app.test_request_context():
        assert letter_time(dt.datetime(2026, 11, 27, 9, 27)) == "2026-11-27 17:27 UTC+08:00"
        assert letter_time("2026-11-27T09:27:00Z") == "2026-11-27 17:27 UTC+08:00"
