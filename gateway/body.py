"""A request body on its way upstream, and how much of bodies one task's gateway may hold.

A body streams: each piece read from the container goes upstream before the next is read, so a
connection costs the gateway a few pieces whatever the body's size. What is held beyond that
comes out of the task's ``ByteBudget``: a small body gathered whole (sent in one write, the
common case), and the copy of a streamed body kept to replay it after a 401. When the budget is
spent, a body streams without a copy, and a 401 on it is passed on after the refresh (the CLI
retries once by itself, and its retry gets the fresh credential).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from .http1 import READ_SIZE, HttpConnection, HttpError

GATHER_BYTES = 256 * 1024  # a body up to this size is read whole before it is sent


class ByteBudget:
    """Request-body bytes one task's gateway holds at once, over all its connections. Used
    on the gateway's loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        self.peak = max(self.peak, self.held)
        return True

    def give(self, size: int) -> None:
        self.held -= size


class RequestBody:
    """One request's body: ``gather`` reads a small one whole, ``payload`` is then either those
    bytes or a stream of pieces; ``payload`` again, after a refused first attempt, replays it
    (when ``replayable``). ``release`` gives the budget back."""

    def __init__(self, conn: HttpConnection, budget: ByteBudget, length: int | None) -> None:
        self._conn = conn
        self._budget = budget
        self.length = length  # the declared Content-Length (None: chunked)
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self.replayable = True  # every piece read so far is in _kept
        self.error: HttpError | None = None  # why reading the body failed, if it did
        self._lock = asyncio.Lock()  # one reader of the connection at a time
        self._attempt = 0

    async def gather(self) -> None:
        """Read the body while it stays within GATHER_BYTES and the budget: all of it for the
        common small request, else its start (the rest streams)."""
        conn = self._conn
        while not conn.body_done and self._kept_bytes < GATHER_BYTES:
            if not self._budget.take(READ_SIZE):  # room for the largest piece, before reading
                return
            try:
                piece = await conn.body_piece()
            except HttpError:
                self._budget.give(READ_SIZE)
                raise
            self._budget.give(READ_SIZE - len(piece))
            if piece:
                self._kept.append(piece)
                self._kept_bytes += len(piece)

    @property
    def whole(self) -> bool:
        return self._conn.body_done and self.replayable

    def payload(self) -> bytes | AsyncIterator[bytes]:
        """The body to send: its bytes when small and all here, else its pieces as they come
        (those already here first)."""
        if self.whole and self._kept_bytes <= GATHER_BYTES:
            return self._kept[0] if len(self._kept) == 1 else b"".join(self._kept)
        return self._pieces()

    def _keep(self, piece: bytes) -> bool:
        if not self._budget.take(len(piece)):
            return False
        self._kept.append(piece)
        self._kept_bytes += len(piece)
        return True

    def _fits(self) -> bool:
        """Whether the rest of a body of declared length can be kept (a chunked one is kept
        until the budget runs out)."""
        if self.length is None:
            return True
        return self.length - self._kept_bytes <= self._budget.limit - self._budget.held

    def _copy_free(self) -> None:
        self.replayable = False
        self._budget.give(self._kept_bytes)
        self._kept.clear()
        self._kept_bytes = 0

    async def _pieces(self) -> AsyncIterator[bytes]:
        self._attempt += 1
        attempt = self._attempt
        async with self._lock:  # an earlier attempt still reading finishes its piece first
            here = list(self._kept)
        if attempt == 1 and not self._fits():
            self.replayable = False  # it could never all be kept: the rest goes without a copy
        for piece in here:
            yield piece
        if not self.replayable:
            self._copy_free()
        while True:
            async with self._lock:
                if attempt != self._attempt:
                    return  # a replay took over the connection
                piece = await self._pull(record=attempt == 1)
            if not piece:
                return
            yield piece

    async def _pull(self, *, record: bool) -> bytes:
        try:
            piece = await self._conn.body_piece()
        except HttpError as exc:
            self.error = exc
            raise
        if piece and record and self.replayable and not self._keep(piece):
            self._copy_free()  # every piece kept so far has gone out: only the replay is lost
        return piece

    def release(self) -> None:
        self._copy_free()
