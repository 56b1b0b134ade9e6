"""Actions on Claude OAuth credentials: store, seed from the environment, refresh (single flight),
and choose how a task authenticates.

Refresh tokens rotate and are single use, so for one credential only one process may talk to the
token endpoint at a time. A short locked transaction takes a *claim* on the row (re-reading it
under the lock first); the HTTP call runs outside any transaction, so no database lock is held
while the network is slow; a second short locked transaction saves the outcome. Everyone else
who needs the credential meanwhile waits for the claim to end and takes its outcome.
"""

import hashlib
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from accounts.selectors import preferences_get

from .formats import (
    ParsedCredential,
    TokenFormatError,
    credential_input_parse,
    credentials_file_dumps,
)
from .models import CredentialKind, CredentialSource, CredentialStatus, OAuthCredential
from .selectors import credential_status_compute
from .token_client import RefreshConfig, RefreshError, TokenGrant, redact, token_refresh_request

logger = logging.getLogger("oauth_tokens.services")

# When the token endpoint leaves out expires_in, assume a short life so we refresh again soon.
_DEFAULT_EXPIRES_IN = 3600
_POLL_FIRST_SECONDS = 0.05
_POLL_MAX_SECONDS = 0.25


# --- settings ---------------------------------------------------------------------------------


def refresh_config() -> RefreshConfig:
    return RefreshConfig(
        token_url=settings.CLAUDE_OAUTH_TOKEN_URL,
        client_id=settings.CLAUDE_OAUTH_CLIENT_ID,
        scope=settings.CLAUDE_OAUTH_SCOPE,
        timeout_seconds=settings.CLAUDE_OAUTH_TIMEOUT,
        max_attempts=settings.CLAUDE_OAUTH_MAX_ATTEMPTS,
        max_total_seconds=settings.CLAUDE_OAUTH_MAX_TOTAL_SECONDS,
    )


def refresh_buffer() -> timedelta:
    return timedelta(seconds=settings.CLAUDE_OAUTH_REFRESH_BUFFER)


def _claim_ttl() -> timedelta:
    # Long enough for the slowest refresh the client allows, so a live claim never lapses.
    config = refresh_config()
    return timedelta(seconds=config.max_total_seconds + config.timeout_seconds + 5)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialSnapshot:
    """The token values a task needs, read once. Tokens stay out of repr."""

    credential_id: int
    kind: str
    source: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime | None
    scopes: tuple[str, ...]
    subscription_type: str
    rate_limit_tier: str

    def credentials_file_json(self, *, include_refresh_token: bool = False) -> str:
        """The CLI's .credentials.json. The refresh token is left out unless asked for, so the
        CLI in a container can never rotate the chain behind the server."""
        return credentials_file_dumps(
            access_token=self.access_token,
            refresh_token=self.refresh_token if include_refresh_token else "",
            expires_at=self.expires_at,
            scopes=self.scopes,
            subscription_type=self.subscription_type,
            rate_limit_tier=self.rate_limit_tier,
        )


@dataclass(frozen=True)
class FreshnessResult:
    ok: bool
    refreshed: bool = False  # new tokens came from the endpoint (by us or the flight we joined)
    snapshot: CredentialSnapshot | None = None
    error: str = ""  # why it failed, or why the refresh failed when `stale`
    permanent: bool = False  # the credential cannot recover without new tokens from the user
    stale: bool = False  # refresh failed but the old access token has not really expired


def _snapshot(credential: OAuthCredential) -> CredentialSnapshot:
    return CredentialSnapshot(
        credential_id=credential.pk,
        kind=credential.kind,
        source=credential.source,
        access_token=credential.access_token,
        refresh_token=credential.refresh_token,
        expires_at=credential.expires_at,
        scopes=tuple(credential.scopes or ()),
        subscription_type=credential.subscription_type,
        rate_limit_tier=credential.rate_limit_tier,
    )


