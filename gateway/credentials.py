"""The real credential behind a task's placeholder, for the gateway: the Django side.

``oauth_provider`` keeps the task's OAuth access token in memory and goes to the database only
when it comes within the refresh buffer of expiry (through the single-flight
``credential_ensure_fresh``, so a task may outlive one token) or after the API refused it.
The gateway asks ``cached`` on its event loop (memory only) and calls the others from a worker
thread only when that gives nothing; each database visit closes its connection afterwards, as
those threads come and go with the gateway.
"""

from __future__ import annotations

import threading
from datetime import datetime

from django.db import connection
from django.utils import timezone

from oauth_tokens.models import OAuthCredential
from oauth_tokens.services import credential_ensure_fresh, refresh_buffer

from .auth import CredentialUnavailable


class OAuthCredentialProvider:
    """CredentialProvider for one stored OAuth credential (refreshable pair or setup token)."""

    def __init__(self, *, credential_id: int) -> None:
        self.credential_id = credential_id
        self._lock = threading.Lock()  # one database visit at a time per task
        # (token, expires_at) in one attribute: cached() reads it without the lock and must
        # never see one token with another's expiry.
        self._held: tuple[str, datetime | None] = ("", None)

    def __repr__(self) -> str:  # never the token
        return f"OAuthCredentialProvider(credential_id={self.credential_id})"

    @staticmethod
    def _usable(held: tuple[str, datetime | None]) -> str | None:
        token, expires_at = held
        if not token:
            return None
        if expires_at is not None and expires_at - timezone.now() <= refresh_buffer():
            return None
        return token

    def _adopt(self, token: str, expires_at: datetime | None) -> str:
        self._held = (token, expires_at)
        return token

    def cached(self) -> str | None:
        return self._usable(self._held)

    def current(self) -> str:
        with self._lock:
            if (token := self._usable(self._held)) is not None:
                return token
            try:
                result = credential_ensure_fresh(credential_id=self.credential_id)
            except OAuthCredential.DoesNotExist:
                raise CredentialUnavailable("the OAuth tokens were removed") from None
            finally:
                connection.close()
            if not result.ok or result.snapshot is None:
                raise CredentialUnavailable(result.error or "the OAuth tokens cannot be used")
            return self._adopt(result.snapshot.access_token, result.snapshot.expires_at)

    def refresh_after_401(self, rejected: str) -> str | None:
        with self._lock:
            try:
                credential = OAuthCredential.objects.filter(pk=self.credential_id).first()
                if credential is None:
                    return None
                if credential.access_token and credential.access_token != rejected:
                    # Someone (another task, the refresh command) already renewed it.
                    return self._adopt(credential.access_token, credential.expires_at)
                if not credential.is_refreshable:
                    return None
                result = credential_ensure_fresh(credential_id=self.credential_id, force=True)
            finally:
                connection.close()
            snapshot = result.snapshot
            if not result.ok or snapshot is None or snapshot.access_token == rejected:
                return None
            return self._adopt(snapshot.access_token, snapshot.expires_at)


class ApiKeyProvider:
    """CredentialProvider for a fixed API key: nothing to refresh."""

    def __init__(self, *, api_key: str) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        self._api_key = api_key

    def __repr__(self) -> str:
        return "ApiKeyProvider()"

    def cached(self) -> str | None:
        return self._api_key

    def current(self) -> str:
        return self._api_key

    def refresh_after_401(self, rejected: str) -> str | None:
        return None


def oauth_provider(*, credential_id: int) -> OAuthCredentialProvider:
    return OAuthCredentialProvider(credential_id=credential_id)


def api_key_provider(*, api_key: str) -> ApiKeyProvider:
    return ApiKeyProvider(api_key=api_key)


__all__ = [
    "ApiKeyProvider",
    "OAuthCredentialProvider",
    "api_key_provider",
    "oauth_provider",
]
