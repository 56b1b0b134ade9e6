"""Refreshing many credentials at once (the refresh_tokens command and the admin action), single
flight with everyone else, on one event loop (services/refresh_batch.py); and how a run is shown:
the progress bar and the JSON summary.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from common.humanize import expiry_words
from oauth_tokens.models import CredentialKind, CredentialStatus, OAuthCredential
from oauth_tokens.selectors import RefreshTarget

from .refresh import refresh_buffer
from .refresh_batch import BatchTarget, credentials_refresh_batch
from .refresh_batch_db import DELETED, MARKED_INVALID, NOT_REFRESHABLE, outcome_skipped
from .refresh_outcome import CredentialRefreshOutcome, RefreshManySummary, RefreshOutcomeKind

logger = logging.getLogger("oauth_tokens.services")

__all__ = [
    "CredentialRefreshOutcome",
    "RefreshManySummary",
    "RefreshOutcomeKind",
    "RefreshProgress",
    "credentials_refresh_many",
    "refresh_dry_run_json",
    "refresh_summary_json",
    "refresh_target_words",
]


def credentials_refresh_many(
    *,
    credential_ids: Sequence[int],
    force: bool = False,
    within_seconds: int | None = None,
    concurrency: int = 8,
    stop: threading.Event | None = None,
    on_outcome: Callable[[CredentialRefreshOutcome], None] | None = None,
) -> RefreshManySummary:
    """Refresh many credentials, `concurrency` token requests at a time, in the given order,
    single flight with everyone else: a task (or another host running this) refreshing the same
    credential at the same moment never causes a second token request.

    force: refresh even if not due. within_seconds: the window that makes one due (default the
    buffer). Setting `stop` (or Ctrl-C) takes no new work; refreshes in flight run to the end
    and are saved so no rotated token is lost, and the summary says interrupted.
    on_outcome is called in the calling thread, once per credential, as results come in.
    Runs its own event loop: call it from synchronous code (a thread with no running loop).
    """
    ids = list(credential_ids)
    summary = RefreshManySummary(selected=len(ids))
    stop = stop if stop is not None else threading.Event()
    buffer = refresh_buffer() if within_seconds is None else timedelta(seconds=within_seconds)
    started = time.monotonic()

    def take(outcome: CredentialRefreshOutcome) -> None:
        summary.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    targets = []
    rows = _rows_read(ids)
    now = timezone.now()
    for credential_id in ids:
        info = rows.get(credential_id)
        target = BatchTarget(credential_id, (info and info["owner__username"]) or "")
        skip = _skip_reason(info, force=force, buffer=buffer, now=now)
        if skip:
            take(outcome_skipped(target, skip))
        else:
            targets.append(target)
    if targets and not stop.is_set():
        summary.slowest_save_seconds, summary.saves_over_bound = credentials_refresh_batch(
            targets=targets,
            force=force,
            buffer=buffer,
            concurrency=max(1, min(concurrency, len(targets))),
            stop=stop,
            on_outcome=take,
        )
    summary.interrupted = stop.is_set()
    summary.seconds = time.monotonic() - started
    logger.info(
        "Refreshed %d, skipped %d, failed %d of %d OAuth credentials in %.1f s%s; "
        "slowest save of a refresh %.0f ms",
        summary.refreshed,
        summary.skipped,
        summary.failed,
        summary.selected,
        summary.seconds,
        " (interrupted)" if summary.interrupted else "",
        summary.slowest_save_seconds * 1000,
    )
    return summary


def _rows_read(ids: list[int]) -> dict[int, Any]:
    """What deciding to skip needs of each credential, by id, in bounded IN lists."""
    rows: dict[int, Any] = {}
    for start in range(0, len(ids), 5000):
        for row in OAuthCredential.objects.filter(pk__in=ids[start : start + 5000]).values(
            "pk", "owner__username", "expires_at", "status", "kind"
        ):
            rows[row["pk"]] = row
    return rows


def _skip_reason(
    info: dict[str, Any] | None, *, force: bool, buffer: timedelta, now: datetime
) -> str:
    """Why a selected credential needs no token request ("" when it does)."""
    if info is None:
        return DELETED
    if info["kind"] != CredentialKind.REFRESHABLE:
        return NOT_REFRESHABLE
    if info["status"] == CredentialStatus.INVALID:
        return MARKED_INVALID
    if not force and (info["expires_at"] is None or info["expires_at"] - now > buffer):
        # Refreshed elsewhere since the caller selected it (the claim re-checks it too).
        return "not due any more (refreshed elsewhere)"
    return ""


# --- showing a run: progress bar and JSON (the refresh_tokens command) --------------------------

_PROGRESS_EVERY_SECONDS = 0.1
_BAR_WIDTH = 30


class RefreshProgress:
    """A one-line progress bar of a run, redrawn in place at most ten times a second.

    `out` is a management command's OutputWrapper (write with `ending`, flush)."""

    def __init__(self, out: Any, *, total: int) -> None:
        self.out = out
        self.total = total
        self.counts = {
            RefreshOutcomeKind.REFRESHED: 0,
            RefreshOutcomeKind.SKIPPED: 0,
            RefreshOutcomeKind.FAILED: 0,
        }
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.width = 0

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: CredentialRefreshOutcome) -> None:
        self.counts[outcome.outcome] += 1
        now = time.monotonic()
        if now - self.drawn_at >= _PROGRESS_EVERY_SECONDS or self.done == self.total:
            self.drawn_at = now
            self.draw()

    def draw(self) -> None:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * _BAR_WIDTH)
        line = (
            f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {self.done}/{self.total} "
            f"{share:4.0%}  refreshed {self.counts[RefreshOutcomeKind.REFRESHED]}, "
            f"skipped {self.counts[RefreshOutcomeKind.SKIPPED]}, "
            f"failed {self.counts[RefreshOutcomeKind.FAILED]}  "
            f"{time.monotonic() - self.started:.1f} s"
        )
        self.width = max(self.width, len(line))
        self.out.write("\r" + line.ljust(self.width), ending="")
        self.out.flush()

    def clear(self) -> None:
        if self.width:
            self.out.write("\r" + " " * self.width + "\r", ending="")
            self.out.flush()

    def finish(self) -> None:
        self.draw()
        self.out.write("")  # end the bar's line


