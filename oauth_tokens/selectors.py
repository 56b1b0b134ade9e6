"""Reads of Claude OAuth credentials."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Case, CharField, Count, F, Q, QuerySet, Value, When
from django.utils import timezone

from .models import CredentialKind, CredentialStatus, OAuthCredential
from .token_client import EDGE_BLOCKED


def credential_for_user(*, user: User) -> OAuthCredential | None:
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


def credentials_refreshable() -> QuerySet[OAuthCredential]:
    """Credentials the server can refresh: a refresh token, and not marked invalid (only the
    user can fix those, by saving new tokens)."""
    return OAuthCredential.objects.filter(
        ~Q(status=CredentialStatus.INVALID), kind=CredentialKind.REFRESHABLE
    ).exclude(refresh_token="")


def credentials_due(*, now: datetime, within: timedelta) -> QuerySet[OAuthCredential]:
    """Refreshable credentials whose access token expires within the window (or already has)."""
    return credentials_refreshable().filter(expires_at__isnull=False, expires_at__lte=now + within)


# --- health for operators (admin changelist, dashboard, refresh_tokens) -------------------------

# Never loaded by health reads: decrypting tokens there would be wasted work and a leak risk.
_TOKEN_FIELDS = ("access_token", "refresh_token")

# Expiry windows offered by the admin filter: key → (label, lower bound, upper bound) as offsets
# from now; None leaves that side open. "never" (no expiry) is handled on its own.
EXPIRY_WINDOWS: dict[str, tuple[str, timedelta | None, timedelta | None]] = {
    "expired": ("Already expired", None, timedelta(0)),
    "1h": ("Within an hour", timedelta(0), timedelta(hours=1)),
    "1d": ("Within a day", timedelta(0), timedelta(days=1)),
    "7d": ("Within 7 days", timedelta(0), timedelta(days=7)),
    "later": ("In more than 7 days", timedelta(days=7), None),
}
EXPIRY_NEVER = "never"


def credentials_health_list(*, now: datetime, buffer: timedelta) -> QuerySet[OAuthCredential]:
    """Every credential with its owner and `current_status`, tokens left undecrypted."""
    return credential_status_annotate(
        OAuthCredential.objects.select_related("owner").defer(*_TOKEN_FIELDS),
        now=now,
        buffer=buffer,
    )


def credentials_in_expiry_window(
    queryset: QuerySet[OAuthCredential], *, window: str, now: datetime
) -> QuerySet[OAuthCredential]:
    """Narrow to one of EXPIRY_WINDOWS (or EXPIRY_NEVER); an unknown key leaves it as is."""
    if window == EXPIRY_NEVER:
        return queryset.filter(expires_at__isnull=True)
    if window not in EXPIRY_WINDOWS:
        return queryset
    _label, lower, upper = EXPIRY_WINDOWS[window]
    if lower is not None:
        queryset = queryset.filter(expires_at__gt=now + lower)
    if upper is not None:
        queryset = queryset.filter(expires_at__lte=now + upper)
    return queryset


@dataclass(frozen=True)
class ExpiryBucket:
    day: date
    start: datetime
    end: datetime
    count: int


@dataclass(frozen=True)
class HealthDashboard:
    now: datetime
    total: int
    status_counts: dict[str, int]  # every CredentialStatus value, in declaration order
    expiring_hour: list[OAuthCredential]  # expire in (now, now + 1 h], soonest first
    expiring_hour_count: int
    expiring_day: list[OAuthCredential]  # expire in (now + 1 h, now + 24 h]
    expiring_day_count: int
    failures: list[OAuthCredential]  # failing now (failures > 0 or failed/invalid), latest first
    failures_count: int
    expiry_days: list[ExpiryBucket]  # the next 7 calendar days (today from now on)
    # Failing because the token endpoint's edge refused this client (its User-Agent), not a token.
    edge_blocked_count: int = 0


def _failing_q() -> Q:
    return Q(consecutive_failures__gt=0) | Q(
        status__in=[CredentialStatus.REFRESH_FAILED, CredentialStatus.INVALID]
    )


def _edge_blocked_q() -> Q:
    return Q(status=CredentialStatus.REFRESH_FAILED, last_refresh_error_code=EDGE_BLOCKED)


def credentials_failing(queryset: QuerySet[OAuthCredential]) -> QuerySet[OAuthCredential]:
    """Those whose last refresh failed (or that were marked invalid)."""
    return queryset.filter(_failing_q())


def credential_health_dashboard(
    *, now: datetime, buffer: timedelta, list_limit: int = 25, days: int = 7
) -> HealthDashboard:
    """Everything the dashboard shows, in four queries whatever the number of credentials:
    one aggregate for every count and the chart, and one per list (each capped)."""
    hour, day = now + timedelta(hours=1), now + timedelta(days=1)
    # Calendar days in the active time zone, built from dates so DST days get their real length.
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).date()
    edges = [now] + [
        datetime.combine(today + timedelta(days=i), time.min, tzinfo=tz) for i in range(1, days + 1)
    ]

    annotated = credential_status_annotate(OAuthCredential.objects.all(), now=now, buffer=buffer)
    aggregates: dict[str, Any] = {
        "total": Count("pk"),
        "hour": Count("pk", filter=Q(expires_at__gt=now, expires_at__lte=hour)),
        "day": Count("pk", filter=Q(expires_at__gt=hour, expires_at__lte=day)),
        "failing": Count("pk", filter=_failing_q()),
        "edge": Count("pk", filter=_edge_blocked_q()),
    }
    for value in CredentialStatus.values:
        aggregates[f"status_{value}"] = Count("pk", filter=Q(current_status=value))
    for i in range(days):
        aggregates[f"day_{i}"] = Count(
            "pk", filter=Q(expires_at__gt=edges[i], expires_at__lte=edges[i + 1])
        )
    counts = annotated.aggregate(**aggregates)

    listed = credentials_health_list(now=now, buffer=buffer)
    return HealthDashboard(
        now=now,
        total=counts["total"],
        status_counts={value: counts[f"status_{value}"] for value in CredentialStatus.values},
        expiring_hour=list(
            listed.filter(expires_at__gt=now, expires_at__lte=hour).order_by("expires_at")[
                :list_limit
            ]
        ),
        expiring_hour_count=counts["hour"],
        expiring_day=list(
            listed.filter(expires_at__gt=hour, expires_at__lte=day).order_by("expires_at")[
                :list_limit
            ]
        ),
        expiring_day_count=counts["day"],
        failures=list(
            credentials_failing(listed).order_by(
                F("last_refresh_attempt_at").desc(nulls_last=True), "-updated_at"
            )[:list_limit]
        ),
        failures_count=counts["failing"],
        edge_blocked_count=counts["edge"],
        expiry_days=[
            ExpiryBucket(
                day=today + timedelta(days=i),
                start=edges[i],
                end=edges[i + 1],
                count=counts[f"day_{i}"],
            )
            for i in range(days)
        ],
    )


@dataclass(frozen=True)
class RefreshTarget:
    credential_id: int
    owner: str  # username, or "" for a global credential
    expires_at: datetime | None


def credentials_refresh_targets(
    *, now: datetime, within: timedelta | None, usernames: Sequence[str] = ()
) -> list[RefreshTarget]:
    """Refreshable credentials to refresh, soonest expiry first (so an interrupted run has done
    the most urgent ones). within=None: all of them, due or not."""
    queryset = (
        credentials_refreshable() if within is None else credentials_due(now=now, within=within)
    )
    if usernames:
        queryset = queryset.filter(owner__username__in=list(usernames))
    rows = queryset.order_by(F("expires_at").asc(nulls_last=True), "pk").values_list(
        "pk", "owner__username", "expires_at"
    )
    return [RefreshTarget(pk, owner or "", expires_at) for pk, owner, expires_at in rows]
