"""First-party plugin: the ``email`` channel, one e-mail per person over SMTP.

Settings (``CHANNELS["email"]`` or ``QUOTAFLOW_CHANNELS``)::

    {"email": {"host": "smtp.example.com", "port": 587, "starttls": true, "ssl": false,
               "username": "quotaflow", "password": "...",
               "from": "QuotaFlow <quotaflow@example.com>",
               "addresses": {"head.east": "zhang.wei@example.com"},
               "addresses_file": "/etc/quotaflow/emails.csv",
               "domain": "example.com", "timeout": 10}}

The address of a user is the one on their account (``users.email``, set in the admin
pages or with ``quotaflow users create --email``); for users without one it is looked up
in ``addresses`` (a JSON object username -> address), then in ``addresses_file`` (CSV with
the columns ``username,email``, or a JSON object), then built as ``username@domain`` when
``domain`` is set; a user with none fails at once, naming the user and these settings. ``ssl`` is implicit TLS (port 465); otherwise
``starttls`` (default true) upgrades the connection before logging in; the port defaults
to 465, 587 or 25 accordingly.

The message is in the recipient's language (zh/en): the event's title as the subject, its
body and a link into QuotaFlow (``base_url`` + the event's url). Its ``Message-ID`` is
derived from the delivery's idempotency key (the same on every retry), and the key is also
sent as ``X-QuotaFlow-Key``, so a repeat after a lost answer is recognisable as a duplicate.

Connection refused, timeouts, dropped connections and SMTP 4xx replies are retried later;
SMTP 5xx replies (unknown mailbox, rejected sender), a refused login and a server without
STARTTLS fail at once.
"""

from __future__ import annotations

import csv
import hashlib
import json
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Any

from quotaflow.channels import Delivery, PermanentError, Recipient, TransientError

NAME = "email"
DEFAULT_TIMEOUT = 10.0

TEXTS = {
    "zh": {"greeting": "{name},您好:", "open": "在 QuotaFlow 中查看:",
           "footer": "这是 QuotaFlow 自动发送的通知,请勿直接回复。", "language": "zh-CN"},
    "en": {"greeting": "Hello {name},", "open": "Open in QuotaFlow:",
           "footer": "This is an automatic message from QuotaFlow; please do not reply to it.",
           "language": "en"},
}


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _valid_address(address: str) -> bool:
    _name, addr = parseaddr(address)
    local, _, domain = addr.rpartition("@")
    return bool(local and domain and "." in domain and addr == address.strip())


def load_addresses(settings: Mapping[str, Any]) -> dict[str, str]:
    """username -> address from ``addresses`` and ``addresses_file`` (the former wins)."""
    out: dict[str, str] = {}
    path_setting = str(settings.get("addresses_file") or "").strip()
    if path_setting:
        path = Path(path_setting)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise PermanentError(f"{NAME}: cannot read addresses_file {path}: "
                                 f"{exc.strerror}") from None
        if path.suffix.lower() == ".json":
            out.update(_mapping(json.loads(text), f"addresses_file {path}"))
        else:
            rows = csv.DictReader(text.splitlines())
            if not rows.fieldnames or not {"username", "email"} <= set(rows.fieldnames):
                raise PermanentError(f"{NAME}: addresses_file {path} needs the columns "
                                     "username,email")
            out.update({r["username"].strip().lower(): r["email"].strip() for r in rows
                        if r.get("username") and r.get("email")})
    inline = settings.get("addresses")
    if isinstance(inline, str) and inline.strip():
        try:
            inline = json.loads(inline)
        except ValueError:
            raise PermanentError(f"{NAME}: addresses is not a JSON object") from None
    if inline:
        out.update(_mapping(inline, "addresses"))
    return out


