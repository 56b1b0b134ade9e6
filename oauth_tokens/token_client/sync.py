"""The single refresh's transport: requests, blocking, one Session per thread. The rules are in
rules.py (shared with the aiohttp transport, aio.py); this only sends and reports back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from .config import RefreshConfig, TokenGrant
from .rules import RefreshAttempts

# A settings mistake, not a network failure: never retried.
_BAD_URL_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)

_local = threading.local()


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
    says which and how long to wait). Raises RefreshError."""
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
        except requests.Timeout:
            attempts.timed_out(timeout)
        except _BAD_URL_ERRORS as exc:
            raise attempts.bad_url(exc) from None
        except requests.RequestException as exc:
            attempts.connection_failed(exc)
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
