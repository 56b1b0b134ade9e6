"""The message endpoint on a task's gateway: ``GET /_runner/messages?after=N&wait=S[&final=1]``,
the further user messages a running agent asks for (agent/README.md, "Messages while running").

The messages live with the task, outside gateway/: a ``MessageBox`` the runner passes in reads
them. Its calls may block (a database), so they run in a worker thread, and a long poll asks
again every ``poll_seconds`` until something is there or ``wait`` is over.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs

from .auth import placeholder_matches
from .http1 import HttpConnection, Request, response_head

MESSAGES_PATH = "/_runner/messages"
MAX_WAIT_SECONDS = 25.0
POLL_SECONDS = 1.0
# Under the container's AGENT_MESSAGES_MAX_BYTES (1 MiB): more waits for the next poll.
ANSWER_MAX_BYTES = 512 * 1024
_DISCARD_MAX = 64 * 1024
_AFTER_MAX = 2**53 - 1


@dataclass(frozen=True)
class Delivery:
    """What a message box has for the container: messages after ``after`` (seq, text), oldest
    first, and whether the channel is closed (no more will come in this run)."""

    messages: list[tuple[int, str]] = field(default_factory=list)
    closed: bool = False


class MessageBox(Protocol):
    def fetch(self, *, after: int, final: bool) -> Delivery:
        """The messages after ``after`` (the container has every one up to it). ``final``: the
        agent has answered all it was given; with nothing newer, close the channel for good."""
        ...


def poll_query_parse(query: str) -> tuple[int, float, bool] | None:
    """(after, wait, final) from the query, or None when it is not one the container sends."""
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=True, max_num_fields=3)
    except ValueError:
        return None
    if set(values) - {"after", "wait", "final"} or any(len(v) != 1 for v in values.values()):
        return None
    after_raw = values.get("after", ["0"])[0]
    wait_raw = values.get("wait", ["0"])[0]
    if not (after_raw.isascii() and after_raw.isdigit() and len(after_raw) <= 16):
        return None
    if not (wait_raw.isascii() and wait_raw.isdigit() and len(wait_raw) <= 6):
        return None
    after = int(after_raw)
    if after > _AFTER_MAX:
        return None
    final = values.get("final", ["0"])[0]
    if final not in ("0", "1"):
        return None
    return after, min(float(wait_raw), MAX_WAIT_SECONDS), final == "1"


def _body(delivery: Delivery) -> bytes:
    lines: list[bytes] = []
    size = 0
    for seq, text in delivery.messages:
        line = json.dumps({"seq": seq, "type": "message", "text": text}).encode() + b"\n"
        if lines and size + len(line) > ANSWER_MAX_BYTES:
            return b"".join(lines)  # the rest with the next poll; no end yet
        lines.append(line)
        size += len(line)
    if delivery.closed:
        lines.append(b'{"type": "end"}\n')
    return b"".join(lines)


class MessageRoute:
    def __init__(
        self,
        *,
        box: MessageBox,
        placeholder: str,
        on_log: Callable[[str], None],
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._box = box
        self._placeholder = placeholder
        self._log = on_log
        self._poll_seconds = poll_seconds

    async def handle(self, request: Request, query: str, conn: HttpConnection) -> bool:
        """Answer one poll; the connection then closes (the container asks with close)."""
        await conn.body_discard(limit=_DISCARD_MAX, seconds=5.0)
        if not placeholder_matches(request.headers, self._placeholder):
            self._log("message poll refused: without this task's placeholder credential")
            await self._answer(conn, 401, b"")
            return False
        if request.method != "GET":
            await self._answer(conn, 405, b"")
            return False
        parsed = poll_query_parse(query)
        if parsed is None:
            self._log("message poll refused: a query the container does not send")
            await self._answer(conn, 400, b"")
            return False
        after, wait, final = parsed
        delivery = await self._wait_for(after, wait, final)
        if delivery.messages or (delivery.closed and not final):
            await self._answer(conn, 200, _body(delivery))
        else:
            await self._answer(conn, 204, b"")
        return False

    async def _wait_for(self, after: int, wait: float, final: bool) -> Delivery:
        deadline = time.monotonic() + (0.0 if final else wait)
        while True:
            delivery = await asyncio.to_thread(self._box.fetch, after=after, final=final)
            left = deadline - time.monotonic()
            if delivery.messages or delivery.closed or left <= 0:
                return delivery
            await asyncio.sleep(min(self._poll_seconds, left))

    @staticmethod
    async def _answer(conn: HttpConnection, status: int, body: bytes) -> None:
        headers = [("content-length", str(len(body))), ("connection", "close")]
        if body or status == 200:
            headers.insert(0, ("content-type", "application/x-ndjson"))
        conn.writer.write(response_head(status, headers) + body)
        await conn.writer.drain()
