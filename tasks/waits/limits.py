"""Knowing why a run stopped: a subscription usage limit, a near-limit warning, or a rejected
credential (docs/claude-cli-contract.md#usage-limits-and-auth-failures and
#what-the-server-trusts).

Two witnesses, trusted differently:

- the task's gateway (gateway_limit_of): the API's own answers as it relayed them (429 with
  ``anthropic-ratelimit-unified-*``, 401/403 after its forced refresh). Only this may change
  credential-wide state (tasks.waits.limit_actions);
- the agent's own account (run_limit_parse), data from a container that runs whatever the
  prompt or the repository says: the stream's ``rate_limit_event`` lines, then the result's
  ``api_error_status``, then the result text, whose wording has changed over time (every known
  wording is in LIMIT_PATTERNS, one table, a test per row). It shapes only that task's outcome
  and words.

task_limit_choose says what the task comes to: the gateway's verdict when it saw one, else the
agent's. Every reset time, whoever gave it, is capped to LIMIT_RESET_MAX from now; one that
cannot be read still means "limited". Authentication failures (401/403, ``"error":
"authentication_failed"``) are their own verdict: never a success and never a limit.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.humanize import limit_window_words
from gateway.runtime import GatewayUsage
from oauth_tokens.services import limit_reset_capped
from tasks.models import LimitVerdict


class LimitSource(StrEnum):
    STREAM = "stream"
    GATEWAY = "gateway"
    TEXT = "text"
    RESULT = "result"  # api_error_status of the result object


@dataclass(frozen=True)
class RunLimit:
    verdict: LimitVerdict
    source: LimitSource | None = None
    resets_at: datetime | None = None  # None: unknown (still limited when verdict says so)
    window: str = ""  # five_hour, seven_day, monthly, ...: the CLI's rateLimitType words
    utilization: float | None = None  # 0..1
    http_status: int | None = None
    detail: str = ""  # the wording matched, or the API's reason; never a secret

    @property
    def limited(self) -> bool:
        return self.verdict == LimitVerdict.LIMITED

    @property
    def auth_failed(self) -> bool:
        return self.verdict == LimitVerdict.AUTH_FAILED

    @property
    def seen_by_gateway(self) -> bool:
        return self.source == LimitSource.GATEWAY


NO_LIMIT = RunLimit(LimitVerdict.NONE)
# A "successful" answer this short that starts with limit words is the limit message itself.
_WHOLE_ANSWER_MAX = 200

window_words = limit_window_words  # one home: common.humanize


# --- the result text ----------------------------------------------------------------------------

# Separators the CLI has used between "limit reached" and "resets": middle dot, bullet operator.
_SEP = r"\s*[·∙•|-]\s*"
_APOS = "['\u2019]"  # straight or typographic apostrophe


@dataclass(frozen=True)
class LimitPattern:
    name: str
    pattern: re.Pattern[str]
    window: str  # the window the wording names, "" when it does not say


# Every wording seen in the wild, most specific first. Named groups: `epoch` (seconds) or
# `clock` (a wall-clock time, maybe with a date and a zone in brackets).
LIMIT_PATTERNS: tuple[LimitPattern, ...] = (
    LimitPattern(
        "usage-limit-epoch",
        re.compile(r"Claude AI usage limit reached\|(?P<epoch>\d{9,13})"),
        "",
    ),
    LimitPattern(
        "five-hour",
        re.compile(rf"5-hour limit reached(?:{_SEP}resets\s+(?P<clock>[^\n]+))?", re.I),
        "five_hour",
    ),
    LimitPattern(
        "weekly",
        re.compile(rf"Weekly limit reached(?:{_SEP}resets\s+(?P<clock>[^\n]+))?", re.I),
        "seven_day",
    ),
    LimitPattern(
        "session",
        re.compile(rf"You{_APOS}ve hit your session limit(?:{_SEP}resets\s+(?P<clock>[^\n]+))?"),
        "five_hour",
    ),
    LimitPattern(
        "monthly-spend",
        re.compile(rf"You{_APOS}ve hit your monthly spend limit"),
        "monthly",
    ),
    LimitPattern(
        "hit-your-limit",
        re.compile(rf"You{_APOS}ve hit your limit(?:{_SEP}resets\s+(?P<clock>[^\n]+))?"),
        "",
    ),
    LimitPattern(
        "usage-limit-reached",
        re.compile(r"Claude AI usage limit reached", re.I),
        "",
    ),
)

AUTH_FAILURE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"OAuth token has expired", re.I),
    re.compile(r"OAuth token (?:has been )?revoked", re.I),
    re.compile(r"Invalid bearer token", re.I),
    re.compile(r"Invalid authentication credentials", re.I),
    re.compile(r"Failed to authenticate", re.I),
    re.compile(r"invalid x-api-key", re.I),
)

_JUST_PASSED = timedelta(hours=1)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_CLOCK = re.compile(
    r"^(?:(?P<month>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2}),?\s*(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?"
    r"\s*(?:\((?P<zone>[^)]{1,64})\))?",
    re.I,
)


def clock_parse(text: str, *, now: datetime) -> datetime | None:
    """ "12:06am (UTC)", "2pm (Asia/Shanghai)", "Dec 3, 5am", "14:00" as the next such moment
    after `now` (in the named zone, else UTC, the agent container's zone). None if unreadable."""
    found = _CLOCK.match(text.strip())
    if found is None:
        return None
    clock = _clock_time(found)
    zone = _clock_zone(found["zone"]) if found["zone"] else UTC
    if clock is None or zone is None:
        return None
    hour, minute = clock
    local_now = now.astimezone(zone)
    if found["month"]:
        return _on_the_day(found, hour, minute, zone, local_now)
    moment = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    # A time up to an hour ago is that moment (just passed, or clocks a little apart), not
    # tomorrow: the window has reset already.
    if moment <= local_now - _JUST_PASSED:
        moment += timedelta(days=1)
    return moment.astimezone(UTC)


def _clock_time(found: re.Match[str]) -> tuple[int, int] | None:
    """(hour, minute) on a 24-hour clock; None when out of range."""
    hour, minute = int(found["hour"]), int(found["minute"] or 0)
    ampm = (found["ampm"] or "").lower().replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return hour, minute


def _clock_zone(name: str) -> tzinfo | None:
    """The zone named in brackets; None when it is no zone we know."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return UTC if name.strip().upper() in ("UTC", "GMT") else None


def _on_the_day(
    found: re.Match[str], hour: int, minute: int, zone: tzinfo, local_now: datetime
) -> datetime | None:
    """ "Dec 3, 5am": that moment this year, or next year when it is long past."""
    month = _MONTHS.get(found["month"][:3].lower())
    if month is None:
        return None
    try:
        day = date(local_now.year, month, int(found["day"]))
    except ValueError:
        return None
    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    if moment < local_now - timedelta(days=180):  # "Jan 2" said in late December
        moment = moment.replace(year=moment.year + 1)
    return moment.astimezone(UTC)


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number > 1e11:  # milliseconds
        number /= 1000
    if not 1e9 <= number <= 1e10:
        return None
    return datetime.fromtimestamp(number, UTC)


def limit_text_parse(text: str, *, now: datetime) -> RunLimit | None:
    """The first LIMIT_PATTERNS row that matches the text, as a limit (None: no limit words)."""
    for row in LIMIT_PATTERNS:
        found = row.pattern.search(text)
        if found is None:
            continue
        groups = found.groupdict()
        resets_at = None
        if groups.get("epoch"):
            resets_at = _epoch(groups["epoch"])
        elif groups.get("clock"):
            resets_at = clock_parse(groups["clock"], now=now)
        return RunLimit(
            LimitVerdict.LIMITED,
            LimitSource.TEXT,
            resets_at=resets_at,
            window=row.window,
            detail=found.group(0)[:200],
        )
    return None


# --- structured sources -------------------------------------------------------------------------


def _utilization(info: Mapping[str, Any]) -> float | None:
    value = info.get("utilization")
    if value is None:
        windows = info.get("unifiedWindows")
        if isinstance(windows, Mapping):
            own = windows.get(info.get("rateLimitType"))
            if isinstance(own, Mapping):
                value = own.get("utilization")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _from_event(info: Mapping[str, Any], verdict: LimitVerdict) -> RunLimit:
    window = info.get("rateLimitType")
    return RunLimit(
        verdict,
        LimitSource.STREAM,
        resets_at=_epoch(info.get("resetsAt")),
        window=window if isinstance(window, str) else "",
        utilization=_utilization(info),
        http_status=429 if verdict == LimitVerdict.LIMITED else None,
    )


def _warning_window(info: Mapping[str, Any]) -> RunLimit | None:
    windows = info.get("unifiedWindows")
    if not isinstance(windows, Mapping):
        return None
    for name, window in windows.items():
        if isinstance(window, Mapping) and window.get("status") == "allowed_warning":
            return _from_event({**window, "rateLimitType": name}, LimitVerdict.WARNING)
    return None


_HEADER = "anthropic-ratelimit-unified-"
_HEADER_WINDOWS = {"5h": "five_hour", "7d": "seven_day"}


def _from_headers(
    headers: Mapping[str, str], verdict: LimitVerdict, status: int | None
) -> RunLimit:
    claim = headers.get(f"{_HEADER}representative-claim", "")
    return RunLimit(
        verdict,
        LimitSource.GATEWAY,
        resets_at=_epoch(headers.get(f"{_HEADER}reset")),
        window=claim[:32],
        utilization=_header_utilization(headers, claim),
        http_status=status,
    )


def _header_utilization(headers: Mapping[str, str], claim: str) -> float | None:
    """The utilization (0..1) the headers give for the claimed window; None when absent."""
    for short, window in _HEADER_WINDOWS.items():
        if window == claim:
            try:
                value = float(headers.get(f"{_HEADER}{short}-utilization", ""))
            except ValueError:
                return None
            return value if 0 <= value <= 1 else None
    return None


def run_limit_parse(
    *,
    rate_limit_events: Sequence[Mapping[str, Any]],
    result: Mapping[str, Any],
    assistant_errors: Sequence[str] = (),
    now: datetime,
) -> RunLimit:
    """What the agent says stopped its run (or that it came close), from the most structured
    part of its output there is; a claim, never a witness (see the module's docstring).

    rate_limit_events: the `rate_limit_info` objects of the stream, in order; result: the
    result object ({} if none); assistant_errors: the `error` values of assistant messages.
    """
    claim = _agent_claim(rate_limit_events, result, assistant_errors, now)
    return replace(claim, resets_at=limit_reset_capped(resets_at=claim.resets_at, now=now))


def _agent_claim(
    rate_limit_events: Sequence[Mapping[str, Any]],
    result: Mapping[str, Any],
    assistant_errors: Sequence[str],
    now: datetime,
) -> RunLimit:
    infos = [info for info in rate_limit_events if isinstance(info, Mapping)]
    # 1. the stream: a rejection anywhere in the run stopped it.
    for info in reversed(infos):
        if str(info.get("status", "")) == "rejected":
            return _from_event(info, LimitVerdict.LIMITED)
    api_status = result.get("api_error_status")
    failed = bool(result.get("is_error")) or not result
    text = str(result.get("result", "") or "")
    # Authentication failures: their own verdict, from the structured fields, then the text.
    rejected = _auth_failure(api_status, text, assistant_errors, failed=failed)
    if rejected is not None:
        return rejected
    # 2. the text. Anywhere in a failed run's text; in a "successful" one only when the whole
    # answer is the limit message (older CLIs reported a limit as a short success), since an
    # ordinary answer may talk about limits.
    limit_status = api_status == 429 or "rate_limit" in assistant_errors
    found = limit_text_parse(text, now=now)
    if found is not None and (failed or limit_status or _is_whole_answer(text, found)):
        return found
    if limit_status:
        return RunLimit(LimitVerdict.LIMITED, LimitSource.RESULT, http_status=429)
    return _close_to_a_limit(infos)


def gateway_limit_of(*, usage: GatewayUsage, now: datetime) -> RunLimit:
    """What the task's gateway itself saw of the credential: refused for good (a 401/403 after
    its forced refresh, or a 401 it could not renew, not followed by an accepted answer), a
    subscription limit (a 429 whose unified status said "rejected"), close to one, or clear
    (the last unified status said "allowed": verdict NONE from the gateway). NO_LIMIT when it
    saw none of that (no request, or an API key's answers without unified headers)."""
    headers = {k.lower(): v for k, v in usage.ratelimit_headers.items()}
    if usage.auth_refused:
        status = 403 if usage.status_403 and not usage.status_401 else 401
        how = (
            "after the gateway renewed the token"
            if usage.auth_refused_after_refresh
            else "and the token could not be renewed"
        )
        return RunLimit(
            LimitVerdict.AUTH_FAILED,
            LimitSource.GATEWAY,
            http_status=status,
            detail=f"the API answered {status} {how}",
        )
    if usage.rate_limit_rejected:
        return RunLimit(
            LimitVerdict.LIMITED,
            LimitSource.GATEWAY,
            resets_at=limit_reset_capped(resets_at=usage.rate_limit_rejected_reset, now=now),
            window=usage.rate_limit_rejected_claim[:32],
            utilization=_header_utilization(headers, usage.rate_limit_rejected_claim),
            http_status=429,
        )
    if usage.rate_limit_status == "allowed_warning":
        seen = _from_headers(headers, LimitVerdict.WARNING, None)
        return replace(seen, resets_at=limit_reset_capped(resets_at=seen.resets_at, now=now))
    if usage.rate_limit_status == "allowed":
        return RunLimit(LimitVerdict.NONE, LimitSource.GATEWAY)
    return NO_LIMIT


def task_limit_choose(*, claim: RunLimit, seen: RunLimit) -> RunLimit:
    """What a task comes to: what the gateway saw when it saw a limit or a refusal (its reset
    time, its window), else the agent's claim (for this task only)."""
    if seen.limited or seen.auth_failed:
        return seen
    if claim.limited or claim.auth_failed:
        return claim
    return seen if seen.verdict == LimitVerdict.WARNING else claim


def _auth_failure(
    api_status: object, text: str, assistant_errors: Sequence[str], *, failed: bool
) -> RunLimit | None:
    """The credential was rejected: by the result's status, an assistant error, or (in a failed
    run) the known wordings."""
    if api_status in (401, 403) or "authentication_failed" in assistant_errors:
        return RunLimit(
            LimitVerdict.AUTH_FAILED,
            LimitSource.RESULT,
            http_status=api_status if isinstance(api_status, int) else None,
            detail=_auth_detail(text),
        )
    if failed and any(p.search(text) for p in AUTH_FAILURE_PATTERNS):
        return RunLimit(LimitVerdict.AUTH_FAILED, LimitSource.TEXT, detail=_auth_detail(text))
    return None


def _close_to_a_limit(infos: list[Mapping[str, Any]]) -> RunLimit:
    """The latest warning the stream gave; the CLI may say it only per window (status
    "allowed", a window "allowed_warning"). NO_LIMIT when none."""
    for info in reversed(infos):
        if str(info.get("status", "")) == "allowed_warning":
            return _from_event(info, LimitVerdict.WARNING)
        window = _warning_window(info)
        if window is not None:
            return window
    return NO_LIMIT


def _is_whole_answer(text: str, found: RunLimit) -> bool:
    stripped = text.strip()
    return len(stripped) <= _WHOLE_ANSWER_MAX and stripped.startswith(found.detail[:12])


def _auth_detail(text: str) -> str:
    for pattern in AUTH_FAILURE_PATTERNS[:4]:
        found = pattern.search(text)
        if found:
            return found.group(0)
    return "the credential was rejected"
