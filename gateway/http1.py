"""The gateway socket's HTTP/1.1: request heads and bodies framed by h11, answers written here.

One connection may carry CONNECT tunnels, absolute-form proxy requests and origin-form API
requests, so the gateway owns the connection and asks h11 (sans-IO) only to frame each request.
Before h11 sees a head, it is checked here for what h11 tolerates and a security boundary must
not: bare CR or LF, NUL and other control characters, folded header lines. After h11, a request
with both Content-Length and Transfer-Encoding is refused too: request smuggling hides in
exactly those. Every refusal is an ``HttpError``: an answer, then the connection closes.

Time and memory are bounded per connection: the head must arrive whole within
``read_timeout`` (and hold at most MAX_HEAD_BYTES), each wait for more of a body lasts at most
``read_timeout``, a kept-alive connection with no request closes after ``idle_timeout``, and a
body is handed on a piece at a time (at most READ_SIZE bytes), never gathered here.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from http import HTTPStatus

import h11

from common.text import text_visible

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024  # a model request with images and long context fits
READ_SIZE = 64 * 1024
_LOG_LIMIT = 200

# Connection-level headers, never forwarded in either direction (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# In a head line: any control character but HT (a CR or LF here is a bare one).
_HEAD_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# While a head is still arriving: what makes it malformed whatever comes next.
_HEAD_EARLY = re.compile(rb"\x00|(?<!\r)\n")
_FOLD = re.compile(rb"\r\n[ \t]")
_CONTROL_NAMES = {0x00: "NUL", 0x0A: "bare LF", 0x0D: "bare CR"}
# The bytes a head line may hold: all but the control characters, HT excepted.
_LINE_BYTES = bytes(b for b in range(256) if (b >= 0x20 and b != 0x7F) or b == 0x09)


class HttpError(Exception):
    """A request we answer with ``status`` and then close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def log_safe(text: str, limit: int = _LOG_LIMIT) -> str:
    """Text from the container, made safe to log: every character that is not printable
    (controls, line and paragraph separators, bidi overrides) becomes a visible escape
    (common.text.text_visible), so it can neither end a log line nor restyle a terminal; cut to
    ``limit`` characters. Applying it twice changes nothing."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return text_visible(text)


@dataclass(frozen=True)
class GatewayLimits:
    """What one task's gateway may cost the worker, whatever its container sends."""

    max_connections: int = 32  # served at once; more wait in the socket's backlog
    buffer_bytes: int = 32 * 1024 * 1024  # request-body bytes held in memory at once
    read_timeout: float = 30.0  # a whole request head; each wait for more of a body
    idle_timeout: float = 300.0  # a kept-alive connection between requests
    api_read_timeout: float = 600.0  # the model API sending nothing, before or within an answer


class Request:
    """A request head, read-only once made. What the route asks of its headers (the framing,
    the Connection tokens, Expect) is worked out once here, in one look at the header names."""

    __slots__ = (
        "chunked",
        "connection_tokens",
        "content_length",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "target",
        "version",
    )

    def __init__(self, method: str, target: str, version: str, headers: list[tuple[str, str]]):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # names lower-cased, in arrival order
        index = dict(headers)  # which names are there, in one pass in C
        self.chunked = "transfer-encoding" in index
        # One value at most: h11 has checked it is plain ASCII digits, and merged repeats.
        length = index.get("content-length")
        self.content_length = int(length) if length is not None else None
        self.expect_continue = "expect" in index and (
            (self.header("expect") or "").lower() == "100-continue"
        )
        self.connection_tokens = (
            frozenset(
                t.strip().lower() for v in self.header_all("connection") for t in v.split(",")
            )
            if "connection" in index
            else frozenset()
        )
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in self.connection_tokens
        else:
            self.keep_alive = "close" not in self.connection_tokens

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def header(self, name: str) -> str | None:
        found = self.header_all(name)
        return found[0] if found else None

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def connection_headers(self) -> frozenset[str]:
        """Hop-by-hop names: the fixed ones plus those the Connection header lists."""
        return HOP_BY_HOP | self.connection_tokens


