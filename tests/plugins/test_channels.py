"""The first-party channel plugins against real local servers: exact payloads, signatures,
and which failures are retried (TransientError) or dead at once (PermanentError)."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import hashlib
import hmac
import importlib.util
import json
import time
import urllib.parse
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from channel_support import free_port, http_receiver, ok_json, smtp_server

from quotaflow.channels import Delivery, PermanentError, Recipient, TransientError
from quotaflow.plugins import FIRST_PARTY_DIR, discover

PAYLOAD = {
    "title_en": "Your Q4 target is published", "title_zh": "您的第四季度目标已发布",
    "body_en": "Target: 1,234,000 yuan.", "body_zh": "目标:1,234,000 元。",
    "url": "/plans/7/units/P0001", "plan_id": 7, "unit": "P0001",
}
BASE = "https://quotaflow.example.com"


def plugin(stem: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"test_{stem}", FIRST_PARTY_DIR / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def delivery(key: str = "letter.completed:abc:hr_webhook", *, topic: str = "letter.completed",
             recipient: Recipient | None = None, attempt: int = 1,
             payload: dict[str, Any] | None = None) -> Delivery:
    return Delivery(key=key, topic=topic, payload=payload or PAYLOAD, recipient=recipient,
                    attempt=attempt, event_key=key.rsplit(":", 1)[0], delivery_id=11,
                    event_id=5, unit_id=42, to_users=(3,), created_at="2026-11-27T09:00:00Z")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch) -> None:
    """The fake servers are local: a proxy from the environment must not sit in between."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_first_party_plugins_register_the_four_channels() -> None:
    info = discover([FIRST_PARTY_DIR]).channel_info
    assert {"email", "wecom", "dingtalk", "hr_webhook"} <= set(info)
    assert info["email"].per_recipient
    assert not any(info[name].per_recipient for name in ("wecom", "dingtalk", "hr_webhook"))
    assert all(info[name].needs_config for name in ("email", "wecom", "dingtalk", "hr_webhook"))


# --- HR webhook ------------------------------------------------------------------------

hr = plugin("hr_webhook_channel")
SECRET = "s3cret-shared-with-hr"


def hr_channel(url: str, **extra: Any) -> Any:
    return hr.HrWebhookChannel.from_settings({"url": url, "secret": SECRET,
                                              "base_url": BASE, **extra})


def test_hr_webhook_posts_the_event_signed() -> None:
    with http_receiver() as receiver:
        before = int(time.time())
        hr_channel(receiver.url("/events")).deliver(delivery(attempt=2))
    [got] = receiver.requests
    assert got.method == "POST" and got.path == "/events"
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.headers["X-QuotaFlow-Event"] == "letter.completed"
    assert got.headers["Idempotency-Key"] == "letter.completed:abc:hr_webhook"
    assert got.headers["X-QuotaFlow-Attempt"] == "2"
    timestamp = got.headers["X-QuotaFlow-Timestamp"]
    assert before <= int(timestamp) <= int(time.time())
    # The documented signature, computed independently of the plugin:
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + got.body,
                        hashlib.sha256).hexdigest()
    assert got.headers["X-QuotaFlow-Signature"] == f"sha256={expected}"
    assert hr.verify_signature(SECRET, timestamp, got.body, got.headers["X-QuotaFlow-Signature"])
    assert got.json() == {
        "key": "letter.completed:abc:hr_webhook", "event_key": "letter.completed:abc",
        "topic": "letter.completed", "created_at": "2026-11-27T09:00:00Z", "unit_id": 42,
        "attempt": 2, "recipient": None, "payload": PAYLOAD}
    assert "您的第四季度目标已发布".encode() in got.body  # UTF-8, not \u escapes


def test_verify_signature_refuses_tampering_wrong_secret_and_stale_timestamps() -> None:
    body = b'{"topic":"letter.completed"}'
    now = 1_800_000_000
    header = hr.signature(SECRET, str(now), body)
    assert hr.verify_signature(SECRET, str(now), body, header, now=now + 10)
    assert not hr.verify_signature(SECRET, str(now), body + b" ", header, now=now)
    assert not hr.verify_signature("other", str(now), body, header, now=now)
    assert not hr.verify_signature(SECRET, str(now + 1), body, header, now=now)
    assert not hr.verify_signature(SECRET, str(now), body, header.removeprefix("sha256="), now=now)
    assert not hr.verify_signature(SECRET, str(now), body, header, now=now + 301)
    assert hr.verify_signature(SECRET, str(now), body, header, now=now + 10**6, tolerance=None)
    assert not hr.verify_signature(SECRET, "12a", body, header, now=now)


