"""Reading a finished container: its result (result.json, else the stream's result line), the
diff and changed files, and the verdict a user sees (docs/claude-cli-contract.md#output-formats,
docs/claude-cli-contract.md#usage-limits-and-auth-failures).
"""

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.urls import reverse

from common.humanize import utc_text
from common.logging import redacted_head
from common.text import text_storable
from tasks.models import TaskStatus
from tasks.results import RunResult
from tasks.waits.limits import NO_LIMIT, RunLimit, run_limit_parse, window_words

from .containers import ContainerOutcome
from .log import TaskLog

EXIT_CLONE_FAILED = 3
EXIT_GATEWAY_FAILED = 4


def outcome_values(
    *, outcome: ContainerOutcome, log: TaskLog, limit: RunLimit | None = None
) -> RunResult:
    """A finished container as the task's status, message and result columns.

    limit: what tasks.waits.limits made of the run (run_limit_of); read here if not given.
    """
    result = outcome_result(outcome=outcome, log=log)
    if limit is None:
        limit = run_limit_of(log=log, result=result, now=datetime.now().astimezone())
    diff_bytes = outcome.outputs.get("diff.patch", b"")
    max_diff = settings.AGENT_DIFF_MAX_BYTES
    values: dict[str, Any] = {
        "exit_code": outcome.exit_code,
        "diff": log.redact(diff_bytes[:max_diff].decode("utf-8", "replace")),
        "diff_truncated": len(diff_bytes) > max_diff,
        "changed_files": _changed_files(outcome.outputs.get("changed_files.txt", b""), log),
        "result_text": redacted_head(
            str(result.get("result", "") or ""), max_chars=20000, redact=log.redact
        )[0],
        "result_is_error": result.get("is_error") is True if result else None,
        "session_id": _session_id(result.get("session_id"), log),
    }
    usage, doubtful = agent_usage_parse(result)
    for name in doubtful:
        log.note(
            f"The agent reported {name} as {_shown(result.get(name))}, which cannot be right; "
            "it is recorded as unknown."
        )
    verdict = outcome_verdict(outcome, result, limit, egress_refusals=log.egress_refusals)
    return verdict.updated(values, usage=usage, limit=limit_values(limit))


def run_limit_of(*, log: TaskLog, result: Mapping[str, Any], now: datetime) -> RunLimit:
    """What the agent's output claims (tasks.waits.limits.run_limit_parse): the log's events,
    the result."""
    return run_limit_parse(
        rate_limit_events=log.rate_limit_events,
        result=result,
        assistant_errors=log.assistant_errors,
        now=now,
    )


def limit_values(limit: RunLimit) -> dict[str, Any]:
    """The TaskLimit columns that record a limit or a rejected credential."""
    return {
        "verdict": limit.verdict,
        "window": limit.window[:32],
        "detail": limit.detail[:255],
        "limited_until": limit.resets_at if limit.limited else None,
        "auth_rejected": limit.auth_failed,
    }


def outcome_result(*, outcome: ContainerOutcome, log: TaskLog) -> dict[str, Any]:
    raw = outcome.outputs.get("result.json", b"").strip()
    if raw:
        try:
            parsed = json.loads(raw)
            if isinstance(parsed, dict):
                return parsed
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            pass
    return log.result_line or {}


def limit_message(limit: RunLimit) -> str:
    """ "Stopped by the Claude five-hour usage limit; it resets 2026-12-02 00:06 UTC." """
    when = f"it resets {utc_text(limit.resets_at)}" if limit.resets_at else "no reset time given"
    return f"Stopped by the Claude {window_words(limit.window)} limit; {when}."


def auth_rejected_message(limit: RunLimit) -> str:
    status = f"HTTP {limit.http_status}: " if limit.http_status else ""
    return (
        f"Claude rejected the credentials ({status}{limit.detail or 'rejected'}). Sign in "
        "again: save new tokens (or a valid API key) on the Code agent settings page "
        f"({reverse('accounts:code_agent_settings')})."
    )