def _time_left(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return "never expires"
    seconds = int((expires_at - now).total_seconds())
    return f"{seconds} s left" if seconds >= 0 else f"expired {-seconds} s ago"


# --- storing ----------------------------------------------------------------------------------


def _token_fields(parsed: ParsedCredential) -> dict[str, Any]:
    return {
        "kind": parsed.kind.value,
        "access_token": parsed.access_token,
        "refresh_token": parsed.refresh_token,
        "expires_at": parsed.expires_at,
        "scopes": list(parsed.scopes),
        "subscription_type": parsed.subscription_type,
        "rate_limit_tier": parsed.rate_limit_tier,
        # New tokens start with a clean bill of health.
        "status": CredentialStatus.VALID,
        "last_refresh_error": "",
        "consecutive_failures": 0,
        "refresh_claim": "",
        "refresh_claimed_until": None,
    }


@transaction.atomic
def credential_store(
    *, owner: User, parsed: ParsedCredential, source: str = CredentialSource.USER
) -> OAuthCredential:
    """Save (or replace) a user's credential from parsed input."""
    credential, _ = OAuthCredential.objects.update_or_create(
        owner=owner, defaults={"source": source, **_token_fields(parsed)}
    )
    logger.info(
        "Stored %s OAuth credential for user %s (source %s, %s)",
        parsed.kind.value,
        owner.pk,
        source,
        _time_left(parsed.expires_at, timezone.now()),
    )
    return credential


def credential_remove(*, owner: User) -> bool:
    deleted, _ = OAuthCredential.objects.filter(owner=owner).delete()
    if deleted:
        logger.info("Removed the OAuth credential of user %s", owner.pk)
    return bool(deleted)


def credential_mark_invalid(*, credential_ids: list[int], reason: str) -> int:
    return OAuthCredential.objects.filter(pk__in=credential_ids).update(
        status=CredentialStatus.INVALID,
        last_refresh_error=redact(reason),
        updated_at=timezone.now(),
    )


def credential_rotation_save(
    *, credential_id: int, given_refresh_token: str, file_content: bytes
) -> bool:
    """Save tokens a container's CLI rotated (only when AGENT_ALLOW_TOKEN_ROTATION is on).

    Saved only if the CLI really rotated the token it was given and nobody else rotated the
    row meanwhile; otherwise the row already holds the newer chain.
    """
    try:
        parsed = credential_input_parse(raw=file_content)
    except TokenFormatError as exc:
        logger.warning("Credentials file read back from a container is unusable: %s", exc)
        return False
    if not parsed.refresh_token or parsed.refresh_token == given_refresh_token:
        return False
    with transaction.atomic():
        credential = OAuthCredential.objects.select_for_update().get(pk=credential_id)
        if credential.refresh_token != given_refresh_token:
            return False
        now = timezone.now()
        OAuthCredential.objects.filter(pk=credential_id).update(
            access_token=parsed.access_token,
            refresh_token=parsed.refresh_token,
            expires_at=parsed.expires_at,
            status=CredentialStatus.VALID,
            last_refreshed_at=now,
            refresh_count=F("refresh_count") + 1,
            updated_at=now,
        )
    logger.info("Saved OAuth tokens rotated inside a container for credential %s", credential_id)
    return True


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class EnvironmentTokensError(Exception):
    """CLAUDE_USE_OAUTH is on but the CLAUDE_* variables do not hold usable tokens."""


def environment_credential_get() -> OAuthCredential | None:
    """The global credential, seeded from the environment on first use.

    From then on the database row is the truth (its refresh token rotates there). Only when the
    environment holds a different token than the one seeded is the row seeded again.
    """
    if not settings.CLAUDE_USE_OAUTH:
        return None
    if not settings.CLAUDE_ACCESS_TOKEN:
        raise EnvironmentTokensError(
            "CLAUDE_USE_OAUTH=true but CLAUDE_ACCESS_TOKEN is empty. Set CLAUDE_ACCESS_TOKEN "
            "(and CLAUDE_REFRESH_TOKEN, CLAUDE_EXPIRES_AT), or turn CLAUDE_USE_OAUTH off."
        )
    fingerprint = _fingerprint(settings.CLAUDE_REFRESH_TOKEN or settings.CLAUDE_ACCESS_TOKEN)
    existing = OAuthCredential.objects.filter(
        owner__isnull=True, source=CredentialSource.ENVIRONMENT
    ).first()
    if existing is not None and existing.seed_fingerprint == fingerprint:
        return existing
    parsed = _environment_parse()
    with transaction.atomic():
        current = (
            OAuthCredential.objects.select_for_update()
            .filter(owner__isnull=True, source=CredentialSource.ENVIRONMENT)
            .first()
        )
        if current is not None and current.seed_fingerprint == fingerprint:
            return current  # another process seeded it while we parsed
        values = {**_token_fields(parsed), "seed_fingerprint": fingerprint}
        if current is None:
            try:
                with transaction.atomic():
                    current = OAuthCredential.objects.create(
                        owner=None, source=CredentialSource.ENVIRONMENT, **values
                    )
            except IntegrityError:  # lost a race to seed: the winner's row is the truth
                return OAuthCredential.objects.get(
                    owner__isnull=True, source=CredentialSource.ENVIRONMENT
                )
            logger.info("Seeded the global OAuth credential from the environment")
        else:
            OAuthCredential.objects.filter(pk=current.pk).update(
                **values, updated_at=timezone.now()
            )
            current.refresh_from_db()
            logger.warning(
                "The environment holds a different OAuth refresh token than the one seeded; "
                "re-seeded the global credential from the environment"
            )
    return current


def _environment_parse() -> ParsedCredential:
    try:
        return credential_input_parse(
            raw={
                "access_token": settings.CLAUDE_ACCESS_TOKEN,
                "refresh_token": settings.CLAUDE_REFRESH_TOKEN or None,
                "expires_at": settings.CLAUDE_EXPIRES_AT or None,
            }
        )
    except TokenFormatError as exc:
        name = {
            "access_token": "CLAUDE_ACCESS_TOKEN",
            "refresh_token": "CLAUDE_REFRESH_TOKEN",
            "expires_at": "CLAUDE_EXPIRES_AT",
        }.get(exc.field or "", "the CLAUDE_* variables")
        raise EnvironmentTokensError(f"{name}: {exc.message}") from exc


# --- refreshing -------------------------------------------------------------------------------


def credential_needs_refresh(
    *, credential: OAuthCredential, now: datetime, buffer: timedelta
) -> bool:
    return credential.expires_at is not None and credential.expires_at - now <= buffer


def credential_expired(*, credential: OAuthCredential | ParsedCredential, now: datetime) -> bool:
    """Really expired, not merely inside the refresh buffer."""
    return credential.expires_at is not None and credential.expires_at <= now


def grant_expiry(*, grant: TokenGrant, now: datetime) -> datetime:
    """When a fresh grant's access token expires (a short life if the endpoint did not say)."""
    expires_in = grant.expires_in if grant.expires_in is not None else _DEFAULT_EXPIRES_IN
    return now + timedelta(seconds=expires_in)


def credential_ensure_fresh(
    *, credential_id: int, force: bool = False, buffer_seconds: int | None = None
) -> FreshnessResult:
    """Make the credential valid for at least the buffer, refreshing it if it must.

    The common path (no refresh due) is one read and one write of last_used_at.
    """
    buffer = refresh_buffer() if buffer_seconds is None else timedelta(seconds=buffer_seconds)
    now = timezone.now()
    credential = OAuthCredential.objects.get(pk=credential_id)
    due = force or credential_needs_refresh(credential=credential, now=now, buffer=buffer)
    logger.debug(
        "OAuth credential %s (%s): %s, refresh %s",
        credential.pk,
        credential.source,
        _time_left(credential.expires_at, now),
        "due" if due else "not due",
    )
    if not due and credential.status != CredentialStatus.INVALID:
        _mark_used(credential, now, buffer)
        return FreshnessResult(ok=True, snapshot=_snapshot(credential))
    if not credential.is_refreshable or credential.status == CredentialStatus.INVALID:
        return _without_refresh(credential, now)
    try:
        return _refresh_single_flight(credential_id, force=force, buffer=buffer)
    except OAuthCredential.DoesNotExist:
        return FreshnessResult(ok=False, error="the tokens were removed", permanent=True)


def _mark_used(credential: OAuthCredential, now: datetime, buffer: timedelta) -> None:
    status = credential_status_compute(credential=credential, now=now, buffer=buffer)
    sticky = [CredentialStatus.INVALID, CredentialStatus.REFRESH_FAILED]
    # One UPDATE; a failure recorded by someone else since our read is never overwritten.
    OAuthCredential.objects.filter(pk=credential.pk).update(
        last_used_at=now,
        status=Case(When(status__in=sticky, then=F("status")), default=Value(status)),
    )


def _no_refresh_reason(credential: OAuthCredential, *, expired: bool) -> str:
    if credential.status == CredentialStatus.INVALID:
        return credential.last_refresh_error or "it was marked invalid"
    when = "has expired" if expired else "expires within minutes"
    if credential.kind == CredentialKind.SETUP_TOKEN:
        return f"the token {when}; create a new one with `claude setup-token`"
    return f"the token {when} and there is no refresh token to renew it with"


def _without_refresh(credential: OAuthCredential, now: datetime) -> FreshnessResult:
    """A credential we cannot (or must not) refresh: usable until it really expires."""
    expired = credential_expired(credential=credential, now=now)
    why = _no_refresh_reason(credential, expired=expired)
    if not expired:
        OAuthCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        return FreshnessResult(ok=True, snapshot=_snapshot(credential), error=why, stale=True)
    OAuthCredential.objects.filter(pk=credential.pk).exclude(
        status=CredentialStatus.INVALID
    ).update(status=CredentialStatus.EXPIRED)
    return FreshnessResult(ok=False, error=why, permanent=True)


def _refresh_single_flight(
    credential_id: int, *, force: bool, buffer: timedelta
) -> FreshnessResult:
    claim = secrets.token_hex(16)
    count_seen: int | None = None  # refresh_count when we began waiting for another flight
    while True:
        with transaction.atomic():
            credential = OAuthCredential.objects.select_for_update().get(pk=credential_id)
            now = timezone.now()
            # Re-read under the lock: another flight may have refreshed it meanwhile.
            still_due = credential_needs_refresh(credential=credential, now=now, buffer=buffer)
            if count_seen is not None:
                # We waited for another flight: its outcome is ours (never a second request).
                if credential.refresh_count != count_seen:
                    return FreshnessResult(ok=True, refreshed=True, snapshot=_snapshot(credential))
                if credential.status in (CredentialStatus.REFRESH_FAILED, CredentialStatus.INVALID):
                    return _failure_result(credential, now, credential.last_refresh_error)
                return FreshnessResult(ok=True, snapshot=_snapshot(credential))
            if not force and not still_due:
                return FreshnessResult(ok=True, snapshot=_snapshot(credential))
            claim_live = bool(
                credential.refresh_claim
                and credential.refresh_claimed_until
                and credential.refresh_claimed_until > now
            )
            if not claim_live:
                OAuthCredential.objects.filter(pk=credential_id).update(
                    refresh_claim=claim,
                    refresh_claimed_until=now + _claim_ttl(),
                    last_refresh_attempt_at=now,
                )
            count_before = credential.refresh_count
        if claim_live:
            if _claim_wait(credential_id):
                count_seen = count_before
            continue
        break
    return _refresh_and_save(credential, claim)


def _claim_wait(credential_id: int) -> bool:
    """Wait until the live claim ends. True if it ended by its holder finishing, False if it
    lapsed (its holder died), in which case the caller may take it over."""
    pause = _POLL_FIRST_SECONDS
    while True:
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX_SECONDS)
        row = (
            OAuthCredential.objects.filter(pk=credential_id)
            .values("refresh_claim", "refresh_claimed_until")
            .first()
        )
        if row is None:
            return True  # removed meanwhile: the caller's re-read will say so
        if not row["refresh_claim"]:
            return True
        until = row["refresh_claimed_until"]
        if until is None or until <= timezone.now():
            return False


