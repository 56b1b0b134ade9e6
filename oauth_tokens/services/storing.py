"""Storing credentials: saving parsed tokens for a user, removing them, marking them invalid,
and recording that the model API accepted them."""

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.humanize import seconds_left_words
from oauth_tokens.formats import (
    ParsedCredential,
)
from oauth_tokens.models import (
    AuditAction,
    CredentialKindUsed,
    CredentialSource,
    CredentialStatus,
    OAuthCredential,
)
from oauth_tokens.token_client import (
    redact,
)

from .audit import AuditSubject, credential_audit_of, credential_audit_record

logger = logging.getLogger("oauth_tokens.services")


def token_fields(parsed: ParsedCredential) -> dict[str, Any]:
    return {
        "kind": parsed.kind.value,
        "access_token": parsed.access_token,
        "refresh_token": parsed.refresh_token,
        "expires_at": parsed.expires_at,
        "scopes": list(parsed.scopes),
        "subscription_type": parsed.subscription_type,
        "rate_limit_tier": parsed.rate_limit_tier,
        "saved_at": timezone.now(),
        # New tokens start with a clean bill of health.
        "status": CredentialStatus.VALID,
        "last_refresh_error": "",
        "last_refresh_error_code": "",
        "consecutive_failures": 0,
        # New tokens are not known to work until a task's gateway sees the API accept them.
        "last_accepted_at": None,
        "refused_at": None,
        "refresh_claim": "",
        "refresh_claimed_until": None,
    }


@transaction.atomic
def credential_store(
    *, owner: User, parsed: ParsedCredential, source: str = CredentialSource.USER
) -> OAuthCredential:
    """Save (or replace) a user's credential from parsed input."""
    credential, _ = OAuthCredential.objects.update_or_create(
        owner=owner, defaults={"source": source, **token_fields(parsed)}
    )
    credential_audit_record(
        action=AuditAction.STORED,
        outcome=parsed.kind.value,
        detail=f"source {source}",
        subject=credential_audit_of(credential),
    )
    logger.info(
        "Stored %s OAuth credential for user %s (source %s, %s)",
        parsed.kind.value,
        owner.pk,
        source,
        seconds_left_words(expires_at=parsed.expires_at, now=timezone.now()),
    )
    return credential


def credential_remove(*, owner: User) -> bool:
    existing = OAuthCredential.objects.filter(owner=owner).first()
    deleted, _ = OAuthCredential.objects.filter(owner=owner).delete()
    if deleted and existing is not None:
        credential_audit_record(
            action=AuditAction.REMOVED,
            subject=AuditSubject(
                credential_kind=CredentialKindUsed.USER_OAUTH,
                user_id=owner.pk,
                credential_id=existing.pk,
            ),
            user=owner,
        )
        logger.info("Removed the OAuth credential of user %s", owner.pk)
    return bool(deleted)


def credential_mark_invalid(*, credential_ids: list[int], reason: str) -> int:
    marked = OAuthCredential.objects.filter(pk__in=credential_ids).update(
        status=CredentialStatus.INVALID,
        last_refresh_error=redact(reason),
        last_refresh_error_code="",
        updated_at=timezone.now(),
    )
    for credential in OAuthCredential.objects.filter(pk__in=credential_ids):
        credential_audit_record(
            action=AuditAction.MARKED_INVALID,
            detail=reason,
            subject=credential_audit_of(credential),
        )
    return marked


def credential_accepted_record(*, credential_id: int, at: datetime) -> bool:
    """The model API accepted this credential at `at`, as a task's gateway saw it (an answer
    that was not a 401 or 403). Only the gateway is a witness: never call this from what an
    agent printed.

    Moves last_accepted_at forward only (reports may arrive out of order) and never past now,
    and ignores a report from before the tokens were last saved: it was about the tokens they
    replaced. Returns True if it changed the credential."""
    moment = min(at, timezone.now())
    updated = (
        OAuthCredential.objects.filter(pk=credential_id)
        .filter(Q(last_accepted_at__isnull=True) | Q(last_accepted_at__lt=moment))
        .filter(Q(saved_at__isnull=True) | Q(saved_at__lte=moment))
        .update(last_accepted_at=moment)
    )
    return bool(updated)
