"""ClaudeOAuthManager: the public API of the project's original design, kept as a thin,
documented facade over oauth_tokens.services.

The app's own code (views, the task runner, the admin, commands) calls oauth_tokens.services
directly; this class is for code written against the original API, and its test
(tests/oauth_tokens/test_manager.py) keeps it working. It holds no rule of its own: parsing is
oauth_tokens.formats, storing, seeding and refreshing are the services.

Two modes: tokens from the environment (the global credential in the database, refreshed with
single flight; docs/claude-cli-contract.md#environment-precedence) or tokens handed in as a dict.
A dict given together with an owner is stored for that user; without one it stays in memory and
`ensure_valid_token()` returns the refreshed tokens for the caller to save.
"""

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from .formats import ParsedCredential, TokenFormatError, credential_input_parse
from .models import OAuthCredential
from .services import (
    CredentialSnapshot,
    EnvironmentTokensError,
    credential_ensure_fresh,
    credential_expired,
    credential_store,
    environment_credential_get,
    grant_expiry,
    refresh_config,
)
from .token_client import RefreshError, token_refresh_request

logger = logging.getLogger("oauth_tokens.manager")


class ClaudeOAuthManager:
    def __init__(self, *, owner: User | None = None) -> None:
        self.owner = owner
        self.credential_id: int | None = None
        self.last_error = ""
        self._memory: ParsedCredential | None = None

    # -- loading ---------------------------------------------------------------------------
    def load_tokens_from_env(self) -> bool:
        try:
            credential = environment_credential_get()
        except EnvironmentTokensError as exc:
            self.last_error = str(exc)
            logger.warning("OAuth tokens from the environment are unusable: %s", exc)
            return False
        if credential is None:
            self.last_error = "CLAUDE_USE_OAUTH is not true"
            return False
        logger.info("Loaded OAuth tokens from the environment")
        self.credential_id, self._memory = credential.pk, None
        return True

    def load_tokens_from_dict(self, tokens: Mapping[str, Any] | str) -> bool:
        try:
            parsed = credential_input_parse(raw=tokens)
        except TokenFormatError as exc:
            self.last_error = str(exc)
            logger.warning("Invalid OAuth tokens: %s", exc)
            return False
        if self.owner is not None:
            self.credential_id = credential_store(owner=self.owner, parsed=parsed).pk
            self._memory = None
            logger.info("Loaded OAuth tokens from user preferences")
        else:
            self._memory, self.credential_id = parsed, None
        return True

    # -- checking and refreshing -----------------------------------------------------------
    def is_token_expired(self, buffer_seconds: int = 300) -> bool:
        expires_at = self._current().expires_at
        if expires_at is None:
            return False
        return expires_at - timezone.now() <= timedelta(seconds=buffer_seconds)

    def refresh_access_token(self) -> bool:
        ok, _ = self._refresh(force=True)
        return ok

    def ensure_valid_token(self) -> tuple[bool, dict[str, Any] | None]:
        """(success, refreshed tokens in the flat format, or None when nothing was refreshed)."""
        return self._refresh(force=False)

    def get_credentials_json(self, *, include_refresh_token: bool = False) -> str:
        """The CLI's .credentials.json (claudeAiOauth format, never the flat one)."""
        current = self._current()
        snapshot = CredentialSnapshot(
            credential_id=self.credential_id or 0,
            kind=current.kind,
            source="",
            access_token=current.access_token,
            refresh_token=current.refresh_token,
            expires_at=current.expires_at,
            scopes=tuple(current.scopes),
            subscription_type=current.subscription_type,
            rate_limit_tier=current.rate_limit_tier,
        )
        return snapshot.credentials_file_json(include_refresh_token=include_refresh_token)

    # -- internals -------------------------------------------------------------------------
    def _current(self) -> ParsedCredential | OAuthCredential:
        if self.credential_id is not None:
            return OAuthCredential.objects.get(pk=self.credential_id)
        if self._memory is not None:
            return self._memory
        raise RuntimeError(
            "No tokens loaded: call load_tokens_from_env() or load_tokens_from_dict()."
        )

    def _refresh(self, *, force: bool) -> tuple[bool, dict[str, Any] | None]:
        if self.credential_id is not None:
            result = credential_ensure_fresh(credential_id=self.credential_id, force=force)
            self.last_error = result.error
            if not result.ok or not result.refreshed or result.snapshot is None:
                return result.ok, None
            snap = result.snapshot
            return True, _flat(snap.access_token, snap.refresh_token, snap.expires_at)
        memory = self._current()
        assert isinstance(memory, ParsedCredential)
        if not force and not self.is_token_expired():
            return True, None
        if not memory.refresh_token:
            self.last_error = "no refresh token"
            return not credential_expired(credential=memory, now=timezone.now()), None
        try:
            grant = token_refresh_request(
                refresh_token=memory.refresh_token, config=refresh_config()
            )
        except RefreshError as exc:
            self.last_error = str(exc)
            logger.warning("OAuth token refresh failed: %s", exc)
            return not credential_expired(credential=memory, now=timezone.now()), None
        expires_at = grant_expiry(grant=grant, now=timezone.now())
        refresh = grant.refresh_token or memory.refresh_token
        self._memory = ParsedCredential(
            kind=memory.kind,
            input_format=memory.input_format,
            access_token=grant.access_token,
            refresh_token=refresh,
            expires_at=expires_at,
            scopes=grant.scopes or memory.scopes,
            subscription_type=memory.subscription_type,
            rate_limit_tier=memory.rate_limit_tier,
        )
        logger.info("OAuth token refreshed")
        return True, _flat(grant.access_token, refresh, expires_at)


def _flat(access_token: str, refresh_token: str, expires_at: Any) -> dict[str, Any]:
    return {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_at": int(expires_at.timestamp()) if expires_at else None,
        "token_type": "Bearer",
    }
