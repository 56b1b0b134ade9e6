"""What the runner does about a usage limit or a rejected credential (tasks.waits.limits says
which): record on the credential what the task's gateway saw (and only that), note in the audit
log what the agent claimed that the gateway did not see, wait for the reset or fall back to the
user's API key, and announce the task's end (tasks.signals)."""

import logging
from dataclasses import replace
from typing import NamedTuple

from django.utils import timezone

from accounts.selectors import auth_method_for_user, preferences_get
from gateway.runtime import GatewayUsage
from oauth_tokens.models import AuditAction, OAuthCredential
from oauth_tokens.services import (
    AuditSubject,
    AuthMethod,
    AuthResolution,
    credential_accepted_record,
    credential_audit_record,
    credential_kind_used,
    credential_limit_record,
    credential_limited_until,
    credential_rejected,
)
from tasks.models import CodingTask, LimitVerdict, TaskStatus, WaitReason
from tasks.results import RunResult

from .limits import LimitSource, RunLimit, gateway_limit_of, window_words
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
    limit = RunLimit(
        LimitVerdict.LIMITED, LimitSource.GATEWAY, resets_at=until, window=window or ""
    )
    waiting = wait_plan(task=task, limit=limit, now=now).updated(
        limit={"verdict": LimitVerdict.LIMITED, "window": limit.window}
    )
    logger.info("Task %s waits from the start: its subscription is limited", task.pk)
    return auth, waiting


# What the audit log and the worker's log say of a claim the gateway did not see.
UNSEEN_CLAIM = "claimed by the agent, not seen by the gateway"


def credential_facts_record(*, task: CodingTask, auth: RunAuth, usage: GatewayUsage) -> RunLimit:
    """As soon as the gateway has stopped, before any file the agent wrote is read (nothing it
    left can then keep these off the credential): record on the credential what the gateway
    saw of it. Returns that view (tasks.waits.limits.gateway_limit_of)."""
    seen = gateway_limit_of(usage=usage, now=timezone.now())
    _credential_record(task=task, auth=auth, seen=seen, usage=usage)
    return seen


def limits_after_run(
    *, task: CodingTask, auth: RunAuth, limit: RunLimit, result: RunResult
) -> RunResult:
    """After the container, once credential_facts_record has run: note the run in the audit log
    and turn a limited task into a waiting one (or a fallback to the user's API key, or a
    failure past the cap). limit: what the task comes to (tasks.waits.limits.task_limit_choose)."""
    unseen = claim_unseen_words(limit)
    if unseen:
        logger.warning("Task %s: %s; the credential is left as it was", task.pk, unseen)
    _usage_note(task, result.status, auth, unseen)
    result = _waiting_or_fallback(task=task, auth=auth, limit=limit, result=result)
    if not unseen:
        return result
    return replace(
        result.updated(limit={"claim_unseen": True}),
        message=f"{result.message} (The agent said so; the server's gateway did not see it, "
        "so the credential was left as it was.)",
    )


def _waiting_or_fallback(
    *, task: CodingTask, auth: RunAuth, limit: RunLimit, result: RunResult
) -> RunResult:
    """A limited task waits for the reset, or goes straight back to the queue on the user's
    API key (their choice, and only for a limit the gateway saw: an agent could otherwise print
    one to run on a key billed per token), or fails past the longest wait."""
    if result.status != TaskStatus.WAITING:
        return result
    falls_back = auth.method == AuthMethod.OAUTH and _falls_back(task)
    if falls_back and limit.seen_by_gateway:
        now = timezone.now()
        return replace(
            result.updated(
                {"force_api_key": True, "waiting_since": now, "wait_reason": WaitReason.USAGE_LIMIT}
            ),
            message=f"{result.message} Running again on your API key (your choice).",
            requeue_at=now,
        )
    waited = wait_plan(task=task, limit=limit, now=timezone.now()).over(result)
    if not falls_back:
        return waited
    return replace(
        waited,
        message=f"{waited.message} Not moved to your API key: only a limit the API gave does that.",
    )


def claim_unseen_words(limit: RunLimit) -> str:
    """What the audit line and the task's log say of a limit or refusal only the agent's
    output gave; "" otherwise."""
    if limit.seen_by_gateway or not (limit.limited or limit.auth_failed):
        return ""
    what = "a usage limit" if limit.limited else "a rejected credential"
    words = limit.detail or window_words(limit.window)
    return f"{what} {UNSEEN_CLAIM} ({limit.source}: {words})"[:500]


def _credential_record(
    *, task: CodingTask, auth: RunAuth, seen: RunLimit, usage: GatewayUsage
) -> None:
    """What the gateway saw of the run's credential: accepted, refused, its limit state. An
    agent's claim never reaches the credential (limits_after_run only logs it, as such)."""
    if auth.credential_id is None:
        if seen.auth_failed:  # an API key the API refused: the audit line is all there is
            credential_audit_record(
                action=AuditAction.REJECTED,
                subject=_subject(task, auth),
                user=task.owner,
                task_id=task.pk,
                outcome=f"http_{seen.http_status}" if seen.http_status else "rejected",
                detail=f"{seen.detail} (seen by the task's gateway)",
            )
        return
    if usage.accepted_at is not None:
        credential_accepted_record(credential_id=auth.credential_id, at=usage.accepted_at)
    _limit_state_record(credential_id=auth.credential_id, seen=seen, task=task)
    if seen.auth_failed and usage.auth_refused_at is not None:
        credential_rejected(
            credential_id=auth.credential_id,
            http_status=seen.http_status,
            reason=seen.detail,
            at=usage.auth_refused_at,
            after_refresh=usage.auth_refused_after_refresh,
            task_id=task.pk,
        )


def _subject(task: CodingTask, auth: RunAuth) -> AuditSubject:
    kind = credential_kind_used(method=auth.method, source=auth.source)
    return AuditSubject(
        credential_kind=kind, user_id=task.owner_id, credential_id=auth.credential_id
    )


def _usage_note(task: CodingTask, status: str, auth: RunAuth, unseen: str) -> None:
    """The audit line of the run: how it ended, and any claim the gateway did not see."""
    credential_audit_record(
        action=AuditAction.USED,
        subject=_subject(task, auth),
        user=task.owner,
        task_id=task.pk,
        outcome="limited" if status == TaskStatus.WAITING else status,
        detail=unseen,
    )


def _limit_state_record(*, credential_id: int, seen: RunLimit, task: CodingTask) -> None:
    """The subscription's limit state as the gateway saw it: limited, close to it, or clear
    (its last answer said "allowed"); nothing when it saw no limit header."""
    if seen.limited or seen.verdict == LimitVerdict.WARNING:
        credential_limit_record(
            credential_id=credential_id,
            status="rejected" if seen.limited else "allowed_warning",
            resets_at=seen.resets_at,
            window=seen.window,
            utilization=seen.utilization,
            task_id=task.pk,
        )
    elif seen.seen_by_gateway and seen.verdict == LimitVerdict.NONE:
        credential_limit_record(
            credential_id=credential_id,
            status="allowed",
            resets_at=None,
            window="",
            utilization=None,
        )