@pytest.mark.parametrize(("status", "transient"), [
    (500, True), (502, True), (503, True), (408, True), (429, True),
    (400, False), (401, False), (404, False), (410, False), (422, False)])
def test_hr_webhook_classifies_http_answers(status: int, transient: bool) -> None:
    with http_receiver(lambda _r: ok_json({"error": "x"}, status)) as receiver:
        expected = TransientError if transient else PermanentError
        with pytest.raises(expected, match=f"HTTP {status}"):
            hr_channel(receiver.url()).deliver(delivery())


def test_hr_webhook_honours_retry_after() -> None:
    answer = (503, b"busy", {"Retry-After": "120"})
    with http_receiver(lambda _r: answer) as receiver, pytest.raises(TransientError) as error:
        hr_channel(receiver.url()).deliver(delivery())
    assert error.value.retry_after == 120


def test_hr_webhook_redirect_is_permanent_and_not_followed() -> None:
    redirect = (307, b"", {"Location": "http://elsewhere.test/x"})
    with http_receiver(lambda _r: redirect) as receiver, \
            pytest.raises(PermanentError, match="redirected"):
        hr_channel(receiver.url()).deliver(delivery())
    assert len(receiver.requests) == 1


def test_hr_webhook_down_or_slow_is_transient() -> None:
    with pytest.raises(TransientError, match="unreachable"):
        hr_channel(f"http://127.0.0.1:{free_port()}/hook").deliver(delivery())

    def slow(_r: Any) -> tuple[int, bytes, dict[str, str]]:
        time.sleep(1.5)
        return ok_json({})

    with http_receiver(slow) as receiver, pytest.raises(TransientError):
        hr_channel(receiver.url(), timeout=0.3).deliver(delivery())


def test_hr_webhook_settings_are_checked() -> None:
    with pytest.raises(PermanentError, match="'url' is missing"):
        hr.HrWebhookChannel.from_settings({"secret": SECRET})
    with pytest.raises(PermanentError, match="secret is required"):
        hr.HrWebhookChannel.from_settings({"url": "https://hr.example.com/hook"})
    with pytest.raises(PermanentError, match="http"):
        hr.HrWebhookChannel.from_settings({"url": "ftp://hr.example.com", "secret": SECRET})


class DedupingHr:
    """What a correct HR receiver does: check the signature, keep each key once."""

    def __init__(self) -> None:
        self.events: dict[str, Any] = {}
        self.duplicates: list[str] = []

    def __call__(self, request: Any) -> tuple[int, bytes, dict[str, str]]:
        h = request.headers
        if not hr.verify_signature(SECRET, h["X-QuotaFlow-Timestamp"], request.body,
                                   h["X-QuotaFlow-Signature"]):
            return ok_json({"error": "bad signature"}, 401)
        key = h["Idempotency-Key"]
        if key in self.events:
            self.duplicates.append(key)
            return ok_json({"duplicate": True})
        self.events[key] = request.json()
        return ok_json({"stored": True}, 201)


