"""A real OAuth token endpoint on loopback that behaves like Claude's.

Refresh tokens are single use and rotate (a second use gets 400 invalid_grant), the body must
be JSON with client_id and scope, and faults (5xx, 429 + Retry-After, delays, hangs, resets) can be
scripted. Like the real endpoint's edge (docs/claude-cli-contract.md#token-endpoint-edge) it turns
away User-Agents by prefix before reading anything: `claude-cli/` with 404 and an empty body,
`claude-code/` with 429 and an HTML page (`edge_blocks`, changeable while running). Every
request is recorded. Used by unit tests, integration tests and a benchmark, so it is threaded
with a deep accept queue (64+ concurrent clients).

Use as a context manager, or through the `token_server` pytest fixture:

    pytest_plugins = ["tests.fakes.token_server"]

PYTEST_DONT_REWRITE: this is a helper with no asserts; the marker lets test modules import it
before pytest_plugins registers it without an "already imported" warning.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "EDGE_BLOCKS",
    "EDGE_PAGE",
    "EXPECTED_CLIENT_ID",
    "TOKEN_PATH",
    "FakeTokenServer",
    "Fault",
    "RecordedRequest",
    "token_server",
]

TOKEN_PATH = "/v1/oauth/token"
# Written out independently of oauth_tokens.token_client so a typo there fails the tests.
EXPECTED_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
_HANG_MAX_SECONDS = 60.0  # a hung handler gives up at the latest after this (or on close)
# User-Agent prefix -> the status the edge answers it with, as reported in 2026: 404 with an
# empty body, or 429 with EDGE_PAGE.
EDGE_BLOCKS: Mapping[str, int] = {"claude-cli/": 404, "claude-code/": 429}
EDGE_PAGE = (
    b"<!DOCTYPE html><html><head><title>429 Too Many Requests</title></head>"
    b"<body><h1>Too Many Requests</h1><p>Please try again later.</p></body></html>"
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when the body was not JSON
    raw_body: bytes
    received_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted answer that replaces normal processing (the refresh token is not used)."""

    status: int = 503
    body: Any = None  # dict/list → JSON, str/bytes → sent as is, None → a default JSON error
    headers: Mapping[str, str] = field(default_factory=dict)
    reset: bool = False  # read the request, then reset the connection without answering


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # hung handlers must not keep the test process alive
    request_queue_size = 1024  # listen backlog: 64+ clients connect at once in the benchmark
    allow_reuse_address = True
    fake: FakeTokenServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeClaudeOAuth/1.0"
    # HTTP/1.0 closes each connection after one answer: simple and never leaks idle threads
    # (keep_alive=True picks _KeepAliveHandler instead).
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # stderr noise; tests inspect .requests instead

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_PUT = do_DELETE = do_PATCH = do_GET


class _KeepAliveHandler(_Handler):
    # HTTP/1.1: a connection serves request after request until the client closes it, as a real
    # endpoint does (benchmarks; a thread stays per open connection).
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm holds the body back
    # until the client's delayed ACK (about 40 ms) on every answer after the first.
    disable_nagle_algorithm = True


