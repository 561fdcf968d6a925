"""Helpers shared by tests (importable as ``support``)."""

from __future__ import annotations

from typing import Any

DEMO_PASSWORD = "test-only-password"


def sign_in(client: Any, username: str, password: str = DEMO_PASSWORD) -> Any:
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, f"sign-in as {username} failed: {response.status_code}"
    return client