@pytest.mark.committing  # the worker claims and delivers in sessions of its own
def test_hr_webhook_through_the_outbox_worker_waits_then_arrives_once(app) -> None:
    """Receiver down: the delivery waits (retried later). Receiver up: it arrives once.
    A replay (the worker's at-least-once redelivery) carries the same key, so HR drops it."""
    from sqlalchemy.orm import sessionmaker

    from quotaflow.services.outbox_worker import build_channels, run_once
    from quotaflow.store import db
    from quotaflow.store.outbox_models import OutboxDelivery, OutboxEvent

    # Due long ago, so the worker runs below (with "now" back then) claim only this row.
    t0 = dt.datetime(1999, 1, 1)
    port = free_port()
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    with app.app_context():
        session = factory()
        event = OutboxEvent(topic="letter.completed", key="test-channels:letter.completed:1",
                            payload=PAYLOAD, unit_id=None, to_users=[], created_at=t0)
        row = OutboxDelivery(event=event, channel="hr_webhook",
                             key="test-channels:letter.completed:1:hr_webhook", status="pending",
                             attempts=0, next_attempt_at=t0, created_at=t0)
        session.add(event)
        session.commit()
        delivery_id = row.id
        settings = {"CHANNELS": {"hr_webhook": {"url": f"http://127.0.0.1:{port}/hr",
                                                "secret": SECRET}}}
        channels, _unavailable = build_channels(settings)
        assert type(channels["hr_webhook"]).__name__ == "HrWebhookChannel"

        down = run_once(factory, t0 + dt.timedelta(seconds=1), channels)
        assert (down.claimed, down.retried, down.delivered) == (1, 1, 0)
        session.expire_all()
        waiting = session.get(OutboxDelivery, delivery_id)
        assert waiting.status == "pending" and waiting.attempts == 1
        assert "unreachable" in waiting.last_error
        assert "127.0.0.1" in waiting.last_error

        receiver_logic = DedupingHr()
        with http_receiver(receiver_logic, port=port) as receiver:
            up = run_once(factory, t0 + dt.timedelta(hours=2), channels)
            again = run_once(factory, t0 + dt.timedelta(hours=4), channels)
            assert (up.claimed, up.delivered) == (1, 1)
            assert again.claimed == 0
            assert len(receiver.requests) == 1
            [(key, body)] = receiver_logic.events.items()
            assert key == "test-channels:letter.completed:1:hr_webhook"
            assert body["topic"] == "letter.completed" and body["attempt"] == 2
            assert body["payload"] == PAYLOAD
            # A replay of the same delivery (e.g. the worker crashed before recording
            # success) reaches HR with the same key and a fresh valid signature:
            replay = delivery(key=key)
            channels["hr_webhook"].deliver(replay)
            assert receiver_logic.duplicates == [key]
            assert len(receiver_logic.events) == 1
        session.rollback()  # end the read: SQLite keeps a transaction's snapshot
        session.expire_all()
        done = session.get(OutboxDelivery, delivery_id)
        assert done.status == "delivered" and done.attempts == 2 and done.last_error is None
        session.close()


# --- WeCom -----------------------------------------------------------------------------

wecom = plugin("wecom_channel")


def wecom_channel(url: str, **extra: Any) -> Any:
    return wecom.WeComChannel.from_settings({"webhook_url": url, "base_url": BASE, **extra})


def test_wecom_posts_a_markdown_message() -> None:
    with http_receiver(lambda _r: ok_json({"errcode": 0, "errmsg": "ok"})) as receiver:
        wecom_channel(receiver.url("/cgi-bin/webhook/send?key=abc")).deliver(delivery())
    [got] = receiver.requests
    assert got.path == "/cgi-bin/webhook/send?key=abc"
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"
    assert got.json() == {"msgtype": "markdown", "markdown": {"content": (
        "**您的第四季度目标已发布**\n目标:1,234,000 元。\n"
        "[在 QuotaFlow 中查看](https://quotaflow.example.com/plans/7/units/P0001)")}}


def test_wecom_in_english_or_both_languages() -> None:
    with http_receiver(lambda _r: ok_json({"errcode": 0})) as receiver:
        wecom_channel(receiver.url(), locale="en").deliver(delivery())
        wecom_channel(receiver.url(), locale="both").deliver(delivery())
    english, both = (r.json()["markdown"]["content"] for r in receiver.requests)
    assert english == ("**Your Q4 target is published**\nTarget: 1,234,000 yuan.\n"
                       "[Open in QuotaFlow](https://quotaflow.example.com/plans/7/units/P0001)")
    assert both.startswith("**您的第四季度目标已发布**") and both.endswith(english)
    with pytest.raises(PermanentError, match="locale"):
        wecom_channel("https://qyapi.weixin.qq.com/x", locale="fr")


def test_wecom_content_is_cut_to_4096_bytes() -> None:
    long = dict(PAYLOAD, body_zh="很长的说明。" * 1000)
    content = wecom_channel("https://qyapi.weixin.qq.com/x").message(
        delivery(payload=long))["markdown"]["content"]
    assert len(content.encode("utf-8")) <= 4096 and content.endswith("…")