def head_check(head: bytes) -> None:
    """What h11 would let through in a complete head (up to its blank line): bare CR or LF,
    NUL or another control character in any line, and folded (obs-fold) header lines."""
    # The common case in C: the only control bytes are the line ends, and no line is folded.
    ends = head.count(b"\r\n")
    if head.translate(None, _LINE_BYTES) == b"\r\n" * ends and not _FOLD.search(head):
        return
    lines = head.split(b"\r\n")
    for number, line in enumerate(lines):
        if found := _HEAD_CONTROL.search(line):
            what = _CONTROL_NAMES.get(found.group()[0], "a control character")
            raise HttpError(400, f"{what} in the request head")
        if number and line[:1] in (b" ", b"\t"):
            raise HttpError(400, "folded header lines are not accepted")


def request_from_event(event: h11.Request) -> Request:
    """Our Request from h11's, with the checks h11 leaves to the server."""
    if event.http_version not in (b"1.0", b"1.1"):
        raise HttpError(505, "only HTTP/1.1 is spoken here")
    # h11's own lower-cased names (it keeps them beside the raw ones); names are tokens, so
    # ASCII. The version of h11 is pinned (requirements.txt), and the tests read real heads.
    headers = [
        (name.decode(), value.decode("latin-1")) for _, name, value in event.headers._full_items
    ]
    request = Request(
        event.method.decode("ascii"),
        event.target.decode("ascii"),
        "HTTP/" + event.http_version.decode("ascii"),
        headers,
    )
    # h11 lets Transfer-Encoding win (RFC 9112 6.3); a request carrying both is refused here.
    if request.chunked and request.content_length is not None:
        raise HttpError(400, "both Transfer-Encoding and Content-Length")
    return request


