"""What every fake server here shares: a threaded HTTP server on 127.0.0.1 with an ephemeral
port, started and stopped as a context manager, recording what it received."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

# How often a serving thread looks for a stop: socketserver's default of 0.5 s makes every
# stop (each test's teardown) wait about that long.
STOP_POLL_SECONDS = 0.02


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 makes a burst of connections wait a second for a
    # SYN retry: too few for a CLI that opens several at once, or for a benchmark's 16.
    request_queue_size = 128
    daemon_threads = True


class LoopbackServer[Recorded]:
    #: the request handler class; it finds this server object as `handler.owner`
    handler: type[BaseHTTPRequestHandler]
    name = "fake-server"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        handler: Any = type("Handler", (self.handler,), {"owner": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            name=self.name,
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
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
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def _record(self, req: Recorded) -> None:
        with self._lock:
            self._requests.append(req)
