"""The Anthropic route: origin-form requests on the gateway socket go to the model API, with the
placeholder checked and swapped for the real credential, and the answer streamed back as it
arrives.

Only the calls the real CLI makes are forwarded. With non-essential traffic off, Claude Code
2.1.332 through ``ANTHROPIC_BASE_URL`` sends ``POST /v1/messages?beta=true`` and nothing else
(docs/claude-cli-contract.md#messages-api-through-a-base-url; re-observed by
tests/agent_image/test_real_cli.py). ``/v1/messages/count_tokens`` is the same API with the
same credential and is allowed for the CLI's token counting; every other path is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from .auth import (
    CredentialProvider,
    CredentialUnavailable,
    UpstreamAuth,
    placeholder_matches,
    upstream_headers,
)
from .http1 import HttpError, Request, answer, body_read, response_head
from .usage import UsageMeter

logger = logging.getLogger("gateway")

ALLOWED_CALLS = frozenset({("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens")})
# Response headers we re-frame (the body is decoded and sent chunked) or never pass on.
_RESPONSE_DROP = frozenset({"content-length", "content-encoding"})
_WRITE_HIGH_WATER = 256 * 1024
_DISCARD_MAX = 1024 * 1024
_DISCARD_SECONDS = 5.0


class ModelRoute:
    def __init__(
        self,
        *,
        api_url: str,
        auth: UpstreamAuth,
        provider: CredentialProvider,
        placeholder: str,
        on_log: Callable[[str], None],
        meter: UsageMeter,
        session: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._auth = auth
        self._provider = provider
        self._placeholder = placeholder
        self._log = on_log
        self._meter = meter
        self._session = session

    async def handle(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; True when the connection may carry another."""
        target = request.target
        # Exactly one "/" first: urlsplit reads "//evil.example/v1/messages" as a host and
        # the path "/v1/messages". Such a target stays a whole path, which no call matches.
        parts = urlsplit(target) if not target.startswith("//") else None
        path = parts.path if parts is not None else target.split("?", 1)[0]
        query = parts.query if parts is not None else ""
        if not placeholder_matches(request.headers, self._placeholder):
            self._log(
                f"model request refused: {request.method} {path} without this task's "
                "placeholder credential"
            )
            await _discard_body(reader, request)
            await answer(
                writer, 401, "The gateway refused this credential.", close=True, api_error=True
            )
            return False
        if (request.method, path) not in ALLOWED_CALLS:
            self._log(
                f"model request refused: {request.method} {path} is not a call Claude Code needs"
            )
            await _discard_body(reader, request)
            await answer(
                writer,
                403,
                f"The gateway does not forward {request.method} {path}.",
                close=True,
                api_error=True,
            )
            return False
        if (request.header("expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = await body_read(reader, request)
        except HttpError as exc:
            await answer(writer, exc.status, exc.message, close=True, api_error=True)
            return False
        keep_alive = request.keep_alive
        try:
            # In memory and not near expiry (nearly always): no hop to a worker thread.
            secret = self._provider.cached()
            if secret is None:
                secret = await asyncio.to_thread(self._provider.current)
        except Exception as exc:  # noqa: BLE001  any failure is a 503 to the agent, named in the log
            why = str(exc) if isinstance(exc, CredentialUnavailable) else type(exc).__name__
            self._log(f"model request failed: no usable credential ({why})")
            await answer(
                writer,
                503,
                "The gateway has no usable credential for this task.",
                close=not keep_alive,
                api_error=True,
            )
            return keep_alive
        return await self._forward(request, body, secret, writer, path, query, keep_alive)

    async def _forward(
        self,
        request: Request,
        body: bytes,
        secret: str,
        writer: asyncio.StreamWriter,
        path: str,
        query: str,
        keep_alive: bool,
    ) -> bool:
        # From the checked path and its query only, never the raw target.
        url = self._api_url + path + (f"?{query}" if query else "")
        drop = request.connection_headers()
        for attempt in (1, 2):
            headers = upstream_headers(request.headers, drop=drop, auth=self._auth, secret=secret)
            try:
                response = await self._session().request(
                    request.method, url, headers=headers, data=body, allow_redirects=False
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._log(f"model request failed: the API is unreachable ({type(exc).__name__})")
                await answer(
                    writer,
                    502,
                    "The gateway could not reach the model API.",
                    close=not keep_alive,
                    api_error=True,
                )
                return keep_alive
            async with response:
                if response.status == 401 and self._auth.kind == "oauth" and attempt == 1:
                    # The CLI would refresh and retry by itself; inside the container it
                    # cannot, so the gateway does it once for it.
                    fresh = await asyncio.to_thread(self._provider.refresh_after_401, secret)
                    if fresh and fresh != secret:
                        await response.read()
                        self._log(
                            "model API answered 401: refreshed the OAuth token and "
                            "replayed the request"
                        )
                        secret = fresh
                        continue
                    self._log("model API answered 401 and the OAuth token could not be refreshed")
                return await self._relay(response, writer, path, keep_alive)
        return keep_alive  # not reached: the second attempt always relays

    async def _relay(
        self,
        response: aiohttp.ClientResponse,
        writer: asyncio.StreamWriter,
        path: str,
        keep_alive: bool,
    ) -> bool:
        """Stream the answer to the client chunk by chunk as it arrives (never buffered)."""
        drop = _RESPONSE_DROP | _connection_names(response)
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in response.raw_headers
            if name.decode("latin-1").lower() not in drop
        ]
        headers.append(("transfer-encoding", "chunked"))
        if not keep_alive:
            headers.append(("connection", "close"))
        counter = self._meter.response(
            status=response.status,
            headers=response.headers,
            content_type=response.headers.get("content-type", ""),
            is_message=path == "/v1/messages",
        )
        # Writes are coalesced only with what has already arrived, never by waiting: the head
        # with the body bytes that came with it, the last chunk with the end of the body.
        pending = response_head(response.status, headers, reason=response.reason or "")
        content = response.content
        try:
            transport = writer.transport
            chunk = content.read_nowait()
            while True:
                if chunk:
                    pending += b"%x\r\n%b\r\n" % (len(chunk), chunk)
                ended = content.at_eof()
                if ended:
                    pending += b"0\r\n\r\n"
                writer.write(pending)
                pending = b""
                if chunk:
                    counter.feed(chunk)  # after the write: counting never delays a byte
                if ended:
                    break
                if transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                    await writer.drain()  # a slow reader: wait rather than buffer without end
                chunk = await content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The answer is cut: end the client's connection without the last chunk so it
            # sees a broken response, not a short complete one.
            if pending:
                writer.write(pending)
            self._log(f"model response cut off by the API ({type(exc).__name__})")
            return False
        finally:
            counter.finish()
        await writer.drain()
        return keep_alive


async def _discard_body(reader: asyncio.StreamReader, request: Request) -> None:
    """Read a refused request's (small) body before answering, so the client is not cut off
    mid-send and sees the refusal rather than a broken pipe."""
    length = request.header("content-length") or ""
    if request.header("transfer-encoding") or not length.isdigit() or int(length) > _DISCARD_MAX:
        return
    with contextlib.suppress(HttpError, TimeoutError, ConnectionError):
        async with asyncio.timeout(_DISCARD_SECONDS):
            await body_read(reader, request)


def _connection_names(response: aiohttp.ClientResponse) -> set[str]:
    from .http1 import HOP_BY_HOP

    named = {
        token.strip().lower()
        for value in response.headers.getall("connection", [])
        for token in value.split(",")
    }
    return set(HOP_BY_HOP) | named
