"""Tasks and credential status as the API shows them (plain dicts the schemas validate)."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse

from accounts.selectors import code_agent_status_get
from environments.selectors import task_environment_get
from tasks.models import CarriedOver, CodingTask, TaskConversation
from tasks.selectors import SentMessage, task_chain, task_messages_sent

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "requests",
    "num_turns",
    "duration_ms",
)
_METHOD_BY_STEP = {1: "oauth", 2: "oauth", 3: "api_key"}
_CARRIED = {
    CarriedOver.TRANSCRIPT: "resumed",
    CarriedOver.SUMMARY: "summarised",
    CarriedOver.NONE: "none",
}


def task_summary_json(*, task: CodingTask) -> dict[str, Any]:
    return {
        "id": task.pk,
        "status": task.status,
        "repository": task.repo_url,
        "branch": task.branch,
        "prompt": task.prompt,
        "created_at": task.created_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "parent_id": task.parent_id,
        "url": _task_url(task.pk),
    }


def _task_url(task_id: int) -> str:
    return settings.SITE_URL + reverse("tasks:detail", args=[task_id])


def _changed_files(raw: object) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        return []
    return [
        {"status": str(item.get("status", "")), "path": str(item.get("path", ""))}
        for item in raw
        if isinstance(item, dict)
    ]


def _chain_of_new(task: CodingTask) -> list[CodingTask]:
    """A task made just now has no continuations yet: its chain is its ancestors and itself."""
    chain = [task]
    seen = {task.pk}
    while chain[0].parent is not None and chain[0].parent.pk not in seen:
        chain.insert(0, chain[0].parent)
        seen.add(chain[0].pk)
    return chain


def message_json(*, sent: SentMessage) -> dict[str, Any]:
    message = sent.message
    follow_up = sent.follow_up_id
    return {
        "seq": message.seq,
        "text": message.text,
        "created_at": message.created_at,
        "delivered_at": message.delivered_at,
        "late": message.late,
        "state": sent.fate.value,
        "note": sent.words,
        "follow_up_id": follow_up,
        "follow_up_url": None if follow_up is None else _task_url(follow_up),
    }


def _conversation_json(task: CodingTask) -> dict[str, Any]:
    conversation = TaskConversation.objects.defer("transcript").get(pk=task.pk)
    return {
        "carried": _CARRIED.get(CarriedOver(conversation.carried), "none"),
        "note": conversation.carried_note,
        "retry_of": conversation.retry_of_id,
    }


def _environment_json(task: CodingTask) -> dict[str, Any] | None:
    run = task_environment_get(task_id=task.pk)
    if run is None:
        return None
    return {
        "id": run.environment_id,
        "name": run.name,
        "version": run.version,
        "cache": run.cache,
        "setup_seconds": run.setup_seconds,
        "setup_exit_code": run.setup_exit_code,
    }


def task_detail_json(*, task: CodingTask, new: bool = False) -> dict[str, Any]:
    """Everything about one task (select_related usage and pull_request first). `new`: made in
    this request, so nothing continues it yet and its rows are in memory."""
    pull = task.pull_request
    chain = _chain_of_new(task) if new else task_chain(task=task)
    messages = [] if new else task_messages_sent(task=task)
    return task_summary_json(task=task) | {
        "answer": task.result_text,
        "answer_is_error": task.result_is_error,
        "error_message": task.error_message,
        "cost_usd": task.usage.cost_usd,
        "usage": {name: getattr(task.usage, name) for name in _USAGE_FIELDS},
        "changed_files": _changed_files(task.changed_files),
        "diff": task.diff,
        "diff_truncated": task.diff_truncated,
        "chain": [link.pk for link in chain],
        # The chain's rows are read without log and diff: its prompts and answers cost nothing.
        "turns": [
            {
                "id": link.pk,
                "status": link.status,
                "prompt": link.prompt,
                "answer": link.result_text,
            }
            for link in chain
        ],
        "messages": [message_json(sent=sent) for sent in messages],
        "conversation": _conversation_json(task),
        "environment": _environment_json(task),
        "pull_request": {
            "state": pull.state,
            "url": pull.url,
            "number": pull.number,
            "branch": pull.branch,
            "error": pull.error,
        },
        "cancel_requested": task.cancel_requested,
        "wait_reason": task.wait_reason,
        "limited_until": task.limit.limited_until,
    }


def auth_status_json(*, user: User) -> dict[str, Any]:
    """The method the next task would use and the saved credential's health; never a secret."""
    status = code_agent_status_get(user=user)
    tokens = status.tokens
    return {
        "available": status.method.available,
        "method": _METHOD_BY_STEP.get(status.method.step, ""),
        "title": status.method.title,
        "reason": status.method.reason,
        "warning": status.method.warning,
        "will_fail": status.method.will_fail,
        "oauth_credential": None
        if tokens is None
        else {
            "kind": tokens.kind,
            "source": tokens.source,
            "status": tokens.status,
            "status_label": tokens.status_label,
            "expires": tokens.expires,
            "last_refreshed": tokens.last_refreshed,
            "last_error": tokens.last_error,
            "refreshable": tokens.refreshable,
            "expired": tokens.expired,
        },
        "api_key_saved": bool(status.api_key_last4),
    }
