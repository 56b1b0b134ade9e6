"""Account actions (writes): the first admin, saving the Code agent settings, removing saved
inputs, "Refresh now", and storing a local Claude installation's login.

Inputs arrive checked (accounts.parsers, oauth_tokens.formats); reads are in accounts.selectors.
"""

import math
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.errors import InputError
from common.humanize import expiry_words
from common.services import model_update
from oauth_tokens.formats import ParsedCredential, credential_input_parse
from oauth_tokens.models import CredentialSource, OAuthCredential
from oauth_tokens.selectors import credential_for_user
from oauth_tokens.services import credential_ensure_fresh, credential_store

from .live_check import KIND_LABELS
from .models import UserPreferences
from .selectors import preferences_get


def preferences_lock(*, user: User) -> UserPreferences:
    """The user's preferences, locked to the end of the caller's transaction: who changes them,
    or counts the user's tasks against their limits, goes one at a time."""
    return UserPreferences.objects.select_for_update().get(pk=preferences_get(user=user).pk)


@transaction.atomic
def admin_user_ensure(*, username: str = "admin") -> tuple[str, str | None]:
    """Create the first superuser when none exists. Returns (username, password or None)."""
    user_model = get_user_model()
    existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
    if existing is not None:
        return existing.get_username(), None
    password = secrets.token_urlsafe(12)
    user_model.objects.create_superuser(username=username, email="", password=password)
    return username, password


@transaction.atomic
def code_agent_settings_save(
    *,
    user: User,
    use_oauth: bool,
    oauth_tokens: ParsedCredential | None,
    api_key: str,
    agent_env: dict[str, str] | None,
) -> list[str]:
    """Save validated settings in one transaction. Empty inputs keep what is saved.

    Returns what changed, in words, for the confirmation message.
    """
    preferences = preferences_lock(user=user)
    changes: list[str] = []
    data: dict[str, Any] = {"use_oauth": use_oauth}
    if preferences.use_oauth != use_oauth:
        changes.append("Claude OAuth turned " + ("on" if use_oauth else "off"))
    if api_key:
        data.update(api_key=api_key, api_key_last4=api_key[-4:])
        changes.append(f"API key ending in …{api_key[-4:]} saved")
    if agent_env is not None:
        data["agent_env"] = agent_env or None
        changes.append(
            f"{len(agent_env)} environment variable{'s' if len(agent_env) != 1 else ''} saved"
            if agent_env
            else "extra environment variables removed"
        )
    model_update(instance=preferences, fields=data, data=data)
    if oauth_tokens is not None:
        credential_store(owner=user, parsed=oauth_tokens, source=CredentialSource.USER)
        changes.append(f"OAuth tokens saved ({KIND_LABELS[oauth_tokens.kind]})")
    return changes


def api_key_remove(*, user: User) -> bool:
    updated = UserPreferences.objects.filter(user=user).exclude(api_key_last4="")
    return bool(updated.update(api_key="", api_key_last4="", updated_at=timezone.now()))


def agent_env_remove(*, user: User) -> bool:
    # Encrypted columns cannot be filtered on, so read first.
    preferences = preferences_get(user=user)
    if not preferences.agent_env:
        return False
    model_update(instance=preferences, fields=["agent_env"], data={"agent_env": None})
    return True


@dataclass(frozen=True)
class RefreshNowResult:
    """What the "Refresh now" button reports: whether it worked, and a sentence saying so."""

    ok: bool
    message: str


def user_credential_refresh(*, user: User) -> RefreshNowResult:
    """ "Refresh now": force a refresh of the user's saved tokens and say what happened."""
    credential = credential_for_user(user=user)
    if credential is None:
        return RefreshNowResult(False, "No OAuth tokens are saved, so there is nothing to refresh.")
    if not credential.is_refreshable:
        return RefreshNowResult(
            False,
            "These tokens cannot be refreshed: there is no refresh token. When the token "
            "expires, create a new one with `claude setup-token` and paste it here.",
        )
    wait = _refresh_now_cooldown_claim(credential=credential)
    if wait:
        return RefreshNowResult(
            False,
            f"A refresh was tried moments ago; to spare the token server, “Refresh now” works "
            f"again in {wait} second{'s' if wait != 1 else ''}. The status below is current.",
        )
    result = credential_ensure_fresh(credential_id=credential.pk, force=True)
    now = timezone.now()
    if result.ok and result.refreshed and result.snapshot is not None:
        when = expiry_words(expires_at=result.snapshot.expires_at, now=now)
        return RefreshNowResult(True, f"Refreshed. The new access token expires {when}.")
    error = result.error.rstrip(".")
    # The status card right below shows the saved error; do not print it twice.
    credential.refresh_from_db(fields=["last_refresh_error"])
    if error and credential.last_refresh_error.rstrip(".") == error:
        failed = "The refresh failed (the reason is under “Last error”)."
    else:
        failed = f"The refresh failed: {error}."
    if result.ok:  # failed, but the current access token has not expired yet
        advice = "; paste new tokens below before then" if result.permanent else ""
        return RefreshNowResult(
            False, f"{failed} The current access token still works until it expires{advice}."
        )
    advice = "Paste new tokens below." if result.permanent else "Try again later."
    return RefreshNowResult(False, f"{failed} {advice}")


def _refresh_now_cooldown_claim(*, credential: OAuthCredential) -> int:
    """Claim this credential's "Refresh now" slot: 0 when claimed, else the seconds to wait.

    One conditional UPDATE, so of two quick clicks (or two tabs) exactly one refreshes. Any
    refresh attempt, also one before a task, starts the cooldown
    (CLAUDE_OAUTH_REFRESH_NOW_COOLDOWN seconds).
    """
    cooldown = timedelta(seconds=settings.CLAUDE_OAUTH_REFRESH_NOW_COOLDOWN)
    now = timezone.now()
    claimed = (
        OAuthCredential.objects.filter(pk=credential.pk)
        .filter(
            Q(last_refresh_attempt_at__isnull=True) | Q(last_refresh_attempt_at__lte=now - cooldown)
        )
        .update(last_refresh_attempt_at=now)
    )
    if claimed:
        return 0
    credential.refresh_from_db(fields=["last_refresh_attempt_at"])
    last = credential.last_refresh_attempt_at or now
    return max(1, math.ceil((last + cooldown - now).total_seconds()))


# --- importing from a local Claude installation -----------------------------------------------


def credential_import(*, user: User, raw: bytes | str) -> OAuthCredential:
    """Store a Claude installation's login for the user, through the one parser.

    Raises TokenFormatError when the input is not usable.
    """
    parsed = credential_input_parse(raw=raw)
    return credential_store(owner=user, parsed=parsed, source=CredentialSource.IMPORTED)


WHEN_LIMITED_CHOICES = ("wait", "api_key")


def when_limited_save(*, user: User, choice: str) -> str:
    """What the user's tasks do when their subscription is limited: "wait" for the reset, or
    "api_key" (run on their own API key). Raises InputError for anything else."""
    if choice not in WHEN_LIMITED_CHOICES:
        raise InputError("Choose “wait” or “fall back to my API key”.", field="when_limited")
    preferences = preferences_get(user=user)
    preferences.when_limited = choice
    preferences.save(update_fields=["when_limited", "updated_at"])
    return choice
