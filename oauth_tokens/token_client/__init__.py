"""The Claude OAuth refresh request and its rules, in one place, with two transports:

- rules.py: what to send, how to read the answer, when to retry (sans-IO, RefreshAttempts);
- config.py: RefreshConfig, TokenGrant, RefreshError, redact;
- sync.py: token_refresh_request, with requests (the single refresh: tasks, "Refresh now");
- aio.py: token_refresh_request_async, with aiohttp (many at once on one event loop).

Import from here (`from oauth_tokens.token_client import X`).
"""

from .aio import token_refresh_request_async, token_session_new
from .config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_SCOPE,
    DEFAULT_TOKEN_URL,
    DEFAULT_USER_AGENT,
    EDGE_BLOCKED,
    EDGE_BLOCKED_WORDS,
    USER_AGENT_SETTING,
    RefreshConfig,
    RefreshError,
    TokenGrant,
    redact,
)
from .rules import RefreshAttempts, TokenRequest
from .sync import token_refresh_request

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_SCOPE",
    "DEFAULT_TOKEN_URL",
    "DEFAULT_USER_AGENT",
    "EDGE_BLOCKED",
    "EDGE_BLOCKED_WORDS",
    "USER_AGENT_SETTING",
    "RefreshAttempts",
    "RefreshConfig",
    "RefreshError",
    "TokenGrant",
    "TokenRequest",
    "redact",
    "token_refresh_request",
    "token_refresh_request_async",
    "token_session_new",
]