def _mapping(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise PermanentError(f"{NAME}: {what} must map usernames to addresses")
    return {str(k).strip().lower(): str(v).strip() for k, v in value.items()}


def _one_line(text: str) -> str:
    """A header value on one line: e-mail headers refuse line breaks (any run of white
    space, line breaks included, becomes one space)."""
    return " ".join(text.split())


def message_id(key: str, domain: str) -> str:
    """A Message-ID that is a function of the idempotency key alone."""
    return f"<qf.{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}@{domain}>"


class SmtpChannel:
    """Sends each person's delivery as an e-mail in their language."""

    def __init__(self, host: str, sender: str, *, port: int | None = None,
                 starttls: bool = True, use_ssl: bool = False, username: str = "",
                 password: str = "", addresses: Mapping[str, str] | None = None,
                 domain: str = "", base_url: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        if not host:
            raise PermanentError(f"{NAME}: the setting 'host' is missing")
        if not sender or not _valid_address(parseaddr(sender)[1]):
            raise PermanentError(f"{NAME}: the setting 'from' must be an e-mail address, "
                                 f"not {sender!r}")
        self.host = host
        self.use_ssl = use_ssl
        self.starttls = starttls and not use_ssl
        self.port = port or (465 if use_ssl else 587 if starttls else 25)
        self.username = username
        self.password = password
        self.sender = sender
        self.envelope_from = parseaddr(sender)[1]
        self.addresses = dict(addresses or {})
        self.domain = domain.lstrip("@")
        self.base_url = base_url
        self.timeout = timeout
        self.where = f"{NAME} via {host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SmtpChannel:
        port = settings.get("port")
        return cls(str(settings.get("host") or "").strip(), str(settings.get("from") or "").strip(),
                   port=int(port) if port not in (None, "") else None,
                   starttls=_flag(settings.get("starttls"), True),
                   use_ssl=_flag(settings.get("ssl"), False),
                   username=str(settings.get("username") or ""),
                   password=str(settings.get("password") or ""),
                   addresses=load_addresses(settings),
                   domain=str(settings.get("domain") or "").strip(),
                   base_url=str(settings.get("base_url") or ""),
                   timeout=float(settings.get("timeout") or DEFAULT_TIMEOUT))

    def address(self, recipient: Recipient) -> str:
        address = (recipient.email or "").strip() or None
        if address is not None:
            if not _valid_address(address):
                raise PermanentError(f"{NAME}: the account of user {recipient.username!r} has "
                                     f"the e-mail {address!r}, which is not an address")
            return address
        address = self.addresses.get(recipient.username.lower())
        if address is None and self.domain:
            address = f"{recipient.username}@{self.domain}"
        if not address:
            raise PermanentError(
                f"{NAME}: no e-mail address for user {recipient.username!r} "
                "(set it on the user's account, add it to the channel's 'addresses' or "
                "'addresses_file', or set 'domain')")
        if not _valid_address(address):
            raise PermanentError(f"{NAME}: {address!r} (user {recipient.username!r}) is not "
                                 "an e-mail address")
        return address

    def message(self, delivery: Delivery) -> tuple[str, EmailMessage]:
        """The recipient's address and the message for ``delivery``."""
        recipient = delivery.recipient
        if recipient is None:
            raise PermanentError(f"{NAME}: delivery {delivery.key} has no recipient (register "
                                 "the channel with per_recipient=True)")
        address = self.address(recipient)
        locale = "zh" if delivery.locale.startswith("zh") else "en"
        texts = TEXTS[locale]
        parts = [texts["greeting"].format(name=recipient.display_name or recipient.username)]
        if delivery.body(locale):
            parts.append(delivery.body(locale))
        link = delivery.link(self.base_url)
        if link:
            parts.append(f"{texts['open']} {link}")
        parts.append(f"-- \n{texts['footer']}")
        msg = EmailMessage()
        msg["Subject"] = _one_line(delivery.title(locale))
        msg["From"] = self.sender
        msg["To"] = formataddr((_one_line(recipient.display_name), address))
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = message_id(delivery.key, self.envelope_from.rpartition("@")[2])
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-QuotaFlow-Event"] = delivery.topic
        msg["X-QuotaFlow-Key"] = delivery.key
        msg.set_content("\n\n".join(parts) + "\n")
        msg["Content-Language"] = texts["language"]  # after set_content, which clears Content-*
        return address, msg

    def _send(self, address: str, msg: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.use_ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(msg, from_addr=self.envelope_from, to_addrs=[address])

    def deliver(self, delivery: Delivery) -> None:
        address, msg = self.message(delivery)
        try:
            self._send(address, msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
            text = f"{self.where}: {address} refused ({code} {_reply(reply)})"
            raise (TransientError(text) if 400 <= code < 500 else PermanentError(text)) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"{self.where}: login as {self.username!r} refused "
                                 f"({exc.smtp_code} {_reply(exc.smtp_error)})") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{self.where}: {exc} (check 'starttls'/'ssl')") from None
        except smtplib.SMTPResponseException as exc:
            text = f"{self.where}: {exc.smtp_code} {_reply(exc.smtp_error)}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentError(text) from None
            raise TransientError(text) from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(f"{self.where}: TLS certificate not trusted "
                                 f"({exc.verify_message})") from None
        except TimeoutError:
            raise TransientError(f"{self.where} timed out after {self.timeout:g} s") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"{self.where}: {type(exc).__name__}: {exc}") from None


def _reply(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def register(registry: Any) -> None:
    registry.add_channel(NAME, SmtpChannel.from_settings, per_recipient=True)
