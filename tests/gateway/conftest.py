"""Gateway fixtures: a started TaskGateway on a short socket path, and clients for it.

Every server here is real and on loopback (the fake Anthropic API, the fake token server, small
echo and HTTP servers); names that must resolve go through an injected resolver, so no test
ever asks DNS or sends traffic off the machine.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.netpolicy import EgressPolicy, egress_rules_parse
from gateway.runtime import (
    GatewayLimits,
    GatewaySetup,
    TaskGateway,
    UpstreamAuth,
    placeholder_new,
)
from tests.fakes.anthropic_api import FakeAnthropicAPI

REAL_OAUTH = "sk-ant-oat01-gateway-test-real-access-token"
REAL_KEY = "sk-ant-api03-gateway-test-real-api-key"
CLI_BETAS = "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14"


class StaticProvider:
    """A CredentialProvider with fixed answers (tests of the route, not of refreshing)."""

    def __init__(self, secret: str, fresh: str | None = None) -> None:
        self.secret = secret
        self.fresh = fresh
        self.refresh_calls: list[str] = []

    def cached(self) -> str | None:
        return self.secret

    def current(self) -> str:
        return self.secret

    def refresh_after_401(self, rejected: str) -> str | None:
        self.refresh_calls.append(rejected)
        if self.fresh is None:
            return None
        self.secret = self.fresh
        return self.fresh


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over the gateway socket (keep-alive, chunked decoding)."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        super().__init__("gateway", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def raw_connect(path: Path, target: str) -> tuple[int, bytes, socket.socket]:
    """Send CONNECT target; the status code, the answer head, and the open socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            break
        head += data
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, head, sock


class EchoServer:
    """A TCP echo server on 127.0.0.1 (the allowed 'outside' host of the egress tests)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Short on purpose: a Unix socket path must stay under ~100 bytes.
    path = Path(tempfile.mkdtemp(prefix="gwt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_api() -> Iterator[FakeAnthropicAPI]:
    with FakeAnthropicAPI(valid_credentials={REAL_OAUTH, REAL_KEY}) as api:
        yield api
        api.release_last_event.set()


def _no_dns(host: str, port: int) -> Any:
    raise AssertionError(f"a test tried to resolve {host}:{port}")


@pytest.fixture
def start_gateway(socket_dir: Path, fake_api: FakeAnthropicAPI) -> Iterator[Callable[..., Any]]:
    """start_gateway(kind="oauth", provider=None, allow="github.com", test_loopback=(),
    resolver=None, limits=None) -> (gateway, placeholder, log lines)."""
    started: list[TaskGateway] = []

    def start(
        kind: str = "oauth",
        provider: Any = None,
        allow: str = "github.com,*.example.com",
        test_loopback: tuple[tuple[str, int], ...] = (),
        resolver: Any = None,
        api_host: str = "api.anthropic.com",
        limits: GatewayLimits | None = None,
    ) -> tuple[TaskGateway, str, list[str]]:
        placeholder = placeholder_new()
        lines: list[str] = []
        if provider is None:
            provider = StaticProvider(REAL_OAUTH if kind == "oauth" else REAL_KEY)
        gateway = TaskGateway(
            socket_path=socket_dir / "gateway.sock",
            auth=UpstreamAuth(kind),  # type: ignore[arg-type]
            provider=provider,
            placeholder=placeholder,
            on_log=lines.append,
            setup=GatewaySetup(
                api_url=fake_api.url,
                egress=EgressPolicy(
                    rules=egress_rules_parse(allow),
                    api_host=api_host,
                    test_loopback=frozenset(test_loopback),
                ),
                resolver=resolver or _async(_no_dns),
                limits=limits,
            ),
        )
        gateway.start()
        started.append(gateway)
        return gateway, placeholder, lines

    yield start
    for gateway in started:
        gateway.stop()


def _async(fn: Callable[[str, int], Any]) -> Callable[[str, int], Any]:
    async def resolve(host: str, port: int) -> Any:
        return fn(host, port)

    return resolve


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()