@pytest.mark.parametrize(("errcode", "expected", "retry_after"), [
    (45009, TransientError, 60), (-1, TransientError, 30), (93000, PermanentError, None),
    (40008, PermanentError, None)])
def test_wecom_errcodes(errcode: int, expected: type, retry_after: float | None) -> None:
    answer = ok_json({"errcode": errcode, "errmsg": "nope"})
    with http_receiver(lambda _r: answer) as receiver, pytest.raises(expected) as error:
        wecom_channel(receiver.url("/send?key=secret-key")).deliver(delivery())
    assert f"errcode {errcode}" in str(error.value)
    assert "secret-key" not in str(error.value)  # the robot key never lands in an error
    if retry_after is not None:
        assert error.value.retry_after == retry_after


def test_wecom_http_errors_and_downtime() -> None:
    with http_receiver(lambda _r: ok_json({}, 502)) as receiver, pytest.raises(TransientError):
        wecom_channel(receiver.url()).deliver(delivery())
    with http_receiver(lambda _r: ok_json({}, 400)) as receiver, pytest.raises(PermanentError):
        wecom_channel(receiver.url()).deliver(delivery())
    with pytest.raises(TransientError, match="unreachable"):
        wecom_channel(f"http://127.0.0.1:{free_port()}/send?key=k").deliver(delivery())
    with pytest.raises(PermanentError, match="webhook_url"):
        wecom.WeComChannel.from_settings({})


# --- DingTalk --------------------------------------------------------------------------

dingtalk = plugin("dingtalk_channel")


def dingtalk_channel(url: str, **extra: Any) -> Any:
    return dingtalk.DingTalkChannel.from_settings({"webhook_url": url, "base_url": BASE, **extra})


def test_dingtalk_posts_markdown_with_title_and_text() -> None:
    with http_receiver(lambda _r: ok_json({"errcode": 0, "errmsg": "ok"})) as receiver:
        dingtalk_channel(receiver.url("/robot/send?access_token=tok")).deliver(delivery())
    [got] = receiver.requests
    assert got.path == "/robot/send?access_token=tok"  # no secret: no sign
    assert got.json() == {"msgtype": "markdown", "markdown": {
        "title": "您的第四季度目标已发布",
        "text": ("#### 您的第四季度目标已发布\n\n目标:1,234,000 元。\n\n"
                 "[在 QuotaFlow 中查看](https://quotaflow.example.com/plans/7/units/P0001)")}}


def test_dingtalk_signs_the_url_when_a_secret_is_set() -> None:
    secret = "SECabc123+/="
    with http_receiver(lambda _r: ok_json({"errcode": 0})) as receiver:
        before = int(time.time() * 1000)
        dingtalk_channel(receiver.url("/robot/send?access_token=tok"),
                         secret=secret).deliver(delivery())
        after = int(time.time() * 1000)
    [got] = receiver.requests
    path, _, query = got.path.partition("?")
    params = urllib.parse.parse_qs(query, strict_parsing=True)
    assert path == "/robot/send" and params["access_token"] == ["tok"]
    timestamp = int(params["timestamp"][0])
    assert before <= timestamp <= after
    # DingTalk's rule: base64(HMAC-SHA256(secret, "<timestamp>\n<secret>")), URL-encoded.
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    assert params["sign"] == [base64.b64encode(digest).decode()]
    raw_sign = query.split("sign=", 1)[1]
    assert raw_sign == urllib.parse.quote_plus(base64.b64encode(digest).decode())
    assert "+" not in raw_sign and "/" not in raw_sign


def test_dingtalk_keyword_and_languages() -> None:
    channel = dingtalk_channel("https://oapi.dingtalk.com/robot/send?access_token=t",
                               keyword="QuotaFlow", locale="both")
    message = channel.message(delivery())["markdown"]
    assert message["title"] == "QuotaFlow 您的第四季度目标已发布 / Your Q4 target is published"
    assert message["text"].startswith("#### 您的第四季度目标已发布")
    assert "#### Your Q4 target is published" in message["text"]
    assert "[Open in QuotaFlow](https://quotaflow.example.com/plans/7/units/P0001)" in message["text"]


@pytest.mark.parametrize(("errcode", "expected"), [
    (130101, TransientError), (410100, TransientError), (-1, TransientError),
    (310000, PermanentError), (300001, PermanentError)])
