"""Reads of Claude OAuth credentials."""

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, CharField, Q, QuerySet, Value, When

from .models import CredentialStatus, OAuthCredential


def credential_for_user(*, user: AbstractBaseUser) -> OAuthCredential | None:
    return OAuthCredential.objects.filter(owner=user).first()


def credential_status_compute(
    *, credential: OAuthCredential, now: datetime, buffer: timedelta
) -> str:
    """The status an operator should see now: failures stick, time-based ones follow the clock."""
    if credential.status in (CredentialStatus.INVALID, CredentialStatus.REFRESH_FAILED):
        return credential.status
    if credential.expires_at is None:
        return CredentialStatus.VALID
    if credential.expires_at <= now:
        return CredentialStatus.EXPIRED
    if credential.expires_at - now <= buffer:
        return CredentialStatus.EXPIRING
    return CredentialStatus.VALID


def credential_status_annotate(
    queryset: QuerySet[OAuthCredential], *, now: datetime, buffer: timedelta
) -> QuerySet[OAuthCredential]:
    """The same rule as credential_status_compute, in SQL, as `current_status`."""
    return queryset.annotate(
        current_status=Case(
            When(
                status__in=[CredentialStatus.INVALID, CredentialStatus.REFRESH_FAILED],
                then="status",
            ),
            When(expires_at__isnull=True, then=Value(CredentialStatus.VALID)),
            When(expires_at__lte=now, then=Value(CredentialStatus.EXPIRED)),
            When(expires_at__lte=now + buffer, then=Value(CredentialStatus.EXPIRING)),
            default=Value(CredentialStatus.VALID),
            output_field=CharField(),
        )
    )


def credentials_due(*, now: datetime, within: timedelta) -> QuerySet[OAuthCredential]:
    """Refreshable credentials whose access token expires within the window (or already has)."""
    return OAuthCredential.objects.filter(
        ~Q(status=CredentialStatus.INVALID),
        kind="refreshable",
        expires_at__isnull=False,
        expires_at__lte=now + within,
    ).exclude(refresh_token="")
