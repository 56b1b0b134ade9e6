"""An HTTP(S) proxy on 127.0.0.1 that records and NEVER forwards.

    with ProxyRecorder() as proxy:
        env = {"HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url,
               "NO_PROXY": "127.0.0.1,localhost"}
        ...
        assert proxy.token_endpoint_requests() == []

Every request is recorded: ``CONNECT host:port`` (HTTPS through a proxy) and
absolute-form ``GET http://host/path`` alike. CONNECT gets 403, anything else 502; the
connection is then closed. Nothing leaves the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.loopback import LoopbackServer

TOKEN_HOSTS = ("platform.claude.com", "console.anthropic.com")
TOKEN_PATH = "/v1/oauth/token"


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    target: str  # as in the request line: "host:port" for CONNECT, else the URL
    host: str
    port: int
    path: str  # "" for CONNECT (the path is inside TLS, unseen)
    headers: dict[str, str]

    @property
    def is_token_endpoint(self) -> bool:
        return self.host in TOKEN_HOSTS or TOKEN_PATH in self.path


class ProxyRecorder(LoopbackServer[ProxiedRequest]):
    """Threaded recording proxy on 127.0.0.1 (ephemeral port); a context manager."""

    name = "proxy-recorder"

    def hosts(self) -> set[str]:
        return {r.host for r in self.requests}

    def token_endpoint_requests(self) -> list[ProxiedRequest]:
        return [r for r in self.requests if r.is_token_endpoint]


class _Handler(BaseHTTPRequestHandler):
    owner: ProxyRecorder

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.command == "CONNECT":
            host, _, port = self.path.rpartition(":")
            req = ProxiedRequest(
                "CONNECT", self.path, host.strip("[]").lower(), int(port or 443), "", headers
            )
            status = 403
        else:
            parts = urlsplit(self.path)
            default_port = 443 if parts.scheme == "https" else 80
            req = ProxiedRequest(
                self.command,
                self.path,
                (parts.hostname or headers.get("host", "")).lower(),
                parts.port or default_port,
                parts.path,
                headers,
            )
            status = 502
        self.owner._record(req)
        body = b"claude-runner test proxy: nothing is forwarded\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    do_CONNECT = do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle
    do_OPTIONS = _handle


ProxyRecorder.handler = _Handler
