"""What a user's tasks used: by day over the last 30 days, and the subscription's limit state."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.selectors import auth_method_for_user
from oauth_tokens.models import OAuthCredential
from oauth_tokens.services import AuthMethod, AuthUnavailable
from tasks.models import CodingTask
from tasks.waiting import limited_until_words

DAYS = 30
TOKEN_FIELDS = ("tokens_input", "tokens_output", "tokens_cache_creation", "tokens_cache_read")


@dataclass(frozen=True)
class UsageDay:
    day: date
    tasks: int
    tokens_input: int
    tokens_output: int
    tokens_cache: int
    cost: Decimal

    @property
    def tokens(self) -> int:
        return self.tokens_input + self.tokens_output + self.tokens_cache


def usage_by_day(*, user: User, now: datetime, days: int = DAYS) -> list[UsageDay]:
    """One row per day (oldest first, today last), days without tasks included."""
    today = timezone.localdate(now)
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    rows = (
        CodingTask.objects.filter(owner=user, created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(
            tasks=Count("pk"),
            tokens_input=Coalesce(Sum("tokens_input"), 0),
            tokens_output=Coalesce(Sum("tokens_output"), 0),
            cache_creation=Coalesce(Sum("tokens_cache_creation"), 0),
            cache_read=Coalesce(Sum("tokens_cache_read"), 0),
            cost=Sum("cost_usd"),
        )
    )
    by_day = {row["day"]: row for row in rows}
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day)
        result.append(
            UsageDay(
                day=day,
                tasks=row["tasks"] if row else 0,
                tokens_input=int(row["tokens_input"]) if row else 0,
                tokens_output=int(row["tokens_output"]) if row else 0,
                tokens_cache=int(row["cache_creation"] + row["cache_read"]) if row else 0,
                cost=Decimal(row["cost"] or 0) if row else Decimal(0),
            )
        )
    return result


@dataclass(frozen=True)
class LimitState:
    """The usage limit of the subscription the user's next task would use."""

    applies: bool  # the next task uses a Claude subscription (OAuth)
    whose: str  # "your" / "the server's shared"
    limited: str  # "limited until 14:00 (in 2 h 10 min)" or ""
    warning: str  # "92% of the weekly limit used" or ""
    checked: str  # when a task last reported it


def limit_state_get(*, user: User, now: datetime) -> LimitState:
    try:
        resolution = auth_method_for_user(user=user, refresh=False)
    except AuthUnavailable:
        return LimitState(False, "", "", "", "")
    if resolution.method != AuthMethod.OAUTH:
        return LimitState(False, "", "", "", "")
    user_source = resolution.source == "user"
    credential = (
        OAuthCredential.objects.filter(owner=user).first()
        if user_source
        else OAuthCredential.objects.filter(owner__isnull=True).first()
    )
    whose = "your" if user_source else "the server's shared"
    if credential is None:
        return LimitState(True, whose, "", "", "")
    from tasks.limits import window_words

    limited = ""
    if credential.limit_status == "rejected" and (
        credential.limited_until is None or credential.limited_until > now
    ):
        limited = limited_until_words(until=credential.limited_until, now=now)
        limited = f"{limited}, {window_words(credential.limit_window)} limit"
    warning = ""
    if credential.limit_status == "allowed_warning":
        share = (
            f"{credential.limit_utilization:.0%} of the "
            if credential.limit_utilization is not None
            else "close to the "
        )
        warning = f"{share}{window_words(credential.limit_window)} limit used"
    checked = ""
    if credential.limit_seen_at:
        checked = timezone.localtime(credential.limit_seen_at).strftime("%Y-%m-%d %H:%M")
    return LimitState(True, whose, limited, warning, checked)
