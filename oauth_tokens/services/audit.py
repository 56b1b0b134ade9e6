"""The audit trail of credentials (every use, refresh and change; never a secret), a credential's
usage-limit state, and marking a credential dead after the API rejected it.
"""

import logging
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from common.logging import secrets_redact
from oauth_tokens.models import (
    AuditAction,
    AuthMethod,
    AuthSource,
    CredentialAuditEvent,
    CredentialKindUsed,
    CredentialStatus,
    OAuthCredential,
)
from oauth_tokens.signals import credential_failed, credential_refresh_failed

logger = logging.getLogger("oauth_tokens.services")

_DETAIL_MAX = 1000
# How long a limit with an unreadable reset time is assumed to last.
UNKNOWN_RESET_GUESS = timedelta(hours=1)
# The longest window a subscription limit has (seven days) plus a margin for clocks: no reset
# time, whoever announced it, is believed further out than this.
LIMIT_RESET_MAX = timedelta(days=7, hours=6)


def limit_reset_capped(*, resets_at: datetime | None, now: datetime) -> datetime | None:
    """A reset time no later than LIMIT_RESET_MAX from now (None stays None: unknown)."""
    if resets_at is None:
        return None
    return min(resets_at, now + LIMIT_RESET_MAX)


def credential_kind_used(*, method: str, source: str) -> str:
    """The audit log's words for an AuthResolution's method and source."""
    user = source == AuthSource.USER
    if method == AuthMethod.OAUTH:
        return CredentialKindUsed.USER_OAUTH if user else CredentialKindUsed.GLOBAL_OAUTH
    return CredentialKindUsed.USER_API_KEY if user else CredentialKindUsed.SERVER_API_KEY


class AuditSubject(TypedDict):
    """Which credential an audit event is about: the kind used (CredentialKindUsed), whose it is
    (None: the server's), and the stored OAuth credential (None for an API key)."""

    credential_kind: str
    user_id: int | None
    credential_id: int | None


def credential_audit_record(
    *,
    action: str,
    subject: AuditSubject,
    user: User | None = None,
    task_id: int | None = None,
    outcome: str = "",
    detail: str = "",
) -> None:
    """Append one audit event (user: the subject's user when the caller has it at hand). Never
    raises: the trail must not break what it records."""
    try:
        if user is None and subject["user_id"] is not None:
            user = User.objects.filter(pk=subject["user_id"]).first()
        CredentialAuditEvent.objects.create(
            user=user,
            username=user.get_username() if user is not None else "",
            credential_kind=subject["credential_kind"],
            credential_id=subject["credential_id"],
            action=action,
            task_id=task_id,
            outcome=outcome[:64],
            detail=secrets_redact(detail)[:_DETAIL_MAX],
        )
    except Exception:
        logger.exception("Could not write a credential audit event (%s)", action)


def _kind_of(credential: OAuthCredential) -> str:
    return CredentialKindUsed.USER_OAUTH if credential.owner_id else CredentialKindUsed.GLOBAL_OAUTH


def credential_audit_of(credential: OAuthCredential) -> AuditSubject:
    """The audit subject that is a stored OAuth credential."""
    return AuditSubject(
        credential_kind=_kind_of(credential),
        user_id=credential.owner_id,
        credential_id=credential.pk,
    )


# --- usage limits ---------------------------------------------------------------------------------


def credential_limit_record(
    *,
    credential_id: int,
    status: str,
    resets_at: datetime | None,
    window: str,
    utilization: float | None,
    task_id: int | None = None,
) -> None:
    """What a task's gateway saw of the subscription's limit: `rejected` (limited until
    resets_at, capped to LIMIT_RESET_MAX), `allowed_warning` (close to it) or `allowed` (clears
    an earlier state). Only the gateway is a witness: never call this with an agent's claim."""
    now = timezone.now()
    resets_at = limit_reset_capped(resets_at=resets_at, now=now)
    values: dict[str, object] = {"limit_seen_at": now}
    if status == "rejected":
        values.update(
            limit_status="rejected",
            limited_until=resets_at,
            limit_window=window,
            limit_utilization=utilization,
        )
    elif status == "allowed_warning":
        values.update(
            limit_status="allowed_warning",
            limited_until=None,
            limit_window=window,
            limit_utilization=utilization,
        )
    else:
        values.update(limit_status="", limited_until=None, limit_window="", limit_utilization=None)
    credential = OAuthCredential.objects.filter(pk=credential_id).first()
    if credential is None:
        return
    OAuthCredential.objects.filter(pk=credential_id).update(**values)
    if status == "rejected":
        credential_audit_record(
            action=AuditAction.LIMITED,
            task_id=task_id,
            outcome=window or "limited",
            detail=f"limited until {resets_at:%Y-%m-%d %H:%M} UTC" if resets_at else "",
            subject=credential_audit_of(credential),
        )


