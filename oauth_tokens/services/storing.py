"""Storing credentials: saving parsed tokens for a user, removing them, marking them invalid,
and saving tokens a container's CLI rotated."""

import logging
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
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
        updated_at=timezone.now(),
    )
    for credential in OAuthCredential.objects.filter(pk__in=credential_ids):
        credential_audit_record(
            action=AuditAction.MARKED_INVALID,
            detail=reason,
            subject=credential_audit_of(credential),
        )
    return marked
