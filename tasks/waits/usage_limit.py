"""Waiting for a usage limit to reset: a limited task becomes "waiting for reset" and is queued
again by itself after the reset (with a little jitter), up to AGENT_LIMIT_MAX_WAIT in all.

wait_plan says when (RunResult.requeue_at); tasks.queue brings it back then, by a deferred job or
its sweep, through task_resume: one conditional UPDATE, so it happens once whoever gets there
first.
"""

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.selectors import task_limits_for_user
from accounts.services import preferences_lock
from common.humanize import limited_until_words, utc_text
from tasks.models import CodingTask, TaskLimit, TaskRuntime, TaskStatus, WaitReason
from tasks.results import RunResult
from tasks.signals import TaskEvent, task_finished

from .limits import RunLimit, window_words

logger = logging.getLogger(__name__)

# A limit whose reset time could not be read is retried after this long.
UNKNOWN_RESET_WAIT = timedelta(hours=1)
# A limit said to have reset already is retried after this long.
PAST_RESET_WAIT = timedelta(minutes=5)
# A task due again while its owner's running slots are all taken looks again after this long.
SLOT_WAIT = timedelta(seconds=30)


def wait_plan(*, task: CodingTask, limit: RunLimit, now: datetime) -> RunResult:
    """What a task a limit stopped comes to: waiting for the reset, or failed past the cap."""
    reset = limit.resets_at
    if reset is None:
        start = now + UNKNOWN_RESET_WAIT
    elif reset <= now:
        # Said to have reset already (clocks apart?): try again soon, not in a tight loop.
        start = now + PAST_RESET_WAIT
    else:
        start = reset
    resume = start + timedelta(
        seconds=random.uniform(0, settings.AGENT_LIMIT_JITTER_SECONDS)  # noqa: S311
    )
    waited = TaskLimit.objects.values_list("waited_seconds", flat=True).get(pk=task.pk)
    max_wait = settings.AGENT_LIMIT_MAX_WAIT
    window = window_words(limit.window)
    if waited + (resume - now).total_seconds() > max_wait:
        hours = max_wait / 3600
        when = f"resets {utc_text(reset)}" if reset else "gave no reset time"
        return RunResult(
            TaskStatus.FAILED,
            f"Stopped by the Claude {window} limit, which {when}: that is past the longest "
            f"wait of {hours:g} h (AGENT_LIMIT_MAX_WAIT), so the task was not queued again. "
            "Submit it again after the reset, or run it with an API key.",
        )
    when = f"resets {utc_text(reset)}" if reset else "gave no reset time; trying again"
    return RunResult(
        TaskStatus.WAITING,
        f"Stopped by the Claude {window} limit, which {when}. The task runs again by "
        f"itself at about {utc_text(resume)}.",
        {"waiting_since": now, "wait_reason": WaitReason.USAGE_LIMIT},
        limit={"limited_until": reset, "waits": F("waits") + 1},
        requeue_at=resume,
    )


def _running_slot_taken(*, task: CodingTask, now: datetime) -> bool:
    """True, and the task's turn put off by SLOT_WAIT saying why, when its owner already has as
    many tasks running or queued as they may run at once. Holds the owner's preferences row
    locked to the end of the caller's transaction, as task submission does, so two resumes are
    counted one after another."""
    preferences = preferences_lock(user=task.owner)
    allowed = task_limits_for_user(preferences=preferences).max_running
    busy = CodingTask.objects.filter(
        owner_id=task.owner_id, status__in=(TaskStatus.QUEUED, TaskStatus.RUNNING)
    ).count()
    if busy < allowed:
        return False
    CodingTask.objects.filter(pk=task.pk, status=TaskStatus.WAITING).update(
        requeue_at=now + SLOT_WAIT,
        error_message=(
            f"Ready to run again, after its turn: {busy} of your tasks are running or about to "
            f"start, and you may run {allowed} at once."
        ),
    )
    return True


def task_resume(*, task_id: int, now: datetime | None = None, force: bool = False) -> bool:
    """Waiting -> queued (due now), once: the first caller wins. Not before its time unless
    forced, and not while its owner's running slots are all taken (it then waits its turn,
    looked at again by the queue's sweep).

    Returns True if this call moved it; the caller then runs it or puts it in the queue.
    """
    now = now or timezone.now()
    task = (
        CodingTask.objects.filter(pk=task_id, status=TaskStatus.WAITING)
        .select_related("owner")
        .first()
    )
    if task is None or (not force and task.requeue_at and task.requeue_at > now):
        return False
    waited = int((now - task.waiting_since).total_seconds()) if task.waiting_since else 0
    with transaction.atomic():
        if _running_slot_taken(task=task, now=now):
            return False
        moved = CodingTask.objects.filter(pk=task_id, status=TaskStatus.WAITING).update(
            status=TaskStatus.QUEUED,
            requeue_at=now,
            waiting_since=None,
            wait_reason=WaitReason.NONE,
            error_message="",
            exit_code=None,
        )
        if moved:
            TaskLimit.objects.filter(pk=task_id).update(
                waited_seconds=F("waited_seconds") + max(0, waited)
            )
            TaskRuntime.objects.filter(pk=task_id).update(container_id="")
    if moved:
        logger.info("Task %s resumed after waiting %s s for a usage limit", task_id, waited)
        task_finished.send_robust(sender=CodingTask, task_id=task_id, event=TaskEvent.RESUMED)
    return bool(moved)


def wait_words(*, task: CodingTask, now: datetime) -> str:
    """ "limited until 14:00 UTC (in 2 h 10 min)" for pages; "" when it is not waiting."""
    if task.status != TaskStatus.WAITING:
        return ""
    return limited_until_words(until=task.limit.limited_until or task.requeue_at, now=now)
