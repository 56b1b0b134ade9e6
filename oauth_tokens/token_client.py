"""HTTP side of a Claude OAuth refresh: one POST to the token endpoint, with bounded retries.

No database and no settings of its own: the caller passes a RefreshConfig built from settings
and stores the TokenGrant. Its one project import is common.logging's redaction, which works
before settings are configured, so this module still runs in a bare process (bench/).

The request mirrors what the real Claude Code CLI sends
(docs/claude-cli-contract.md#refresh-request): a JSON body with grant_type, refresh_token,
client_id and scope. Refresh tokens rotate and are single use, so a 400 invalid_grant is final
and never retried.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from common.logging import REDACTED, secrets_redact

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_SCOPE",
    "DEFAULT_TOKEN_URL",
    "USER_AGENT",
    "RefreshConfig",
    "RefreshError",
    "TokenGrant",
    "redact",
    "token_refresh_request",
]

logger = logging.getLogger("oauth_tokens.token_client")

DEFAULT_TOKEN_URL = "https://platform.claude.com/v1/oauth/token"  # noqa: S105 (a URL)
DEFAULT_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
DEFAULT_SCOPE = (
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
)
USER_AGENT = f"claude-runner-token-refresh/0.1 python-requests/{requests.__version__}"

# Don't start a request (or a wait before one) if less than this would be left for it.
_MIN_ATTEMPT_SECONDS = 0.05
# OAuth error codes (RFC 6749 section 5.2) passed through as RefreshError.code.
_OAUTH_ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)
_MAX_ERROR_FIELD_CHARS = 200

_OPAQUE_RE = re.compile(r"[A-Za-z0-9_-]{20,}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")


_local = threading.local()


def _thread_session() -> requests.Session:
    """One session per thread: connections and adapters are reused across refreshes."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def redact(text: str) -> str:
    """Hide anything that could be a credential in server-supplied text before showing it.

    Layered on common.logging.secrets_redact (the one redaction: token shapes, secret fields,
    configured secrets); added here for text from a remote server: any long opaque run (a token
    of a shape we do not know), control characters, and a length cap.
    """
    text = secrets_redact(text)
    text = _OPAQUE_RE.sub(REDACTED, text)
    # Log/HTML safety: no newlines or control characters from a remote server.
    text = _CONTROL_RE.sub(" ", text).strip()
    if len(text) > _MAX_ERROR_FIELD_CHARS:
        text = text[:_MAX_ERROR_FIELD_CHARS] + "..."
    return text


@dataclass(frozen=True, slots=True)
class RefreshConfig:
    token_url: str = DEFAULT_TOKEN_URL
    client_id: str = DEFAULT_CLIENT_ID
    scope: str = DEFAULT_SCOPE
    timeout_seconds: float = 10.0  # per request, used for both connect and read
    max_attempts: int = 4
    max_total_seconds: float = 30.0  # whole refresh incl. waits
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.timeout_seconds <= 0 or self.max_total_seconds <= 0:
            raise ValueError("timeout_seconds and max_total_seconds must be positive")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0:
            raise ValueError("backoff values must not be negative")


@dataclass(frozen=True, slots=True)
class TokenGrant:
    # Tokens are kept out of repr so a grant can be logged or shown in a traceback safely.
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)  # None: server sent none, keep the old one
    expires_in: int | None
    scopes: tuple[str, ...]
    token_type: str
    account_email: str
    attempts: int