def outcome_verdict(
    outcome: ContainerOutcome,
    result: Mapping[str, Any],
    limit: RunLimit = NO_LIMIT,
    *,
    egress_refusals: list[str] | None = None,
) -> RunResult:
    """The status and message a user reads for a finished container."""
    minutes = settings.AGENT_TIMEOUT_SECONDS / 60
    if outcome.timed_out:
        return RunResult(
            TaskStatus.TIMED_OUT,
            f"The agent ran longer than the limit of {minutes:g} minutes and was stopped. "
            "Changes made so far are shown below.",
        )
    if outcome.cancelled:
        return RunResult(TaskStatus.CANCELLED, "Cancelled at your request.")
    text = str(result.get("result", "") or "").strip()
    if result.get("subtype") == "entrypoint_error":
        return _entrypoint_verdict(outcome.exit_code, text, egress_refusals or [])
    # A limit the gateway saw outranks a 401 the agent's result claims: the task waits for the
    # API's reset (docs/claude-cli-contract.md#what-the-server-trusts, precedence 2).
    seen_limit = limit.limited and limit.seen_by_gateway
    if limit.auth_failed or (result.get("api_error_status") in (401, 403) and not seen_limit):
        if not limit.auth_failed:
            limit = run_limit_parse(rate_limit_events=[], result=result, now=datetime.now(tz=UTC))
        return RunResult(TaskStatus.FAILED, auth_rejected_message(limit))
    if limit.limited:
        # The runner decides whether it waits (tasks.waits) or fails past the longest wait.
        return RunResult(TaskStatus.WAITING, limit_message(limit))
    if outcome.exit_code == 0 and result and not result.get("is_error"):
        return RunResult(TaskStatus.SUCCEEDED)
    if not result:
        return RunResult(
            TaskStatus.FAILED,
            f"The agent exited with code {outcome.exit_code} without a result; see the log.",
        )
    return RunResult(
        TaskStatus.FAILED,
        f"The agent reported an error (exit code {outcome.exit_code}): {text or 'no details'}",
    )


def _entrypoint_verdict(exit_code: int | None, text: str, egress_refusals: list[str]) -> RunResult:
    """The entrypoint stopped before the agent ran: what it refused, by its exit code."""
    if exit_code == EXIT_CLONE_FAILED and egress_refusals:
        # The clone went through the gateway, which refused the host: say which and why.
        return RunResult(
            TaskStatus.FAILED,
            (
                "Could not clone the repository: the task's network rules refused it "
                f"({'; '.join(dict.fromkeys(egress_refusals))}). Agents reach only public hosts "
                f"on this server's allow list (AGENT_EGRESS_ALLOW). {text}"
            ).strip(),
        )
    if exit_code == EXIT_CLONE_FAILED:
        return RunResult(
            TaskStatus.FAILED,
            (
                "Could not clone the repository. Check the URL and branch, and that the "
                f"repository is reachable from the worker. {text}"
            ).strip(),
        )
    if exit_code == EXIT_GATEWAY_FAILED:
        return RunResult(
            TaskStatus.FAILED,
            f"The agent container could not reach its gateway: {text} This is a server "
            "problem, not yours: the operator must run the worker on the Docker engine's host.",
        )
    return RunResult(TaskStatus.FAILED, f"The agent container refused its input: {text}")


def _changed_files(raw: bytes, log: TaskLog) -> list[dict[str, str]]:
    """The changed files' list the container wrote: each name redacted as the diff is, and
    both fields only what a column holds."""
    files = []
    for line in raw.decode("utf-8", "replace").splitlines():
        status, _, path = line.partition("\t")
        path = log.redact(path.split("\t")[-1])
        if path:
            files.append({"status": text_storable(status)[:1], "path": path})
    return files


def _session_id(value: object, log: TaskLog) -> str:
    """The session id the result names (shown on the page): redacted, only what a column
    holds; nothing when it is not text."""
    return log.redact(value)[:128] if isinstance(value, str) else ""


# What the agent's result may say of its own run, and the most each can be; anything else
# (negative, not a number, NaN, infinite, past the most) is unknown.
AGENT_NUMBERS: dict[str, tuple[str, Decimal]] = {
    "total_cost_usd": ("cost_usd", Decimal(100_000)),  # dollars, for one task
    "num_turns": ("num_turns", Decimal(1_000_000)),
    "duration_ms": ("duration_ms", Decimal(2**31 - 1)),  # about 24 days; the column's most
}


def agent_usage_parse(result: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The TaskUsage columns from the agent's result (cost in dollars to the micro-dollar,
    whole turns and milliseconds), and the names of the numbers it gave that cannot be right.
    The result is the agent's own word: a missing number is unknown, a wrong one is too."""
    values: dict[str, Any] = {}
    doubtful = []
    for name, (column, most) in AGENT_NUMBERS.items():
        number = _number(result.get(name), most)
        if number is None and result.get(name) is not None:
            doubtful.append(name)
        if number is not None and column != "cost_usd":
            values[column] = int(number)
        else:
            values[column] = number
    return values, doubtful


def _number(value: Any, most: Decimal) -> Decimal | None:
    """A finite number from 0 to ``most`` (JSON's int or float only), to six decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = Decimal(value).quantize(Decimal("0.000001"))
    except (InvalidOperation, ValueError, OverflowError):
        return None  # NaN and infinities, or past Decimal's precision
    return number if number.is_finite() and 0 <= number <= most else None


def _shown(value: Any) -> str:
    """A short, safe picture of what the agent gave, for its log."""
    return repr(value)[:40]
