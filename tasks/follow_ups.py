"""What a user asks of a task after its prompt: a follow-up of any finished task, "run again"
for one that failed or was cancelled, and a message to its running agent; and the follow-up
that the messages sent after the agent's run ended become when the task finishes. Each new task
goes through task_create (the owner's task limits, validation); the worker side is in
tasks.run.chain (where a follow-up starts) and tasks.run.conversation (the session it resumes).
"""

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from common.errors import InputError
from environments.selectors import task_environment_get
from environments.services import task_environment_choose
from tasks.models import (
    FINISHED_STATUSES,
    LATE_FOLLOW_UP_STATUSES,
    CodingTask,
    TaskConversation,
    TaskMessage,
    TaskStatus,
)
from tasks.run.chain import PULL_REQUEST_DONE
from tasks.services import task_create
from tasks.signals import queue_swept, task_ending
from tasks.validation import PullRequestBlocked, TaskInputError, TaskNotPossible, prompt_check

logger = logging.getLogger(__name__)

RUN_AGAIN_STATUSES = (TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT)
# Messages one task may get while it runs: more is a follow-up's job.
MESSAGES_PER_TASK_MAX = 100
NOT_DELIVERED_MAX_CHARS = 1000


def follow_up_blocker(*, task: CodingTask) -> str:
    """Why no follow-up can start from this task now ("" when it can)."""
    if not task.is_finished:
        return "The task has not finished yet: send the agent a message instead."
    return ""


def run_again_blocker(*, task: CodingTask) -> str:
    """Why this task cannot be run again ("" when it can)."""
    if task.status not in RUN_AGAIN_STATUSES:
        return "Only a task that failed, timed out or was cancelled can be run again."
    return ""


@transaction.atomic  # it is queued once this commits, with its environment recorded
def task_continue(*, parent: CodingTask, prompt: str) -> CodingTask:
    """A follow-up that starts from the parent's result: on its pull-request branch when there
    is one (its commits then update that pull request), else from its commits on its start."""
    blocker = follow_up_blocker(task=parent)
    if blocker:
        raise TaskNotPossible(blocker)
    pull_request = parent.pull_request
    on_pull_request = pull_request.state in PULL_REQUEST_DONE and bool(pull_request.branch)
    with _pull_request_words("A follow-up of this task updates its pull request."):
        task = task_create(
            owner=parent.owner,
            repo_url=parent.repo_url,
            branch=pull_request.branch if on_pull_request else parent.branch,
            prompt=prompt,
            open_pull_request=on_pull_request,
            parent=parent,
        )
    _environment_inherit(source=parent, task=task)
    logger.info("Task %s continues task %s", task.pk, parent.pk)
    return task


@transaction.atomic
def task_run_again(*, task: CodingTask) -> CodingTask:
    """A new task with the same prompt and inputs (and the same place in its chain), linked to
    the one it repeats."""
    blocker = run_again_blocker(task=task)
    if blocker:
        raise TaskNotPossible(blocker)
    with _pull_request_words("Running this task again opens a pull request."):
        again = task_create(
            owner=task.owner,
            repo_url=task.repo_url,
            branch=task.branch,
            prompt=task.prompt,
            open_pull_request=task.open_pull_request,
            parent=task.parent,
        )
    TaskConversation.objects.filter(pk=again.pk).update(retry_of=task)
    _environment_inherit(source=task, task=again)
    return again


@contextmanager
def _pull_request_words(doing: str) -> Iterator[None]:
    """A pull request task_create cannot make, said as the account's state: these requests
    have no pull-request box to untick, unlike the task form."""
    try:
        yield
    except PullRequestBlocked as exc:
        raise TaskNotPossible(f"{doing} {exc.reason}") from None


def _environment_inherit(*, source: CodingTask, task: CodingTask) -> None:
    """The new task runs with the environment its source ran with, while its owner may still
    use it (gone or no longer shared: none)."""
    ran = task_environment_get(task_id=source.pk)
    if ran is None or ran.environment_id is None:
        return
    with contextlib.suppress(InputError):
        task_environment_choose(
            task_id=task.pk,
            owner=source.owner,
            repo_url=source.repo_url,
            choice=str(ran.environment_id),
        )


