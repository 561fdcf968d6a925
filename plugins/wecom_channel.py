"""First-party plugin: the ``wecom`` channel, events posted to a WeCom (企业微信) group by its
group robot (群机器人) webhook.

Settings (``CHANNELS["wecom"]`` or ``QUOTAFLOW_CHANNELS``)::

    {"wecom": {"webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...",
               "locale": "zh", "timeout": 10}}

``locale`` is the language of the group's messages: ``zh`` (default), ``en`` or ``both``.
The webhook URL holds the robot's key: keep it in the settings, never in a spec; error
messages name only its host.

One message per event: ``{"msgtype": "markdown", "markdown": {"content": ...}}`` with the
title in bold, the body, and a link into QuotaFlow (``base_url`` + the event's url).
WeCom answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; a non-zero ``errcode`` is an
error: 45009 (more than 20 messages a minute) and -1 (system busy) are retried later,
others (e.g. 93000, invalid webhook URL) fail at once. HTTP 5xx, timeouts and connection
errors are retried; other HTTP errors fail at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quotaflow.channels import (
    Delivery,
    post_json,
    required_setting,
    robot_error,
    robot_where,
)

NAME = "wecom"
DEFAULT_TIMEOUT = 10.0
#: WeCom refuses markdown content longer than this many UTF-8 bytes.
MAX_CONTENT_BYTES = 4096
#: errcode -> seconds to wait before retrying (rate limit, system busy).
TRANSIENT_ERRCODES = {45009: 60.0, -1: 30.0}
OPEN_LABEL = {"zh": "在 QuotaFlow 中查看", "en": "Open in QuotaFlow"}


def truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary ("…" marks a cut)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit - len("…".encode())].decode("utf-8", "ignore") + "…"


def markdown_section(delivery: Delivery, locale: str, base_url: str) -> str:
    lines = [f"**{delivery.title(locale)}**"]
    if delivery.body(locale):
        lines.append(delivery.body(locale))
    link = delivery.link(base_url)
    if link:
        lines.append(f"[{OPEN_LABEL[locale]}]({link})")
    return "\n".join(lines)


class WeComChannel:
    """Posts each event as a markdown message to a WeCom group robot."""

    def __init__(self, webhook_url: str, *, base_url: str = "", locale: str = "zh",
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.where = robot_where(NAME, webhook_url, locale)
        self.webhook_url = webhook_url
        self.base_url = base_url
        self.locale = locale
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> WeComChannel:
        url = required_setting(NAME, settings, "webhook_url")
        return cls(url, base_url=str(settings.get("base_url") or ""),
                   locale=str(settings.get("locale") or "zh"),
                   timeout=float(settings.get("timeout") or DEFAULT_TIMEOUT))

    def message(self, delivery: Delivery) -> dict[str, Any]:
        locales = ("zh", "en") if self.locale == "both" else (self.locale,)
        content = "\n\n".join(markdown_section(delivery, loc, self.base_url) for loc in locales)
        return {"msgtype": "markdown",
                "markdown": {"content": truncate_utf8(content, MAX_CONTENT_BYTES)}}

    def deliver(self, delivery: Delivery) -> None:
        answer = post_json(self.webhook_url, self.message(delivery), self.where, self.timeout)
        robot_error(self.where, answer, TRANSIENT_ERRCODES)


def register(registry: Any) -> None:
    registry.add_channel(NAME, WeComChannel.from_settings)
