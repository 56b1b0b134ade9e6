"""What a user's tasks used, by day over the last 30 days (the limit state is
accounts.selectors.limit_state_get, shared with the settings page)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from tasks.models import CodingTask

DAYS = 30


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
            # What the task's gateway counted of the model API's answers.
            tokens_input=Coalesce(Sum("usage__input_tokens"), 0),
            tokens_output=Coalesce(Sum("usage__output_tokens"), 0),
            cache_creation=Coalesce(Sum("usage__cache_creation_input_tokens"), 0),
            cache_read=Coalesce(Sum("usage__cache_read_input_tokens"), 0),
            cost=Sum("usage__cost_usd"),
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
