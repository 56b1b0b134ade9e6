"""From an app's event to messages: who hears of it, under which key, and what it says."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.urls import reverse

from common.humanize import utc_text
from common.text import text_visible
from oauth_tokens.models import OAuthCredential
from tasks.models import CodingTask

from .messages import Message, site_url
from .models import EventKind

TASK_EVENTS = {
    "succeeded": EventKind.TASK_SUCCEEDED,
    "failed": EventKind.TASK_FAILED,
    "waiting": EventKind.TASK_WAITING,
    "resumed": EventKind.TASK_RESUMED,
}


@dataclass(frozen=True)
class Event:
    kind: str  # EventKind
    key: str  # unique per occurrence; + recipient + channel = the delivery's key
    recipients: list[User]
    message: Message


def admins() -> list[User]:
    """Who hears about the server's global credential: the active superusers."""
    return list(User.objects.filter(is_superuser=True, is_active=True))


def task_event(*, task_id: int, event: str, wait: int = 0) -> Event | None:
    kind = TASK_EVENTS.get(event)
    task = CodingTask.objects.select_related("owner", "usage", "limit").filter(pk=task_id).first()
    if kind is None or task is None:
        return None
    url = site_url(reverse("tasks:detail", args=[task.pk]))
    words = {
        "succeeded": "succeeded",
        "failed": "failed",
        "waiting": "is waiting for a usage limit to reset",
        "resumed": "runs again after waiting for a usage limit",
    }[event]
    lines = [f"Task {task.pk} {words}.", f"Repository: {task.repo_url}"]
    if event in ("failed", "waiting") and task.error_message:
        # It may quote the agent: shown as the task page shows it, nothing reordered or hidden.
        lines.append(text_visible(task.error_message, keep="\t\n"))
    if event == "waiting" and task.requeue_at:
        lines.append(f"It runs again by itself at about {utc_text(task.requeue_at)}.")
    cost, until = task.usage.cost_usd, task.limit.limited_until
    if cost is not None and event == "succeeded":
        lines.append(f"Cost: ${cost:.4f}")
    if url:
        lines.append(url)
    # One delivery per occurrence: each wait of a task is its own event.
    occurrence = f"{wait}" if event in ("waiting", "resumed") else "end"
    return Event(
        kind=kind,
        key=f"task:{task.pk}:{event}:{occurrence}",
        recipients=[task.owner],
        message=Message(
            subject=f"Task {task.pk} {words}",
            text="\n".join(lines),
            fields={
                "event": kind,
                "task_id": task.pk,
                "status": task.status,
                "repository": task.repo_url,
                "limited_until": until.isoformat() if until else None,
                "resume_after": task.requeue_at.isoformat() if task.requeue_at else None,
                "cost_usd": str(cost) if cost is not None else None,
                "url": url,
            },
        ),
    )


def _credential_whose(owner_id: int | None) -> tuple[list[User], str]:
    if owner_id is None:
        return admins(), "The server's global Claude OAuth tokens"
    user = User.objects.filter(pk=owner_id, is_active=True).first()
    return ([user] if user else []), "Your Claude OAuth tokens"


def credential_dead_event(
    *, credential_id: int, owner_id: int | None, reason: str, event_id: str
) -> Event:
    recipients, whose = _credential_whose(owner_id)
    url = site_url(reverse("accounts:code_agent_settings"))
    action = (
        "Sign in again: save new tokens on the Code agent settings page."
        if owner_id is not None
        else "Set new CLAUDE_* tokens in the server environment."
    )
    return Event(
        kind=EventKind.CREDENTIAL_DEAD,
        key=f"credential:{credential_id}:dead:{event_id}",
        recipients=recipients,
        message=Message(
            subject=f"{whose} stopped working",
            text=f"{whose} stopped working: {reason}.\n{action}\n{url}".strip(),
            fields={
                "event": EventKind.CREDENTIAL_DEAD,
                "credential_id": credential_id,
                "global": owner_id is None,
                "reason": reason,
                "url": url,
            },
        ),
    )


def refresh_failing_event(
    *,
    credential_id: int,
    owner_id: int | None,
    reason: str,
    streak_start: datetime | None,
    failures: int,
) -> Event:
    recipients, whose = _credential_whose(owner_id)
    streak = streak_start.isoformat() if streak_start else "never"
    return Event(
        kind=EventKind.REFRESH_FAILING,
        key=f"credential:{credential_id}:refresh-failing:{streak}",
        recipients=recipients,
        message=Message(
            subject=f"{whose} fail to refresh",
            text=f"{whose} failed to refresh {failures} times in a row. Last error: {reason}.\n"
            "They keep working until the access token expires; if this goes on, save new tokens.",
            fields={
                "event": EventKind.REFRESH_FAILING,
                "credential_id": credential_id,
                "global": owner_id is None,
                "failures": failures,
                "reason": reason,
            },
        ),
    )


def credential_aging_event(
    *, credential: OAuthCredential, stage: str, deadline: datetime | None, subject: str, text: str
) -> Event:
    recipients, whose = _credential_whose(credential.owner_id)
    saved = (credential.saved_at or credential.created_at).date().isoformat()
    url = site_url(reverse("accounts:code_agent_settings"))
    return Event(
        kind=EventKind.CREDENTIAL_AGING,
        key=f"credential:{credential.pk}:aging:{saved}:{stage}",
        recipients=recipients,
        message=Message(
            subject=f"{whose}: {subject}",
            text=f"{whose}: {text}\n{url}".strip(),
            fields={
                "event": EventKind.CREDENTIAL_AGING,
                "credential_id": credential.pk,
                "global": credential.owner_id is None,
                "stage": stage,
                "deadline": deadline.isoformat() if deadline else None,
                "url": url,
            },
        ),
    )
