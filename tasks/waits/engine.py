"""Waiting for the container engine: a task that finds the Docker engine unreachable (stopped for
an upgrade, restarting) goes back to the queue and is tried again with a growing delay, for at
most AGENT_ENGINE_MAX_WAIT in all; only then does it fail, with the engine's message.

It stays "queued" while it waits (nothing of it has run; cancelling works as for any queued
task); its wait_reason says for what, and waiting_since since when. engine_wait_plan says when it
runs again (RunResult.requeue_at); tasks.queue puts it back then.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings

from tasks.models import CodingTask, TaskStatus, WaitReason
from tasks.results import RunResult

logger = logging.getLogger(__name__)


def engine_retry_delay(*, waited: timedelta) -> timedelta:
    """The next try's delay: the first after AGENT_ENGINE_RETRY_SECONDS, then about as long as
    already waited (so the delay doubles), never more than AGENT_ENGINE_RETRY_MAX_SECONDS."""
    first = timedelta(seconds=settings.AGENT_ENGINE_RETRY_SECONDS)
    most = timedelta(seconds=settings.AGENT_ENGINE_RETRY_MAX_SECONDS)
    return min(max(first, waited), most)


def engine_wait_plan(*, task_id: int, reason: str, now: datetime) -> RunResult:
    """What a task that could not reach the engine comes to: queued again for a later try, or
    failed once AGENT_ENGINE_MAX_WAIT has passed since its first try."""
    since, reason_before = (
        CodingTask.objects.filter(pk=task_id).values_list("waiting_since", "wait_reason").get()
    )
    if since is None or reason_before != WaitReason.ENGINE:
        since = now
    waited = now - since
    max_wait = timedelta(seconds=settings.AGENT_ENGINE_MAX_WAIT)
    if waited >= max_wait:
        logger.warning("Task %s failed: no Docker engine for %s", task_id, waited)
        return RunResult(
            TaskStatus.FAILED,
            f"{reason} The task waited {settings.AGENT_ENGINE_MAX_WAIT / 60:g} minutes for it "
            "(AGENT_ENGINE_MAX_WAIT) and was not run; submit it again when the engine is back.",
            {"waiting_since": None, "wait_reason": WaitReason.NONE},
        )
    retry_at = now + min(engine_retry_delay(waited=waited), max_wait - waited)
    logger.warning("Task %s waits for the Docker engine until %s", task_id, retry_at)
    return RunResult(
        TaskStatus.QUEUED,
        f"Waiting for the container engine: {reason} Trying again at "
        f"{retry_at:%H:%M:%S} UTC, for at most {settings.AGENT_ENGINE_MAX_WAIT / 60:g} "
        "minutes in all.",
        {
            "started_at": None,
            "runner": "",
            "waiting_since": since,
            "wait_reason": WaitReason.ENGINE,
        },
        requeue_at=retry_at,
    )


def task_engine_reached(*, task_id: int) -> None:
    """The engine answered: the task is no longer waiting for it."""
    CodingTask.objects.filter(pk=task_id, wait_reason=WaitReason.ENGINE).update(
        waiting_since=None, wait_reason=WaitReason.NONE, error_message=""
    )
