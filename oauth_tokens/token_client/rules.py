"""The rules of one token refresh, without any I/O (sans-IO): what to send, how to read an
answer, when to retry and how long to wait. Two thin transports drive it: sync.py (requests,
the single refresh) and aio.py (aiohttp, many refreshes on one event loop).

No database and no settings of its own: the caller passes a RefreshConfig built from settings.
Its one project import is common.logging's redaction, which works before settings are
configured, so this still runs in a bare process (bench/).

The request mirrors what the real Claude Code CLI sends
(docs/claude-cli-contract.md#refresh-request): a JSON body with grant_type, refresh_token,
client_id and scope. Refresh tokens rotate and are single use, so a 400 invalid_grant is final
and never retried, and a request is sent again only when the first one certainly never reached
the endpoint (refused, unreachable, a name that does not resolve, a connect timeout). Once it may
have reached it (no answer in time, the connection broken after sending), the endpoint may have
spent the token on an answer we never read: a second request would only earn invalid_grant, so
the refresh ends there (code NO_ANSWER, not permanent: the next scheduled refresh tells). Each
transport maps its own exceptions onto these two cases (not_sent, unanswered).

The endpoint's edge refuses some clients before the token is read
(docs/claude-cli-contract.md#token-endpoint-edge): a 429 or 404 without an OAuth error, or any
4xx page in HTML. That says nothing about the token and retrying at once meets the same wall, so
it ends the refresh at once (code EDGE_BLOCKED, not permanent: the next scheduled refresh tries
again), while a real rate limit (an OAuth JSON error such as rate_limit_error) is retried.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .config import (
    EDGE_BLOCKED,
    EDGE_BLOCKED_WORDS,
    NO_ANSWER,
    USER_AGENT_SETTING,
    RefreshConfig,
    RefreshError,
    TokenGrant,
    redact,
)

# One logger for the rules and both transports: operators filter on this name.
logger = logging.getLogger("oauth_tokens.token_client")

# Don't start a request (or a wait before one) if less than this would be left for it.
_MIN_ATTEMPT_SECONDS = 0.05
_SIGN_IN_AGAIN = "sign in again (claude setup-token or copy a fresh credentials file)"
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
# What the edge answers a client it turns away, when the body is not an HTML page.
_EDGE_STATUSES = frozenset({404, 429})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """The one POST of a refresh. Sent as is, never following a redirect (a redirect would
    resend the refresh token somewhere else, or as a GET)."""

    url: str
    body: bytes = field(repr=False)
    headers: Mapping[str, str]


@dataclass(slots=True)
class _Failure:
    """One retryable failed attempt, kept to explain the final error."""

    code: str
    status: int | None
    description: str
    retry_after: float | None = None


class RefreshAttempts:
    """One refresh's attempts, driven by a transport:

        attempts = RefreshAttempts(refresh_token=..., config=..., clock=...)
        while True:
            timeout = attempts.start()          # raises RefreshError: out of time
            send attempts.request, connect and read timeout `timeout`, no redirects
              unusable URL           -> raise attempts.bad_url(exc)
              any other failure      -> attempts.send_failed(exc, timeout=, never_sent=)
              (never_sent: refused, unreachable, DNS, connect timeout; else it may have arrived)
              answered               -> grant = attempts.answered(status=, retry_after=, body=,
                                        content_type=) (raises a final RefreshError);
                                        return grant if not None
            sleep(attempts.wait())              # raises RefreshError: no attempt or time left

    Retries requests that never reached the endpoint, 5xx and rate limits (429 with an OAuth
    error) with exponential backoff and full jitter (429/5xx Retry-After is honoured); an edge
    block, and a request that may have arrived without an answer, are final at once. Bounded by
    config.max_attempts and config.max_total_seconds (or an earlier `deadline` on the same
    clock); a wait that would cross the deadline is never started.
    """

    def __init__(
        self,
        *,
        refresh_token: str,
        config: RefreshConfig,
        clock: Callable[[], float],
        deadline: float | None = None,
    ) -> None:
        if not refresh_token:
            raise RefreshError(
                f"No refresh token stored; {_SIGN_IN_AGAIN}",
                permanent=True,
                code="invalid_grant",
                attempts=0,
            )
        self.config = config
        self.clock = clock
        self.deadline = clock() + config.max_total_seconds
        if deadline is not None:
            self.deadline = min(self.deadline, deadline)
        self.attempt = 0
        self.last: _Failure | None = None
        body = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": config.client_id,
            "scope": config.scope,
        }
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": config.user_agent,
        }
        self.request = TokenRequest(config.token_url, json.dumps(body).encode(), headers)
        self._host = urlsplit(config.token_url).netloc or config.token_url

    def start(self) -> float:
        """Begin the next attempt: the timeout to use for it (capped by the time left)."""
        remaining = self.deadline - self.clock()
        if remaining < _MIN_ATTEMPT_SECONDS:
            raise self._deadline_error()
        self.attempt += 1
        # Cap the per-request timeout by what is left, so one slow request can't blow the budget.
        return min(self.config.timeout_seconds, remaining)

    def send_failed(self, exc: BaseException, *, timeout: float | None, never_sent: bool) -> None:
        """No answer (`timeout`: none within it). A request that certainly never reached the
        endpoint did not use the refresh token: it is tried again. Any other may have, and the
        endpoint may have spent the token, so sending it again would only be refused: this
        raises the final error (whether it was spent, the next refresh tells)."""
        if not never_sent:
            raise self._unanswered(exc, timeout=timeout) from None
        self._not_sent(exc, timeout=timeout)

    def _not_sent(self, exc: BaseException, *, timeout: float | None = None) -> None:
        name = type(exc).__name__
        if timeout is not None:
            self.last = _Failure("timeout", None, f"no connection within {timeout:.1f} s")
        else:
            self.last = _Failure("connection", None, f"{name} connecting to {self._host}")
        logger.warning(
            "token refresh attempt %d/%d: not sent (%s)",
            self.attempt,
            self.config.max_attempts,
            "connect timeout" if timeout is not None else name,
        )

    def _unanswered(self, exc: BaseException, *, timeout: float | None = None) -> RefreshError:
        name = type(exc).__name__
        if timeout is not None:
            what = f"did not answer within {timeout:.1f} s"
        else:
            what = f"did not answer: the connection broke ({name}) before an answer was read"
        logger.warning(
            "token refresh attempt %d/%d: the token endpoint %s; not sent again",
            self.attempt,
            self.config.max_attempts,
            what,
        )
        return RefreshError(
            f"The OAuth token endpoint {what}. The refresh request may have reached it, so it "
            "was not sent again (each refresh token works once). The next refresh tells: if "
            f"the endpoint refuses it, {_SIGN_IN_AGAIN}.",
            permanent=False,
            code=NO_ANSWER,
            attempts=self.attempt,
        )

    def bad_url(self, exc: BaseException) -> RefreshError:
        # A settings mistake, not a bad token: don't retry, don't mark the token invalid.
        return RefreshError(
            f"OAuth token URL setting is not usable ({type(exc).__name__})",
            permanent=False,
            code="connection",
            attempts=self.attempt,
        )

    def answered(
        self, *, status: int, retry_after: str | None, body: bytes, content_type: str | None = None
    ) -> TokenGrant | None:
        """A grant; None for a retryable answer (call wait()); or raise a final RefreshError."""
        logger.debug(
            "token refresh attempt %d/%d: HTTP %d", self.attempt, self.config.max_attempts, status
        )
        if status == 200:
            return _parse_grant(body, self.attempt)
        edge = _edge_refusal(status, body, content_type)
        if edge:
            raise self._edge_blocked(status, edge)
        if status == 429 or status >= 500:
            code = "rate_limited" if status == 429 else f"http_{status}"
            what = "rate limited (HTTP 429)" if status == 429 else f"HTTP {status}"
            self.last = _Failure(code, status, what, _parse_retry_after(retry_after))
            return None
        error, description = _oauth_error_fields(body)
        if 400 <= status < 500:
            raise RefreshError(
                _final_message(status, error, description),
                permanent=True,
                code=error if error in _OAUTH_ERROR_CODES else f"http_{status}",
                status=status,
                attempts=self.attempt,
            )
        # 1xx/3xx (redirects are not followed): a wrong URL setting rather than a dead token.
        raise RefreshError(
            f"OAuth token endpoint answered HTTP {status}; check the token URL setting",
            permanent=False,
            code=f"http_{status}",
            status=status,
            attempts=self.attempt,
        )

    def wait(self) -> float:
        """Seconds to wait before the next attempt, or raise the final RefreshError."""
        last, config = self.last, self.config
        assert last is not None, "wait() follows a failed attempt"
        if self.attempt >= config.max_attempts:
            raise RefreshError(
                f"OAuth token endpoint failed after {self.attempt} attempt(s): {last.description}",
                permanent=False,
                code=last.code,
                status=last.status,
                attempts=self.attempt,
            )
        wait = _next_wait(last, self.attempt, config)
        remaining = self.deadline - self.clock()
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
                    attempts=self.attempt,
                )
            raise self._deadline_error()
        logger.info(
            "token refresh attempt %d/%d failed (%s, status %s); waiting %.2f s",
            self.attempt,
            config.max_attempts,
            last.code,
            last.status,
            wait,
        )
        return wait

    def _edge_blocked(self, status: int, what: str) -> RefreshError:
        logger.warning(
            "token refresh attempt %d: the token endpoint's edge answered HTTP %d with %s; "
            "not retried (User-Agent %r, setting %s)",
            self.attempt,
            status,
            what,
            self.config.user_agent,
            USER_AGENT_SETTING,
        )
        return RefreshError(
            f"{EDGE_BLOCKED_WORDS[:1].upper()}{EDGE_BLOCKED_WORDS[1:]}: HTTP {status} with {what}, "
            f"before the token was read. Set {USER_AGENT_SETTING} to a User-Agent it accepts "
            f'(now "{self.config.user_agent}"). The refresh token was not used; the next '
            "scheduled refresh tries again.",
            permanent=False,
            code=EDGE_BLOCKED,
            status=status,
            attempts=self.attempt,
        )

    def _deadline_error(self) -> RefreshError:
        last = self.last
        detail = f"; last failure: {last.description}" if last else ""
        return RefreshError(
            f"Gave up refreshing the OAuth token after {self.attempt} attempt(s): the "
            f"{self.config.max_total_seconds:g} s limit was reached{detail}",
            permanent=False,
            code="deadline",
            status=last.status if last else None,
            attempts=self.attempt,
        )


def _next_wait(last: _Failure, attempt: int, config: RefreshConfig) -> float:
    if last.retry_after is not None:
        return last.retry_after
    # Full jitter: spreads many workers retrying the same endpoint. Not security sensitive.
    cap = min(config.backoff_max_seconds, config.backoff_base_seconds * 2 ** (attempt - 1))
    return random.uniform(0, cap)  # noqa: S311


def _final_message(status: int, error: str, description: str) -> str:
    server = f" (server said: {description})" if description else ""
    if error == "invalid_grant":
        return (
            "OAuth token endpoint said invalid_grant: the refresh token was already used or "
            f"revoked; {_SIGN_IN_AGAIN}" + server
        )
    if error == "invalid_client":
        return (
            "OAuth token endpoint said invalid_client: the client id setting is not accepted"
            + server
        )
    if error:
        return f"OAuth token endpoint refused the refresh with HTTP {status} {error}{server}"
    return f"OAuth token endpoint refused the refresh with HTTP {status}{server}"


def _edge_refusal(status: int, body: bytes, content_type: str | None) -> str:
    """What shows that the endpoint's edge turned the client away before reading the token
    ("" when nothing does): the OAuth server itself answers its errors in JSON."""
    if not 400 <= status < 500:
        return ""
    if "html" in (content_type or "").lower() or body.lstrip()[:1] == b"<":
        return "an HTML page"
    if status not in _EDGE_STATUSES:
        return ""
    if not body.strip():
        return "an empty body"
    error, _description = _oauth_error_fields(body)
    return "" if error else "no OAuth error in its body"


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)  # bytes: UTF-8/16/32 detected as the JSON RFC says
    except ValueError:  # not JSON, or not decodable text
        return None


def _oauth_error_fields(body: bytes) -> tuple[str, str]:
    """The redacted OAuth error and error_description, or empty strings."""
    payload = _json_or_none(body)
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


def _parse_grant(body: bytes, attempt: int) -> TokenGrant:
    def bad(why: str) -> RefreshError:
        return RefreshError(
            f"OAuth token endpoint answered 200 {why}",
            permanent=True,
            code="bad_response",
            status=200,
            attempts=attempt,
        )

    try:
        payload = json.loads(body)
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
