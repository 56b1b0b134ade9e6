"""The single refresh's transport: requests, blocking, one Session per thread. The rules are in
rules.py (shared with the aiohttp transport, aio.py); this only sends and reports back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests
from urllib3.exceptions import ConnectTimeoutError

from .config import RefreshConfig, TokenGrant
from .rules import RefreshAttempts

# A settings mistake, not a network failure: never retried.
_BAD_URL_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)

_local = threading.local()


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request certainly never left: no connection was made (refused, unreachable,
    DNS, connect timeout). urllib3 reports those as ConnectTimeoutError or its subclass
    NewConnectionError inside the MaxRetryError that requests wraps; anything else (a read
    timeout, a reset, TLS, a proxy) may come after the request was sent."""
    if isinstance(exc, (requests.exceptions.ProxyError, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or not exc.args:
        return False
    return isinstance(getattr(exc.args[0], "reason", None), ConnectTimeoutError)


def _thread_session() -> requests.Session:
    """One session per thread: connections and adapters are reused across refreshes."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def token_refresh_request(
    *,
    refresh_token: str,
    config: RefreshConfig,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TokenGrant:
    """Exchange a refresh token for a new grant, retrying transient failures (RefreshAttempts
    says which and how long to wait; never a request that may have reached the endpoint).
    Raises RefreshError."""
    attempts = RefreshAttempts(refresh_token=refresh_token, config=config, clock=clock)
    http = session if session is not None else _thread_session()
    request = attempts.request
    while True:
        timeout = attempts.start()
        try:
            response = http.post(
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
            )
        except _BAD_URL_ERRORS as exc:
            raise attempts.bad_url(exc) from None
        except requests.RequestException as exc:
            timed_out = timeout if isinstance(exc, requests.Timeout) else None
            attempts.send_failed(exc, timeout=timed_out, never_sent=_never_sent(exc))
        else:
            with response:
                grant = attempts.answered(
                    status=response.status_code,
                    retry_after=response.headers.get("Retry-After"),
                    body=response.content,
                    content_type=response.headers.get("Content-Type"),
                )
            if grant is not None:
                return grant
        sleep(attempts.wait())
