"""Choosing how a task authenticates: the one rule, for tasks and pages alike."""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from oauth_tokens.models import AuthMethod, AuthSource, CredentialStatus, OAuthCredential

from .environment import EnvironmentTokensError, environment_credential_get
from .refresh import (
    CredentialSnapshot,
    FreshnessResult,
    credential_ensure_fresh,
    credential_expired,
    credential_needs_refresh,
    no_refresh_reason,
    refresh_buffer,
)

logger = logging.getLogger("oauth_tokens.services")


# Fixed opening words of the failure messages (pages and tests match on them); the reason follows.
MISSING_TOKENS = "Missing OAuth tokens"
INVALID_TOKENS_USER = "Invalid OAuth tokens in user preferences"
INVALID_TOKENS_ENV = "Invalid OAuth tokens in the server environment"
REFRESH_FAILED = "OAuth token refresh failed"


class AuthUnavailable(Exception):
    """No usable way to authenticate. The message says why and what to do."""


@dataclass(frozen=True)
class AuthResolution:
    method: str  # AuthMethod
    source: str  # AuthSource: whose credential it is
    reason: str  # why this method, in plain words
    refreshed: bool = False
    refresh_due: bool = False  # preview only: a refresh would happen before the task
    fallback: bool = False  # OAuth was chosen but failed; the API key is used instead
    oauth_error: str = ""  # why OAuth failed (fallback) or why the stale token is used
    oauth: CredentialSnapshot | None = field(default=None, repr=False)
    api_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class _OAuthChoice:
    source: str
    credential: OAuthCredential | None
    error: str = ""  # set when the choice is already known to be unusable


def global_credentials_allowed(*, user: User) -> bool:
    """May this user's tasks use the server's global OAuth and API key?

    CLAUDE_GLOBAL_CREDENTIALS_GROUP empty: everyone. Otherwise only members of that group (the
    global OAuth is one person's subscription, shared by everyone allowed to use it).
    """
    group = settings.CLAUDE_GLOBAL_CREDENTIALS_GROUP
    if not group:
        return True
    return user.groups.filter(name=group).exists()


def _oauth_choice(user: User, use_oauth: bool, shared: bool) -> _OAuthChoice | None:
    """Which OAuth credential the priority order picks, if any."""
    if use_oauth:
        credential = OAuthCredential.objects.filter(owner=user).first()
        if credential is not None:
            return _OAuthChoice(AuthSource.USER, credential)
    if settings.CLAUDE_USE_OAUTH and shared:
        try:
            credential = environment_credential_get()
        except EnvironmentTokensError as exc:
            return _OAuthChoice(AuthSource.ENVIRONMENT, None, f"{MISSING_TOKENS}: {exc}")
        return _OAuthChoice(AuthSource.ENVIRONMENT, credential)
    if use_oauth:
        return _OAuthChoice(
            AuthSource.USER,
            None,
            f"{MISSING_TOKENS}: Claude OAuth is turned on in your settings but no tokens are "
            "saved. Paste them on the Code agent settings page, or turn OAuth off to use an "
            "API key.",
        )
    return None


def _oauth_failure_message(source: str, result: FreshnessResult) -> str:
    if result.permanent:
        prefix = INVALID_TOKENS_USER if source == AuthSource.USER else INVALID_TOKENS_ENV
    else:
        prefix = REFRESH_FAILED
    return f"{prefix}: {result.error}"