def test_dingtalk_errcodes(errcode: int, expected: type) -> None:
    answer = ok_json({"errcode": errcode, "errmsg": "nope"})
    with http_receiver(lambda _r: answer) as receiver, pytest.raises(expected) as error:
        dingtalk_channel(receiver.url("/robot/send?access_token=tok-secret"),
                         secret="SECx").deliver(delivery())
    assert f"errcode {errcode}" in str(error.value)
    assert "tok-secret" not in str(error.value)


def test_dingtalk_down_and_http_errors() -> None:
    with pytest.raises(TransientError, match="unreachable"):
        dingtalk_channel(f"http://127.0.0.1:{free_port()}/robot/send").deliver(delivery())
    with http_receiver(lambda _r: ok_json({}, 503)) as receiver, pytest.raises(TransientError):
        dingtalk_channel(receiver.url()).deliver(delivery())
    with http_receiver(lambda _r: ok_json({}, 404)) as receiver, pytest.raises(PermanentError):
        dingtalk_channel(receiver.url()).deliver(delivery())
    with http_receiver(lambda _r: (200, b"<html>proxy</html>", {})) as receiver, \
            pytest.raises(TransientError, match="not its JSON"):
        dingtalk_channel(receiver.url()).deliver(delivery())


# --- e-mail ------------------------------------------------------------------------------

smtp = plugin("smtp_channel")
ZH_USER = Recipient(3, "head.east", "张伟", "zh")
EN_USER = Recipient(4, "cfo", "Chief Financial Officer", "en")


def smtp_channel(port: int, **extra: Any) -> Any:
    settings = {"host": "127.0.0.1", "port": port, "starttls": False,
                "from": "QuotaFlow <quotaflow@example.com>", "base_url": BASE,
                "addresses": {"head.east": "zhang.wei@example.com", "cfo": "cfo@example.com"},
                **extra}
    return smtp.SmtpChannel.from_settings(settings)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def test_email_goes_out_in_the_recipients_language_with_a_stable_message_id() -> None:
    with smtp_server() as server:
        channel = smtp_channel(server.port, username="qf", password="pw")
        zh = delivery("letter.issued:1:email:3", topic="letter.issued", recipient=ZH_USER)
        en = delivery("letter.issued:1:email:4", topic="letter.issued", recipient=EN_USER)
        channel.deliver(zh)
        channel.deliver(en)
        channel.deliver(zh)  # a retry after a lost answer
    assert len(server.auth) == 3  # logged in each time
    first, second, repeat = server.mails
    assert first.mail_from == "quotaflow@example.com"
    assert first.rcpt_to == ["zhang.wei@example.com"]
    message = parse(first.data)
    assert message["Subject"] == "您的第四季度目标已发布"
    assert message["To"].addresses[0].addr_spec == "zhang.wei@example.com"
    assert message["To"].addresses[0].display_name == "张伟"
    assert message["Content-Language"] == "zh-CN"
    assert message["X-QuotaFlow-Event"] == "letter.issued"
    assert message["X-QuotaFlow-Key"] == "letter.issued:1:email:3"
    text = message.get_content()
    assert text.startswith("张伟,您好:")
    assert "目标:1,234,000 元。" in text
    assert "在 QuotaFlow 中查看: https://quotaflow.example.com/plans/7/units/P0001" in text
    english = parse(second.data)
    assert second.rcpt_to == ["cfo@example.com"]
    assert english["Subject"] == "Your Q4 target is published"
    assert english.get_content().startswith("Hello Chief Financial Officer,")
    assert "Open in QuotaFlow: https://quotaflow.example.com/plans/7/units/P0001" in english.get_content()
    # The Message-ID is a function of the idempotency key: a repeat is recognisable.
    expected = "<qf." + hashlib.sha256(b"letter.issued:1:email:3").hexdigest()[:40] + "@example.com>"
    assert message["Message-ID"] == expected == parse(repeat.data)["Message-ID"]
    assert english["Message-ID"] != expected


