"""What the runner does about a usage limit or a rejected credential (tasks.waits.limits says
which): record it on the credential and in the audit log, wait for the reset or fall back to the
user's API key, and announce the task's end (tasks.signals)."""

import logging
from dataclasses import replace
from typing import NamedTuple

from django.utils import timezone

from accounts.selectors import auth_method_for_user, preferences_get
from oauth_tokens.models import AuditAction, OAuthCredential
from oauth_tokens.services import (
    AuditSubject,
    AuthMethod,
    AuthResolution,
    credential_audit_record,
    credential_kind_used,
    credential_limit_record,
    credential_limited_until,
    credential_rejected,
)
from tasks.models import CodingTask, LimitVerdict, TaskStatus, WaitReason
from tasks.results import RunResult

from .limits import LimitSource, RunLimit
from .usage_limit import wait_plan

logger = logging.getLogger(__name__)


class RunAuth(NamedTuple):
    """How a run authenticated, as its outcome needs it: the method, whose credential, and the
    stored OAuth credential (None for an API key). A taken-over run knows only this much."""

    method: str
    source: str
    credential_id: int | None


def _falls_back(task: CodingTask) -> bool:
    """The user chose "fall back to my API key" and has one."""
    preferences = preferences_get(user=task.owner)
    return preferences.when_limited == "api_key" and preferences.has_api_key


def limited_before_start(
    *, task: CodingTask, auth: AuthResolution
) -> tuple[AuthResolution, RunResult | None]:
    """Before a container starts: is the chosen subscription known to be limited? Then the task
    waits from the start (no container burnt), or runs on the user's API key if they chose so.
    Returns the auth to use and, when waiting, what the task ends in now."""
    if auth.method != AuthMethod.OAUTH or auth.oauth is None:
        return auth, None
    now = timezone.now()
    until = credential_limited_until(credential_id=auth.oauth.credential_id, now=now)
    if until is None:
        return auth, None
    if _falls_back(task):
        fallback = auth_method_for_user(user=task.owner, api_key_only=True)
        note = "Your Claude subscription is limited, so your API key is used (your choice)."
        return AuthResolution(
            method=fallback.method,
            source=fallback.source,
            reason=f"{note} {fallback.reason}",
            fallback=True,
            oauth_error="usage limit",
            api_key=fallback.api_key,
        ), None
    window = (
        OAuthCredential.objects.filter(pk=auth.oauth.credential_id)
        .values_list("limit_window", flat=True)
        .first()
    )
    limit = RunLimit(LimitVerdict.LIMITED, LimitSource.STREAM, resets_at=until, window=window or "")
    waiting = wait_plan(task=task, limit=limit, now=now).updated(
        limit={"verdict": LimitVerdict.LIMITED, "window": limit.window}
    )
    logger.info("Task %s waits from the start: its subscription is limited", task.pk)
    return auth, waiting


def limits_after_run(
    *, task: CodingTask, auth: RunAuth, limit: RunLimit, result: RunResult
) -> RunResult:
    """After the container: record what the run said about the credential, and turn a limited
    task into a waiting one (or a fallback to the user's API key, or a failure past the cap)."""
    _credential_record(task=task, auth=auth, limit=limit, status=result.status)
    if result.status != TaskStatus.WAITING:
        return result
    if auth.method == AuthMethod.OAUTH and _falls_back(task):
        # Straight back to the queue, on the user's API key (their choice on the settings page).
        now = timezone.now()
        return replace(
            result.updated(
                {"force_api_key": True, "waiting_since": now, "wait_reason": WaitReason.USAGE_LIMIT}
            ),
            message=f"{result.message} Running again on your API key (your choice).",
            requeue_at=now,
        )
    return wait_plan(task=task, limit=limit, now=timezone.now()).over(result)


def _credential_record(*, task: CodingTask, auth: RunAuth, limit: RunLimit, status: str) -> None:
    """What the run said about its credential: its limit state, a rejection, the audit line."""
    kind = credential_kind_used(method=auth.method, source=auth.source)
    subject = AuditSubject(
        credential_kind=kind, user_id=task.owner_id, credential_id=auth.credential_id
    )
    if auth.credential_id is not None:
        _limit_state_record(credential_id=auth.credential_id, limit=limit, status=status, task=task)
    if limit.auth_failed and auth.credential_id is not None:
        credential_rejected(
            credential_id=auth.credential_id,
            http_status=limit.http_status,
            reason=limit.detail,
            task_id=task.pk,
        )
    elif limit.auth_failed:
        credential_audit_record(
            action=AuditAction.REJECTED,
            subject=subject,
            user=task.owner,
            task_id=task.pk,
            outcome=f"http_{limit.http_status}" if limit.http_status else "rejected",
            detail=limit.detail,
        )
    credential_audit_record(
        action=AuditAction.USED,
        subject=subject,
        user=task.owner,
        task_id=task.pk,
        outcome="limited" if limit.limited else status,
    )


def _limit_state_record(
    *, credential_id: int, limit: RunLimit, status: str, task: CodingTask
) -> None:
    """The subscription's limit state as this run saw it: limited, close to it, or clear."""
    if limit.limited or limit.verdict == LimitVerdict.WARNING:
        credential_limit_record(
            credential_id=credential_id,
            status="rejected" if limit.limited else "allowed_warning",
            resets_at=limit.resets_at,
            window=limit.window,
            utilization=limit.utilization,
            task_id=task.pk,
        )
    elif status == TaskStatus.SUCCEEDED:
        credential_limit_record(
            credential_id=credential_id,
            status="allowed",
            resets_at=None,
            window="",
            utilization=None,
        )