def refresh_target_words(*, target: RefreshTarget, now: datetime) -> str:
    """ "expires in 3 minutes (2026-01-01T10:00:00+00:00)", "expired ... ago (...)" or never."""
    return expiry_words(
        expires_at=target.expires_at,
        now=now,
        never="never expires",
        future="expires in",
        exact=lambda moment: moment.isoformat(timespec="seconds"),
    )


def _context_json(*, mode: str, window: int | None) -> dict[str, Any]:
    return {"mode": mode, "within_seconds": window}


def refresh_dry_run_json(
    *, targets: Sequence[RefreshTarget], mode: str, window: int | None
) -> dict[str, Any]:
    """What a dry run would refresh, as the command's --json prints it."""
    return {
        **_context_json(mode=mode, window=window),
        "dry_run": True,
        "selected": len(targets),
        "results": [
            {
                "credential_id": target.credential_id,
                "owner": target.owner or None,
                "outcome": "would_refresh",
                "expires_at": target.expires_at.isoformat() if target.expires_at else None,
            }
            for target in targets
        ],
    }


def refresh_summary_json(
    *, summary: RefreshManySummary, mode: str, window: int | None, exit_code: int
) -> dict[str, Any]:
    """A finished run, as the command's --json prints it."""
    return {
        **_context_json(mode=mode, window=window),
        "dry_run": False,
        "selected": summary.selected,
        "refreshed": summary.refreshed,
        "skipped": summary.skipped,
        "failed": summary.failed,
        # Failed because the token endpoint's edge refused this client: CLAUDE_OAUTH_USER_AGENT.
        "edge_blocked": summary.edge_blocked,
        "not_attempted": summary.not_attempted,
        "interrupted": summary.interrupted,
        "seconds": round(summary.seconds, 3),
        "slowest_save_seconds": round(summary.slowest_save_seconds, 3),
        "saves_over_bound": summary.saves_over_bound,
        "exit_code": exit_code,
        "results": [
            {
                "credential_id": outcome.credential_id,
                "owner": outcome.owner or None,
                "outcome": outcome.outcome,
                "reason": outcome.reason,
                "permanent": outcome.permanent,
                "error_code": outcome.code or None,
            }
            for outcome in summary.outcomes
        ],
    }
