"""Reads for the settings page: what is saved about a user's GitHub connection (never the token)."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.utils import timezone

from common.humanize import expiry_words

from .models import GitHubConnection


@dataclass(frozen=True)
class ConnectionStatus:
    login: str
    token_last4: str
    expires_words: str
    expired: bool
    checked_at: datetime | None


def github_connection_status(*, user: User) -> ConnectionStatus | None:
    connection = (
        GitHubConnection.objects.filter(owner=user)
        .only("login", "token_last4", "expires_at", "checked_at")
        .first()
    )
    if connection is None:
        return None
    now = timezone.now()
    return ConnectionStatus(
        login=connection.login,
        token_last4=connection.token_last4,
        expires_words=expiry_words(
            expires_at=connection.expires_at, now=now, never="no expiry reported by GitHub"
        ),
        expired=connection.expires_at is not None and connection.expires_at <= now,
        checked_at=connection.checked_at,
    )
