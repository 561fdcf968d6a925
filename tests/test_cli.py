"""The `quotaflow` command as a user runs it: demo, seeding, users and tokens."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

QUOTAFLOW = [sys.executable, "-m", "quotaflow.cli"]


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*QUOTAFLOW, *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTAFLOW_")}
    env["QUOTAFLOW_INSTANCE_PATH"] = str(tmp_path / "instance")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """A cookie-keeping HTTP client that reads CSRF tokens like a browser form would."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def post(self, path: str, form: dict[str, str]) -> int:
        data = urllib.parse.urlencode(form).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def sign_in(self, username: str, password: str) -> int:
        _, page = self.get("/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        return self.post("/login", {"username": username, "password": password, "csrf_token": token})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_demo_command_serves_the_seeded_demo(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen([*QUOTAFLOW, "demo", "--port", str(port)], env=cli_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/login", server, seconds=120)
        logins = (tmp_path / "instance" / "demo-logins.txt").read_text(encoding="utf-8")
        assert "DEMO ONLY" in logins
        password = re.search(r"password for every demo user: (\S+)", logins).group(1)
        users = {line.split()[1]: line.split()[0] for line in logins.splitlines()
                 if line and not line.startswith("#")}
        assert set(users) == {"admin", "hrbp", "executive", "region_head", "team_lead", "sales"}

        head = Browser(base)
        assert head.sign_in("head.east", password) == 302
        assert head.get("/org/EAST")[0] == 200
        assert head.get("/org/WEST")[0] == 404
        assert head.get("/audit")[0] == 403

        admin = Browser(base)
        assert admin.sign_in("admin", password) == 302
        assert admin.get("/audit")[0] == 200
        assert admin.get("/org/WEST")[0] == 200

        sales = Browser(base)
        assert sales.sign_in(users["sales"], password) == 302
        status, body = sales.get("/api/v1/units")
        assert status == 200
        assert len(json.loads(body)["units"]) == 1
        assert sales.get("/org/EAST")[0] == 404
        assert Browser(base).sign_in("head.east", "wrong") == 401
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_seed_refuses_a_database_that_holds_data(cli_env: dict[str, str]) -> None:
    assert run(["db", "upgrade"], cli_env).returncode == 0
    first = run(["seed", "demo", "--password", "demo-only-pass"], cli_env)
    assert first.returncode == 0, first.stderr
    assert "head.east" in first.stdout
    second = run(["seed", "demo"], cli_env)
    assert second.returncode != 0
    assert "already holds an organisation" in second.stderr


def test_users_create_and_token(cli_env: dict[str, str]) -> None:
    assert run(["db", "upgrade"], cli_env).returncode == 0
    assert run(["seed", "demo", "--password", "demo-only-pass"], cli_env).returncode == 0
    created = run(["users", "create", "ops.bot", "--name", "Ops bot", "--role", "region_head",
                   "--scope", "NE", "--password", "s3cret-pass"], cli_env)
    assert created.returncode == 0, created.stderr
    duplicate = run(["users", "create", "ops.bot", "--name", "again", "--role", "sales",
                     "--scope", "NE", "--password", "x"], cli_env)
    assert duplicate.returncode != 0
    assert "exists" in duplicate.stderr
    unknown = run(["users", "create", "ghost", "--name", "G", "--role", "sales", "--scope", "NOPE",
                   "--password", "x"], cli_env)
    assert unknown.returncode != 0 and "NOPE" in unknown.stderr
    token = run(["users", "token", "ops.bot"], cli_env)
    assert token.returncode == 0
    assert token.stdout.strip().startswith("qf_")


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"server exited: {process.stdout.read()}")
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer in {seconds}s")


def test_serve_runs_under_gunicorn_with_workers(cli_env: dict[str, str]) -> None:
    assert run(["db", "upgrade"], cli_env).returncode == 0
    port = free_port()
    server = subprocess.Popen([*QUOTAFLOW, "serve", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
                              env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/login", server)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5) as r:
            assert json.loads(r.read())["info"]["title"] == "QuotaFlow API"
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert output.count("Booting worker") == 2


def test_flask_cli_finds_the_app_factory(cli_env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "quotaflow", "routes"], env=cli_env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "/org/<code>" in result.stdout
