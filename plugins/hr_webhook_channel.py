"""First-party plugin: the ``hr_webhook`` channel, outbox events as signed JSON POSTs to
the HR system.

Settings (``CHANNELS["hr_webhook"]`` or ``QUOTAFLOW_CHANNELS``)::

    {"hr_webhook": {"url": "https://hr.example.com/quotaflow/events",
                    "secret": "<shared secret>", "timeout": 10}}

One POST per event (not per person). The body is the delivery's JSON envelope
(``Delivery.as_json()``: key, event_key, topic, created_at, unit_id, attempt, recipient,
payload) as compact UTF-8 JSON with sorted keys. Headers:

``Content-Type``           ``application/json; charset=utf-8``
``X-QuotaFlow-Event``      the topic, e.g. ``letter.completed``
``Idempotency-Key``        the delivery key: the same on every retry of the same delivery,
                           so the receiver stores it and ignores a repeat (delivery is
                           at-least-once: a repeat is possible and must be harmless)
``X-QuotaFlow-Attempt``    1 for the first try, then 2, 3, ...
``X-QuotaFlow-Timestamp``  Unix time in whole seconds when this attempt was signed
``X-QuotaFlow-Signature``  ``sha256=<hex>``

The signature
-------------
``hex = HMAC-SHA256(key=secret (UTF-8), message=timestamp + "." + body)`` in lower-case
hexadecimal, where ``timestamp`` is the ``X-QuotaFlow-Timestamp`` header exactly as sent
(ASCII digits) and ``body`` the raw request body bytes, before any JSON parsing. A receiver
recomputes it and compares in constant time, and refuses timestamps too far from its clock
(replays); :func:`verify_signature` does both. In a shell::

    printf '%s.%s' "$TIMESTAMP" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"

Answers: any 2xx is delivered (a receiver that already has the key should answer 2xx
too). 5xx, 408, 429 (``Retry-After`` honoured), timeouts and connection errors are
retried later; any other 4xx, and redirects, fail at once (fix the receiver or the URL,
then re-queue the delivery from the Outbox page).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from quotaflow.channels import Delivery, PermanentError, TransientError

NAME = "hr_webhook"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TIMEOUT = 10.0
#: How far a receiver accepts the timestamp from its own clock (seconds), by default.
DEFAULT_TOLERANCE = 300.0
USER_AGENT = "QuotaFlow-Webhook/1"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-QuotaFlow-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                      hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(secret: str, timestamp: str, body: bytes, header: str, *,
                     tolerance: float | None = DEFAULT_TOLERANCE,
                     now: float | None = None) -> bool:
    """For receivers: whether ``header`` (the ``X-QuotaFlow-Signature`` value) signs
    ``body`` at ``timestamp`` with ``secret``, and the timestamp is within ``tolerance``
    seconds of ``now`` (default: the clock; ``tolerance=None`` skips the age check)."""
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - int(timestamp)) > tolerance:
            return False
    return hmac.compare_digest(signature(secret, timestamp, body).encode(),
                               header.strip().encode("utf-8", "replace"))


def _text(settings: Mapping[str, Any], name: str) -> str:
    value = settings.get(name)
    return "" if value is None else str(value).strip()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook must not silently turn into a GET elsewhere: redirects are errors."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: let the backoff decide


class HrWebhookChannel:
    """POSTs each event, signed, to the HR system's endpoint."""

    def __init__(self, url: str, secret: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PermanentError(f"{NAME}: url must be an http(s) URL, not {url!r}")
        if not secret:
            raise PermanentError(f"{NAME}: a shared secret is required to sign requests")
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.where = f"{NAME} {parts.scheme}://{parts.netloc}"
        self._opener = urllib.request.build_opener(_NoRedirect)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> HrWebhookChannel:
        if not _text(settings, "url"):
            raise PermanentError(f"{NAME}: the setting 'url' is missing")
        return cls(_text(settings, "url"), _text(settings, "secret"),
                   timeout=float(settings.get("timeout") or DEFAULT_TIMEOUT))

    def request(self, delivery: Delivery, *, now: float | None = None
                ) -> urllib.request.Request:
        """The signed request for ``delivery`` (the body is ``Delivery.as_json()``)."""
        body = json.dumps(delivery.as_json(), ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"), default=str).encode("utf-8")
        timestamp = str(int(time.time() if now is None else now))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-QuotaFlow-Event": delivery.topic,
            "Idempotency-Key": delivery.key,
            "X-QuotaFlow-Attempt": str(delivery.attempt),
            "X-QuotaFlow-Timestamp": timestamp,
            "X-QuotaFlow-Signature": signature(self.secret, timestamp, body),
        }
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def deliver(self, delivery: Delivery) -> None:
        try:
            with self._opener.open(self.request(delivery), timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            if status >= 500 or status in (408, 429):
                raise TransientError(f"{self.where} answered HTTP {status}",
                                     retry_after=_retry_after(exc.headers)) from None
            if 300 <= status < 400:
                raise PermanentError(f"{self.where} redirected (HTTP {status}) to "
                                     f"{exc.headers.get('Location', '?')}: configure the "
                                     "final URL") from None
            raise PermanentError(f"{self.where} refused the event (HTTP {status})") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise PermanentError(f"{self.where}: TLS certificate not trusted "
                                     f"({exc.reason.verify_message})") from None
            raise TransientError(f"{self.where} unreachable: {exc.reason}") from None
        except TimeoutError:
            raise TransientError(f"{self.where} timed out after {self.timeout:g} s") from None
        except (http.client.HTTPException, OSError) as exc:
            raise TransientError(f"{self.where}: connection failed "
                                 f"({type(exc).__name__}: {exc})") from None


def register(registry: Any) -> None:
    registry.add_channel(NAME, HrWebhookChannel.from_settings)
