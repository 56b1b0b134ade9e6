"""Refreshing many credentials at once (the refresh_tokens command and the admin action), each
through the single-flight refresh; and how a run is shown: the progress bar and the JSON summary.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from common.humanize import expiry_words
from oauth_tokens.models import CredentialKind, CredentialStatus, OAuthCredential
from oauth_tokens.selectors import RefreshTarget
from oauth_tokens.token_client import redact

from .refresh import refresh_buffer, refresh_single_flight

logger = logging.getLogger("oauth_tokens.services")


class RefreshOutcomeKind:
    REFRESHED = "refreshed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class CredentialRefreshOutcome:
    credential_id: int
    owner: str  # username, or "" for a global credential
    outcome: str  # RefreshOutcomeKind
    reason: str = ""  # why skipped or failed; never holds a token
    permanent: bool = False  # failed for good: the user must save new tokens

    @property
    def label(self) -> str:
        return f"{self.owner or 'global'} (credential {self.credential_id})"


@dataclass
class RefreshManySummary:
    selected: int
    outcomes: list[CredentialRefreshOutcome] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    def of(self, kind: str) -> list[CredentialRefreshOutcome]:
        return [outcome for outcome in self.outcomes if outcome.outcome == kind]

    @property
    def refreshed(self) -> int:
        return len(self.of(RefreshOutcomeKind.REFRESHED))

    @property
    def skipped(self) -> int:
        return len(self.of(RefreshOutcomeKind.SKIPPED))

    @property
    def failed(self) -> int:
        return len(self.of(RefreshOutcomeKind.FAILED))

    @property
    def not_attempted(self) -> int:
        return self.selected - len(self.outcomes)


def _refresh_one(
    credential_id: int, row: Mapping[str, Any] | None, *, force: bool, within_seconds: int | None
) -> CredentialRefreshOutcome:
    """One credential through the single-flight refresh, classified for a summary.

    `row` was read for the whole batch in one query (owner, expiry, status, kind).
    """
    if row is None:
        return CredentialRefreshOutcome(
            credential_id, "", RefreshOutcomeKind.SKIPPED, "deleted meanwhile"
        )
    owner = row["owner__username"] or ""

    def skipped(reason: str) -> CredentialRefreshOutcome:
        return CredentialRefreshOutcome(credential_id, owner, RefreshOutcomeKind.SKIPPED, reason)

    if row["kind"] != CredentialKind.REFRESHABLE:
        return skipped("not refreshable (a long-lived setup token)")
    if row["status"] == CredentialStatus.INVALID:
        return skipped("marked invalid; the user must save new tokens")
    buffer = refresh_buffer() if within_seconds is None else timedelta(seconds=within_seconds)
    expires_at = row["expires_at"]
    if not force and (expires_at is None or expires_at - timezone.now() > buffer):
        # Checked before the service so a credential refreshed elsewhere since the selection
        # is not counted as used (the service's not-due path stamps last_used_at).
        return skipped("not due any more (refreshed elsewhere)")
    try:
        # Straight to the locked re-read: the batch read above stands in for the plain one.
        result = refresh_single_flight(credential_id, force=force, buffer=buffer)
    except OAuthCredential.DoesNotExist:
        return skipped("deleted meanwhile")
    except Exception as exc:  # one broken credential must not stop the others
        logger.exception("Refreshing OAuth credential %s failed unexpectedly", credential_id)
        return CredentialRefreshOutcome(
            credential_id, owner, RefreshOutcomeKind.FAILED, f"unexpected {type(exc).__name__}"
        )
    if result.ok and result.refreshed:
        return CredentialRefreshOutcome(credential_id, owner, RefreshOutcomeKind.REFRESHED)
    if result.ok and not result.stale:
        # Re-read under the lock: another process refreshed it between our read and our claim.
        return skipped("already fresh (refreshed elsewhere meanwhile)")
    reason = result.error or "refresh failed"
    if result.stale:
        reason += " (the current access token still works for now)"
    return CredentialRefreshOutcome(
        credential_id, owner, RefreshOutcomeKind.FAILED, redact(reason), result.permanent
    )


def credentials_refresh_many(
    *,
    credential_ids: Sequence[int],
    force: bool = False,
    within_seconds: int | None = None,
    concurrency: int = 8,
    stop: threading.Event | None = None,
    on_outcome: Callable[[CredentialRefreshOutcome], None] | None = None,
) -> RefreshManySummary:
    """Refresh many credentials, `concurrency` at a time, each through the single-flight
    credential_ensure_fresh, so a task (or another host running this) refreshing the same
    credential at the same moment never causes a second token request.

    force: refresh even if not due. within_seconds: the window that makes one due (default the
    buffer). Setting `stop` (or Ctrl-C in the calling thread) takes no new work; refreshes in
    flight run to the end so no rotated token is lost, and the summary says interrupted.
    on_outcome is called in the calling thread, once per credential, as results come in.
    """
    ids = list(credential_ids)
    summary = RefreshManySummary(selected=len(ids))
    rows: dict[int, Mapping[str, Any]] = {}
    for start in range(0, len(ids), 5000):  # bounded IN lists
        for row in OAuthCredential.objects.filter(pk__in=ids[start : start + 5000]).values(
            "pk", "owner__username", "expires_at", "status", "kind"
        ):
            rows[row["pk"]] = row
    stop = stop if stop is not None else threading.Event()
    started = time.monotonic()
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for credential_id in ids:
        work.put(credential_id)
    results: queue.SimpleQueue[CredentialRefreshOutcome] = queue.SimpleQueue()

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    credential_id = work.get_nowait()
                except queue.Empty:
                    return
                results.put(
                    _refresh_one(
                        credential_id,
                        rows.get(credential_id),
                        force=force,
                        within_seconds=within_seconds,
                    )
                )
        finally:
            connection.close()  # each thread has its own connection; don't leak it

    threads = [
        threading.Thread(target=worker, name=f"oauth-refresh-{i}", daemon=False)
        for i in range(max(1, min(concurrency, len(ids))))
    ]
    for thread in threads:
        thread.start()

    def take(outcome: CredentialRefreshOutcome) -> None:
        summary.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        while any(thread.is_alive() for thread in threads):
            try:
                take(results.get(timeout=0.1))
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                # Stop taking work but wait for the refreshes in flight: a request the token
                # endpoint answered must be saved, or the rotated refresh token is lost.
                stop.set()
    except BaseException:
        stop.set()  # on_outcome failed (say, a closed stdout): no new work, then give up
        raise
    finally:
        for thread in threads:
            thread.join()
    while True:
        try:
            take(results.get_nowait())
        except queue.Empty:
            break
    summary.interrupted = stop.is_set()
    summary.seconds = time.monotonic() - started
    logger.info(
        "Refreshed %d, skipped %d, failed %d of %d OAuth credentials in %.1f s%s",
        summary.refreshed,
        summary.skipped,
        summary.failed,
        summary.selected,
        summary.seconds,
        " (interrupted)" if summary.interrupted else "",
    )
    return summary


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
        "not_attempted": summary.not_attempted,
        "interrupted": summary.interrupted,
        "seconds": round(summary.seconds, 3),
        "exit_code": exit_code,
        "results": [
            {
                "credential_id": outcome.credential_id,
                "owner": outcome.owner or None,
                "outcome": outcome.outcome,
                "reason": outcome.reason,
                "permanent": outcome.permanent,
            }
            for outcome in summary.outcomes
        ],
    }
