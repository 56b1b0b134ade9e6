"""A stand-in for a task's gateway: an HTTP server on a Unix socket that records and forwards
nothing. For container-side tests that must not depend on the real gateway (gateway/).

    with SocketRecorder() as gw:          # gw.dir holds gateway.sock (mode 0666)
        spec = ContainerSpec(..., gateway_dir=gw.dir)
        ...
        gw.requests  # [("CONNECT", "example.test:443", {headers}), ("GET", "/x", {...})]

CONNECT gets 403, anything else 200 with a short text body.
"""

from __future__ import annotations

import os
import shutil
import socketserver
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from tests.fakes.loopback import STOP_POLL_SECONDS

SOCKET_NAME = "gateway.sock"
STAND_IN_BODY = b"socket-recorder: stand-in gateway\n"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    owner: SocketRecorder


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:  # a Unix socket has no client address
        return "unix"

    def _handle(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.owner._record((self.command, self.path, headers))
        status, body = (
            (403, b"stand-in: CONNECT refused\n")
            if self.command == "CONNECT"
            else (
                200,
                STAND_IN_BODY,
            )
        )
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    do_CONNECT = do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


class SocketRecorder:
    def __init__(self) -> None:
        # Short: a Unix socket path must fit in 108 bytes.
        self.dir = tempfile.mkdtemp(prefix="crg-", dir="/tmp")
        os.chmod(self.dir, 0o755)  # noqa: S103 (uid 1000 in the container must enter it)
        self.path = os.path.join(self.dir, SOCKET_NAME)
        self._lock = threading.Lock()
        self._requests: list[tuple[str, str, dict[str, str]]] = []
        self._server: _Server | None = None

    def _record(self, item: tuple[str, str, dict[str, str]]) -> None:
        with self._lock:
            self._requests.append(item)

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        with self._lock:
            return list(self._requests)

    def start(self) -> Self:
        self._server = _Server(self.path, _Handler)
        self._server.owner = self
        os.chmod(self.path, 0o666)  # noqa: S103 (the container's uid 1000 connects)
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