class RefreshError(Exception):
    """A refresh that did not produce a grant.

    permanent=True means the refresh token itself (or the server's view of it) is bad:
    do not retry, mark the credential invalid. permanent=False means try again later.
    The message never contains a token or the request body.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str,
        status: int | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.status = status
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"RefreshError(code={self.code!r}, status={self.status!r}, "
            f"permanent={self.permanent!r}, attempts={self.attempts!r}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments break Exception's default pickling (Celery pickles errors).
        return (
            _rebuild_refresh_error,
            (self.message, self.permanent, self.code, self.status, self.attempts),
        )


def _rebuild_refresh_error(
    message: str, permanent: bool, code: str, status: int | None, attempts: int
) -> RefreshError:
    return RefreshError(message, permanent=permanent, code=code, status=status, attempts=attempts)


@dataclass(slots=True)
class _Failure:
    """One retryable failed attempt, kept to explain the final error."""

    code: str
    status: int | None
    description: str
    retry_after: float | None = None


def token_refresh_request(
    *,
    refresh_token: str,
    config: RefreshConfig,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TokenGrant:
    """Exchange a refresh token for a new grant, retrying transient failures.

    Raises RefreshError. Retries connection errors, timeouts, 5xx and 429 with exponential
    backoff and full jitter (429/5xx Retry-After is honoured), bounded by config.max_attempts
    and config.max_total_seconds; a wait that would cross the deadline is never started.
    """
    if not refresh_token:
        raise RefreshError(
            "No refresh token stored; sign in again (claude setup-token or copy a fresh "
            "credentials file)",
            permanent=True,
            code="invalid_grant",
            attempts=0,
        )
    http = session if session is not None else _thread_session()
    return _refresh_with_retries(refresh_token, config, http, sleep, clock)


def _refresh_with_retries(
    refresh_token: str,
    config: RefreshConfig,
    http: requests.Session,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> TokenGrant:
    started = clock()
    deadline = started + config.max_total_seconds
    body = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": config.client_id,
        "scope": config.scope,
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    host = urlsplit(config.token_url).netloc or config.token_url
    last: _Failure | None = None
    attempt = 0

    while attempt < config.max_attempts:
        remaining = deadline - clock()
        if remaining < _MIN_ATTEMPT_SECONDS:
            raise _deadline_error(config, attempt, last)
        attempt += 1
        # Cap the per-request timeout by what is left, so one slow request can't blow the budget.
        timeout = min(config.timeout_seconds, remaining)
        try:
            response = http.post(
                config.token_url,
                data=json.dumps(body).encode(),
                headers=headers,
                timeout=(timeout, timeout),
                # A redirect would resend the refresh token somewhere else (or as a GET).
                allow_redirects=False,
            )
        except requests.Timeout:
            last = _Failure("timeout", None, f"no answer within {timeout:.1f} s")
            logger.warning(
                "token refresh attempt %d/%d: timeout after %.1f s",
                attempt,
                config.max_attempts,
                timeout,
            )
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
        ) as exc:
            # A settings mistake, not a bad token: don't retry, don't mark the token invalid.
            raise RefreshError(
                f"OAuth token URL setting is not usable ({type(exc).__name__})",
                permanent=False,
                code="connection",
                attempts=attempt,
            ) from None
        except requests.RequestException as exc:
            # Connection refused/reset, DNS, TLS, truncated body: all transient from here.
            last = _Failure("connection", None, f"{type(exc).__name__} talking to {host}")
            logger.warning(
                "token refresh attempt %d/%d: %s",
                attempt,
                config.max_attempts,
                type(exc).__name__,
            )
        else:
            with response:
                outcome = _handle_response(response, attempt, config)
            if isinstance(outcome, TokenGrant):
                return outcome
            last = outcome

        if attempt >= config.max_attempts:
            break
        wait = _next_wait(last, attempt, config)
        remaining = deadline - clock()
        if wait + _MIN_ATTEMPT_SECONDS > remaining:
            if last.code == "rate_limited" and last.retry_after is not None:
                logger.warning(
                    "token refresh: Retry-After %.1f s exceeds remaining %.1f s, giving up",
                    wait,
                    remaining,
                )
                raise RefreshError(
                    f"OAuth token endpoint is rate limiting (HTTP 429); it asked to wait "
                    f"{wait:.0f} s, more than the {max(remaining, 0):.0f} s left; try later",
                    permanent=False,
                    code="rate_limited",
                    status=429,
                    attempts=attempt,
                )
            raise _deadline_error(config, attempt, last)
        logger.info(
            "token refresh attempt %d/%d failed (%s, status %s); waiting %.2f s",
            attempt,
            config.max_attempts,
            last.code,
            last.status,
            wait,
        )
        sleep(wait)

    assert last is not None  # the loop ran at least once (max_attempts >= 1)
    raise RefreshError(
        f"OAuth token endpoint failed after {attempt} attempt(s): {last.description}",
        permanent=False,
        code=last.code,
        status=last.status,
        attempts=attempt,
    )


def _next_wait(last: _Failure, attempt: int, config: RefreshConfig) -> float:
    if last.retry_after is not None:
        return last.retry_after
    # Full jitter: spreads many workers retrying the same endpoint. Not security sensitive.
    cap = min(config.backoff_max_seconds, config.backoff_base_seconds * 2 ** (attempt - 1))
    return random.uniform(0, cap)  # noqa: S311


def _deadline_error(config: RefreshConfig, attempts: int, last: _Failure | None) -> RefreshError:
    detail = f"; last failure: {last.description}" if last else ""
    return RefreshError(
        f"Gave up refreshing the OAuth token after {attempts} attempt(s): the "
        f"{config.max_total_seconds:g} s limit was reached{detail}",
        permanent=False,
        code="deadline",
        status=last.status if last else None,
        attempts=attempts,
    )


def _handle_response(
    response: requests.Response, attempt: int, config: RefreshConfig
) -> TokenGrant | _Failure:
    """Return a grant, a retryable failure, or raise a final RefreshError."""
    status = response.status_code
    logger.debug("token refresh attempt %d/%d: HTTP %d", attempt, config.max_attempts, status)
    if status == 200:
        return _parse_grant(response, attempt)
    if status == 429 or status >= 500:
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        code = "rate_limited" if status == 429 else f"http_{status}"
        what = "rate limited (HTTP 429)" if status == 429 else f"HTTP {status}"
        return _Failure(code, status, what, retry_after)

    error, description = _oauth_error_fields(response)
    if 400 <= status < 500:
        code = error if error in _OAUTH_ERROR_CODES else f"http_{status}"
        raise RefreshError(
            _final_message(status, error, description),
            permanent=True,
            code=code,
            status=status,
            attempts=attempt,
        )
    # 1xx/3xx (redirects are not followed): a wrong URL setting rather than a dead token.
    raise RefreshError(
        f"OAuth token endpoint answered HTTP {status}; check the token URL setting",
        permanent=False,
        code=f"http_{status}",
        status=status,
        attempts=attempt,
    )


def _final_message(status: int, error: str, description: str) -> str:
    server = f" (server said: {description})" if description else ""
    if error == "invalid_grant":
        return (
            "OAuth token endpoint said invalid_grant: the refresh token was already used or "
            "revoked; sign in again (claude setup-token or copy a fresh credentials file)" + server
        )
    if error == "invalid_client":
        return (
            "OAuth token endpoint said invalid_client: the client id setting is not accepted"
            + server
        )
    if error:
        return f"OAuth token endpoint refused the refresh with HTTP {status} {error}{server}"
    return f"OAuth token endpoint refused the refresh with HTTP {status}{server}"


def _oauth_error_fields(response: requests.Response) -> tuple[str, str]:
    """The redacted OAuth error and error_description, or empty strings."""
    try:
        payload = response.json()
    except ValueError:
        return "", ""
    if not isinstance(payload, Mapping):
        return "", ""
    error = payload.get("error")
    description = payload.get("error_description")
    # The real server sometimes nests {"error": {"type", "message"}}; take the type only.
    if isinstance(error, Mapping):
        error = error.get("type")
    return (
        redact(error) if isinstance(error, str) else "",
        redact(description) if isinstance(description, str) else "",
    )


def _parse_grant(response: requests.Response, attempt: int) -> TokenGrant:
    def bad(why: str) -> RefreshError:
        return RefreshError(
            f"OAuth token endpoint answered 200 {why}",
            permanent=True,
            code="bad_response",
            status=200,
            attempts=attempt,
        )

    try:
        payload = response.json()
    except ValueError:
        raise bad("with a body that is not JSON") from None
    if not isinstance(payload, Mapping):
        raise bad("with JSON that is not an object")
    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise bad("without an access_token")

    refresh_token = payload.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        refresh_token = None

    expires_in = payload.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float, str)):
        expires_in = None
    else:
        try:
            expires_in = int(expires_in)
        except (ValueError, OverflowError):
            expires_in = None

    scope = payload.get("scope")
    if isinstance(scope, str):
        scopes = tuple(scope.split())
    elif isinstance(scope, list):
        scopes = tuple(s for s in scope if isinstance(s, str))
    else:
        scopes = ()

    token_type = payload.get("token_type")
    account = payload.get("account")
    email = account.get("email_address") if isinstance(account, Mapping) else None

    return TokenGrant(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=expires_in,
        scopes=scopes,
        token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        account_email=email if isinstance(email, str) else "",
        attempts=attempt,
    )


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP-date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