def test_email_addresses_from_a_file_or_the_domain(tmp_path: Path) -> None:
    book = tmp_path / "emails.csv"
    book.write_text("\ufeffusername,email\nHEAD.EAST,zw@corp.example.cn\n", encoding="utf-8")
    with smtp_server() as server:
        smtp_channel(server.port, addresses={}, addresses_file=str(book)).deliver(
            delivery(recipient=ZH_USER))
        smtp_channel(server.port, addresses=json.dumps({}), domain="corp.example.cn").deliver(
            delivery(recipient=EN_USER))
    assert [m.rcpt_to for m in server.mails] == [["zw@corp.example.cn"], ["cfo@corp.example.cn"]]


def test_email_without_an_address_fails_at_once_naming_the_user() -> None:
    with smtp_server() as server:
        channel = smtp_channel(server.port, addresses={})
        with pytest.raises(PermanentError, match=r"no e-mail address for user 'head\.east'"):
            channel.deliver(delivery(recipient=ZH_USER))
        with pytest.raises(PermanentError, match="no recipient"):
            channel.deliver(delivery(recipient=None))
    assert server.mails == []


def test_email_refusals_and_downtime_are_classified() -> None:
    with smtp_server() as server:
        server.refuse["zhang.wei@example.com"] = "550 5.1.1 no such mailbox"
        server.refuse["cfo@example.com"] = "452 4.2.2 mailbox full, try later"
        channel = smtp_channel(server.port)
        with pytest.raises(PermanentError, match="550"):
            channel.deliver(delivery(recipient=ZH_USER))
        with pytest.raises(TransientError, match="452"):
            channel.deliver(delivery(recipient=EN_USER))
    with pytest.raises(TransientError):
        smtp_channel(free_port()).deliver(delivery(recipient=ZH_USER))


def test_email_starttls_missing_on_the_server_is_permanent() -> None:
    with smtp_server() as server, pytest.raises(PermanentError, match="STARTTLS"):
        smtp_channel(server.port, starttls=True).deliver(delivery(recipient=ZH_USER))


def test_email_settings_are_checked() -> None:
    with pytest.raises(PermanentError, match="'host'"):
        smtp.SmtpChannel.from_settings({"from": "a@example.com"})
    with pytest.raises(PermanentError, match="'from'"):
        smtp.SmtpChannel.from_settings({"host": "smtp.example.com", "from": "nobody"})
    with pytest.raises(PermanentError, match="addresses_file"):
        smtp.SmtpChannel.from_settings({"host": "h", "from": "a@example.com",
                                        "addresses_file": "/nonexistent/emails.csv"})
    assert smtp.SmtpChannel.from_settings({"host": "h", "from": "a@example.com"}).port == 587
    assert smtp.SmtpChannel.from_settings({"host": "h", "from": "a@example.com",
                                           "ssl": "true"}).port == 465


def test_email_goes_first_to_the_address_on_the_users_account() -> None:
    with smtp_server() as server:
        channel = smtp_channel(server.port, domain="corp.example.cn")
        channel.deliver(delivery(recipient=Recipient(3, "head.east", "张伟", "zh",
                                                     email="zw@account.example.com")))
        channel.deliver(delivery(recipient=ZH_USER))  # no address on the account: settings
        with pytest.raises(PermanentError, match=r"account of user 'head\.east' has the "
                                                 r"e-mail 'not-an-address'"):
            channel.deliver(delivery(recipient=Recipient(3, "head.east", "张伟", "zh",
                                                         email="not-an-address")))
    assert [m.rcpt_to for m in server.mails] == [["zw@account.example.com"],
                                                 ["zhang.wei@example.com"]]


def test_email_headers_stay_on_one_line() -> None:
    """A title or name with a line break used to raise ValueError (retried 8 times)."""
    with smtp_server() as server:
        broken = delivery(recipient=Recipient(4, "cfo", "Chief\nOfficer", "en"),
                          payload={"title_en": "Line one\r\nline two", "body_en": "b"})
        smtp_channel(server.port).deliver(broken)
    message = parse(server.mails[0].data)
    assert message["Subject"] == "Line one line two"
    assert message["To"].addresses[0].display_name == "Chief Officer"


def test_is_email_address() -> None:
    from quotaflow.channels import is_email_address

    assert is_email_address("zhang.wei@example.com")
    for bad in ("", "nobody", "a@b", "a@@b.com", "a b@c.com", "<a@b.com>", " a@b.com",
                "a@b..com", "a@.b.com", "A <a@b.com>", "x" * 250 + "@b.com"):
        assert not is_email_address(bad), bad
