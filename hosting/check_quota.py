"""How often a user may ask GitHub about a token from the settings page: at most
GITHUB_CHECKS_PER_MINUTE checks a minute, and one at a time. Each check holds a web worker
while it waits for GitHub, and a token checker must not be usable in bulk.

Counted in the database (one row per user, changed by conditional UPDATEs), so every web
worker process sees the same count.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import F, Q
from django.utils import timezone

from .models import GitHubCheckQuota

WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class CheckAdmission:
    wait_seconds: int = 0  # 0: admitted, and counted
    message: str = ""  # why not, and for how long


def _busy_bound() -> timedelta:
    """The longest one check can take: two GitHub calls, each connecting and then answering
    within GITHUB_CHECK_TIMEOUT; after that a check that never reported back (a killed
    worker) stops holding the next one up."""
    return timedelta(seconds=4 * settings.GITHUB_CHECK_TIMEOUT + 5)


def _seconds(delta: timedelta) -> int:
    return max(1, ceil(delta.total_seconds()))


def github_check_admit(*, user: User, now: datetime | None = None) -> CheckAdmission:
    """Admit one live check for ``user`` now, or say how long to wait. An admitted check must
    be followed by ``github_check_release``."""
    now = now or timezone.now()
    quotas = GitHubCheckQuota.objects.filter(owner=user)
    GitHubCheckQuota.objects.get_or_create(owner=user, defaults={"window_started_at": now})
    quotas.filter(window_started_at__lte=now - WINDOW).update(window_started_at=now, used=0)
    admitted = (
        quotas.filter(used__lt=settings.GITHUB_CHECKS_PER_MINUTE)
        .filter(Q(busy_until__isnull=True) | Q(busy_until__lte=now))
        .update(used=F("used") + 1, busy_until=now + _busy_bound())
    )
    if admitted:
        return CheckAdmission()
    quota = quotas.get()
    if quota.busy_until is not None and quota.busy_until > now:
        wait = _seconds(quota.busy_until - now)
        return CheckAdmission(
            wait,
            "Your previous check is still waiting for GitHub: try again when it has answered "
            f"(at most {wait} s).",
        )
    wait = _seconds(quota.window_started_at + WINDOW - now)
    times = f"{quota.used} time{'s' if quota.used != 1 else ''}"
    return CheckAdmission(
        wait, f"You checked GitHub {times} in the last minute: try again in {wait} s."
    )


def github_check_release(*, user: User) -> None:
    """The admitted check is over: the next one may start."""
    GitHubCheckQuota.objects.filter(owner=user).update(busy_until=None)
