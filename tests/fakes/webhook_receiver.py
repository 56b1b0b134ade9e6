"""A webhook receiver on 127.0.0.1: records each POSTed JSON body; answers `status` (200 by
default; a list of statuses is used up first, one per request, to script failures)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer


class WebhookReceiver(LoopbackServer[dict[str, Any]]):
    name = "fake-webhook"

    def __init__(self) -> None:
        super().__init__()
        self.next_statuses: list[int] = []

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return self.requests


class _Handler(BaseHTTPRequestHandler):
    owner: WebhookReceiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with self.owner._lock:
            status = self.owner.next_statuses.pop(0) if self.owner.next_statuses else 200
        if status == 200:
            self.owner._record(json.loads(raw))
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


WebhookReceiver.handler = _Handler
