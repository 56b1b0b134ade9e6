"""The periodic checks (the refresh_tokens run, or `manage.py notifications_periodic` from cron):
tokens about to age out or idle for long. The queue's sweep runs with them (it also runs in every
worker, so nothing waits for cron): waiting tasks whose reset came, due deliveries."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from common.humanize import utc_text
from oauth_tokens.models import CredentialKind, CredentialStatus, OAuthCredential
from tasks.queue import queue_sweep

from .background import notify
from .events import credential_aging_event

logger = logging.getLogger("notifications")

SETUP_TOKEN_LIFETIME = timedelta(
    days=365
)  # about a year (docs/claude-cli-contract.md#credentials-file)
WARN_DAYS_BEFORE = (30, 7, 1)


@dataclass
class PeriodicReport:
    tasks_queued: int = 0  # waiting tasks, and tasks waiting for the engine, queued again
    aging_events: int = 0
    deliveries_queued: int = 0


def credentials_aging_check(*, now: datetime) -> int:
    """Warn 30, 7 and 1 days before a setup token's year is up (the most urgent stage that
    applies, each once), and when a refresh chain has not been refreshed for long."""
    found = 0
    for credential in OAuthCredential.objects.exclude(status=CredentialStatus.INVALID):
        saved = credential.saved_at or credential.created_at
        if credential.kind == CredentialKind.SETUP_TOKEN:
            deadline = saved + SETUP_TOKEN_LIFETIME
            if now >= deadline:
                continue  # past it: the first rejected task marks it dead and says so
            left = deadline - now
            stages = [d for d in WARN_DAYS_BEFORE if left <= timedelta(days=d)]
            if not stages:
                continue
            stage = min(stages)
            text = (
                f"The setup token saved {saved:%Y-%m-%d} stops working in about {stage} "
                f"day{'s' if stage != 1 else ''} ({utc_text(deadline)}). Run `claude "
                "setup-token` again and save the new token."
            )
            event = credential_aging_event(
                credential=credential,
                stage=f"{stage}d",
                deadline=deadline,
                subject=f"the setup token stops working in about {stage} day"
                + ("s" if stage != 1 else ""),
                text=text,
            )
        elif credential.kind == CredentialKind.REFRESHABLE:
            last = credential.last_refreshed_at or saved
            idle = timedelta(days=settings.NOTIFICATIONS_IDLE_CHAIN_DAYS)
            if now - last < idle:
                continue
            text = (
                f"The tokens have not been refreshed since {utc_text(last)}. A refresh chain "
                "left unused this long may stop working; run a task or press Refresh now."
            )
            event = credential_aging_event(
                credential=credential,
                stage=f"idle-{last:%Y%m%d}",
                deadline=None,
                subject="not refreshed for a long time",
                text=text,
            )
        else:
            continue
        found += len(notify(event=event))
    return found


def periodic_run(*, now: datetime | None = None) -> PeriodicReport:
    now = now or timezone.now()
    aging = credentials_aging_check(now=now)
    swept = queue_sweep(now=now)
    return PeriodicReport(
        tasks_queued=len(swept.queued),
        aging_events=aging,
        deliveries_queued=swept.others,
    )
