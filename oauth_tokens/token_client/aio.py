"""The many-credentials refresh's transport: aiohttp on an event loop, one ClientSession shared
by every refresh of a run. The rules are in rules.py (shared with the requests transport,
sync.py); this only sends and reports back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp

from .config import RefreshConfig, TokenGrant
from .rules import RefreshAttempts

# A settings mistake, not a network failure: never retried.
_BAD_URL_ERRORS = (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)


def _never_sent(exc: BaseException) -> bool:
    """Whether the request certainly never left, as sync.py's rule: no connection was made
    (refused, unreachable, DNS, connect timeout). A read timeout (SocketTimeoutError), a
    disconnect, TLS or a proxy may come after the request was sent."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return True
    return isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
        exc, (aiohttp.ClientSSLError, aiohttp.ClientProxyConnectionError)
    )


def token_session_new(*, concurrency: int) -> aiohttp.ClientSession:
    """A session for a run of refreshes: at most `concurrency` connections, reused when the
    server keeps them alive. Create and close it inside the running event loop."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    # No cookies: a token endpoint has no business setting state between refreshes.
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


async def token_refresh_request_async(
    *,
    refresh_token: str,
    config: RefreshConfig,
    session: aiohttp.ClientSession,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    deadline: float | None = None,
) -> TokenGrant:
    """token_refresh_request on an event loop: the same request, retries and limits.

    deadline (on `clock`): give up by then even if config.max_total_seconds would allow more
    (a batch refresh must finish inside its claim). Raises RefreshError.
    """
    attempts = RefreshAttempts(
        refresh_token=refresh_token,
        config=config,
        clock=clock,
        deadline=deadline,
    )
    request = attempts.request
    while True:
        timeout = attempts.start()
        try:
            async with session.post(
                request.url,
                data=request.body,
                headers=request.headers,
                # Per connect and per read, as requests' (connect, read) timeout.
                timeout=aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout),
                allow_redirects=False,
            ) as response:
                body = await response.read()
        except _BAD_URL_ERRORS as exc:
            raise attempts.bad_url(exc) from None
        # TimeoutError: aiohttp's ServerTimeoutError (connect or read) is one too.
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            timed_out = timeout if isinstance(exc, TimeoutError) else None
            attempts.send_failed(exc, timeout=timed_out, never_sent=_never_sent(exc))
        else:
            grant = attempts.answered(
                status=response.status,
                retry_after=response.headers.get("Retry-After"),
                body=body,
                content_type=response.headers.get("Content-Type"),
            )
            if grant is not None:
                return grant
        await sleep(attempts.wait())
