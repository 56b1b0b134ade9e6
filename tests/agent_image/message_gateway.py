"""A stand-in for a task's gateway on its Unix socket, for container tests: the model route
answered by a FakeAnthropicAPI (its requests recorded there), and the message endpoint of
agent/README.md ("Messages while running") played from a queue the test fills.

    with FakeAnthropicAPI(valid_credentials={PLACEHOLDER}) as api, \\
            MessageGateway(api, placeholder=PLACEHOLDER) as gw:
        ... run a container with gateway_dir=gw.dir, AGENT_MESSAGES=1 ...
        gw.send("and also this")      # -> its seq
        gw.polls                      # every GET /_runner/messages, with its answer

``refuse_with`` makes the message endpoint answer that status (a gateway without the
endpoint); ``end()`` makes the next answer end with ``{"type": "end"}``; ``stale`` makes every
answer hold all messages, whatever ``after`` says (a gateway out of step).
"""

from __future__ import annotations

import json
import os
import shutil
import socketserver
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.fakes.loopback import STOP_POLL_SECONDS

SOCKET_NAME = "gateway.sock"
MESSAGES_PATH = "/_runner/messages"
MAX_WAIT_SECONDS = 25


@dataclass(frozen=True)
class Poll:
    after: int
    wait: float
    final: bool
    status: int
    sent: tuple[int, ...]  # seqs in the answer
    at: float  # time.monotonic() when answered


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a poll the container gave up on: its connection is gone, nothing to tell


class MessageGateway:
    def __init__(self, api: FakeAnthropicAPI, *, placeholder: str) -> None:
        self.api = api
        self.placeholder = placeholder
        # Short: a Unix socket path must fit in 108 bytes.
        self.dir = tempfile.mkdtemp(prefix="crm-", dir="/tmp")
        os.chmod(self.dir, 0o755)  # noqa: S103 (uid 1000 in the container must enter it)
        self.path = os.path.join(self.dir, SOCKET_NAME)
        self.refuse_with: int | None = None
        self.stale = False
        self.closed = False  # a final=1 poll found nothing new: later messages are follow-ups
        self._cond = threading.Condition()
        self._messages: list[tuple[int, str]] = []
        self._ended = False
        self._polls: list[Poll] = []
        self._server: _Server | None = None

    # -- the test's side ----------------------------------------------------------------
    def send(self, text: str) -> int:
        with self._cond:
            seq = len(self._messages) + 1
            self._messages.append((seq, text))
            self._cond.notify_all()
            return seq

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    @property
    def polls(self) -> list[Poll]:
        with self._cond:
            return list(self._polls)

    def wait_for_poll(self, predicate: Any, timeout: float = 60) -> Poll:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [p for p in self.polls if predicate(p)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no such poll within {timeout} s: {self.polls}")

    # -- the endpoint -------------------------------------------------------------------
    def authorized(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else headers.get("x-api-key", "")
        return given == self.placeholder

    def answer(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        after = int(query.get("after", ["0"])[0])
        wait = min(float(query.get("wait", ["0"])[0]), MAX_WAIT_SECONDS)
        final = query.get("final", [""])[0] == "1"
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                new = [(s, t) for s, t in self._messages if s > after or self.stale]
                if new or self._ended or self.closed or time.monotonic() >= deadline:
                    break
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            if not new and final:
                self.closed = True
            lines = [json.dumps({"seq": s, "type": "message", "text": t}) for s, t in new]
            if self._ended or (self.closed and not new):
                lines.append(json.dumps({"type": "end"}))
            status = 200 if lines else 204
            if final and not new:
                status = 204
                lines = []
            self._polls.append(
                Poll(after, wait, final, status, tuple(s for s, _ in new), time.monotonic())
            )
        body = "".join(line + "\n" for line in lines).encode()
        return status, body

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> Self:
        base: Any = FakeAnthropicAPI.handler
        gateway = self

        class Handler(base):
            owner = gateway.api

            def address_string(self) -> str:  # a Unix socket has no client address
                return "unix"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != MESSAGES_PATH:
                    self._handle()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                if gateway.refuse_with is not None:
                    status, body = gateway.refuse_with, b""
                elif not gateway.authorized(headers):
                    status, body = 401, b""
                else:
                    status, body = gateway.answer(parse_qs(parts.query))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def do_CONNECT(self) -> None:
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

        self._server = _Server(self.path, Handler)
        os.chmod(self.path, 0o666)  # noqa: S103 (the container's uid 1000 connects)
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