def credential_limited_until(*, credential_id: int, now: datetime) -> datetime | None:
    """When a credential known to be limited may be used again (None: not known limited).

    A rejection whose reset time was unknown counts for an hour after it was seen."""
    row = (
        OAuthCredential.objects.filter(pk=credential_id, limit_status="rejected")
        .filter(Q(limited_until__gt=now) | Q(limited_until__isnull=True))
        .values("limited_until", "limit_seen_at")
        .first()
    )
    if row is None:
        return None
    if row["limited_until"] is not None:
        return row["limited_until"]
    seen = row["limit_seen_at"]
    if seen is None:
        return None
    guess = seen + UNKNOWN_RESET_GUESS
    return guess if guess > now else None


# --- rejected by the API --------------------------------------------------------------------------


def credential_rejected(
    *,
    credential_id: int,
    http_status: int | None,
    reason: str,
    at: datetime,
    after_refresh: bool,
    task_id: int | None = None,
) -> bool:
    """A task's gateway saw the API refuse this credential at `at`: a 401/403 to a request it
    had replayed with a token it had just renewed by force (after_refresh), or a 401 it had no
    way to renew. Only the gateway is a witness: never call this with an agent's claim.

    The access token is dead now, whatever its expiry says (refused_at); the credential is
    marked invalid unless a refresh could still bring a working token (a refreshable one whose
    refresh failed for a while, not one whose fresh token was refused too). Ignored when the
    tokens were saved or renewed after `at` (the report is about the ones they replaced).
    `credential_failed` is sent when it is marked invalid. Returns True if this call marked it.
    """
    credential = OAuthCredential.objects.filter(pk=credential_id).first()
    if credential is None:
        return False
    words = f"the Claude API refused the token (HTTP {http_status or '?'}: {reason})"
    words = secrets_redact(words)
    moment = min(at, timezone.now())
    values: dict[str, Any] = {"refused_at": moment, "last_refresh_error": words}
    dead = after_refresh or not credential.is_refreshable
    if dead:
        values["status"] = CredentialStatus.INVALID
    current = (
        OAuthCredential.objects.filter(pk=credential_id)
        .filter(Q(saved_at__isnull=True) | Q(saved_at__lte=moment))
        .filter(Q(last_refreshed_at__isnull=True) | Q(last_refreshed_at__lte=moment))
    )
    marked = current.filter(refused_at__isnull=True).update(**values, updated_at=timezone.now())
    if not marked:
        return False
    credential_audit_record(
        action=AuditAction.REJECTED,
        task_id=task_id,
        outcome=f"http_{http_status}" if http_status else "rejected",
        detail=f"{words}; seen by the task's gateway"
        + ("" if dead else "; a refresh is tried before the next task"),
        subject=credential_audit_of(credential),
    )
    logger.warning("OAuth credential %s refused by the API: %s", credential_id, words)
    if dead:
        credential_failed.send_robust(
            sender=OAuthCredential,
            credential_id=credential_id,
            owner_id=credential.owner_id,
            reason=words,
            event_id=f"{credential_id}:{moment.timestamp():.0f}",
        )
    return True


def refresh_failure_announce(*, credential: OAuthCredential, reason: str, permanent: bool) -> None:
    """After a failed refresh: the audit line, and the signals (dead, or failing again)."""
    credential_audit_record(
        action=AuditAction.REFRESH_FAILED,
        outcome="permanent" if permanent else "transient",
        detail=reason,
        subject=credential_audit_of(credential),
    )
    credential_refresh_failed.send_robust(
        sender=OAuthCredential,
        credential_id=credential.pk,
        owner_id=credential.owner_id,
        reason=reason,
        consecutive_failures=credential.consecutive_failures,
    )
    if permanent:
        credential_failed.send_robust(
            sender=OAuthCredential,
            credential_id=credential.pk,
            owner_id=credential.owner_id,
            reason=f"the refresh was refused: {reason}",
            event_id=f"{credential.pk}:{timezone.now().timestamp():.0f}",
        )


def batch_audit_record(*, outcomes: list[Any], failed_ids: list[int]) -> None:
    """A batch refresh's trail (refresh_tokens, the admin action): one INSERT for the refreshed
    ones; each failure (rare) announced like a single refresh's. Never raises."""
    try:
        refreshed = [o.credential_id for o in outcomes if o.outcome == "refreshed"]
        failed = {o.credential_id: o for o in outcomes if o.outcome == "failed"}
        rows = {
            c.pk: c
            for c in OAuthCredential.objects.filter(pk__in=[*refreshed, *failed]).select_related(
                "owner"
            )
        }

        def username(credential: OAuthCredential) -> str:
            return credential.owner.get_username() if credential.owner is not None else ""

        CredentialAuditEvent.objects.bulk_create(
            [
                CredentialAuditEvent(
                    user=rows[pk].owner,
                    username=username(rows[pk]),
                    credential_kind=_kind_of(rows[pk]),
                    credential_id=pk,
                    action=AuditAction.REFRESHED,
                    outcome="batch",
                )
                for pk in refreshed
                if pk in rows
            ]
        )
        for pk, outcome in failed.items():
            if pk in rows and pk in failed_ids:
                refresh_failure_announce(
                    credential=rows[pk], reason=outcome.reason, permanent=outcome.permanent
                )
    except Exception:
        logger.exception("Could not record a batch refresh in the audit log")
