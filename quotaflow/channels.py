"""Delivery channels: the interface between the outbox worker and the places events go.

No Flask here; SQLAlchemy only appears as an opaque session handed to in-app channels.

How an event travels
--------------------
``quotaflow.services.outbox.emit`` writes an ``OutboxEvent`` in the caller's transaction and
fans it out into ``OutboxDelivery`` rows, one per (event, channel[, recipient]):

* the ``inbox`` channel gets one delivery per user in ``to_users``;
* other channels are chosen by the active "notification_routes" spec (fnmatch topic
  patterns -> channel name). A channel registered with ``per_recipient=True`` gets one
  delivery per user in ``to_users`` (e.g. e-mail); otherwise one delivery per event
  (e.g. an HR webhook, a WeCom/DingTalk group robot, an export file).

The worker (``quotaflow.services.outbox_worker.run_once``) claims due deliveries, builds a
:class:`Delivery` and calls ``channel.deliver(delivery)``:

* it returns normally -> the delivery is ``delivered``;
* it raises :class:`TransientError` (receiver down, timeout, HTTP 5xx/429 ...) -> retried
  with exponential backoff plus jitter (``retry_after`` overrides the wait), and
  dead-lettered as ``failed`` after the maximum number of attempts;
* it raises :class:`PermanentError` (HTTP 4xx other than 408/429, bad address, bad
  config) -> ``failed`` at once; an HRBP can re-queue it from the Outbox page or with
  ``quotaflow outbox retry <id>``;
* any other exception counts as transient (its text is kept as the last error).

Delivery is at-least-once (a worker that crashes after the receiver accepted but before
recording success will deliver again when its lease expires). Every call carries the same
``Delivery.key`` for the same delivery row, so a receiver that dedupes on that key sees
each event exactly once: send it as an ``Idempotency-Key`` header / message id / field.

Writing a channel plugin
------------------------
A plugin module (``plugins/*.py`` or the ``quotaflow.plugins`` entry-point group) does::

    def register(registry):
        registry.add_channel("wecom", WeComChannel.from_settings)             # one per event
        registry.add_channel("email", EmailChannel.from_settings, per_recipient=True)

``factory(settings: Mapping[str, Any]) -> Channel`` receives a plain mapping: the channel's
own settings from the app config ``CHANNELS[name]`` (or the ``QUOTAFLOW_CHANNELS``
environment variable, a JSON object ``{"wecom": {"webhook_url": "...", ...}, ...}``), with
``"base_url"`` (the app's public URL from ``QUOTAFLOW_BASE_URL``, "" if unset) added when
the settings do not give one. Endpoints and secrets live there, never in specs. A channel
that is routed but has no settings (and was registered with ``needs_config=True``, the
default) is not built: its deliveries wait with the error "channel ... is not configured"
and go out once it is configured; nothing is lost. The factory may raise
:class:`PermanentError`/``ValueError`` for invalid settings (same waiting behaviour, with
the message as the error).

``deliver(delivery)`` must not commit anything to the app database. External channels
ignore ``delivery.session``; in-app channels (the inbox) write through it, inside the
worker's transaction that also records the delivery as done.
"""

from __future__ import annotations

import http.client
import json
import random
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

INBOX = "inbox"


class ChannelError(Exception):
    """Base class of delivery errors. ``str(error)`` is stored as the delivery's last error."""