def _refresh_and_save(credential: OAuthCredential, claim: str) -> FreshnessResult:
    """The token request for a credential we hold the claim on, and one UPDATE with its outcome.

    `credential` is the row as read under the lock when the claim was taken.
    """
    credential_id, refresh_token = credential.pk, credential.refresh_token
    try:
        grant = token_refresh_request(refresh_token=refresh_token, config=refresh_config())
    except RefreshError as exc:
        return _refresh_failure_save(credential_id, claim, exc)
    except BaseException:
        # Ctrl-C or a crash mid-request: give the claim back so the next caller need not wait
        # for it to lapse. Nothing else was written.
        OAuthCredential.objects.filter(pk=credential_id, refresh_claim=claim).update(
            refresh_claim="", refresh_claimed_until=None
        )
        raise
    now = timezone.now()
    values: dict[str, Any] = {
        "access_token": grant.access_token,
        # Rotation: keep the new refresh token; the old one only if none came back.
        "refresh_token": grant.refresh_token or refresh_token,
        "expires_at": grant_expiry(grant=grant, now=now),
        "status": CredentialStatus.VALID,
        "last_refreshed_at": now,
        "last_refresh_error": "",
        "consecutive_failures": 0,
        "last_used_at": now,
        "refresh_claim": "",
        "refresh_claimed_until": None,
        "updated_at": now,
    }
    if grant.scopes:
        values["scopes"] = list(grant.scopes)
    # One UPDATE of token and health columns, only while our claim stands: if the user saved
    # new tokens meanwhile, this grant belongs to the replaced chain and is dropped.
    saved = OAuthCredential.objects.filter(pk=credential_id, refresh_claim=claim).update(
        **values, refresh_count=F("refresh_count") + 1
    )
    if not saved:
        logger.warning(
            "OAuth credential %s was replaced while it was being refreshed; kept the new tokens",
            credential_id,
        )
        return FreshnessResult(
            ok=True, snapshot=_snapshot(OAuthCredential.objects.get(pk=credential_id))
        )
    for name, value in values.items():
        setattr(credential, name, value)
    credential.refresh_count += 1
    logger.info(
        "Refreshed OAuth credential %s (%s) after %s attempt(s); %s",
        credential_id,
        credential.source,
        grant.attempts,
        _time_left(credential.expires_at, now),
    )
    return FreshnessResult(ok=True, refreshed=True, snapshot=_snapshot(credential))


