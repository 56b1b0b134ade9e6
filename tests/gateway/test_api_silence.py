"""How long the model API may leave an answer's body waiting (``api_read_timeout``): an API that
goes silent mid-answer is cut off, a client that is slow to read is not."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.http1 import GatewayLimits
from tests.gateway.conftest import UnixHTTPConnection
from tests.gateway.test_limits import gateway_on

pytestmark = pytest.mark.timeout(60)

SILENCE = GatewayLimits(api_read_timeout=0.5)
EVENT = b"event: ping\ndata: {}\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@pytest.fixture
def raw_api() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """raw_api(answer) -> the URL of a one-shot API whose ``answer`` writes the response on
    the accepted socket (after reading the request)."""
    servers: list[socket.socket] = []

    def start(answer: Callable[[socket.socket], None]) -> str:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                answer(conn)

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}"

    yield start
    for server in servers:
        server.close()


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def test_an_api_silent_mid_answer_is_cut_off_after_the_timeout(socket_dir: Path, raw_api) -> None:
    released = threading.Event()

    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD + _chunk(EVENT))
        released.wait(20)  # then nothing more, the connection still open

    gateway, placeholder, lines = gateway_on(socket_dir, raw_api(answer), SILENCE)
    try:
        conn = UnixHTTPConnection(gateway.socket_path)
        conn.request("POST", "/v1/messages", body=b"{}", headers={"x-api-key": placeholder})
        response = conn.getresponse()
        started = time.monotonic()
        with pytest.raises(http.client.IncompleteRead) as cut_off:
            response.read()
        waited = time.monotonic() - started
        assert cut_off.value.partial == EVENT
        assert 0.4 < waited < 5, waited
        assert lines == ["model response cut off by the API (SocketTimeoutError)"]
    finally:
        released.set()
        gateway.stop()


def test_a_client_slow_to_read_is_not_taken_for_a_silent_api(socket_dir: Path, raw_api) -> None:
    """The client reads nothing for several timeouts while the answer backs up to the API;
    then it reads the whole answer."""
    piece = EVENT * 4096  # 84 KiB
    pieces = 400  # 33 MiB: more than every buffer on the way holds

    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD)
        for _ in range(pieces):
            conn.sendall(_chunk(piece))
        conn.sendall(b"0\r\n\r\n")

    gateway, placeholder, lines = gateway_on(socket_dir, raw_api(answer), SILENCE)
    try:
        conn = UnixHTTPConnection(gateway.socket_path)
        conn.request("POST", "/v1/messages", body=b"{}", headers={"x-api-key": placeholder})
        response = conn.getresponse()
        assert response.read(len(piece)) == piece
        time.sleep(4 * SILENCE.api_read_timeout)
        assert len(response.read()) == len(piece) * (pieces - 1)
        assert lines == []
    finally:
        gateway.stop()
