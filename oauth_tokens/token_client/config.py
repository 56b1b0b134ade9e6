"""What a token refresh takes and gives, shared by the rules and both transports: the
settings (RefreshConfig), the result (TokenGrant), the failure (RefreshError), and the redaction
of server text. Works before Django settings are configured (bench/)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from common.headers import header_value_problem
from common.logging import REDACTED, secrets_redact

DEFAULT_TOKEN_URL = "https://platform.claude.com/v1/oauth/token"  # noqa: S105 (a URL)
DEFAULT_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
DEFAULT_SCOPE = (
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
)
# The token endpoint's edge refuses some User-Agents before reading the token; this one was
# reported accepted on 2026-07-04 (docs/claude-cli-contract.md#token-endpoint-edge).
DEFAULT_USER_AGENT = "axios/1.7.9"
# RefreshError.code of a refusal by the token endpoint's edge, and the setting that fixes it.
EDGE_BLOCKED = "edge_blocked"
USER_AGENT_SETTING = "CLAUDE_OAUTH_USER_AGENT"
# RefreshError.code of a refresh whose request may have reached the endpoint but got no answer:
# not sent again, since the endpoint may have spent the single-use refresh token.
NO_ANSWER = "no_answer"
# How the refresh outcome, the audit log and the admin name an edge block.
EDGE_BLOCKED_WORDS = "the token endpoint refused this client (User-Agent?)"

_MAX_ERROR_FIELD_CHARS = 200

_OPAQUE_RE = re.compile(r"[A-Za-z0-9_-]{20,}")
# Upper-case words joined by underscores are setting names (CLAUDE_OAUTH_USER_AGENT), not secrets.
_SETTING_NAME_RE = re.compile(r"[A-Z]+(?:_[A-Z]+)+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")


def redact(text: str) -> str:
    """Hide anything that could be a credential in server-supplied text before showing it.

    Layered on common.logging.secrets_redact (the one redaction: token shapes, secret fields,
    configured secrets); added here for text from a remote server: any long opaque run (a token
    of a shape we do not know), control characters, and a length cap.
    """
    text = secrets_redact(text)
    text = _OPAQUE_RE.sub(
        lambda run: run[0] if _SETTING_NAME_RE.fullmatch(run[0]) else REDACTED, text
    )
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
    user_agent: str = DEFAULT_USER_AGENT  # sent as is by both transports

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.timeout_seconds <= 0 or self.max_total_seconds <= 0:
            raise ValueError("timeout_seconds and max_total_seconds must be positive")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0:
            raise ValueError("backoff values must not be negative")
        problem = header_value_problem(self.user_agent)
        if problem:
            raise ValueError(f"{USER_AGENT_SETTING} cannot be sent as a User-Agent: {problem}")


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
