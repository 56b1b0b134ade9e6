"""Reads for accounts: a user's preferences, the auth method their next task would use, and what
the Code agent settings page shows. No function here returns a token or an API key beyond its
last four characters.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.timesince import timesince

from common.humanize import (
    expiry_words,
    limit_window_words,
    limited_until_words,
    time_ago_words,
    utc_text,
)
from oauth_tokens.models import CredentialStatus, OAuthCredential
from oauth_tokens.selectors import credential_for_user, credential_status_compute
from oauth_tokens.services import (
    AuthMethod,
    AuthResolution,
    AuthSource,
    AuthUnavailable,
    auth_method_resolve,
    global_credentials_allowed,
    refresh_buffer,
)
from oauth_tokens.services.auth_method import refused_words

from .live_check import scopes_words
from .models import UserPreferences
from .parsers import (
    SavedVariableProblem,
    agent_env_name_labels,
    agent_env_saved_problems,
    agent_env_unprotected,
    agent_env_usable,
)


def preferences_get(*, user: User) -> UserPreferences:
    """The user's preferences, created with defaults on first use."""
    preferences, _ = UserPreferences.objects.get_or_create(user=user)
    return preferences


@dataclass(frozen=True)
class TaskLimits:
    """How many of one user's tasks may run at once and wait to start."""

    max_running: int
    max_queued: int


def task_limits_for_user(*, preferences: UserPreferences) -> TaskLimits:
    """The user's own limits where an admin set them, else the server's defaults."""
    running, queued = preferences.max_running_tasks, preferences.max_queued_tasks
    return TaskLimits(
        max_running=settings.AGENT_MAX_RUNNING_TASKS_PER_USER if running is None else running,
        max_queued=settings.AGENT_MAX_QUEUED_TASKS_PER_USER if queued is None else queued,
    )


def auth_method_for_user(
    *,
    user: User,
    refresh: bool = True,
    buffer_seconds: int | None = None,
    api_key_only: bool = False,
) -> AuthResolution:
    """oauth_tokens' one auth-method rule, fed with this user's preferences (see
    auth_method_resolve for the rule; raises AuthUnavailable when nothing can be used)."""
    preferences = preferences_get(user=user)
    return auth_method_resolve(
        user=user,
        use_oauth=preferences.use_oauth,
        user_api_key=preferences.api_key,
        refresh=refresh,
        buffer_seconds=buffer_seconds,
        api_key_only=api_key_only,
    )


# --- what the Code agent settings page shows ----------------------------------------------------


@dataclass(frozen=True)
class TokenStatus:
    """A saved credential's health, without its tokens."""

    kind: str
    source: str
    status: str
    status_label: str
    expires: str
    last_refreshed: str
    last_error: str
    scopes: str
    subscription: str
    refreshable: bool
    expired: bool = False  # the access token's time has passed
    # The badge's class (a CredentialStatus value, or "accepted" / "untried" for an unexpired
    # credential that the API did / did not accept yet) and whether the API has accepted it.
    badge: str = ""
    accepted: str = ""


@dataclass(frozen=True)
class MethodPreview:
    """Which method the next task uses (auth_method_resolve without refreshing)."""

    available: bool
    step: int  # 1 user OAuth, 2 global OAuth, 3 API key, 0 none
    title: str
    reason: str
    warning: str = ""
    # Chosen, but the next task fails unless something changes first (the card must not say
    # Ready): dead tokens (refused by the API, or expired past renewal) and no API key to fall
    # back to; or expired tokens whose refresh failed, and no key.
    will_fail: bool = False
    # The chosen OAuth tokens cannot be used, so an API key runs the next task: the badge
    # names it ("Falls back to your API key").
    falls_back: str = ""


@dataclass(frozen=True)
class CodeAgentStatus:
    use_oauth: bool
    tokens: TokenStatus | None
    api_key_last4: str
    agent_env_names: list[str]
    method: MethodPreview
    # Saved variables today's rules refuse (tasks leave them out), and names whose values are
    # too short to be hidden in task logs.
    agent_env_problems: list[SavedVariableProblem] = field(default_factory=list)
    agent_env_unprotected: list[str] = field(default_factory=list)


_FAILED_STATUSES = (CredentialStatus.INVALID, CredentialStatus.REFRESH_FAILED)