def _refresh_failure_save(credential_id: int, claim: str, exc: RefreshError) -> FreshnessResult:
    now = timezone.now()
    message = str(exc)  # the client already keeps tokens and server text out of it
    with transaction.atomic():
        saved = OAuthCredential.objects.filter(pk=credential_id, refresh_claim=claim).update(
            status=CredentialStatus.INVALID if exc.permanent else CredentialStatus.REFRESH_FAILED,
            last_refresh_error=message,
            consecutive_failures=F("consecutive_failures") + 1,
            refresh_claim="",
            refresh_claimed_until=None,
            updated_at=now,
        )
        credential = OAuthCredential.objects.get(pk=credential_id)
    if not saved:  # replaced meanwhile: the failure was the old chain's, not these tokens'
        return FreshnessResult(ok=True, snapshot=_snapshot(credential))
    logger.warning(
        "OAuth refresh of credential %s (%s) failed (%s, %s attempt(s), permanent=%s): %s",
        credential_id,
        credential.source,
        exc.code,
        exc.attempts,
        exc.permanent,
        message,
    )
    return _failure_result(credential, now, message)


def _failure_result(credential: OAuthCredential, now: datetime, message: str) -> FreshnessResult:
    permanent = credential.status == CredentialStatus.INVALID
    if not credential_expired(credential=credential, now=now):
        # Only inside the buffer: the old access token still works, use it.
        OAuthCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        return FreshnessResult(
            ok=True, snapshot=_snapshot(credential), error=message, stale=True, permanent=permanent
        )
    return FreshnessResult(ok=False, error=message or "refresh failed", permanent=permanent)