def message_check(*, text: str) -> str:
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise TaskInputError("text", "Write a message for the agent.")
    if "\x00" in text:
        raise TaskInputError("text", "The message contains a NUL character.")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > settings.AGENT_MESSAGE_MAX_BYTES:
        raise TaskInputError(
            "text",
            f"The message is {size:,} bytes; the limit is {settings.AGENT_MESSAGE_MAX_BYTES:,}. "
            "Put long material in the repository and point the agent to it.",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise TaskInputError("text", "The message is not valid text.") from None
    return text


def task_message_send(*, task: CodingTask, text: str) -> TaskMessage | CodingTask:
    """A message to the task's agent, delivered into the running session by its gateway. Once
    the agent has answered everything and its run is ending, it is kept as late and becomes the
    follow-up when the task finishes (task_late_messages_follow_up); for a finished task it
    starts a follow-up at once (returned). Raises TaskInputError saying why not (TaskNotPossible:
    not with this task now; field None: the owner's task limits)."""
    text = message_check(text=text)
    with transaction.atomic():
        # Locked as the gateway locks it to close the channel, and as the task's end locks it
        # to make the follow-up: a message is delivered, late or a follow-up, never lost.
        conversation = TaskConversation.objects.select_for_update().get(pk=task.pk)
        # Read under the lock: a task whose end was saved meanwhile is finished here.
        status = CodingTask.objects.values_list("status", flat=True).get(pk=task.pk)
        if status in FINISHED_STATUSES:
            return _follow_up_of_message(task_id=task.pk, text=text)
        if not settings.AGENT_MESSAGES:
            raise TaskNotPossible("Messages to a running agent are turned off here.")
        last = TaskMessage.objects.filter(task=task).aggregate(last=Max("seq"))["last"] or 0
        if last >= MESSAGES_PER_TASK_MAX:
            raise TaskNotPossible(
                f"This task has had {MESSAGES_PER_TASK_MAX} messages, the limit: continue it "
                "with a follow-up once it has finished.",
            )
        # Closed while it runs: its agent has answered everything and will take no more. A
        # task that waits (or is queued again) takes its messages anew on its next run.
        late = conversation.messages_closed and status == TaskStatus.RUNNING
        return TaskMessage.objects.create(task=task, seq=last + 1, text=text, late=late)


def _follow_up_of_message(*, task_id: int, text: str) -> CodingTask:
    parent = CodingTask.objects.select_related("owner", "pull_request").get(pk=task_id)
    try:
        prompt = prompt_check(prompt=text)
    except TaskInputError as exc:
        raise TaskInputError("text", exc.message) from None
    return task_continue(parent=parent, prompt=prompt)


def task_late_messages_follow_up(*, task_id: int) -> CodingTask | None:
    """The messages that came after the agent's run ended, made into one follow-up of their
    finished task, their texts joined in order as its prompt; the follow-up, or None when
    there is nothing to make. Called in the transaction that saves the task's end
    (tasks.signals.task_ending) and by the queue's sweep: under the conversation's lock, so
    they go once, whoever comes first. A cancelled task keeps them: the cancel came later.
    When no follow-up can be made (the owner's task limits, say), each message keeps the
    reason and stays for its owner to Continue by hand: nothing is tried again by itself."""
    with transaction.atomic():  # a savepoint inside the end's transaction: a failure stays here
        TaskConversation.objects.select_for_update().get(pk=task_id)
        parent = CodingTask.objects.select_related("owner", "pull_request").get(pk=task_id)
        if parent.status not in LATE_FOLLOW_UP_STATUSES:
            return None
        late = list(_late_pending(task_id=task_id).order_by("seq"))
        if not late:
            return None
        rows = TaskMessage.objects.filter(pk__in=[message.pk for message in late])
        try:
            follow_up = task_continue(
                parent=parent, prompt="\n\n".join(message.text for message in late)
            )
        except TaskInputError as exc:
            reason = exc.message
            if exc.field == "prompt":
                reason = f"together they are too long for a follow-up's prompt. {reason}"
            rows.update(not_delivered=reason[:NOT_DELIVERED_MAX_CHARS])
            logger.info("Late messages of task %s made no follow-up: %s", task_id, reason)
            return None
        rows.update(follow_up=follow_up, followed_up_at=timezone.now())
    logger.info("Task %s: %s late message(s) became task %s", task_id, len(late), follow_up.pk)
    return follow_up


def _late_pending(*, task_id: int | None = None) -> QuerySet[TaskMessage]:
    """Late messages that went nowhere yet and were not refused a follow-up."""
    pending = TaskMessage.objects.filter(
        late=True, followed_up_at=None, delivered_at=None, not_delivered=""
    )
    return pending if task_id is None else pending.filter(task_id=task_id)


def late_messages_sweep() -> int:
    """Make the follow-up of every finished task whose end did not make it (its maker failed
    mid-way); how many were made."""
    task_ids = set(
        _late_pending()
        .filter(task__status__in=LATE_FOLLOW_UP_STATUSES)
        .values_list("task_id", flat=True)
    )
    made = 0
    for task_id in sorted(task_ids):
        try:
            made += task_late_messages_follow_up(task_id=task_id) is not None
        except Exception:  # one task's failure leaves the others theirs; the next sweep tries again
            logger.exception("The late messages of task %s made no follow-up", task_id)
    return made


def _on_task_ending(*, task_id: int, **_: Any) -> None:
    task_late_messages_follow_up(task_id=task_id)


def _on_queue_swept(*, now: datetime, **_: Any) -> int:
    return late_messages_sweep()


def receivers_connect() -> None:
    """Listen to the task's end and to the queue's sweep (tasks.apps)."""
    task_ending.connect(_on_task_ending, dispatch_uid="tasks.late_messages")
    queue_swept.connect(_on_queue_swept, dispatch_uid="tasks.late_messages_sweep")
