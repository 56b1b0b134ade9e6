"""What a user asks of a task after its prompt (web side): a follow-up of any finished task,
"run again" for one that failed or was cancelled, and a message to its running agent. Each new
task goes through task_create (the owner's task limits, validation); the worker side is in
tasks.run.chain (where a follow-up starts) and tasks.run.conversation (the session it resumes).
"""

import contextlib
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from common.errors import InputError
from environments.selectors import task_environment_get
from environments.services import task_environment_choose
from tasks.models import CodingTask, TaskConversation, TaskMessage, TaskStatus
from tasks.run.chain import PULL_REQUEST_DONE
from tasks.services import task_create
from tasks.validation import TaskInputError, prompt_check

logger = logging.getLogger(__name__)

RUN_AGAIN_STATUSES = (TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT)
# Messages one task may get while it runs: more is a follow-up's job.
MESSAGES_PER_TASK_MAX = 100


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
        raise TaskInputError("prompt", blocker)
    pull_request = parent.pull_request
    on_pull_request = pull_request.state in PULL_REQUEST_DONE and bool(pull_request.branch)
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
        raise TaskInputError(None, blocker)
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
    """A message to the task's agent: delivered into the running session by its gateway; for a
    finished task a follow-up instead (returned). Raises TaskInputError saying why not."""
    text = message_check(text=text)
    if task.is_finished:
        return task_continue(parent=task, prompt=prompt_check(prompt=text))
    if not settings.AGENT_MESSAGES:
        raise TaskInputError("text", "Messages to a running agent are turned off here.")
    with transaction.atomic():
        # Locked as the gateway locks it to close the channel: a message is in before a close
        # or refused after it, never lost in between.
        conversation = TaskConversation.objects.select_for_update().get(pk=task.pk)
        if conversation.messages_closed:
            raise TaskInputError(
                "text",
                "The agent has answered everything and its run is ending. Send the message "
                "again once the task has finished: it then starts a follow-up.",
            )
        last = TaskMessage.objects.filter(task=task).aggregate(last=Max("seq"))["last"] or 0
        if last >= MESSAGES_PER_TASK_MAX:
            raise TaskInputError(
                "text",
                f"This task has had {MESSAGES_PER_TASK_MAX} messages, the limit: continue it "
                "with a follow-up once it has finished.",
            )
        return TaskMessage.objects.create(task=task, seq=last + 1, text=text)
