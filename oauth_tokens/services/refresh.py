"""Refreshing one credential, with single flight.

Refresh tokens rotate and are single use (docs/claude-cli-contract.md#refresh-request), so for
one credential only one process may talk to the token endpoint at a time. A short locked
transaction takes a *claim* on the row (re-reading it under the lock first); the HTTP call runs
outside any transaction, so no database lock is held while the network is slow; a second short
locked transaction saves the outcome. Everyone else who needs the credential meanwhile waits for
the claim to end and takes its outcome.
"""

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from common.humanize import seconds_left_words
from oauth_tokens.formats import (
    ParsedCredential,
    credentials_file_dumps,
)
from oauth_tokens.models import AuditAction, CredentialKind, CredentialStatus, OAuthCredential
from oauth_tokens.selectors import credential_status_compute
from oauth_tokens.token_client import RefreshConfig, RefreshError, TokenGrant, token_refresh_request

from .audit import credential_audit_of, credential_audit_record, refresh_failure_announce

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
        user_agent=settings.CLAUDE_OAUTH_USER_AGENT,
    )


def refresh_buffer() -> timedelta:
    return timedelta(seconds=settings.CLAUDE_OAUTH_REFRESH_BUFFER)


def claim_ttl(config: RefreshConfig | None = None) -> timedelta:
    """How long a claim on a credential lasts. Long enough for the slowest refresh the client
    allows (max_total_seconds) plus one request's timeout and a margin to save the outcome, so
    a live claim never lapses while its holder still works on it."""
    config = config or refresh_config()
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
        seconds_left_words(expires_at=credential.expires_at, now=now),
        "due" if due else "not due",
    )
    if not due and credential.status != CredentialStatus.INVALID:
        _mark_used(credential, now, buffer)
        return FreshnessResult(ok=True, snapshot=_snapshot(credential))
    if not credential.is_refreshable or credential.status == CredentialStatus.INVALID:
        return _without_refresh(credential, now)
    try:
        return refresh_single_flight(credential_id, force=force, buffer=buffer)
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


def no_refresh_reason(credential: OAuthCredential, *, expired: bool) -> str:
    if credential.status == CredentialStatus.INVALID:
        return credential.last_refresh_error or "it was marked invalid"
    when = "has expired" if expired else "expires within minutes"
    if credential.kind == CredentialKind.SETUP_TOKEN:
        return f"the token {when}; create a new one with `claude setup-token`"
    return f"the token {when} and there is no refresh token to renew it with"


def _without_refresh(credential: OAuthCredential, now: datetime) -> FreshnessResult:
    """A credential we cannot (or must not) refresh: usable until it really expires."""
    expired = credential_expired(credential=credential, now=now)
    why = no_refresh_reason(credential, expired=expired)
    if not expired:
        OAuthCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        return FreshnessResult(ok=True, snapshot=_snapshot(credential), error=why, stale=True)
    OAuthCredential.objects.filter(pk=credential.pk).exclude(
        status=CredentialStatus.INVALID
    ).update(status=CredentialStatus.EXPIRED)
    return FreshnessResult(ok=False, error=why, permanent=True)


def refresh_single_flight(credential_id: int, *, force: bool, buffer: timedelta) -> FreshnessResult:
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
                    refresh_claimed_until=now + claim_ttl(),
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
        if until is None or until <= timezone.now():  # no expiry counts as stale
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
    values = refresh_grant_values(grant=grant, old_refresh_token=refresh_token, now=now)
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
    credential_audit_record(
        action=AuditAction.REFRESHED,
        outcome=f"{grant.attempts} attempt(s)",
        subject=credential_audit_of(credential),
    )
    logger.info(
        "Refreshed OAuth credential %s (%s) after %s attempt(s); %s",
        credential_id,
        credential.source,
        grant.attempts,
        seconds_left_words(expires_at=credential.expires_at, now=now),
    )
    return FreshnessResult(ok=True, refreshed=True, snapshot=_snapshot(credential))


def refresh_grant_values(
    *, grant: TokenGrant, old_refresh_token: str, now: datetime
) -> dict[str, Any]:
    """The columns a successful refresh writes (with refresh_count + 1), and releases the claim.

    Shared by the single refresh and the batch one: one rule for what a grant changes."""
    values: dict[str, Any] = {
        "access_token": grant.access_token,
        # Rotation: keep the new refresh token; the old one only if none came back.
        "refresh_token": grant.refresh_token or old_refresh_token,
        "expires_at": grant_expiry(grant=grant, now=now),
        "status": CredentialStatus.VALID,
        "last_refreshed_at": now,
        "refused_at": None,  # a new access token: the refused one is gone
        "last_refresh_error": "",
        "last_refresh_error_code": "",
        "consecutive_failures": 0,
        "last_used_at": now,
        "refresh_claim": "",
        "refresh_claimed_until": None,
        "updated_at": now,
    }
    if grant.scopes:
        values["scopes"] = list(grant.scopes)
    return values


def refresh_failure_values(*, error: RefreshError, now: datetime) -> dict[str, Any]:
    """The columns a failed refresh writes (with consecutive_failures + 1), and releases the
    claim. The message holds no token: the client keeps tokens and server text out of it."""
    return {
        "status": CredentialStatus.INVALID if error.permanent else CredentialStatus.REFRESH_FAILED,
        "last_refresh_error": str(error),
        "last_refresh_error_code": error.code[:32],
        "refresh_claim": "",
        "refresh_claimed_until": None,
        "updated_at": now,
    }


def _refresh_failure_save(credential_id: int, claim: str, exc: RefreshError) -> FreshnessResult:
    now = timezone.now()
    message = str(exc)  # the client already keeps tokens and server text out of it
    with transaction.atomic():
        saved = OAuthCredential.objects.filter(pk=credential_id, refresh_claim=claim).update(
            **refresh_failure_values(error=exc, now=now),
            consecutive_failures=F("consecutive_failures") + 1,
        )
        credential = OAuthCredential.objects.get(pk=credential_id)
    if not saved:  # replaced meanwhile: the failure was the old chain's, not these tokens'
        return FreshnessResult(ok=True, snapshot=_snapshot(credential))
    refresh_failure_announce(credential=credential, reason=message, permanent=exc.permanent)
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
