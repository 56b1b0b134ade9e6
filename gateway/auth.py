"""Who may use the model route, and what it sends upstream instead: the placeholder check and
the credential swap.

The container holds a per-task placeholder in the place of the real secret, so the CLI keeps
its normal auth mode and header shape (``Authorization: Bearer`` plus the OAuth beta, or
``x-api-key``): docs/claude-cli-contract.md#messages-api-through-a-base-url. Every inbound
``authorization`` and ``x-api-key`` is removed before the one real credential is added, so a
second header can never shadow (or smuggle) the one we mean.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Literal, Protocol

from multidict import CIMultiDict

PLACEHOLDER_PREFIX = "claude-runner-placeholder-"
OAUTH_BETA = "oauth-2025-04-20"  # the API takes OAuth access tokens only with this beta
# Request headers we replace or never pass on to the API.
_REPLACED = frozenset({"host", "content-length", "authorization", "x-api-key", "accept-encoding"})
# What the gateway can decode (usage is read from the decoded stream).
UPSTREAM_ACCEPT_ENCODING = "gzip, deflate"


class CredentialUnavailable(Exception):
    """A provider cannot give a usable credential; the message is safe for the task log."""


@dataclass(frozen=True)
class UpstreamAuth:
    """What the gateway adds on the way out."""

    kind: Literal["oauth", "api_key"]


class CredentialProvider(Protocol):
    """Supplied by the runner; ``current`` and ``refresh_after_401`` are sync and called from a
    worker thread (never on the event loop)."""

    def cached(self) -> str | None:
        """The credential when it is in memory and not near expiry, else None (then the gateway
        calls ``current`` from a worker thread). Called on the event loop: must never block."""
        ...

    def current(self) -> str:
        """A valid real token or key (refreshed when near expiry)."""
        ...

    def refresh_after_401(self, rejected: str) -> str | None:
        """A new token after the API refused ``rejected`` (single flight); None if impossible."""
        ...


def placeholder_new() -> str:
    """A random per-task stand-in for the secret: URL and shell safe, and never shaped like a
    real token (no ``sk-ant-`` prefix), so redaction and people can tell them apart."""
    return PLACEHOLDER_PREFIX + secrets.token_urlsafe(32)


def presented_credentials(headers: list[tuple[str, str]]) -> list[str]:
    """Every credential the request carries, from authorization and x-api-key alike."""
    found: list[str] = []
    for name, value in headers:
        if name == "authorization":
            scheme, _, rest = value.partition(" ")
            found.append(rest.strip() if scheme.lower() == "bearer" else value)
        elif name == "x-api-key":
            found.append(value.strip())
    return found


def placeholder_matches(headers: list[tuple[str, str]], placeholder: str) -> bool:
    """True when the request carries a credential and every one it carries is this task's
    placeholder (compared in constant time)."""
    presented = presented_credentials(headers)
    expected = placeholder.encode()
    return bool(presented) and all(
        hmac.compare_digest(value.encode("utf-8", "replace"), expected) for value in presented
    )


def upstream_headers(
    headers: list[tuple[str, str]],
    *,
    drop: set[str] | frozenset[str],
    auth: UpstreamAuth,
    secret: str,
) -> CIMultiDict[str]:
    """The request headers for the real API: hop-by-hop (``drop``) and every inbound
    credential removed, the real one added. The CLI's own ``anthropic-beta`` list is kept; for
    OAuth the OAuth beta is added if it is missing."""
    skip = _REPLACED | drop
    out: CIMultiDict[str] = CIMultiDict([pair for pair in headers if pair[0] not in skip])
    out["accept-encoding"] = UPSTREAM_ACCEPT_ENCODING
    if auth.kind == "oauth":
        out["authorization"] = f"Bearer {secret}"
        betas = [b.strip() for v in out.getall("anthropic-beta", []) for b in v.split(",")]
        if OAUTH_BETA not in betas:
            out.add("anthropic-beta", OAUTH_BETA)
    else:
        out["x-api-key"] = secret
    return out
