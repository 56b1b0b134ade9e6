"""Times and expiries in words, for pages, the admin, commands and logs (one home for them)."""

from collections.abc import Callable
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.timesince import timesince, timeuntil


def utc_text(moment: datetime) -> str:
    """ "2026-01-01 10:00 UTC"."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def expiry_words(
    *,
    expires_at: datetime | None,
    now: datetime,
    never: str = "never (no expiry given)",
    future: str = "in",
    exact: Callable[[datetime], str] | None = utc_text,
) -> str:
    """ "in 7 hours, 59 minutes (2026-01-01 10:00 UTC)", "expired 2 days ago (...)" or `never`.

    future: the words before the time left ("in", "expires in"); exact: how the moment itself
    is written in brackets after the words (None: not at all).
    """
    if expires_at is None:
        return never
    if expires_at > now:
        words = f"{future} {timeuntil(expires_at, now)}"
    else:
        words = f"expired {timesince(expires_at, now)} ago"
    return f"{words} ({exact(expires_at)})" if exact is not None else words


def time_ago_words(*, moment: datetime | None, now: datetime, never: str = "never") -> str:
    """ "just now (...)" or "3 hours ago (2026-01-01 10:00 UTC)"; `never` when there is none."""
    if moment is None:
        return never
    if (now - moment).total_seconds() < 60:
        return f"just now ({utc_text(moment)})"
    return f"{timesince(moment, now)} ago ({utc_text(moment)})"


def seconds_left_words(*, expires_at: datetime | None, now: datetime) -> str:
    """For logs, exact to the second: "3599 s left", "expired 12 s ago" or "never expires"."""
    if expires_at is None:
        return "never expires"
    seconds = int((expires_at - now).total_seconds())
    return f"{seconds} s left" if seconds >= 0 else f"expired {-seconds} s ago"


# The CLI's names of usage-limit windows
# (docs/claude-cli-contract.md#usage-limits-and-auth-failures).
LIMIT_WINDOW_WORDS = {
    "five_hour": "five-hour",
    "seven_day": "weekly",
    "seven_day_opus": "weekly (Opus)",
    "seven_day_sonnet": "weekly (Sonnet)",
    "monthly": "monthly",
}


def limit_window_words(window: str) -> str:
    """ "five-hour", "weekly", ...; "usage" when the window is not known."""
    return LIMIT_WINDOW_WORDS.get(window, window.replace("_", " ")) if window else "usage"


def limited_until_words(*, until: datetime | None, now: datetime) -> str:
    """ "limited until 14:00 (in 2 h 10 min)" in the site's time zone."""
    if until is None:
        return "limited (no reset time given)"
    left = max(0, int((until - now).total_seconds()))
    hours, minutes = divmod((left + 59) // 60, 60)
    span = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    clock = timezone.localtime(until).strftime("%H:%M")
    return f"limited until {clock} (in {span})" if left else f"limited until {clock} (now)"


def duration_words(seconds: float | None) -> str:
    """A span in the largest units that matter: "0.4 s", "23 s", "11 min 12 s", "2 h 5 min",
    "3 d 4 h"; "" for None or a negative span (nothing sensible to say)."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f} s"
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"
