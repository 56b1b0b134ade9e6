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

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

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


class ProxyRecorder:
    """Threaded recording proxy on 127.0.0.1 (ephemeral port); a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[ProxiedRequest] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> ProxyRecorder:
        recorder = self

        class Handler(_Handler):
            proxy = recorder

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="proxy-recorder", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ProxyRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self._requests)

    def _record(self, req: ProxiedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def hosts(self) -> set[str]:
        return {r.host for r in self.requests}

    def token_endpoint_requests(self) -> list[ProxiedRequest]:
        return [r for r in self.requests if r.is_token_endpoint]


class _Handler(BaseHTTPRequestHandler):
    proxy: ProxyRecorder

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
        self.proxy._record(req)
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