# --- choosing the auth method -----------------------------------------------------------------


class AuthMethod:
    OAUTH = "oauth"
    API_KEY = "api_key"


class AuthSource:
    USER = "user"
    ENVIRONMENT = "environment"


# The original design's messages, each followed by the reason.
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


def _oauth_choice(user: User, use_oauth: bool) -> _OAuthChoice | None:
    """Which OAuth credential the priority order picks, if any."""
    if use_oauth:
        credential = OAuthCredential.objects.filter(owner=user).first()
        if credential is not None:
            return _OAuthChoice(AuthSource.USER, credential)
    if settings.CLAUDE_USE_OAUTH:
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
    *, user: User, refresh: bool = True, buffer_seconds: int | None = None
) -> AuthResolution:
    """Decide how the user's next task authenticates: the one rule, for tasks and pages alike.

    Priority: the user's OAuth (toggle on and tokens saved) > the global OAuth
    (CLAUDE_USE_OAUTH=true) > an API key (the user's, else ANTHROPIC_API_KEY). When the chosen
    OAuth cannot be made valid and an API key exists, fall back to it and say so.
    With refresh=False nothing is refreshed or written: a preview for the settings page.
    buffer_seconds: how long the token must stay valid (a task passes its own time limit).
    Raises AuthUnavailable when nothing can be used.
    """
    preferences = preferences_get(user=user)
    # A preview (the settings page) logs quietly; a real choice before a task is worth a line.
    info = logger.info if refresh else logger.debug
    warn = logger.warning if refresh else logger.debug
    choice = _oauth_choice(user, preferences.use_oauth)
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
    api_key, key_source = _api_key(preferences.api_key)
    if api_key:
        if oauth_error:
            warn(
                "Auth for user %s: OAuth failed, falling back to the API key from %s: %s",
                user.pk,
                key_source,
                oauth_error,
            )
            reason = f"Claude OAuth could not be used ({oauth_error}), so the API key is used."
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


