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
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from .auth import (
    CredentialProvider,
    CredentialUnavailable,
    UpstreamAuth,
    placeholder_matches,
    upstream_headers,
)
from .body import ByteBudget, RequestBody
from .http1 import HOP_BY_HOP, HttpConnection, HttpError, Request, log_safe, reason_phrase
from .usage import UsageMeter

logger = logging.getLogger("gateway")

ALLOWED_CALLS = frozenset({("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens")})
# Response headers we re-frame (the body is decoded and sent chunked) or never pass on.
_RESPONSE_DROP = frozenset({b"content-length", b"content-encoding"}) | frozenset(
    name.encode() for name in HOP_BY_HOP
)
_WRITE_HIGH_WATER = 256 * 1024
_DISCARD_MAX = 1024 * 1024
_DISCARD_SECONDS = 5.0
# A 403 is about the credential only when the API's error says the OAuth token was revoked
# (docs/claude-cli-contract.md#what-the-server-trusts): any other 403 is about the request,
# which the container chose. That error is a short JSON object: a 403's first bytes tell.
_REVOKED = "OAuth token has been revoked"
_REFUSAL_HEAD_MAX = 2048


@dataclass(frozen=True)
class RouteCredential:
    """Who may use the model route (the placeholder) and what goes upstream in its place."""

    auth: UpstreamAuth
    provider: CredentialProvider
    placeholder: str


@dataclass
class _Call:
    """One allowed request on its way: where it goes and its body."""

    request: Request
    url: str
    is_message: bool
    body: RequestBody
    keep_alive: bool


def path_query(target: str) -> tuple[str, str]:
    # Exactly one "/" first: urlsplit reads "//evil.example/v1/messages" as a host and the
    # path "/v1/messages". Such a target stays a whole path, which no call matches.
    if target.startswith("//"):
        return target.split("?", 1)[0], ""
    parts = urlsplit(target)
    return parts.path, parts.query


