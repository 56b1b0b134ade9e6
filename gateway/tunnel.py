"""Egress through the gateway: ``CONNECT host:port`` tunnels and absolute-form plain-HTTP
proxy requests, each decided by the egress rules (common.netpolicy) and connected to the very
address it checked.

A refusal is one line in the task log (``egress refused: host:port (reason)``) and a 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from common.netpolicy import EgressDecision, EgressPolicy, Resolver, egress_resolve_check

from .http1 import HttpConnection, HttpError, Request, log_safe

_CONNECT_TIMEOUT = 15.0
_PIPE_CHUNK = 256 * 1024
_DISCARD_MAX = 1024 * 1024
_DISCARD_SECONDS = 5.0
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def authority_parse(target: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` of a CONNECT request (the port is required, ASCII
    digits only: ``str.isdigit`` alone also takes "¹")."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = target.rpartition(":")
    if not host or not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise HttpError(400, "CONNECT needs host:port")
    return host, int(port_text)


@dataclass(frozen=True)
class ProxyTarget:
    """Where an absolute-form ``http://`` request goes."""

    host: str
    port: int
    authority: str  # the Host header for the upstream
    path: str  # origin-form: path and query


def proxy_target_parse(target: str) -> ProxyTarget | None:
    """None unless ``target`` is a plain ``http://`` URL with a host and no user info."""
    url = urlsplit(target)
    try:
        port = url.port or 80
    except ValueError:
        return None
    host = url.hostname or ""
    if url.scheme != "http" or not host or url.username or url.password:
        return None
    authority = f"[{host}]" if ":" in host else host
    if url.port:
        authority += f":{url.port}"
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return ProxyTarget(host=host, port=port, authority=authority, path=path)


def upstream_request_head(request: Request, target: ProxyTarget) -> list[tuple[bytes, bytes]]:
    """The proxied request's headers: its own end-to-end ones, the Host of the target, the
    body framing it came with, and ``Connection: close``."""
    drop = request.connection_headers() | {"host", "content-length", "expect"}
    headers = [(b"host", target.authority.encode("ascii"))]
    headers += [
        (name.encode("ascii"), value.encode("latin-1"))
        for name, value in request.headers
        if name not in drop
    ]
    if request.chunked:
        headers.append((b"transfer-encoding", b"chunked"))
    elif request.content_length or request.method in _BODY_METHODS:
        headers.append((b"content-length", str(request.content_length or 0).encode()))
    headers.append((b"connection", b"close"))
    return headers


class Egress:
    def __init__(
        self, *, policy: EgressPolicy, resolver: Resolver, on_log: Callable[[str], None]
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._log = on_log

    async def _refuse(self, conn: HttpConnection, status: int, line: str, message: str) -> None:
        self._log(line)
        await conn.body_discard(limit=_DISCARD_MAX, seconds=_DISCARD_SECONDS)
        await conn.answer(status, message, close=True)

    async def _decide(
        self, host: str, port: int, conn: HttpConnection
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        decision = await egress_resolve_check(
            host=host, port=port, policy=self._policy, resolver=self._resolver
        )
        if not decision.allowed:
            await self._refuse(conn, 403, decision.log_line, decision.log_line)
            return None
        upstream = await _open(decision)
        if upstream is None:
            shown = f"{log_safe(host)}:{port}"
            line = f"egress failed: {shown} (could not connect)"
            await self._refuse(conn, 502, line, f"could not connect to {shown}")
        return upstream

    async def connect(self, request: Request, conn: HttpConnection) -> None:
        """A CONNECT tunnel; the connection carries nothing else afterwards."""
        if request.has_body:
            await conn.answer(400, "a CONNECT request has no body", close=True)
            return
        try:
            host, port = authority_parse(request.target)
        except HttpError as exc:
            line = f"egress refused: {log_safe(request.target)} (malformed CONNECT target)"
            await self._refuse(conn, 403, line, exc.message)
            return
        upstream = await self._decide(host, port, conn)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        conn.writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        if early := conn.tunnel_start():
            up_writer.write(early)  # what the client sent before it saw the 200
        await _pipe_both(conn.reader, conn.writer, up_reader, up_writer)

    async def plain(self, request: Request, conn: HttpConnection) -> None:
        """One absolute-form ``http://`` request, relayed with ``Connection: close``; the
        client connection closes after the answer."""
        target = proxy_target_parse(request.target)
        if target is None:
            line = f"egress refused: {log_safe(request.target)} (malformed proxy request)"
            await self._refuse(conn, 403, line, "malformed proxy request")
            return
        upstream = await self._decide(target.host, target.port, conn)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        try:
            await _request_send(request, target, conn, up_writer)
            while data := await up_reader.read(_PIPE_CHUNK):
                conn.writer.write(data)
                await conn.writer.drain()
        except HttpError as exc:
            await conn.answer(exc.status, exc.message, close=True)
        finally:
            up_writer.close()


async def _request_send(
    request: Request, target: ProxyTarget, conn: HttpConnection, up_writer: asyncio.StreamWriter
) -> None:
    """Frame the request for the upstream with h11 and stream its body there as it comes."""
    framing = h11.Connection(h11.CLIENT)
    try:
        event = h11.Request(
            method=request.method,
            target=target.path,
            headers=upstream_request_head(request, target),
        )
        up_writer.write(framing.send(event) or b"")
        if request.expect_continue:
            conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        while piece := await conn.body_piece():
            up_writer.write(framing.send(h11.Data(data=piece)) or b"")
            await up_writer.drain()
        up_writer.write(framing.send(h11.EndOfMessage()) or b"")
    except h11.LocalProtocolError as exc:
        raise HttpError(400, f"cannot relay this request: {exc}") from None
    await up_writer.drain()


async def _open(
    decision: EgressDecision,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Connect to the first checked address that answers (no second DNS lookup)."""
    for address in decision.addresses:
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT):
                return await asyncio.open_connection(address, decision.port)
        except (OSError, TimeoutError):
            continue
    return None


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_PIPE_CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()  # half-close: the other direction may still be talking
    except (ConnectionError, OSError):
        dst.close()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    try:
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
    finally:
        up_writer.close()
        with contextlib.suppress(Exception):
            await up_writer.wait_closed()