def _api_key(user_key: str) -> tuple[str, str]:
    if user_key:
        return user_key, AuthSource.USER
    return settings.ANTHROPIC_API_KEY, AuthSource.ENVIRONMENT


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
                ok=False, permanent=True, error=_no_refresh_reason(credential, expired=True)
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


# --- refreshing many (the refresh_tokens command and the admin action) -------------------------


class RefreshOutcomeKind:
    REFRESHED = "refreshed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class RefreshOutcome:
    credential_id: int
    owner: str  # username, or "" for a global credential
    outcome: str  # RefreshOutcomeKind
    reason: str = ""  # why skipped or failed; never holds a token
    permanent: bool = False  # failed for good: the user must save new tokens

    @property
    def label(self) -> str:
        return f"{self.owner or 'global'} (credential {self.credential_id})"


@dataclass
class RefreshManySummary:
    selected: int
    outcomes: list[RefreshOutcome] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    def of(self, kind: str) -> list[RefreshOutcome]:
        return [outcome for outcome in self.outcomes if outcome.outcome == kind]

    @property
    def refreshed(self) -> int:
        return len(self.of(RefreshOutcomeKind.REFRESHED))

    @property
    def skipped(self) -> int:
        return len(self.of(RefreshOutcomeKind.SKIPPED))

    @property
    def failed(self) -> int:
        return len(self.of(RefreshOutcomeKind.FAILED))

    @property
    def not_attempted(self) -> int:
        return self.selected - len(self.outcomes)