def token_status_get(*, credential: OAuthCredential, now: datetime) -> TokenStatus:
    status = credential_status_compute(credential=credential, now=now, buffer=refresh_buffer())
    badge, status_label = _badge(credential, status)
    return TokenStatus(
        kind=credential.get_kind_display(),
        source=credential.get_source_display(),
        status=status,
        status_label=status_label,
        expires=expiry_words(expires_at=credential.expires_at, now=now),
        last_refreshed=time_ago_words(moment=credential.last_refreshed_at, now=now),
        last_error=credential.last_refresh_error,
        scopes=scopes_words(credential.scopes),
        subscription=credential.subscription_type or "not stated",
        # An invalid chain cannot be refreshed again; only new tokens help.
        refreshable=credential.is_refreshable and status != CredentialStatus.INVALID,
        expired=credential.expires_at is not None and credential.expires_at <= now,
        badge=badge,
        accepted=(
            refused_words(credential)
            if credential.refused_at is not None
            else accepted_words(accepted_at=credential.last_accepted_at, now=now)
        ),
    )


def _badge(credential: OAuthCredential, status: str) -> tuple[str, str]:
    """The status badge's class and words. Unexpired tokens are "Valid" only in time: the badge
    says whether the API has accepted them, which only a task's gateway can have seen."""
    if credential.refused_at is not None:
        return CredentialStatus.INVALID, "Refused by the API"
    if status == CredentialStatus.EXPIRED and credential.is_refreshable:
        return status, "Expired (will be refreshed before the next task)"
    if status == CredentialStatus.VALID:
        if credential.last_accepted_at is not None:
            return "accepted", "Accepted by the API"
        return "untried", "Not used yet"
    return status, CredentialStatus(status).label


def accepted_words(*, accepted_at: datetime | None, now: datetime) -> str:
    """When the model API last accepted a credential, or that it has not been used yet."""
    if accepted_at is None:
        return (
            "not yet: no task has used these tokens, so whether Anthropic accepts them is not known"
        )
    recent = now - accepted_at < timedelta(minutes=1)
    ago = "just now" if recent else f"{timesince(accepted_at, now)} ago"
    return f"last accepted by the API at {utc_text(accepted_at)} ({ago})"


def method_preview_get(
    *, user: User, api_key_last4: str, tokens: TokenStatus | None = None
) -> MethodPreview:
    """The card: what the one rule (auth_method_resolve, without refreshing) chooses for the
    next task, so the card and the task cannot disagree."""
    try:
        resolution = auth_method_for_user(user=user, refresh=False)
    except AuthUnavailable as exc:
        if exc.oauth_source:  # the chosen tokens cannot be used and nothing can stand in
            step = 1 if exc.oauth_source == AuthSource.USER else 2
            return MethodPreview(
                available=False,
                step=step,
                title=_OAUTH_TITLES[step],
                reason=str(exc),
                warning=_will_fail_words(tokens if step == 1 else None),
                will_fail=True,
            )
        return MethodPreview(
            available=False, step=0, title="None: tasks cannot start", reason=str(exc)
        )
    if resolution.method == AuthMethod.OAUTH:
        step = 1 if resolution.source == AuthSource.USER else 2
        title = _OAUTH_TITLES[step]
    else:
        step = 3
        title = (
            f"Your API key (ending in …{api_key_last4})"
            if resolution.source == AuthSource.USER
            else "The server's API key (ANTHROPIC_API_KEY)"
        )
    warning = ""
    falls_back = ""
    if resolution.fallback:
        whose = "your" if resolution.source == AuthSource.USER else "the server's"
        falls_back = f"Falls back to {whose} API key"
        warning = "Claude OAuth is on but cannot be used, so the API key runs your tasks."
    elif step == 1 and tokens is not None and tokens.status in _FAILED_STATUSES:
        # Still usable until the access token expires, but it will not be renewed.
        warning = (
            f"Your saved tokens could not be refreshed, so they stop working when the access "
            f"token expires, {tokens.expires}. Paste new tokens, or try “Refresh now”."
            if tokens.refreshable
            else f"Your saved tokens can no longer be refreshed, so they stop working when the "
            f"access token expires, {tokens.expires}. Paste new tokens."
        )
    return MethodPreview(
        available=True,
        step=step,
        title=title,
        reason=resolution.reason,
        warning=warning,
        falls_back=falls_back,
    )


