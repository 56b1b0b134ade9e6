"""CONNECT and plain-HTTP egress through a real TaskGateway socket (loopback only)."""

from __future__ import annotations

import http.client
import socket

import pytest

from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.gateway.conftest import EchoServer, UnixHTTPConnection, _async, raw_connect

pytestmark = pytest.mark.timeout(60)


def test_connect_to_an_allowed_loopback_test_host_tunnels_bytes_both_ways(
    start_gateway, echo_server: EchoServer
) -> None:
    gateway, _, lines = start_gateway(test_loopback=(("127.0.0.1", echo_server.port),))
    status, head, sock = raw_connect(gateway.socket_path, f"127.0.0.1:{echo_server.port}")
    with sock:
        assert status == 200, head
        payload = b"\x16\x03\x01 not really TLS, but any bytes" * 1000
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            received += sock.recv(65536)
        assert received == payload
    assert lines == []


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("example.org:443", "not on the allow list"),
        ("127.0.0.1:{other}", "loopback address"),
        ("10.1.2.3:443", "private address"),
        ("192.168.0.10:22", "private address"),
        ("169.254.169.254:80", "cloud metadata address"),
        ("100.64.0.1:443", "shared (CGNAT) address"),
        ("[::1]:443", "loopback address"),
        ("[::ffff:10.0.0.1]:443", "private address, embedded in an IPv6 address"),
        ("localhost:{port}", "loopback name"),
        ("api.anthropic.com:443", "the model API is reached through the gateway, not a tunnel"),
        ("github.com:99999", "invalid port"),
    ],
)
def test_connect_refusals_are_403_with_one_log_line(
    start_gateway, echo_server: EchoServer, target: str, reason: str
) -> None:
    # The echo server is test-allowed, but only as 127.0.0.1 on its own port.
    gateway, _, lines = start_gateway(test_loopback=(("127.0.0.1", echo_server.port),))
    target = target.format(other=echo_server.port + 1, port=echo_server.port)
    status, head, sock = raw_connect(gateway.socket_path, target)
    sock.close()
    assert status == 403, head
    assert lines == [f"egress refused: {target} ({reason})"]


def test_a_name_that_resolves_to_a_private_address_is_refused(start_gateway) -> None:
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return {"git.example.com": ["140.82.112.3", "10.0.0.7"]}[host]

    gateway, _, lines = start_gateway(allow="*.example.com", resolver=_async(resolver))
    status, _, sock = raw_connect(gateway.socket_path, "git.example.com:443")
    sock.close()
    assert status == 403
    assert resolved == ["git.example.com"]
    assert lines == ["egress refused: git.example.com:443 (resolves to a private address 10.0.0.7)"]


def test_the_gateway_connects_to_the_address_it_checked(start_gateway, echo_server) -> None:
    """No second lookup: the resolver's answer is what the tunnel connects to."""
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    gateway, _, _ = start_gateway(
        test_loopback=(("echo.example.com", echo_server.port),), resolver=_async(resolver)
    )
    status, _, sock = raw_connect(gateway.socket_path, f"echo.example.com:{echo_server.port}")
    with sock:
        assert status == 200
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
    assert calls == ["echo.example.com"]


def test_the_anthropic_host_is_refused_even_with_star(start_gateway) -> None:
    gateway, _, lines = start_gateway(allow="*")
    status, _, sock = raw_connect(gateway.socket_path, "API.Anthropic.com.:8443")
    sock.close()
    assert status == 403
    assert "the model API is reached through the gateway" in lines[0]


def test_plain_http_proxying_to_an_allowed_loopback_test_host(start_gateway) -> None:
    with FakeAnthropicAPI() as other:  # any loopback HTTP server will do
        gateway, _, lines = start_gateway(test_loopback=(("127.0.0.1", other.port),))
        conn = UnixHTTPConnection(gateway.socket_path)
        conn.request(
            "GET",
            f"http://127.0.0.1:{other.port}/info/refs?service=git-upload-pack",
            headers={"proxy-authorization": "Basic c2VjcmV0"},
        )
        response = conn.getresponse()
        assert response.status == 404  # the fake's own answer, relayed
        assert b"not_found_error" in response.read()
        [seen] = other.requests
        assert seen.path == "/info/refs"
        assert seen.query == "service=git-upload-pack"
        assert "proxy-authorization" not in seen.headers
        assert seen.headers["host"] == f"127.0.0.1:{other.port}"
    assert lines == []


def test_plain_http_proxying_is_refused_off_the_list(start_gateway) -> None:
    gateway, _, lines = start_gateway()
    conn = UnixHTTPConnection(gateway.socket_path)
    conn.request("GET", "http://127.0.0.1:9/x")
    assert conn.getresponse().status == 403
    conn = UnixHTTPConnection(gateway.socket_path)
    conn.request("GET", "https://github.com/x")
    assert conn.getresponse().status == 403
    assert lines == [
        "egress refused: 127.0.0.1:9 (loopback address)",
        "egress refused: https://github.com/x (only http:// or CONNECT)",
    ]


def test_garbage_on_the_socket_gets_400_and_a_closed_connection(start_gateway) -> None:
    gateway, _, _ = start_gateway()
    for garbage in [b"HELLO\r\n\r\n", b"GET / HTTP/2.0\r\n\r\n", b"GET /\r\n x\r\n\r\n"]:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(str(gateway.socket_path))
        sock.sendall(garbage)
        answer = sock.recv(4096)
        assert answer.split(b" ")[1] in (b"400", b"505"), answer
        assert sock.recv(4096) == b""
        sock.close()


def test_request_smuggling_shapes_are_refused(start_gateway, fake_api) -> None:
    gateway, placeholder, _ = start_gateway()
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(str(gateway.socket_path))
    sock.sendall(
        f"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nauthorization: Bearer {placeholder}\r\n"
        "content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n".encode()
    )
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 400
    assert fake_api.requests == []
    sock.close()


@pytest.mark.parametrize("size", [b"-1", b"0x2", b"+2", b"1_0", b"-0"])
def test_chunk_sizes_other_than_plain_hex_get_400_and_a_closed_connection(
    start_gateway, fake_api, size
) -> None:
    gateway, placeholder, _ = start_gateway()
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(str(gateway.socket_path))
    sock.sendall(
        f"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nauthorization: Bearer {placeholder}\r\n"
        "transfer-encoding: chunked\r\n\r\n".encode()
        + size
        + b"\r\nab\r\n0\r\n\r\n"
    )
    response = http.client.HTTPResponse(sock)
    response.begin()
    assert response.status == 400
    response.read()
    assert sock.recv(1) == b""  # closed
    assert fake_api.requests == []
    sock.close()
