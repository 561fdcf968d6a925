"""First-party plugin: the ``dingtalk`` channel, events posted to a DingTalk (钉钉) group by
its custom robot (自定义机器人) webhook.

Settings (``CHANNELS["dingtalk"]`` or ``QUOTAFLOW_CHANNELS``)::

    {"dingtalk": {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=...",
                  "secret": "SEC...", "keyword": "", "locale": "zh", "timeout": 10}}

``secret`` is the robot's signing secret (安全设置 → 加签), optional: when given, every
request URL gets ``&timestamp=<ms>&sign=<sign>`` where ``sign`` is
``urlencode(base64(HMAC-SHA256(key=secret, message=timestamp + "\\n" + secret)))`` and
``timestamp`` the current time in milliseconds (DingTalk refuses it an hour later).
``keyword``: if the robot's security setting is "custom keywords" (自定义关键词), one of
them; it is put in front of the title unless the title already holds it. ``locale``:
``zh`` (default), ``en`` or ``both``.

One message per event: ``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}``
(the title is what the chat list shows; the text holds the title as a heading, the body
and a link into QuotaFlow). DingTalk answers ``{"errcode": 0, "errmsg": "ok"}``; a
non-zero ``errcode`` is an error: 130101 and 410100 (sending too fast, limited for ten
minutes) and -1 (system busy) are retried later, others (e.g. 310000: sign, keyword or IP
check failed; 300001: bad token) fail at once. The access token is never put in an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from quotaflow.channels import (
    Delivery,
    post_json,
    required_setting,
    robot_error,
    robot_where,
)

NAME = "dingtalk"
DEFAULT_TIMEOUT = 10.0
#: errcode -> seconds to wait before retrying.
TRANSIENT_ERRCODES = {130101: 600.0, 410100: 600.0, -1: 30.0}
OPEN_LABEL = {"zh": "在 QuotaFlow 中查看", "en": "Open in QuotaFlow"}


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature (before URL-encoding): base64 of HMAC-SHA256 over
    ``"<timestamp_ms>\\n<secret>"`` keyed with the secret."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_url(webhook_url: str, secret: str, timestamp_ms: int) -> str:
    """``webhook_url`` with ``timestamp`` and the URL-encoded ``sign`` appended."""
    separator = "&" if urllib.parse.urlsplit(webhook_url).query else "?"
    return (f"{webhook_url}{separator}timestamp={timestamp_ms}"
            f"&sign={urllib.parse.quote_plus(sign(secret, timestamp_ms))}")


class DingTalkChannel:
    """Posts each event as a markdown message to a DingTalk custom robot."""

    def __init__(self, webhook_url: str, *, secret: str = "", keyword: str = "",
                 base_url: str = "", locale: str = "zh",
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.where = robot_where(NAME, webhook_url, locale)
        self.webhook_url = webhook_url
        self.secret = secret
        self.keyword = keyword
        self.base_url = base_url
        self.locale = locale
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DingTalkChannel:
        url = required_setting(NAME, settings, "webhook_url")
        return cls(url, secret=str(settings.get("secret") or "").strip(),
                   keyword=str(settings.get("keyword") or "").strip(),
                   base_url=str(settings.get("base_url") or ""),
                   locale=str(settings.get("locale") or "zh"),
                   timeout=float(settings.get("timeout") or DEFAULT_TIMEOUT))

    def url(self, timestamp_ms: int | None = None) -> str:
        if not self.secret:
            return self.webhook_url
        stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        return signed_url(self.webhook_url, self.secret, stamp)

    def message(self, delivery: Delivery) -> dict[str, Any]:
        locales = ("zh", "en") if self.locale == "both" else (self.locale,)
        title = " / ".join(delivery.title(loc) for loc in locales)
        if self.keyword and self.keyword not in title:
            title = f"{self.keyword} {title}"
        sections = []
        link = delivery.link(self.base_url)
        for loc in locales:
            lines = [f"#### {delivery.title(loc)}"]
            if delivery.body(loc):
                lines.append(delivery.body(loc))
            if link:
                lines.append(f"[{OPEN_LABEL[loc]}]({link})")
            sections.append("\n\n".join(lines))
        text = "\n\n".join(sections)
        if self.keyword and self.keyword not in text:
            text = f"{self.keyword}\n\n{text}"
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}

    def deliver(self, delivery: Delivery) -> None:
        answer = post_json(self.url(), self.message(delivery), self.where, self.timeout)
        robot_error(self.where, answer, TRANSIENT_ERRCODES)


def register(registry: Any) -> None:
    registry.add_channel(NAME, DingTalkChannel.from_settings)
