"""Connections on the gateway socket, at most ``limit`` of them at once.

While a slot is free the listening socket stays registered with the loop, and each readiness
accepts every connection that waits (as asyncio's own servers do). At the limit it is
unregistered: later connections wait in the kernel's backlog, costing no file descriptor, memory
or CPU of ours, until one ends. Each accepted connection is served by ``serve`` in a task of its
own, as a StreamReader/StreamWriter pair.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("gateway")

type Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
type AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]

_RETRY_SECONDS = 0.5


class KnownSocket(socket.socket):
    """A socket whose family and type are plain attributes, set once when it is made. The
    standard socket turns each read of them into an enum in Python (about 14K instructions),
    and the loop and aiohttp read them several times for every connection, ours and the
    upstream's."""

    __slots__ = ("family", "type")

    def __init__(
        self,
        family: socket.AddressFamily,
        kind: socket.SocketKind,
        proto: int = 0,
        fileno: int | None = None,
    ) -> None:
        super().__init__(family, kind, proto, fileno)
        self.family = family  # type: ignore[misc]
        self.type = kind  # type: ignore[misc]


def upstream_socket(addr_info: AddrInfo) -> socket.socket:
    """aiohttp's socket_factory: a KnownSocket for the address it is about to connect."""
    family, kind, proto, _, _ = addr_info  # enums already (from getaddrinfo or aiohttp)
    return KnownSocket(family, kind, proto)  # type: ignore[arg-type]


class Listener:
    def __init__(
        self,
        *,
        sock: socket.socket,
        limit: int,
        read_limit: int,
        serve: Serve,
        on_full: Callable[[], None],
    ) -> None:
        self._sock = sock
        self._family, self._kind = sock.family, sock.type
        self._limit = limit
        self._read_limit = read_limit  # the StreamReader's (a request head's) bound
        self._serve = serve
        self._on_full = on_full
        self._loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[None]] = set()
        self._reading = False
        self._closed = False

    def start(self) -> None:
        self._resume()

    def close(self) -> None:
        """Accept nothing more; the tasks of open connections are the caller's to end."""
        self._closed = True
        self._pause()
        self._sock.close()

    def _resume(self) -> None:
        if not self._reading and not self._closed and len(self.tasks) < self._limit:
            self._loop.add_reader(self._sock.fileno(), self._accept_ready)
            self._reading = True

    def _pause(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _accept_ready(self) -> None:
        while len(self.tasks) < self._limit:
            try:
                # socket.accept() without its reads of the listener's family and type.
                fd, _ = self._sock._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: wait a moment, never spin
                logger.warning("Gateway accept failed: %s", exc)
                self._pause()
                self._loop.call_later(_RETRY_SECONDS, self._resume)
                return
            conn = KnownSocket(self._family, self._kind, 0, fd)
            conn.setblocking(False)
            task = self._loop.create_task(self._connection(conn))
            self.tasks.add(task)
            task.add_done_callback(self._ended)
        self._pause()
        self._on_full()

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._resume()

    async def _connection(self, conn: socket.socket) -> None:
        reader = asyncio.StreamReader(limit=self._read_limit)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await self._loop.connect_accepted_socket(lambda: protocol, conn)
        except OSError:
            conn.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, self._loop)
        await self._serve(reader, writer)
