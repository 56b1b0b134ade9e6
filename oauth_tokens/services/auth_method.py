"""Choosing how a task authenticates: the one rule, for tasks and pages alike."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

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
    """No usable way to authenticate. The message says why and what to do.

    oauth_source: whose OAuth tokens were chosen and cannot be used (AuthSource), "" when no
    OAuth credential was chosen at all: then the tokens are what fails the task."""

    def __init__(self, message: str, *, oauth_source: str = "") -> None:
        super().__init__(message)
        self.oauth_source = oauth_source


class OAuthState(StrEnum):
    READY = "ready"  # usable as it is (maybe stale: then until its access token expires)
    REFRESH_FIRST = "refresh_first"  # renewed before the task starts
    # Expired, and the last refresh failed: a task tries once more, a preview expects what
    # happened last (the refresh fails: the fallback, or a failed task).
    RETRY = "retry"
    DEAD = "dead"  # only new tokens help: sign in again


@dataclass(frozen=True)
class OAuthUsability:
    state: OAuthState
    reason: str = ""  # why it is dead, or why it must be renewed by force
    force_refresh: bool = False  # the API refused the access token: renew it though unexpired


def refused_words(credential: OAuthCredential) -> str:
    """Why a credential the API refused is dead, with what to do."""
    when = f" at {credential.refused_at:%Y-%m-%d %H:%M} UTC" if credential.refused_at else ""
    return (
        f"the Claude API refused these tokens{when} (seen by a task's gateway), so they no "
        "longer work whatever their expiry says. Sign in again: save new tokens on the Code "
        "agent settings page"
    )


def oauth_usability(
    *, credential: OAuthCredential, now: datetime, buffer: timedelta
) -> OAuthUsability:
    """What a stored OAuth credential is good for now: the one rule the settings page's card
    and a task's choice both follow, so they cannot disagree.

    Dead: the API refused its access token (as a task's gateway saw it, never an agent's
    claim) and no refresh can bring another, or it has expired and cannot be renewed. A
    refused token that may still be renewed is renewed by force before the task."""
    renewable = credential.is_refreshable and credential.status != CredentialStatus.INVALID
    if credential.refused_at is not None:
        if not renewable:
            return OAuthUsability(OAuthState.DEAD, refused_words(credential))
        failed = credential.status == CredentialStatus.REFRESH_FAILED
        return OAuthUsability(
            OAuthState.RETRY if failed else OAuthState.REFRESH_FIRST,
            "the Claude API refused the current access token"
            + (" and the last refresh failed" if failed else ""),
            force_refresh=True,
        )
    expired = credential_expired(credential=credential, now=now)
    if expired and not renewable:
        return OAuthUsability(OAuthState.DEAD, no_refresh_reason(credential, expired=True))
    if expired and credential.status == CredentialStatus.REFRESH_FAILED:
        why = credential.last_refresh_error or "the last refresh failed"
        return OAuthUsability(OAuthState.RETRY, f"the token has expired and {why}")
    if renewable and credential_needs_refresh(credential=credential, now=now, buffer=buffer):
        return OAuthUsability(OAuthState.REFRESH_FIRST)
    return OAuthUsability(OAuthState.READY)


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
        chosen = choice.source if choice is not None and choice.credential is not None else ""
        raise AuthUnavailable(oauth_error, oauth_source=chosen)
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
    buffer = refresh_buffer() if buffer_seconds is None else timedelta(seconds=buffer_seconds)
    usability = oauth_usability(credential=credential, now=timezone.now(), buffer=buffer)
    if usability.state == OAuthState.DEAD:
        return None, _oauth_failure_message(
            choice.source, FreshnessResult(ok=False, permanent=True, error=usability.reason)
        )
    if not refresh:
        if usability.state == OAuthState.RETRY:
            return None, _oauth_failure_message(
                choice.source, FreshnessResult(ok=False, error=usability.reason)
            )
        return _oauth_preview(choice, usability, whose)
    result = credential_ensure_fresh(
        credential_id=credential.pk, buffer_seconds=buffer_seconds, force=usability.force_refresh
    )
    if usability.force_refresh and result.ok and not result.refreshed:
        # The refused token must not run the task: without a new one, OAuth cannot be used.
        result = FreshnessResult(
            ok=False, error=f"{usability.reason} and it could not be renewed ({result.error})"
        )
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
    choice: _OAuthChoice, usability: OAuthUsability, whose: str
) -> tuple[AuthResolution | None, str]:
    due = usability.state == OAuthState.REFRESH_FIRST
    if usability.force_refresh:
        then = f" {usability.reason.capitalize()}: they will be renewed before the task starts."
    else:
        then = " They will be refreshed before the task starts." if due else ""
    reason = (
        f"Claude OAuth with {whose} tokens"
        + (
            " (user OAuth is on and tokens are saved)."
            if choice.source == AuthSource.USER
            else " (CLAUDE_USE_OAUTH=true on the server)."
        )
        + then
    )
    return (
        AuthResolution(
            method=AuthMethod.OAUTH, source=choice.source, reason=reason, refresh_due=due
        ),
        "",
    )