def auth_method_resolve(
    *,
    user: User,
    use_oauth: bool,
    user_api_key: str,
    refresh: bool = True,
    buffer_seconds: int | None = None,
    api_key_only: bool = False,
) -> AuthResolution:
    """Decide how the user's next task authenticates: the one rule, for tasks and pages alike.

    Priority: the user's OAuth (toggle on and tokens saved) > the global OAuth
    (CLAUDE_USE_OAUTH=true) > an API key (the user's, else ANTHROPIC_API_KEY). The two global
    ones only for users CLAUDE_GLOBAL_CREDENTIALS_GROUP allows (global_credentials_allowed).
    When the chosen OAuth cannot be made valid and an API key exists, fall back to it and say so.
    With refresh=False nothing is refreshed or written: a preview for the settings page.
    buffer_seconds: how long the token must stay valid (a task passes its own time limit).
    use_oauth, user_api_key: the user's preferences (the toggle, and their saved API key or ""),
    passed in by the caller (accounts.selectors.auth_method_for_user) so this app never reads
    accounts.
    api_key_only: skip OAuth (the user chose their API key over waiting for a usage limit).
    Raises AuthUnavailable when nothing can be used.
    """
    # A preview (the settings page) logs quietly; a real choice before a task is worth a line.
    info = logger.info if refresh else logger.debug
    warn = logger.warning if refresh else logger.debug
    shared = global_credentials_allowed(user=user)
    choice = None if api_key_only else _oauth_choice(user, use_oauth, shared)
    oauth_error = ""
    if choice is not None:
        oauth_error = choice.error
        if choice.credential is not None:
            resolution, oauth_error = _oauth_resolve(
                choice, refresh=refresh, buffer_seconds=buffer_seconds
            )
            if resolution is not None:
                info(
                    "Auth for user %s: OAuth from %s%s",
                    user.pk,
                    choice.source,
                    " (refreshed)" if resolution.refreshed else "",
                )
                return resolution
    api_key, key_source = _api_key(user_api_key, shared)
    if api_key:
        if oauth_error:
            warn(
                "Auth for user %s: OAuth failed, falling back to the API key from %s: %s",
                user.pk,
                key_source,
                oauth_error,
            )
            reason = f"Claude OAuth could not be used ({oauth_error}), so the API key is used."
        elif api_key_only:
            # OAuth may well be on: the user chose the key for this task only.
            reason = (
                "Your API key is used for this task, as you chose instead of waiting for the "
                "usage limit; your other tasks keep Claude OAuth."
                if key_source == AuthSource.USER
                else "The server's API key (ANTHROPIC_API_KEY) is used for this task instead "
                "of waiting for the usage limit."
            )
            info("Auth for user %s: API key from %s, chosen over a wait", user.pk, key_source)
        else:
            reason = (
                "Your API key is used: Claude OAuth is off."
                if key_source == AuthSource.USER
                else "The server's API key (ANTHROPIC_API_KEY) is used: Claude OAuth is off "
                "and you have not saved an API key."
            )
            info("Auth for user %s: API key from %s", user.pk, key_source)
        return AuthResolution(
            method=AuthMethod.API_KEY,
            source=key_source,
            reason=reason,
            fallback=bool(oauth_error),
            oauth_error=oauth_error,
            api_key=api_key,
        )
    if oauth_error:
        warn("Auth for user %s: unavailable: %s", user.pk, oauth_error)
        raise AuthUnavailable(oauth_error)
    raise AuthUnavailable(
        "No way to authenticate: turn on Claude OAuth and save your tokens on the Code agent "
        "settings page, or save an Anthropic API key there."
    )


def _api_key(user_key: str, shared: bool) -> tuple[str, str]:
    if user_key:
        return user_key, AuthSource.USER
    return (settings.ANTHROPIC_API_KEY if shared else ""), AuthSource.ENVIRONMENT


def _oauth_resolve(
    choice: _OAuthChoice, *, refresh: bool, buffer_seconds: int | None
) -> tuple[AuthResolution | None, str]:
    credential = choice.credential
    assert credential is not None
    whose = "your" if choice.source == AuthSource.USER else "the server's global"
    if not refresh:
        return _oauth_preview(choice, credential, whose)
    result = credential_ensure_fresh(credential_id=credential.pk, buffer_seconds=buffer_seconds)
    if not result.ok:
        return None, _oauth_failure_message(choice.source, result)
    reason = f"Claude OAuth with {whose} tokens"
    reason += (
        " (user OAuth is on and tokens are saved)."
        if choice.source == AuthSource.USER
        else " (CLAUDE_USE_OAUTH=true on the server)."
    )
    if result.stale:
        reason += f" The refresh failed ({result.error}) but the current token is still valid."
    return (
        AuthResolution(
            method=AuthMethod.OAUTH,
            source=choice.source,
            reason=reason,
            refreshed=result.refreshed,
            oauth_error=result.error if result.stale else "",
            oauth=result.snapshot,
        ),
        "",
    )


def _oauth_preview(
    choice: _OAuthChoice, credential: OAuthCredential, whose: str
) -> tuple[AuthResolution | None, str]:
    now = timezone.now()
    due = credential_needs_refresh(credential=credential, now=now, buffer=refresh_buffer())
    expired = credential_expired(credential=credential, now=now)
    if expired and (credential.status == CredentialStatus.INVALID or not credential.is_refreshable):
        return None, _oauth_failure_message(
            choice.source,
            FreshnessResult(
                ok=False, permanent=True, error=no_refresh_reason(credential, expired=True)
            ),
        )
    reason = (
        f"Claude OAuth with {whose} tokens"
        + (
            " (user OAuth is on and tokens are saved)."
            if choice.source == AuthSource.USER
            else " (CLAUDE_USE_OAUTH=true on the server)."
        )
        + (" They will be refreshed before the task starts." if due else "")
    )
    return (
        AuthResolution(
            method=AuthMethod.OAUTH, source=choice.source, reason=reason, refresh_due=due
        ),
        "",
    )