class TransientError(ChannelError):
    """The receiver may accept later (down, slow, 5xx, 429): retry with backoff.

    ``retry_after`` (seconds), when given, replaces the computed backoff for this attempt
    (e.g. from a ``Retry-After`` header); it is still capped by the policy's maximum delay.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ChannelError):
    """Retrying cannot help (rejected payload, unknown recipient, bad settings): dead at once."""


@dataclass(frozen=True)
class Recipient:
    """The person a per-recipient delivery is for."""

    user_id: int
    username: str
    display_name: str
    locale: str  # "zh" or "en"; pick texts with Delivery.title()/body()
    email: str | None = None  # the address on the user's account, if any


#: The longest e-mail address SMTP carries (RFC 5321 path limit).
MAX_EMAIL = 254


def is_email_address(text: str) -> bool:
    """Whether ``text`` is one plain address ``local@domain.tld`` (no display name, no
    spaces or angle brackets, one ``@``, a dot in the domain, at most 254 characters)."""
    if not text or len(text) > MAX_EMAIL or text != text.strip():
        return False
    local, at, domain = text.rpartition("@")
    if not at or not local or "@" in local or "." not in domain.strip("."):
        return False
    if domain.startswith(".") or domain.endswith(".") or ".." in domain:
        return False
    return not any(ch.isspace() or ch in '<>(),;:"[]\\' or ord(ch) < 32 for ch in text)


@dataclass(frozen=True)
class Delivery:
    """One attempt to hand one event to one channel (and one recipient, if per-person).

    ``key`` is the idempotency key: identical for every attempt of the same delivery row
    (event key + channel + recipient), so receivers can dedupe on it.
    """

    key: str
    topic: str
    payload: Mapping[str, Any]
    recipient: Recipient | None
    attempt: int  # 1 for the first try
    event_key: str = ""  # the event's own idempotency key (same for all its channels)
    delivery_id: int = 0
    event_id: int = 0
    unit_id: int | None = None
    to_users: tuple[int, ...] = ()
    created_at: str = ""  # the event's creation time, ISO 8601 UTC
    session: Any = field(default=None, compare=False, repr=False)  # in-app channels only

    @property
    def locale(self) -> str:
        return self.recipient.locale if self.recipient else "zh"

    def text(self, name: str, locale: str | None = None) -> str:
        """``payload[name_<locale>]`` falling back to the other language, e.g. text("title")."""
        loc = "zh" if (locale or self.locale).startswith("zh") else "en"
        other = "en" if loc == "zh" else "zh"
        value = self.payload.get(f"{name}_{loc}") or self.payload.get(f"{name}_{other}")
        return str(value or "")

    def title(self, locale: str | None = None) -> str:
        return self.text("title", locale) or self.topic

    def body(self, locale: str | None = None) -> str:
        return self.text("body", locale)

    @property
    def url(self) -> str:
        """The app path the event points at ("" if none)."""
        return str(self.payload.get("url") or "")

    def link(self, base_url: str) -> str:
        """The absolute link: ``base_url`` joined with the payload's url path."""
        if not self.url:
            return base_url
        if "://" in self.url or not base_url:
            return self.url
        return base_url.rstrip("/") + "/" + self.url.lstrip("/")

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready envelope for webhooks/exports (no session)."""
        return {
            "key": self.key,
            "event_key": self.event_key,
            "topic": self.topic,
            "created_at": self.created_at,
            "unit_id": self.unit_id,
            "attempt": self.attempt,
            "recipient": None if self.recipient is None else {
                "user_id": self.recipient.user_id,
                "username": self.recipient.username,
                "display_name": self.recipient.display_name,
                "locale": self.recipient.locale,
            },
            "payload": dict(self.payload),
        }


@runtime_checkable
class Channel(Protocol):
    """Something that can deliver. Raise TransientError/PermanentError on failure."""

    def deliver(self, delivery: Delivery) -> None: ...


ChannelFactory = Callable[[Mapping[str, Any]], Channel]


@dataclass(frozen=True)
class ChannelInfo:
    """A registered channel kind."""

    name: str
    factory: ChannelFactory
    per_recipient: bool = False
    needs_config: bool = True


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter between ``base * 2**(n-1) / 2`` and the full value."""

    max_attempts: int = 8
    base_seconds: float = 30.0
    max_seconds: float = 3600.0

    def delay(self, attempt: int, *, retry_after: float | None = None,
              rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(float(retry_after), self.max_seconds))
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))
        draw = (rng or random).random()
        return ceiling / 2 + draw * ceiling / 2

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetryPolicy:
        return cls(
            max_attempts=int(config.get("OUTBOX_MAX_ATTEMPTS", cls.max_attempts)),
            base_seconds=float(config.get("OUTBOX_BACKOFF_SECONDS", cls.base_seconds)),
            max_seconds=float(config.get("OUTBOX_BACKOFF_MAX_SECONDS", cls.max_seconds)),
        )


# --- shared by the HTTP channels -------------------------------------------------------


def robot_error(where: str, answer: bytes, transient_codes: Mapping[int, float]) -> None:
    """Raise the right error for a robot's JSON answer unless its errcode is 0."""
    try:
        data = json.loads(answer)
        errcode = int(data.get("errcode", 0))
    except (ValueError, TypeError, AttributeError):
        raise TransientError(f"{where} answered something that is not its JSON: "
                             f"{answer[:200]!r}") from None
    if errcode == 0:
        return
    message = f"{where} refused the message: errcode {errcode} ({data.get('errmsg', '')})"
    if errcode in transient_codes:
        raise TransientError(message, retry_after=transient_codes[errcode])
    raise PermanentError(message)


def post_json(url: str, payload: Mapping[str, Any], where: str, timeout: float) -> bytes:
    """POST ``payload`` as JSON; the answer's body, or a classified error."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        if status >= 500 or status in (408, 429):
            raise TransientError(f"{where} answered HTTP {status}") from None
        raise PermanentError(f"{where} refused the request (HTTP {status})") from None
    except urllib.error.URLError as exc:
        raise TransientError(f"{where} unreachable: {exc.reason}") from None
    except TimeoutError:
        raise TransientError(f"{where} timed out after {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise TransientError(f"{where}: connection failed ({type(exc).__name__}: {exc})") from None


#: Languages a group robot can post in ("both": Chinese, then English).
ROBOT_LOCALES = ("zh", "en", "both")


def robot_where(name: str, webhook_url: str, locale: str) -> str:
    """Check a group robot's URL and language; the host it posts to, for error messages
    (the URL itself holds the robot's key and is never put in one)."""
    parts = urllib.parse.urlsplit(webhook_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PermanentError(f"{name}: webhook_url must be an http(s) URL")
    if locale not in ROBOT_LOCALES:
        raise PermanentError(f"{name}: locale must be one of {', '.join(ROBOT_LOCALES)}, "
                             f"not {locale!r}")
    return f"{name} robot at {parts.netloc}"


def required_setting(name: str, settings: Mapping[str, Any], key: str) -> str:
    """A channel setting that must be there (stripped), or a clear PermanentError."""
    value = str(settings.get(key) or "").strip()
    if not value:
        raise PermanentError(f"{name}: the setting {key!r} is missing")
    return value