class ModelRoute:
    def __init__(
        self,
        *,
        api_url: str,
        credential: RouteCredential,
        on_log: Callable[[str], None],
        meter: UsageMeter,
        session: Callable[[], aiohttp.ClientSession],
        budget: ByteBudget,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._auth = credential.auth
        self._provider = credential.provider
        self._placeholder = credential.placeholder
        self._log = on_log
        self._meter = meter
        self._session = session
        self._budget = budget

    def _refusal(self, request: Request, path: str) -> tuple[int, str, str] | None:
        """(status, answer, log line) when this request may not go to the API."""
        if not placeholder_matches(request.headers, self._placeholder):
            shown = f"{request.method} {log_safe(path)}"
            return (
                401,
                "The gateway refused this credential.",
                f"model request refused: {shown} without this task's placeholder credential",
            )
        if (request.method, path) not in ALLOWED_CALLS:
            shown = f"{request.method} {log_safe(path)}"
            return (
                403,
                f"The gateway does not forward {shown}.",
                f"model request refused: {shown} is not a call Claude Code needs",
            )
        return None

    async def handle(self, request: Request, conn: HttpConnection) -> bool:
        """Serve one request; True when the connection may carry another."""
        path, query = path_query(request.target)
        refusal = self._refusal(request, path)
        if refusal is not None:
            status, message, line = refusal
            self._log(line)
            await conn.body_discard(limit=_DISCARD_MAX, seconds=_DISCARD_SECONDS)
            await conn.answer(status, message, close=True, api_error=True)
            return False
        if request.expect_continue:
            conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        call = _Call(
            request=request,
            # From the checked path and its query only, never the raw target.
            url=self._api_url + path + (f"?{query}" if query else ""),
            is_message=path == "/v1/messages",
            body=RequestBody(conn, self._budget, request.content_length),
            keep_alive=request.keep_alive,
        )
        try:
            return await self._send(call, conn) and conn.body_done
        finally:
            call.body.release()

    async def _send(self, call: _Call, conn: HttpConnection) -> bool:
        try:
            await call.body.gather()
        except HttpError as exc:
            await conn.answer(exc.status, exc.message, close=True, api_error=True)
            return False
        try:
            # In memory and not near expiry (nearly always): no hop to a worker thread.
            secret = self._provider.cached()
            if secret is None:
                secret = await asyncio.to_thread(self._provider.current)
        except Exception as exc:  # noqa: BLE001  any failure is a 503 to the agent, named in the log
            why = str(exc) if isinstance(exc, CredentialUnavailable) else type(exc).__name__
            self._log(f"model request failed: no usable credential ({why})")
            message = "The gateway has no usable credential for this task."
            return await self._fail(call, conn, 503, message)
        return await self._forward(call, conn, secret)

    async def _fail(self, call: _Call, conn: HttpConnection, status: int, message: str) -> bool:
        keep_alive = call.keep_alive and conn.body_done
        await conn.answer(status, message, close=not keep_alive, api_error=True)
        return keep_alive

    async def _forward(self, call: _Call, conn: HttpConnection, secret: str) -> bool:
        request = call.request
        drop = request.connection_headers()
        for attempt in (1, 2):
            headers = upstream_headers(request.headers, drop=drop, auth=self._auth, secret=secret)
            data = call.body.payload()
            if not isinstance(data, bytes) and call.body.length is not None:
                headers["content-length"] = str(call.body.length)
            try:
                response = await self._session().request(
                    request.method, call.url, headers=headers, data=data, allow_redirects=False
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                return await self._unsent(call, conn, exc)
            async with response:
                head = b""
                if response.status in (401, 403):
                    head = await _refusal_head(response)
                    refused = _credential_refused(response.status, head)
                    # A revoked token too: only a renewal can tell it from a dead credential.
                    if refused and attempt == 1:
                        fresh = await self._renewed(secret, call, response.status)
                        if fresh is not None:
                            await response.read()
                            secret = fresh
                            continue
                    elif refused:
                        self._meter.auth_refused_after_refresh()
                        self._log(
                            f"model API answered {response.status} to the replay with the "
                            "refreshed OAuth token"
                        )
                    else:
                        self._log("model API answered 403 about the request, not the credential")
                return await self._relay(response, call, conn, head)
        return False  # not reached: the second attempt always relays

    async def _unsent(self, call: _Call, conn: HttpConnection, exc: BaseException) -> bool:
        """The request could not be sent: the container's body failed, or the API is away."""
        error = call.body.error
        if error is not None:
            self._log(f"model request refused: {error.message}")
            await conn.answer(error.status, error.message, close=True, api_error=True)
            return False
        self._log(f"model request failed: the API is unreachable ({type(exc).__name__})")
        return await self._fail(call, conn, 502, "The gateway could not reach the model API.")

    async def _renewed(self, rejected: str, call: _Call, status: int) -> str | None:
        """A fresh credential to replay with after a 401 or a revoked 403, or None to pass it on."""
        if self._auth.kind != "oauth":
            self._meter.auth_unrenewable()
            return None
        # The CLI would refresh and retry by itself; inside the container it cannot, so the
        # gateway does it once for it.
        try:
            fresh = await asyncio.to_thread(self._provider.refresh_after_401, rejected)
        except Exception as exc:  # noqa: BLE001  a failed refresh passes the answer on, named in the log
            logger.warning("Gateway refresh after a %s failed: %s", status, type(exc).__name__)
            fresh = None
        if not fresh or fresh == rejected:
            self._meter.auth_unrenewable()
            self._log(f"model API answered {status} and the OAuth token could not be refreshed")
            return None
        self._meter.auth_refreshed()
        if not call.body.replayable:
            self._log(
                f"model API answered {status}: refreshed the OAuth token; the request was too "
                f"large to keep for a replay, so the {status} is passed on"
            )
            return None
        self._log(
            f"model API answered {status}: refreshed the OAuth token and replayed the request"
        )
        return fresh

    async def _relay(
        self, response: aiohttp.ClientResponse, call: _Call, conn: HttpConnection, head: bytes
    ) -> bool:
        """Stream the answer to the client chunk by chunk as it arrives (never buffered); head:
        the first bytes of its body, already read to judge a refusal."""
        # An API that answers before it has read the whole body leaves the rest of it on the
        # connection: then the connection ends with this answer.
        keep_alive = call.keep_alive and conn.body_done
        counter = self._meter.response(
            status=response.status,
            headers=response.headers,
            content_type=response.headers.get("content-type", ""),
            is_message=call.is_message,
        )
        # Writes are coalesced only with what has already arrived, never by waiting: the head
        # with the body bytes that came with it, the last chunk with the end of the body.
        pending = _answer_head(response, keep_alive=keep_alive)
        content = response.content
        writer = conn.writer
        transport = writer.transport
        silence = _SilenceWatch(response, self._session().timeout.sock_read)
        try:
            # A refusal's first bytes, read to judge it, go out as the first chunk.
            chunk = head or content.read_nowait()
            while True:
                if chunk:
                    pending += b"%x\r\n%b\r\n" % (len(chunk), chunk)
                ended = content.at_eof()
                if ended:
                    pending += b"0\r\n\r\n"
                transport.write(pending)
                pending = b""
                if chunk:
                    counter.feed(chunk)  # after the write: counting never delays a byte
                if ended:
                    break
                if transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                    # A slow reader: wait rather than buffer without end (not the API's
                    # silence, however long it takes).
                    silence.client_slow = True
                    await writer.drain()
                    silence.client_slow = False
                chunk = await content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The answer is cut: end the client's connection without the last chunk so it
            # sees a broken response, not a short complete one.
            if pending:
                conn.writer.write(pending)
            self._log(_cut_off_line(call, exc))
            return False
        finally:
            silence.stop()
            counter.finish()
        await conn.writer.drain()
        return keep_alive


class _SilenceWatch:
    """Ends an answer whose body the API stops sending: ``seconds`` without a byte (while the
    relay is not waiting for a slow client, ``client_slow``) and the body fails with aiohttp's
    own read timeout. aiohttp's sock_read does the same with a timer cancelled and set again
    at every chunk; this one looks at the byte count ``_STEPS`` times per ``seconds``, so a
    stream of many small events costs one timer, not one per event. sock_read still bounds
    the wait for the head."""

    _STEPS = 8

    def __init__(self, response: aiohttp.ClientResponse, seconds: float | None) -> None:
        self._content = response.content
        self._seconds = seconds
        self.client_slow = False
        self._loop = asyncio.get_running_loop()
        self._seen = self._content.total_bytes
        self._since = self._loop.time()
        self._handle: asyncio.TimerHandle | None = None
        connection = response.connection
        if seconds is None or connection is None or connection.protocol is None:
            return  # no bound asked for, or the whole body is already here
        connection.protocol.read_timeout = None  # for the rest of this answer (as for websockets)
        self._handle = self._loop.call_later(seconds / self._STEPS, self._check)

    def _check(self) -> None:
        assert self._seconds is not None
        now = self._loop.time()
        seen = self._content.total_bytes
        if seen != self._seen or self.client_slow:
            self._seen, self._since = seen, now
        elif now - self._since >= self._seconds:
            silent = f"the model API sent nothing for {self._seconds:g} s"
            self._content.set_exception(aiohttp.SocketTimeoutError(silent))
            return
        self._handle = self._loop.call_later(self._seconds / self._STEPS, self._check)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


async def _refusal_head(response: aiohttp.ClientResponse) -> bytes:
    """The first bytes of a 403's body (up to _REFUSAL_HEAD_MAX), to read its error; b"" for
    any other answer, whose body is left to the relay alone."""
    if response.status != 403:
        return b""
    content = response.content
    head = b""
    try:
        while len(head) < _REFUSAL_HEAD_MAX and not content.at_eof():
            head += await content.read(_REFUSAL_HEAD_MAX - len(head))
    except (aiohttp.ClientError, TimeoutError):
        pass  # the relay meets the same error and cuts the answer off after these bytes
    return head


def _credential_refused(status: int, head: bytes) -> bool:
    """Whether an answer refuses the credential itself: a 401 always; a 403 only when its error
    message says the OAuth token was revoked."""
    if status != 403:
        return status == 401
    try:
        answer = json.loads(head)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or longer than the head
        return False
    error = answer.get("error") if isinstance(answer, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return isinstance(message, str) and message.startswith(_REVOKED)


def _cut_off_line(call: _Call, exc: BaseException) -> str:
    if call.body.error is not None:  # the API stopped answering because the body stopped
        return f"model request cut off: {call.body.error.message}"
    return f"model response cut off by the API ({type(exc).__name__})"


def _answer_head(response: aiohttp.ClientResponse, *, keep_alive: bool) -> bytes:
    """The answer's head for the client: the API's status, its end-to-end headers byte for byte
    as they came, and the chunked framing of the relayed body."""
    named = {
        # aiohttp decodes header values as UTF-8 with surrogateescape: this gives the bytes back.
        token.strip().lower().encode("utf-8", "surrogateescape")
        for value in response.headers.getall("connection", [])
        for token in value.split(",")
    }
    drop = _RESPONSE_DROP | named
    reason = (response.reason or reason_phrase(response.status)).encode("latin-1")
    lines = [b"HTTP/1.1 %d %b" % (response.status, reason)]
    lines += [b"%b: %b" % pair for pair in response.raw_headers if pair[0].lower() not in drop]
    lines.append(b"transfer-encoding: chunked")
    if not keep_alive:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"
