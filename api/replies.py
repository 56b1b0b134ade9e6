"""The answer in the GitHub thread when a task started from a comment ends: the agent's
summary, the cost, and the pull request it opened or updated, posted with the owner's token.
A task that asked for a pull request is answered once that is opened (task_recorded)."""

import logging
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from hosting.errors import HostingError
from hosting.markdown import agent_words_quote
from hosting.services import issue_comment_post
from tasks.models import CodingTask, TaskStatus
from tasks.pull_requests.create import DONE_STATES
from tasks.signals import TaskEvent, task_finished, task_recorded

from .models import TaskMention

logger = logging.getLogger(__name__)

SUMMARY_MAX_CHARS = 4000
_ENDINGS = (TaskEvent.SUCCEEDED, TaskEvent.FAILED)


def mention_reply_text(*, task: CodingTask) -> str:
    """The reply: what happened, the agent's words quoted (unable to mention, link or reorder),
    the cost, the pull request, and the task's page."""
    done = task.status == "succeeded"
    lines = [f"Task {task.pk} {'finished' if done else 'did not finish'}: {task.status}."]
    summary = (task.result_text or task.error_message).strip()
    if summary:
        cut = summary[:SUMMARY_MAX_CHARS] + ("…" if len(summary) > SUMMARY_MAX_CHARS else "")
        lines += ["", agent_words_quote(cut)]
    if task.usage.cost_usd is not None:
        lines += ["", f"Cost: ${task.usage.cost_usd:.4f}"]
    pull = task.pull_request
    if pull.state in DONE_STATES and pull.url:
        verb = "Updated" if pull.is_pushed else "Opened"
        lines += ["", f"{verb} pull request: {pull.url}"]
    elif pull.error:
        lines += ["", f"No pull request: {pull.error}"]
    lines += ["", f"Details: {settings.SITE_URL}{reverse('tasks:detail', args=[task.pk])}"]
    return "\n".join(lines)


def mention_reply(*, task_id: int) -> bool:
    """Answer the comment a task came from, once. False when there is nothing to answer."""
    claimed = TaskMention.objects.filter(pk=task_id, replied_at__isnull=True).update(
        replied_at=timezone.now()
    )
    if not claimed:
        return False
    mention = TaskMention.objects.get(pk=task_id)
    task = CodingTask.objects.select_related("owner", "usage", "pull_request").get(pk=task_id)
    try:
        issue_comment_post(
            user=task.owner,
            repo_url=mention.repo_url,
            number=mention.number,
            body=mention_reply_text(task=task),
        )
    except HostingError as exc:
        logger.info("No reply for task %s: %s", task_id, exc.kind)
    return True


def _awaits_pull_request(task_id: int) -> bool:
    """A successful task that asked for a pull request: the reply waits until it is opened."""
    return CodingTask.objects.filter(
        pk=task_id, status=TaskStatus.SUCCEEDED, open_pull_request=True
    ).exists()


def on_task_finished(*, task_id: int, event: str, **_: Any) -> None:
    if event in _ENDINGS and not _awaits_pull_request(task_id):
        mention_reply(task_id=task_id)


def on_task_recorded(*, task_id: int, **_: Any) -> None:
    if _awaits_pull_request(task_id):
        mention_reply(task_id=task_id)


def connect() -> None:
    task_finished.connect(on_task_finished, dispatch_uid="api.mention_reply")
    task_recorded.connect(on_task_recorded, dispatch_uid="api.mention_reply_recorded")
