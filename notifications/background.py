"""The queue side of notifications (through tasks.queue, the one queue): the background entry
point, queueing new deliveries, scheduling a failed one's retry, and the sweep's part."""

from datetime import datetime

from django.tasks import task

from tasks.queue import job_defer, job_enqueue

from .events import Event
from .services import deliveries_due_take, deliveries_record, delivery_send


@task()
def send_notification(delivery_id: int) -> None:
    attempt = delivery_send(delivery_id=delivery_id)
    if attempt.retry_at is not None:
        # Where the backend cannot defer, the sweep puts it back when it is due.
        job_defer(send_notification, delivery_id, run_after=attempt.retry_at)


def notify(*, event: Event) -> list[int]:
    """Record the event's deliveries (once, however often announced) and queue the new ones.
    Returns the new deliveries' ids."""
    created = deliveries_record(event=event)
    for delivery_id in created:
        job_enqueue(send_notification, delivery_id)
    return created


def deliveries_requeue_due(*, now: datetime) -> int:
    """The queue sweep's part (tasks.signals.queue_swept): due deliveries back in the queue."""
    taken = deliveries_due_take(now=now)
    for delivery_id in taken:
        job_enqueue(send_notification, delivery_id)
    return len(taken)
