"""A task's messages as its gateway hands them to the running agent (gateway.messages): read
from the task's TaskMessage rows, marked delivered once the container says it has them, and the
channel closed for good when the agent has answered everything. A message sent after that is
late: never handed to this run (nor marked delivered, whatever a container claims), it becomes
the follow-up when the task finishes (tasks.follow_ups). Called from the gateway's worker
threads, each call on its own database connection, closed before it returns."""

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from gateway.messages import Delivery
from tasks.models import TaskConversation, TaskMessage


class TaskMessageBox:
    def __init__(self, *, task_id: int) -> None:
        self.task_id = task_id

    def fetch(self, *, after: int, final: bool) -> Delivery:
        close_old_connections()
        try:
            return self._fetch(after=after, final=final)
        finally:
            connection.close()  # a gateway thread's connection: never left open

    def _fetch(self, *, after: int, final: bool) -> Delivery:
        TaskMessage.objects.filter(
            task_id=self.task_id, seq__lte=after, delivered_at=None, late=False
        ).update(delivered_at=timezone.now())
        with transaction.atomic():
            # Locked as the web side locks it to add a message: none slips past a close.
            closed = (
                TaskConversation.objects.select_for_update()
                .values_list("messages_closed", flat=True)
                .get(pk=self.task_id)
            )
            messages = list(
                TaskMessage.objects.filter(task_id=self.task_id, seq__gt=after, late=False)
                .order_by("seq")
                .values_list("seq", "text")
            )
            if final and not messages and not closed:
                TaskConversation.objects.filter(pk=self.task_id).update(messages_closed=True)
                closed = True
        return Delivery(messages=messages, closed=closed)
