"""Real local servers for the channel tests: an HTTP receiver and a tiny SMTP responder,
each in a thread on 127.0.0.1 (importable as ``channel_support``)."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: Any  # an http.client.HTTPMessage: names are case-insensitive, as in HTTP
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


#: Answers (status, body, headers) for one request, given what arrived.
Responder = Callable[[Received], tuple[int, bytes, dict[str, str]]]


def ok_json(data: Any, status: int = 200) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(data).encode(), {"Content-Type": "application/json"}


@dataclass
class HttpReceiver:
    """A recording HTTP server; ``respond`` decides each answer (default: 200 ``{}``)."""

    respond: Responder = field(default=lambda _r: ok_json({}))
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def http_receiver(respond: Responder | None = None, port: int = 0) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    if respond is not None:
        receiver.respond = respond

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received = Received("POST", self.path, self.headers,
                                self.rfile.read(length))
            receiver.requests.append(received)
            status, body, headers = receiver.respond(received)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    """A port nobody listens on (bound then released: connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mail:
    mail_from: str
    rcpt_to: list[str]
    data: bytes


@dataclass
class SmtpState:
    mails: list[Mail] = field(default_factory=list)
    #: address -> reply to RCPT TO (e.g. "550 5.1.1 no such user"); others get 250.
    refuse: dict[str, str] = field(default_factory=dict)
    auth: list[str] = field(default_factory=list)
    port: int = 0


@contextmanager
def smtp_server() -> Iterator[SmtpState]:
    """Enough SMTP for smtplib: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""
    state = SmtpState()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")
            self.wfile.flush()

        def handle(self) -> None:
            self.reply("220 fake.smtp.test ESMTP ready")
            mail_from, rcpts = "", []
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                arg = line[len(verb):].strip()
                if verb == "EHLO":
                    self.wfile.write(b"250-fake.smtp.test\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n")
                    self.wfile.flush()
                elif verb == "HELO":
                    self.reply("250 fake.smtp.test")
                elif verb == "AUTH":
                    state.auth.append(arg)
                    self.reply("235 2.7.0 accepted")
                elif verb == "MAIL":
                    mail_from, rcpts = arg.partition(":")[2].strip().strip("<>"), []
                    self.reply("250 2.1.0 ok")
                elif verb == "RCPT":
                    address = arg.partition(":")[2].strip().strip("<>")
                    if address in state.refuse:
                        self.reply(state.refuse[address])
                    else:
                        rcpts.append(address)
                        self.reply("250 2.1.5 ok")
                elif verb == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    lines = []
                    while True:
                        chunk = self.rfile.readline()
                        if chunk in (b".\r\n", b""):
                            break
                        lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    state.mails.append(Mail(mail_from, rcpts, b"".join(lines)))
                    self.reply("250 2.0.0 queued")
                elif verb in ("RSET", "NOOP"):
                    self.reply("250 ok")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 5.5.2 not implemented")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
