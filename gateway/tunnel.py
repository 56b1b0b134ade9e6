"""Egress through the gateway: ``CONNECT host:port`` tunnels and absolute-form plain-HTTP
proxy requests, each decided by gateway.egress and connected to the very address it checked.

A refusal is one line in the task log (``egress refused: host:port (reason)``) and a 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from .egress import EgressDecision, EgressPolicy, Resolver, egress_resolve_check
from .http1 import HttpError, Request, answer, body_read

_CONNECT_TIMEOUT = 15.0
_PIPE_CHUNK = 256 * 1024


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def authority_parse(target: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` of a CONNECT request (the port is required)."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = target.rpartition(":")
    if not host or not port_text.isdigit() or len(port_text) > 5:
        raise HttpError(400, "CONNECT needs host:port")
    return host, int(port_text)


class Egress:
    def __init__(
        self, *, policy: EgressPolicy, resolver: Resolver, on_log: Callable[[str], None]
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._log = on_log

    async def _decide(
        self, host: str, port: int, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        decision = await egress_resolve_check(
            host=host, port=port, policy=self._policy, resolver=self._resolver
        )
        if not decision.allowed:
            self._log(decision.log_line)
            await answer(writer, 403, decision.log_line, close=True)
            return None
        upstream = await _open(decision)
        if upstream is None:
            self._log(f"egress failed: {host}:{port} (could not connect)")
            await answer(writer, 502, f"could not connect to {host}:{port}", close=True)
        return upstream

    async def connect(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A CONNECT tunnel; the connection carries nothing else afterwards."""
        try:
            host, port = authority_parse(request.target)
        except HttpError as exc:
            self._log(f"egress refused: {request.target[:200]} (malformed CONNECT target)")
            await answer(writer, 403, exc.message, close=True)
            return
        upstream = await self._decide(host, port, writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await _pipe_both(reader, writer, up_reader, up_writer)

    async def plain(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One absolute-form ``http://`` request, relayed with ``Connection: close``; the
        client connection closes after the answer."""
        url = urlsplit(request.target)
        try:
            port = url.port or 80
        except ValueError:
            port = 0
        host = url.hostname or ""
        if url.scheme != "http" or not host or url.username or url.password:
            self._log(f"egress refused: {request.target[:200]} (malformed proxy request)")
            await answer(writer, 403, "malformed proxy request", close=True)
            return
        try:
            body = await body_read(reader, request)
        except HttpError as exc:
            await answer(writer, exc.status, exc.message, close=True)
            return
        upstream = await self._decide(host, port, writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        drop = request.connection_headers() | {"host", "content-length", "expect"}
        authority = f"[{host}]" if ":" in host else host
        if url.port:
            authority += f":{url.port}"
        lines = [
            f"{request.method} {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1",
            f"Host: {authority}",
        ]
        lines += [f"{name}: {value}" for name, value in request.headers if name not in drop]
        if body or request.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        try:
            await up_writer.drain()
            while data := await up_reader.read(_PIPE_CHUNK):
                writer.write(data)
                await writer.drain()
        finally:
            up_writer.close()


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
