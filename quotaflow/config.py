"""Configuration from the environment, with safe defaults for a single machine."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

ENV_PREFIX = "QUOTAFLOW_"


def _secret_key(instance_path: Path) -> str:
    """Return the secret key: from the environment, else generated once and kept
    in the instance folder (never in the repository)."""
    from_env = os.environ.get(f"{ENV_PREFIX}SECRET_KEY")
    if from_env:
        return from_env
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # Created with owner-only permissions before the key is written.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_config(instance_path: Path) -> dict[str, Any]:
    """Build the configuration dictionary for ``create_app``."""
    database_url = os.environ.get(
        f"{ENV_PREFIX}DATABASE_URL", f"sqlite:///{instance_path / 'quotaflow.db'}"
    )
    secure_cookies = os.environ.get(f"{ENV_PREFIX}SECURE_COOKIES", "0") == "1"
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": _secret_key(instance_path),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Behind TLS in production set QUOTAFLOW_SECURE_COOKIES=1; the demo runs on
        # plain http://127.0.0.1 where a Secure cookie would never be sent back.
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        "WTF_CSRF_TIME_LIMIT": 8 * 3600,
        "BABEL_DEFAULT_LOCALE": "zh",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "LANGUAGES": ("zh", "en"),
        "LOGIN_MAX_FAILURES": int(os.environ.get(f"{ENV_PREFIX}LOGIN_MAX_FAILURES", "5")),
        # How long failed sign-ins are remembered; longer than the longest backoff, so a
        # patient attacker does not start afresh every LOGIN_MAX_DELAY_SECONDS.
        "LOGIN_WINDOW_SECONDS": int(os.environ.get(f"{ENV_PREFIX}LOGIN_WINDOW_SECONDS", "86400")),
        "LOGIN_MAX_DELAY_SECONDS": int(os.environ.get(f"{ENV_PREFIX}LOGIN_MAX_DELAY_SECONDS",
                                                      "900")),
        # API tokens: the lifetime when none is asked for, and the longest allowed (days).
        "API_TOKEN_DEFAULT_DAYS": int(os.environ.get(f"{ENV_PREFIX}API_TOKEN_DEFAULT_DAYS", "90")),
        "API_TOKEN_MAX_DAYS": int(os.environ.get(f"{ENV_PREFIX}API_TOKEN_MAX_DAYS", "365")),
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
        # Weekly alert scan inside the server, e.g. "MON 07:00" (empty: off).
        "ALERT_SCHEDULE": os.environ.get(f"{ENV_PREFIX}ALERT_SCHEDULE", ""),
    }
