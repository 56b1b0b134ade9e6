"""Reads of saved GitHub connections: what the settings page shows (never the token), and who a
GitHub user is here."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from common.humanize import expiry_words

from .errors import NO_TOKEN_MESSAGE, HostingError
from .models import GitHubConnection
from .repositories import github_repository_parse


@dataclass(frozen=True)
class ConnectionStatus:
    login: str
    token_last4: str
    expires_words: str
    expired: bool
    checked_at: datetime | None


def github_connections_of_commenter(*, user_id: int | None, login: str) -> list[GitHubConnection]:
    """The active users' connections that may belong to a GitHub user: those whose token's owner
    has that numeric id, and those saved before the id was kept whose login matches."""
    known = Q(github_id=user_id) if user_id is not None else Q(pk__in=[])
    unknown = Q(github_id__isnull=True, login__iexact=login) if login else Q(pk__in=[])
    return list(
        GitHubConnection.objects.select_related("owner")
        .filter(known | unknown, owner__is_active=True)
        .order_by("pk")
    )


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


@dataclass(frozen=True)
class PullRequestBlocker:
    """Why a pull request cannot be made, and where to fix it (no link when only the
    operator can, or nothing can: a repository on another host)."""

    reason: str
    fix_url: str = ""
    fix_words: str = ""

    def __str__(self) -> str:
        return self.reason


def pull_request_host_blocker(
    *, user: User, repo_url: str | None = None
) -> PullRequestBlocker | None:
    """Why the server could not open a pull request for this user (on this repository, when
    one is given): not on the connected GitHub, no token saved, or the token expired. None
    when it can. Asks GitHub nothing: what GitHub would refuse shows when it is asked."""
    if repo_url is not None:
        try:
            github_repository_parse(url=repo_url, api_url=settings.GITHUB_API_URL)
        except HostingError as exc:
            return PullRequestBlocker(exc.message)
    status = github_connection_status(user=user)
    settings_url = reverse("accounts:code_agent_settings") + "#github"
    if status is None:
        return PullRequestBlocker(NO_TOKEN_MESSAGE, settings_url, "Connect GitHub")
    if status.expired:
        return PullRequestBlocker(
            f"Your GitHub token {status.expires_words}: pull requests need a new one.",
            settings_url,
            "Replace the token",
        )
    return None
