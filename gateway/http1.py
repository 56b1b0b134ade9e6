"""Just enough HTTP/1.1 server side for the gateway socket: read a request head, read its body,
write a response head or a small complete answer.

Why not an HTTP server library: the same socket serves CONNECT tunnels, absolute-form proxy
requests and origin-form API requests, on one keep-alive connection; owning the framing keeps
each of those a few plain lines. Anything ambiguous (both Content-Length and chunked, differing
lengths, folded headers) is refused, as request smuggling hides in exactly those.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024  # a model request with images and long context fits

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
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


class HttpError(Exception):
    """A request we answer with ``status`` and then close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]  # names lower-cased, in arrival order

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def header(self, name: str) -> str | None:
        found = self.header_all(name)
        return found[0] if found else None

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for v in self.header_all("connection") for t in v.split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def connection_headers(self) -> frozenset[str]:
        """Hop-by-hop names: the fixed ones plus those the Connection header lists."""
        named = {t.strip().lower() for v in self.header_all("connection") for t in v.split(",")}
        return HOP_BY_HOP | frozenset(named)


async def request_head_read(reader: asyncio.StreamReader) -> Request | None:
    """The next request head on the connection; None when the client closed it cleanly."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    while lines and lines[0] == "":  # tolerated empty lines before a request (RFC 9112 2.2)
        lines.pop(0)
    if not lines:
        raise HttpError(400, "empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, "only HTTP/1.1 is spoken here")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise HttpError(400, "folded header lines are not accepted")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise HttpError(400, "malformed header line")
        headers.append((name.lower(), value.strip(" \t")))
    return Request(method, target, version, headers)


async def body_read(reader: asyncio.StreamReader, request: Request) -> bytes:
    """The whole request body (Content-Length or chunked), at most MAX_BODY_BYTES."""
    encodings = request.header_all("transfer-encoding")
    lengths = request.header_all("content-length")
    if encodings:
        if lengths:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if ",".join(encodings).strip().lower() != "chunked":
            raise HttpError(501, "only chunked transfer coding is supported")
        return await _chunked_read(reader)
    if not lengths:
        return b""
    values = {v.strip() for value in lengths for v in value.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise HttpError(400, "invalid Content-Length")
    length = int(values.pop())
    if length > MAX_BODY_BYTES:
        raise HttpError(413, "request body too large")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise HttpError(400, "request body shorter than its Content-Length") from None


async def _chunked_read(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    try:
        while True:
            line = await reader.readuntil(b"\r\n")
            size_text = line[:-2].split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16:
                raise HttpError(400, "malformed chunk size")
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError(400, "malformed chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailer fields: dropped
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise HttpError(413, "request body too large")
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise HttpError(400, "malformed chunk")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise HttpError(400, "incomplete chunked body") from None


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
