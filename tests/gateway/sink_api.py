"""A loopback stand-in for the model API that reads request bodies as they arrive, counting and
hashing them, never keeping them: for tests (and bench/gateway_memory_bench.py) of how the
gateway streams large bodies.

    with SinkAPI(rejected={"stale-token"}) as sink:
        ... sink.url ...
        sink.received   # body bytes read so far, all requests together
        sink.bodies     # (length, sha256) of each body read to its end
        sink.cut        # requests whose body ended early
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Self

_READ = 64 * 1024


class SinkAPI:
    def __init__(self, rejected: set[str] | None = None, read_delay: float = 0.0) -> None:
        self.rejected = rejected or set()  # bearer tokens answered with 401
        self.read_delay = read_delay  # seconds to sleep after each 64 KiB read (a slow API)
        self.received = 0
        self.bodies: list[tuple[int, str]] = []
        self.tokens: list[str] = []
        self.cut = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()

    def received_at_least(self, size: int, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.received >= size:
                return True
            time.sleep(0.01)
        return False

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            headers = _head(stream)
            if headers is None:
                return
            token = headers.get("authorization", "").removeprefix("Bearer ")
            with self._lock:
                self.tokens.append(token)
            body = self._body(stream, headers)
            if body is None:
                with self._lock:
                    self.cut += 1
                return
            with self._lock:
                self.bodies.append(body)
            if token in self.rejected:
                _answer(conn, 401, {"type": "error", "error": {"type": "authentication_error"}})
            else:
                usage = {"input_tokens": 1, "output_tokens": 1}
                _answer(conn, 200, {"type": "message", "content": [], "usage": usage})

    def _body(self, stream: io.BufferedReader, headers: dict[str, str]) -> tuple[int, str] | None:
        digest, length = hashlib.sha256(), 0
        for piece in _pieces(stream, headers):
            if piece is None:
                return None
            digest.update(piece)
            length += len(piece)
            with self._lock:
                self.received += len(piece)
            if self.read_delay:
                time.sleep(self.read_delay)
        return length, digest.hexdigest()


def _head(stream: io.BufferedReader) -> dict[str, str] | None:
    if not stream.readline():
        return None
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _pieces(stream: io.BufferedReader, headers: dict[str, str]) -> Iterator[bytes | None]:
    """The body's pieces as they come; a None piece when it ends early."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while (size := int(stream.readline().split(b";")[0] or b"0", 16)) > 0:
            left = size
            while left:
                piece = stream.read1(min(left, _READ))
                if not piece:
                    yield None
                    return
                left -= len(piece)
                yield piece
            stream.readline()
        stream.readline()
        return
    left = int(headers.get("content-length", "0"))
    while left:
        piece = stream.read1(min(left, _READ))
        if not piece:
            yield None
            return
        left -= len(piece)
        yield piece


def _answer(conn: socket.socket, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\nconnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):  # a gateway that gave up on the request
        conn.sendall(head.encode() + data)


def body_of(size: int) -> bytes:
    """A JSON body of about ``size`` bytes whose bytes differ along it (a shifted piece shows)."""
    text = "".join(f"{n:08d}" for n in range(size // 8 + 1))[: max(0, size - 40)]
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()