class HttpConnection:
    """One client connection on the gateway socket: requests in, answers out.

    ``request_next`` gives each request head; the route then reads its body with
    ``body_piece`` (or leaves it, and the connection closes after the answer).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limits: GatewayLimits,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._limits = limits
        self._pending = bytearray()  # read, not yet part of a request h11 is framing
        self._h11: h11.Connection | None = None
        self.body_done = True  # the current request's body has all been read
        self._body_bytes = 0
        self._declared: int | None = None  # its Content-Length
        self._expired = False  # a wait for the client ran out of time: the reader has failed

    async def request_next(self) -> Request | None:
        """The next request; None when the client closed the connection, or left it idle,
        between requests. HttpError for a head that is malformed, too large or too slow."""
        if not self.body_done:
            raise RuntimeError("the previous request's body was not read to its end")
        head = await self._head_read()
        if head is None:
            return None
        framing = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        framing.receive_data(head + bytes(self._pending))
        self._pending.clear()
        self._h11 = framing
        event = self._next_event()
        if not isinstance(event, h11.Request):  # a complete head always gives a Request
            raise HttpError(400, "malformed request head")
        request = request_from_event(event)
        self.body_done = False
        self._body_bytes = 0
        self._declared = declared = request.content_length
        if declared is not None and declared > MAX_BODY_BYTES:
            raise HttpError(413, "request body too large")
        if not request.has_body:
            # h11 has framed the head, and its length leaves no body: its end of the message
            # would say no more (it is asked when a body is chunked, where trailers follow).
            self._body_end()
        return request

    async def _head_read(self) -> bytes | None:
        pending = self._pending
        loop = asyncio.get_running_loop()
        while True:
            while pending[:2] == b"\r\n":  # empty lines before a request (RFC 9112 2.2)
                del pending[:2]
            if pending:
                break
            try:
                data = await self._read(loop.time() + self._limits.idle_timeout)
            except TimeoutError:
                return None
            if not data:
                return None
            pending += data
        end = self._head_scan(0)
        if end is None:  # the head is still arriving: it has read_timeout to come whole
            try:
                end = await self._head_end(loop.time() + self._limits.read_timeout)
            except TimeoutError:
                raise HttpError(408, "the request head did not arrive in time") from None
        head = bytes(pending[:end])
        del pending[:end]
        head_check(head[:-4])
        return head

    async def _read(self, deadline: float) -> bytes:
        """The client's next bytes; TimeoutError once the loop's clock reaches ``deadline``.
        The bound is one timer that fails the reader (rather than asyncio.timeout's Python
        context manager, which cancels the task): a few times cheaper, and every wait of a
        request has one. A reader that timed out stays failed, so the connection ends."""
        handle = asyncio.get_running_loop().call_at(deadline, self._expire)
        try:
            data = await self.reader.read(READ_SIZE)
        finally:
            handle.cancel()
        if self._expired:  # the bytes came in the same turn of the loop as the deadline
            raise TimeoutError
        return data

    def _expire(self) -> None:
        self._expired = True
        self.reader.set_exception(TimeoutError())

    def _head_scan(self, scanned: int) -> int | None:
        """Where the head in ``_pending`` ends (after its blank line), if it is all there;
        ``scanned``: how much of it an earlier call has seen."""
        pending = self._pending
        end = pending.find(b"\r\n\r\n", max(0, scanned - 3))
        if end != -1:
            if end + 4 > MAX_HEAD_BYTES:
                raise HttpError(431, "request head too large")
            return end + 4
        if found := _HEAD_EARLY.search(pending, max(0, scanned - 1)):
            what = "NUL" if found.group() == b"\x00" else "bare LF"
            raise HttpError(400, f"{what} in the request head")
        if len(pending) > MAX_HEAD_BYTES:
            raise HttpError(431, "request head too large")
        return None

    async def _head_end(self, deadline: float) -> int:
        pending = self._pending
        while True:
            scanned = len(pending)
            data = await self._read(deadline)
            if not data:
                raise HttpError(400, "incomplete request head")
            pending += data
            if (end := self._head_scan(scanned)) is not None:
                return end

    def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        assert self._h11 is not None
        try:
            return self._h11.next_event()
        except h11.ProtocolError as exc:
            status = exc.error_status_hint if exc.error_status_hint >= 400 else 400
            raise HttpError(status, str(exc) or "malformed request") from None

    async def body_piece(self) -> bytes:
        """The next piece of the current request's body, b"" once all of it has come."""
        if self.body_done:
            return b""
        while True:
            event = self._next_event()
            if isinstance(event, h11.Data):
                if not event.data:
                    continue
                self._body_bytes += len(event.data)
                if self._body_bytes > MAX_BODY_BYTES:
                    raise HttpError(413, "request body too large")
                if self._body_bytes == self._declared:
                    # h11 has given every byte the Content-Length declared: its end of the
                    # message would only confirm it (no trailers without chunked).
                    self._body_end()
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                self._body_end()
                return b""
            await self._receive()

    async def _receive(self) -> None:
        assert self._h11 is not None
        try:
            data = await self._read(asyncio.get_running_loop().time() + self._limits.read_timeout)
        except TimeoutError:
            raise HttpError(408, "the request body did not arrive in time") from None
        self._h11.receive_data(data)  # b"": the client closed; h11 says what that cut short

    def _body_end(self) -> None:
        assert self._h11 is not None
        data, _ = self._h11.trailing_data
        self._pending[:0] = data  # a pipelined next request
        self._h11 = None
        self.body_done = True

    async def body_discard(self, *, limit: int, seconds: float) -> bool:
        """Read and drop a refused request's body when it is small and quick, so the client
        sees the refusal rather than a broken pipe; True when all of it was read."""
        if self._declared is not None and self._declared > limit:
            return False
        try:
            async with asyncio.timeout(seconds):
                read = 0
                while piece := await self.body_piece():
                    read += len(piece)
                    if read > limit:
                        return False
        except (HttpError, TimeoutError, ConnectionError):
            return False
        return True

    def tunnel_start(self) -> bytes:
        """A CONNECT request's head is all there is of it: the bytes that came after it are
        the tunnel's first."""
        data = bytes(self._pending)
        if self._h11 is not None:
            data = self._h11.trailing_data[0] + data
        self._pending.clear()
        self._h11 = None
        self.body_done = True
        return data

    async def answer(
        self, status: int, message: str, *, close: bool, api_error: bool = False
    ) -> None:
        await answer(self.writer, status, message, close=close, api_error=api_error)


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response_head(status: int, headers: list[tuple[str, str]], *, reason: str = "") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason or reason_phrase(status)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def answer(
    writer: asyncio.StreamWriter,
    status: int,
    message: str,
    *,
    close: bool,
    api_error: bool = False,
) -> None:
    """A small complete answer. ``api_error``: the Anthropic error JSON shape, so the CLI shows
    the message as it would show the API's own; otherwise plain text."""
    if api_error:
        kind = {401: "authentication_error", 403: "permission_error"}.get(status, "api_error")
        body = json.dumps({"type": "error", "error": {"type": kind, "message": message}})
        content_type = "application/json"
    else:
        body, content_type = message + "\n", "text/plain; charset=utf-8"
    data = body.encode()
    headers = [("content-type", content_type), ("content-length", str(len(data)))]
    if close:
        headers.append(("connection", "close"))
    writer.write(response_head(status, headers) + data)
    await writer.drain()
