"""The waiting client (GET /api/tasks/{id}?wait=N): an async view that polls one cheap query
until the task changes, so a waiting request holds a coroutine, not a worker thread."""

import asyncio
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Count, Q

from tasks.models import CodingTask

# What a client waits for: the task's state and result and where each message it sent stands,
# not its log growing.
_MARK_FIELDS = (
    "status",
    "started_at",
    "finished_at",
    "cancel_requested",
    "wait_reason",
    "error_message",
    "pull_request__state",
    "pull_request__url",
)


def task_state_mark(*, task_id: int) -> tuple[object, ...] | None:
    """A small fingerprint of what a waiting client cares about: one indexed row, and counts
    of its messages by where they stand (read by their (task, seq) index)."""
    return (
        CodingTask.objects.filter(pk=task_id)
        .annotate(
            messages_sent=Count("messages"),
            messages_delivered=Count("messages__delivered_at"),
            messages_late=Count("messages", filter=Q(messages__late=True)),
            messages_followed_up=Count("messages__followed_up_at"),
            messages_not_delivered=Count("messages", filter=~Q(messages__not_delivered="")),
        )
        .values_list(
            *_MARK_FIELDS,
            "messages_sent",
            "messages_delivered",
            "messages_late",
            "messages_followed_up",
            "messages_not_delivered",
        )
        .first()
    )


async def task_change_wait(*, task_id: int, seconds: float) -> bool:
    """Wait until the task's mark changes (True) or `seconds` pass (False)."""
    read = sync_to_async(task_state_mark)
    start = await read(task_id=task_id)
    deadline = time.monotonic() + seconds
    poll = settings.API_WAIT_POLL_SECONDS
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(poll, left))
        if await read(task_id=task_id) != start:
            return True
    return False