class FakeTokenServer:
    """Threaded fake of POST https://platform.claude.com/v1/oauth/token on 127.0.0.1."""

    def __init__(
        self,
        *,
        rotate: bool = True,
        expires_in: int | None = 28800,
        delay_seconds: float = 0.0,
        client_id: str | None = EXPECTED_CLIENT_ID,
        account_email: str = "user@example.com",
        host: str = "127.0.0.1",
        port: int = 0,
        keep_alive: bool = False,
    ) -> None:
        # Behaviour knobs; plain attributes so tests can change them while running.
        self.rotate = rotate  # False: answer without refresh_token and keep the old one valid
        self.expires_in = expires_in  # None: omit expires_in
        self.delay_seconds = delay_seconds  # sleep before answering every request
        self.hang = False  # True: never answer any request (until close)
        self.client_id = client_id  # None: accept any client_id
        self.account_email = account_email
        # User-Agent prefix -> 429 (HTML page) or 404 (empty body), answered before anything
        # else: no fault is used up and no token is read.
        self.edge_blocks: dict[str, int] = dict(EDGE_BLOCKS)

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._valid: set[str] = set()
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._grants: dict[str, dict[str, Any]] = {}
        self._last_grant: dict[str, Any] | None = None
        self._issued_at: dict[str, float] = {}
        self._refresh_count = 0
        self._httpd = _Server((host, port), _KeepAliveHandler if keep_alive else _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeTokenServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.02},
                name="FakeTokenServer",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # releases hung/delayed handlers
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeTokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + TOKEN_PATH

    # -- seeding and scripting ------------------------------------------------------------

    def issue(self, refresh_token: str | None = None) -> str:
        """Make a refresh token valid (a new random one if None) and return it."""
        token = refresh_token or _new_token("sk-ant-ort01-")
        with self._lock:
            self._valid.add(token)
        return token

    def add_refresh_token(self, refresh_token: str) -> None:
        self.issue(refresh_token)

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._valid.discard(refresh_token)

    def is_valid(self, refresh_token: str) -> bool:
        with self._lock:
            return refresh_token in self._valid

    def fail_next(
        self,
        status: int,
        times: int = 1,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests with this status instead of processing them."""
        fault = Fault(status=status, body=body, headers=dict(headers or {}))
        with self._lock:
            self._faults.extend([fault] * times)

    def reset_next(self, times: int = 1) -> None:
        """Reset the connection of the next `times` requests once they are read (the client
        sees a connection reset after sending)."""
        with self._lock:
            self._faults.extend([Fault(reset=True)] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- inspection -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def refresh_count(self) -> int:
        """Successful refreshes (200 with a new grant)."""
        with self._lock:
            return self._refresh_count

    @property
    def grants(self) -> dict[str, dict[str, Any]]:
        """Used refresh token → the latest 200 JSON body issued for it."""
        with self._lock:
            return dict(self._grants)

    @property
    def issued_at(self) -> dict[str, float]:
        """Rotated refresh token → time.monotonic() when this server issued it (before sending
        the answer): how long a client keeps a rotated token unsaved is measured from here."""
        with self._lock:
            return dict(self._issued_at)

    @property
    def last_grant(self) -> dict[str, Any] | None:
        with self._lock:
            return self._last_grant

    # -- request handling (runs on handler threads) -----------------------------------------

    def _handle(self, h: _Handler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length > 0 else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=h.command,
                    path=h.path,
                    headers=dict(h.headers.items()),
                    body=body,
                    raw_body=raw,
                    received_at=time.monotonic(),
                )
            )
            edge = self._edge_status(h.headers.get("User-Agent") or "")
            fault = self._faults.popleft() if self._faults and edge is None else None
        if edge is not None:
            _send_edge(h, edge)
            return
        # Wait on the stop event rather than sleeping so close() is never held up.
        if self.delay_seconds > 0 and self._stop.wait(self.delay_seconds):
            return
        if fault is not None and fault.reset:
            # Linger 0: closing sends a RST instead of a FIN.
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()
            return
        if self.hang:
            self._stop.wait(_HANG_MAX_SECONDS)
            return  # close without answering
        if fault is not None:
            self._send_fault(h, fault)
            return
        status, payload = self._process(h, body)
        _send_json(h, status, payload)

    def _process(self, h: _Handler, body: Any) -> tuple[int, dict[str, Any]]:
        refused = self._request_refusal(h, body)
        if refused is not None:
            return refused
        used = body["refresh_token"]
        with self._lock:  # check-and-consume atomically: single use under concurrency
            if used not in self._valid:
                return 400, _oauth_error("invalid_grant", "Invalid refresh token")
            grant: dict[str, Any] = {
                "access_token": _new_token("sk-ant-oat01-"),
                "token_type": "Bearer",
                "scope": body["scope"],
                "account": {
                    "uuid": "00000000-0000-4000-8000-000000000001",
                    "email_address": self.account_email,
                },
                "organization": {
                    "uuid": "00000000-0000-4000-8000-000000000002",
                    "name": "Fake Org",
                },
            }
            if self.expires_in is not None:
                grant["expires_in"] = self.expires_in
            if self.rotate:
                new = _new_token("sk-ant-ort01-")
                grant["refresh_token"] = new
                self._valid.discard(used)
                self._valid.add(new)
                self._issued_at[new] = time.monotonic()
            self._grants[used] = grant
            self._last_grant = grant
            self._refresh_count += 1
        return 200, grant

    def _edge_status(self, user_agent: str) -> int | None:
        for prefix, status in self.edge_blocks.items():
            if user_agent.startswith(prefix):
                return status
        return None

    def _request_refusal(self, h: _Handler, body: Any) -> tuple[int, dict[str, Any]] | None:
        """The answer to a request the real endpoint refuses before looking at the token."""
        if h.path.split("?", 1)[0] != TOKEN_PATH:
            return 404, {"error": {"type": "not_found_error", "message": "Not found"}}
        if h.command != "POST":
            return 405, {"error": {"type": "method_not_allowed", "message": "Use POST"}}
        if not isinstance(body, dict):
            return 400, _oauth_error("invalid_request", "Request body must be JSON")
        if body.get("grant_type") != "refresh_token":
            return 400, _oauth_error("unsupported_grant_type", "Only refresh_token here")
        for name in ("refresh_token", "client_id", "scope"):
            if not isinstance(body.get(name), str) or not body[name]:
                return 400, _oauth_error("invalid_request", f"Missing {name}")
        if self.client_id is not None and body["client_id"] != self.client_id:
            return 400, _oauth_error("invalid_client", "Unknown client")
        return None

    def _send_fault(self, h: _Handler, fault: Fault) -> None:
        body = fault.body
        if body is None:
            body = _oauth_error("server_error", f"Scripted HTTP {fault.status}")
        if isinstance(body, str):
            body = body.encode()
        if isinstance(body, bytes):
            data, content_type = body, "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        _send(h, fault.status, data, content_type, fault.headers)


def _new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(48)


def _oauth_error(error: str, description: str) -> dict[str, Any]:
    return {"error": error, "error_description": description}


def _send_edge(h: _Handler, status: int) -> None:
    if status == 429:
        _send(h, 429, EDGE_PAGE, "text/html; charset=utf-8", {})
    else:
        _send(h, status, b"", "text/plain; charset=utf-8", {})


def _send_json(h: _Handler, status: int, payload: Any) -> None:
    _send(h, status, json.dumps(payload).encode(), "application/json", {})


def _send(
    h: _Handler, status: int, data: bytes, content_type: str, headers: Mapping[str, str]
) -> None:
    try:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (timeout); nothing to do


@pytest.fixture
def token_server() -> Iterator[FakeTokenServer]:
    """A started FakeTokenServer, closed after the test."""
    with FakeTokenServer() as server:
        yield server
