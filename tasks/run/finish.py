"""The end of a run, in one place: its RunResult written to the task (only while the task still
runs: recovery may have settled it already), and announced to listeners (tasks.signals)."""

import logging
from collections.abc import Callable
from dataclasses import replace

from django.db import transaction
from django.utils import timezone

from common.logging import redacted_head, secrets_redact
from tasks.models import (
    FINISHED_STATUSES,
    CodingTask,
    TaskLimit,
    TaskRuntime,
    TaskStatus,
    TaskUsage,
)
from tasks.results import RunResult
from tasks.signals import TaskEvent, task_ending, task_finished

logger = logging.getLogger(__name__)

_EVENTS: dict[str, str] = {
    TaskStatus.SUCCEEDED: TaskEvent.SUCCEEDED,
    TaskStatus.FAILED: TaskEvent.FAILED,
    TaskStatus.TIMED_OUT: TaskEvent.FAILED,
    TaskStatus.WAITING: TaskEvent.WAITING,
}


# What a task's page, list and notifications say of how it ended: its error_message, which may
# quote the agent's answer, is kept to this many characters.
ERROR_MESSAGE_MAX_CHARS = 8 * 1024


def error_message_bound(text: str, *, redact: Callable[[str], str] = secrets_redact) -> str:
    """``text`` redacted (``redact``: the run's own secrets too, as its log is; either makes it
    storable, no NULs) and cut to ERROR_MESSAGE_MAX_CHARS with a mark saying so."""
    kept, cut = redacted_head(text, max_chars=ERROR_MESSAGE_MAX_CHARS, redact=redact)
    return f"{kept} […cut: the message was {len(text):,} characters long]" if cut else kept


def task_finish(
    *, task_id: int, result: RunResult, redact: Callable[[str], str] = secrets_redact
) -> RunResult | None:
    """Write what a running task came to, its message bounded and redacted (error_message_bound,
    with ``redact``: the run's log's). Returns the result, or None when the task was no longer
    running (someone else settled it: nothing is written, announced or scheduled then)."""
    result = replace(result, message=error_message_bound(result.message, redact=redact))
    with transaction.atomic():  # a page never sees a finished task without its result
        finished = CodingTask.objects.filter(pk=task_id, status=TaskStatus.RUNNING).update(
            status=result.status,
            error_message=result.message,
            # A task that waits (for a reset, or queued for the engine) has not finished.
            finished_at=timezone.now() if result.status in FINISHED_STATUSES else None,
            requeue_at=result.requeue_at,
            **result.values,
        )
        if finished:
            # The placeholder goes with the task's socket: nothing can use it any more.
            TaskRuntime.objects.filter(pk=task_id).update(gateway_placeholder="")
            if result.usage:
                TaskUsage.objects.filter(pk=task_id).update(**result.usage)
            if result.limit:
                TaskLimit.objects.filter(pk=task_id).update(**result.limit)
            if result.status in FINISHED_STATUSES:
                # In this transaction: messages sent after the agent's run ended become the
                # follow-up (tasks.follow_ups) as the task finishes, not a moment later.
                task_ending.send_robust(sender=CodingTask, task_id=task_id, status=result.status)
    logger.info("Task %s finished: %s", task_id, result.status)
    if not finished:
        return None
    _announce(task_id=task_id, status=result.status)
    return result


def _announce(*, task_id: int, status: str) -> None:
    event = _EVENTS.get(status)
    task = CodingTask.objects.select_related("limit").filter(pk=task_id).first()
    # A task going straight back to the queue on its owner's API key is not announced as
    # waiting: its resume is.
    if event is None or task is None or (status == TaskStatus.WAITING and task.force_api_key):
        return
    task_finished.send_robust(
        sender=CodingTask, task_id=task_id, event=event, wait=task.limit.waits
    )
