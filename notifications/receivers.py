"""Listening to the lower apps' signals (tasks.signals, oauth_tokens.signals)."""

import logging
from datetime import datetime
from typing import Any

from django.conf import settings

from oauth_tokens import signals as credential_signals
from oauth_tokens.models import OAuthCredential
from tasks import signals as task_signals

from .background import deliveries_requeue_due, notify
from .events import credential_dead_event, refresh_failing_event, task_event
from .periodic import periodic_run

logger = logging.getLogger("notifications")


def on_task_finished(*, task_id: int, event: str, wait: int = 0, **_: Any) -> None:
    found = task_event(task_id=task_id, event=event, wait=wait)
    if found is not None:
        notify(event=found)


def on_credential_failed(
    *, credential_id: int, owner_id: int | None, reason: str, event_id: str = "", **_: Any
) -> None:
    notify(
        event=credential_dead_event(
            credential_id=credential_id, owner_id=owner_id, reason=reason, event_id=event_id
        )
    )


def on_refresh_failed(
    *, credential_id: int, owner_id: int | None, reason: str, consecutive_failures: int, **_: Any
) -> None:
    if consecutive_failures < settings.NOTIFICATIONS_REFRESH_FAILURES:
        return
    credential = OAuthCredential.objects.filter(pk=credential_id).first()
    streak_start = None
    if credential is not None:
        streak_start = credential.last_refreshed_at or credential.saved_at or credential.created_at
    notify(
        event=refresh_failing_event(
            credential_id=credential_id,
            owner_id=owner_id,
            reason=reason,
            streak_start=streak_start,
            failures=consecutive_failures,
        )
    )


def on_refresh_run_finished(**_: Any) -> None:
    report = periodic_run()
    logger.info("Periodic notifications run: %s", report)


def on_queue_swept(*, now: datetime, **_: Any) -> int:
    return deliveries_requeue_due(now=now)


def connect() -> None:
    task_signals.task_finished.connect(on_task_finished, dispatch_uid="notifications.task")
    credential_signals.credential_failed.connect(
        on_credential_failed, dispatch_uid="notifications.credential_failed"
    )
    credential_signals.credential_refresh_failed.connect(
        on_refresh_failed, dispatch_uid="notifications.refresh_failed"
    )
    credential_signals.refresh_run_finished.connect(
        on_refresh_run_finished, dispatch_uid="notifications.periodic"
    )
    task_signals.queue_swept.connect(on_queue_swept, dispatch_uid="notifications.sweep")