def _refresh_one(
    credential_id: int, row: Mapping[str, Any] | None, *, force: bool, within_seconds: int | None
) -> RefreshOutcome:
    """One credential through the single-flight refresh, classified for a summary.

    `row` was read for the whole batch in one query (owner, expiry, status, kind).
    """
    if row is None:
        return RefreshOutcome(credential_id, "", RefreshOutcomeKind.SKIPPED, "deleted meanwhile")
    owner = row["owner__username"] or ""

    def skipped(reason: str) -> RefreshOutcome:
        return RefreshOutcome(credential_id, owner, RefreshOutcomeKind.SKIPPED, reason)

    if row["kind"] != CredentialKind.REFRESHABLE:
        return skipped("not refreshable (a long-lived setup token)")
    if row["status"] == CredentialStatus.INVALID:
        return skipped("marked invalid; the user must save new tokens")
    buffer = refresh_buffer() if within_seconds is None else timedelta(seconds=within_seconds)
    expires_at = row["expires_at"]
    if not force and (expires_at is None or expires_at - timezone.now() > buffer):
        # Checked before the service so a credential refreshed elsewhere since the selection
        # is not counted as used (the service's not-due path stamps last_used_at).
        return skipped("not due any more (refreshed elsewhere)")
    try:
        # Straight to the locked re-read: the batch read above stands in for the plain one.
        result = _refresh_single_flight(credential_id, force=force, buffer=buffer)
    except OAuthCredential.DoesNotExist:
        return skipped("deleted meanwhile")
    except Exception as exc:  # one broken credential must not stop the others
        logger.exception("Refreshing OAuth credential %s failed unexpectedly", credential_id)
        return RefreshOutcome(
            credential_id, owner, RefreshOutcomeKind.FAILED, f"unexpected {type(exc).__name__}"
        )
    if result.ok and result.refreshed:
        return RefreshOutcome(credential_id, owner, RefreshOutcomeKind.REFRESHED)
    if result.ok and not result.stale:
        # Re-read under the lock: another process refreshed it between our read and our claim.
        return skipped("already fresh (refreshed elsewhere meanwhile)")
    reason = result.error or "refresh failed"
    if result.stale:
        reason += " (the current access token still works for now)"
    return RefreshOutcome(
        credential_id, owner, RefreshOutcomeKind.FAILED, redact(reason), result.permanent
    )


def credentials_refresh_many(
    *,
    credential_ids: Sequence[int],
    force: bool = False,
    within_seconds: int | None = None,
    concurrency: int = 8,
    stop: threading.Event | None = None,
    on_outcome: Callable[[RefreshOutcome], None] | None = None,
) -> RefreshManySummary:
    """Refresh many credentials, `concurrency` at a time, each through the single-flight
    credential_ensure_fresh, so a task (or another host running this) refreshing the same
    credential at the same moment never causes a second token request.

    force: refresh even if not due. within_seconds: the window that makes one due (default the
    buffer). Setting `stop` (or Ctrl-C in the calling thread) takes no new work; refreshes in
    flight run to the end so no rotated token is lost, and the summary says interrupted.
    on_outcome is called in the calling thread, once per credential, as results come in.
    """
    ids = list(credential_ids)
    summary = RefreshManySummary(selected=len(ids))
    rows: dict[int, Mapping[str, Any]] = {}
    for start in range(0, len(ids), 5000):  # bounded IN lists
        for row in OAuthCredential.objects.filter(pk__in=ids[start : start + 5000]).values(
            "pk", "owner__username", "expires_at", "status", "kind"
        ):
            rows[row["pk"]] = row
    stop = stop if stop is not None else threading.Event()
    started = time.monotonic()
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for credential_id in ids:
        work.put(credential_id)
    results: queue.SimpleQueue[RefreshOutcome] = queue.SimpleQueue()

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    credential_id = work.get_nowait()
                except queue.Empty:
                    return
                results.put(
                    _refresh_one(
                        credential_id,
                        rows.get(credential_id),
                        force=force,
                        within_seconds=within_seconds,
                    )
                )
        finally:
            connection.close()  # each thread has its own connection; don't leak it

    threads = [
        threading.Thread(target=worker, name=f"oauth-refresh-{i}", daemon=False)
        for i in range(max(1, min(concurrency, len(ids))))
    ]
    for thread in threads:
        thread.start()

    def take(outcome: RefreshOutcome) -> None:
        summary.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        while any(thread.is_alive() for thread in threads):
            try:
                take(results.get(timeout=0.1))
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                # Stop taking work but wait for the refreshes in flight: a request the token
                # endpoint answered must be saved, or the rotated refresh token is lost.
                stop.set()
    except BaseException:
        stop.set()  # on_outcome failed (say, a closed stdout): no new work, then give up
        raise
    finally:
        for thread in threads:
            thread.join()
    while True:
        try:
            take(results.get_nowait())
        except queue.Empty:
            break
    summary.interrupted = stop.is_set()
    summary.seconds = time.monotonic() - started
    logger.info(
        "Refreshed %d, skipped %d, failed %d of %d OAuth credentials in %.1f s%s",
        summary.refreshed,
        summary.skipped,
        summary.failed,
        summary.selected,
        summary.seconds,
        " (interrupted)" if summary.interrupted else "",
    )
    return summary