def _will_fail_words(tokens: TokenStatus | None) -> str:
    """What to do when the chosen tokens fail the next task and no API key can stand in."""
    if tokens is not None and tokens.refreshable and tokens.status in _FAILED_STATUSES:
        return (
            f"Your saved tokens expired {tokens.expires} and the last refresh failed, and there "
            "is no API key to fall back to: the next task will fail unless the refresh "
            "succeeds before it starts. Try “Refresh now”, or paste new tokens."
        )
    return (
        "There is no API key to fall back to: the next task will fail at once. Sign in again "
        "(save new tokens), or save an API key."
    )


_OAUTH_TITLES = {
    1: "Your Claude OAuth tokens",
    2: "The server's global Claude OAuth tokens",
}


def code_agent_saved_inputs(*, user: User) -> dict[str, bool]:
    """Per input of the page: whether something is saved (which an empty field keeps)."""
    preferences = preferences_get(user=user)
    return {
        "oauth_tokens": OAuthCredential.objects.filter(owner=user).exists(),
        "api_key": preferences.has_api_key,
        "agent_env": bool(preferences.agent_env),
    }


def code_agent_status_get(*, user: User) -> CodeAgentStatus:
    preferences = preferences_get(user=user)
    credential = credential_for_user(user=user)
    now = timezone.now()
    tokens = None if credential is None else token_status_get(credential=credential, now=now)
    return CodeAgentStatus(
        use_oauth=preferences.use_oauth,
        tokens=tokens,
        api_key_last4=preferences.api_key_last4,
        agent_env_names=sorted(agent_env_name_labels(env=preferences.agent_env or {})),
        method=method_preview_get(
            user=user, api_key_last4=preferences.api_key_last4, tokens=tokens
        ),
        agent_env_problems=agent_env_saved_problems(env=preferences.agent_env or {}),
        agent_env_unprotected=agent_env_unprotected(env=preferences.agent_env or {}),
    )


# --- usage limits and the shared credentials ------------------------------------------------------


@dataclass(frozen=True)
class LimitState:
    """The usage limit of the subscription the user's next task would use."""

    applies: bool  # the next task uses a Claude subscription (OAuth)
    whose: str  # "your" / "the server's shared" ("nobody": no credential, tasks cannot start)
    limited: str  # "limited until 14:00 (in 2 h 10 min), five-hour limit" or ""
    warning: str  # "92% of the weekly limit used" or ""
    checked: str  # when a task last reported it


def limit_state_get(*, user: User, now: datetime) -> LimitState:
    try:
        resolution = auth_method_for_user(user=user, refresh=False)
    except AuthUnavailable:
        return LimitState(False, "nobody", "", "", "")  # no credential at all yet
    if resolution.method != AuthMethod.OAUTH:
        return LimitState(False, "", "", "", "")
    user_source = resolution.source == AuthSource.USER
    credential = (
        OAuthCredential.objects.filter(owner=user).first()
        if user_source
        else OAuthCredential.objects.filter(owner__isnull=True).first()
    )
    whose = "your" if user_source else "the server's shared"
    if credential is None:
        return LimitState(True, whose, "", "", "")
    window = limit_window_words(credential.limit_window)
    limited = ""
    if credential.limit_status == "rejected" and (
        credential.limited_until is None or credential.limited_until > now
    ):
        limited = f"{limited_until_words(until=credential.limited_until, now=now)}, {window} limit"
    warning = ""
    if credential.limit_status == "allowed_warning":
        used = credential.limit_utilization
        share = f"{used:.0%} of the " if used is not None else "close to the "
        warning = f"{share}{window} limit used"
    checked = ""
    if credential.limit_seen_at:
        checked = timezone.localtime(credential.limit_seen_at).strftime("%Y-%m-%d %H:%M")
    return LimitState(True, whose, limited, warning, checked)


def global_access_words(*, user: User) -> str:
    """Whether the server's shared credentials are open to this user, in words."""
    group = settings.CLAUDE_GLOBAL_CREDENTIALS_GROUP
    if not group:
        return (
            "The server's shared credentials (its global Claude OAuth and its API key, if the "
            "administrator set them) are open to every user."
        )
    if global_credentials_allowed(user=user):
        return f"You may use the server's shared credentials: you are in the group “{group}”."
    return (
        f"The server's shared credentials are only for members of the group “{group}”; "
        "your tasks use your own tokens or API key."
    )


def agent_env_for_task(*, user: User) -> tuple[dict[str, str], list[SavedVariableProblem]]:
    """The saved extra variables a task gets, and those it leaves out (they break a rule that
    came after they were saved: a lone surrogate would fail every task, for instance)."""
    env = preferences_get(user=user).agent_env or {}
    return agent_env_usable(env=env), agent_env_saved_problems(env=env)
