import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from oauth_tokens.selectors import RefreshTarget, credentials_refresh_targets
from oauth_tokens.services import (
    CredentialRefreshOutcome,
    RefreshManySummary,
    RefreshOutcomeKind,
    RefreshProgress,
    credentials_refresh_many,
    refresh_dry_run_json,
    refresh_summary_json,
    refresh_target_words,
)
from oauth_tokens.signals import refresh_run_finished

EXIT_OK = 0
EXIT_FAILED = 1  # at least one credential failed to refresh
EXIT_USAGE = 2  # bad arguments, or --user names without a refreshable credential
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM: stopped early, the summary is partial

DEFAULT_CONCURRENCY = 8  # parallel token requests; the real endpoint rate-limits bursts
MAX_CONCURRENCY = 256


class Command(BaseCommand):
    help = (
        "Refresh Claude OAuth credentials (refreshable ones only; invalid ones need new tokens "
        "from their user). By default those that expire within --within seconds (default: the "
        "refresh buffer, CLAUDE_OAUTH_REFRESH_BUFFER). Every refresh goes through the "
        "single-flight service, which claims the credential in the database first, so running "
        "this from cron every few minutes on several hosts at once, or while tasks start, never "
        "sends a refresh token twice. Use a window of at least twice the cron interval. "
        f"Exit codes: {EXIT_OK} all good, {EXIT_FAILED} some failed, {EXIT_USAGE} usage error, "
        f"{EXIT_INTERRUPTED} interrupted (Ctrl-C: refreshes in flight are finished and saved "
        "first, then a partial summary is printed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--within",
            type=int,
            metavar="SECONDS",
            help="Refresh credentials expiring within this many seconds (or already expired). "
            "Default: the refresh buffer.",
        )
        which.add_argument(
            "--all",
            action="store_true",
            help="Refresh every refreshable credential now, due or not.",
        )
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="NAME",
            help="Only this user's credential (repeatable). Refreshed now unless --within "
            "is given.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be refreshed; send nothing, write nothing.",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=DEFAULT_CONCURRENCY,
            metavar="N",
            help=f"Token requests at once (default {DEFAULT_CONCURRENCY}); they share one "
            "event loop, so this costs no threads.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print only a machine-readable summary (JSON) on stdout.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        within: int | None = options["within"]
        user: list[str] = options["user"]
        concurrency: int = options["concurrency"]
        self._json: bool = options["json"]
        self._verbosity: int = options["verbosity"]
        if within is not None and within < 0:
            raise CommandError("--within must be 0 or more seconds", returncode=EXIT_USAGE)
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise CommandError(
                f"--concurrency must be between 1 and {MAX_CONCURRENCY}", returncode=EXIT_USAGE
            )
        # Force when asked for all, or for named users without a window.
        force = options["all"] or (bool(user) and within is None)
        window = None if force else (within if within is not None else _buffer_seconds())
        targets = credentials_refresh_targets(
            now=timezone.now(),
            within=None if window is None else timedelta(seconds=window),
            usernames=user,
        )
        missing = sorted(set(user) - {target.owner for target in targets})
        if missing and force:
            raise CommandError(
                "No refreshable credential for: " + ", ".join(missing), returncode=EXIT_USAGE
            )
        mode = "all" if options["all"] else "users" if user else "window"
        if options["dry_run"]:
            self._dry_run(targets, mode=mode, window=window)
            return
        summary = self._run(targets, force=force, window=window, concurrency=concurrency)
        # The same periodic run serves the listeners' periodic checks (notifications, waiting
        # tasks); a failing listener never changes this command's outcome.
        refresh_run_finished.send_robust(sender=self.__class__)
        code = (
            EXIT_INTERRUPTED if summary.interrupted else EXIT_FAILED if summary.failed else EXIT_OK
        )
        if self._json:
            payload = refresh_summary_json(
                summary=summary, mode=mode, window=window, exit_code=code
            )
            self.stdout.write(_dumps(payload))
        else:
            self._summary_print(summary, concurrency=concurrency, window=window, missing=missing)
        if code == EXIT_INTERRUPTED:
            raise CommandError(
                f"Interrupted: {summary.not_attempted} credential(s) not attempted",
                returncode=code,
            )
        if code == EXIT_FAILED:
            raise CommandError(f"{summary.failed} credential(s) failed to refresh", returncode=code)

    # -- dry run ------------------------------------------------------------------------------

    def _dry_run(self, targets: list[RefreshTarget], *, mode: str, window: int | None) -> None:
        if self._json:
            self.stdout.write(
                _dumps(refresh_dry_run_json(targets=targets, mode=mode, window=window))
            )
            return
        now = timezone.now()
        for target in targets:
            self.stdout.write(
                f"would refresh {target.owner or 'global'} (credential {target.credential_id}): "
                f"{refresh_target_words(target=target, now=now)}"
            )
        self.stdout.write(f"Dry run: {len(targets)} credential(s) would be refreshed.")

    # -- the run ------------------------------------------------------------------------------

    def _run(
        self, targets: list[RefreshTarget], *, force: bool, window: int | None, concurrency: int
    ) -> RefreshManySummary:
        stop = threading.Event()
        progress = RefreshProgress(self.stdout, total=len(targets)) if self._bar_wanted() else None

        def on_outcome(outcome: CredentialRefreshOutcome) -> None:
            if progress is not None:
                progress.add(outcome)
            elif not self._json and self._verbosity >= 1:
                self._outcome_print(outcome)

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if not stop.is_set() and not self._json:
                if progress is not None:
                    progress.clear()
                self.stderr.write(
                    "Stopping: no new refreshes; waiting for those in flight to be saved..."
                )
            stop.set()

        with _signals_handled(on_signal):
            summary = credentials_refresh_many(
                credential_ids=[target.credential_id for target in targets],
                force=force,
                within_seconds=window,
                concurrency=concurrency,
                stop=stop,
                on_outcome=on_outcome,
            )
        if progress is not None:
            progress.finish()
        return summary

    def _bar_wanted(self) -> bool:
        if self._json or self._verbosity < 1:
            return False
        return self.stdout.isatty()

    def _outcome_print(self, outcome: CredentialRefreshOutcome) -> None:
        line = f"{outcome.outcome} {outcome.label}"
        if outcome.reason:
            line += f": {outcome.reason}"
        if outcome.outcome == RefreshOutcomeKind.FAILED:
            self.stdout.write(self.style.ERROR(line))
        else:
            self.stdout.write(line)

    def _summary_print(
        self, summary: RefreshManySummary, *, concurrency: int, window: int | None, missing: list
    ) -> None:
        if missing:
            self.stdout.write("Nothing due for: " + ", ".join(missing) + f" (window {window} s).")
        if not summary.selected:
            what = "refreshable credentials" if window is None else f"due within {window} s"
            self.stdout.write(f"Nothing to refresh (no credentials {what}).")
            return
        if summary.failed or summary.skipped:
            for title, kind in (
                ("Failed", RefreshOutcomeKind.FAILED),
                ("Skipped", RefreshOutcomeKind.SKIPPED),
            ):
                outcomes = summary.of(kind)
                if outcomes and (kind == RefreshOutcomeKind.FAILED or self._verbosity >= 1):
                    self.stdout.write(f"{title}:")
                    for outcome in outcomes:
                        extra = " [permanent: the user must save new tokens]" * outcome.permanent
                        self.stdout.write(f"  {outcome.label}: {outcome.reason}{extra}")
        line = (
            f"Refreshed {summary.refreshed}, skipped {summary.skipped}, failed {summary.failed} "
            f"of {summary.selected} credential(s) in {summary.seconds:.1f} s "
            f"(concurrency {concurrency})."
        )
        if summary.interrupted:
            self.stdout.write(self.style.WARNING(line))
            self.stdout.write(
                self.style.WARNING(
                    f"Interrupted: {summary.not_attempted} credential(s) not attempted."
                )
            )
        elif summary.failed:
            self.stdout.write(self.style.ERROR(line))
        else:
            self.stdout.write(self.style.SUCCESS(line))


@contextmanager
def _signals_handled(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Ctrl-C and SIGTERM call `handler` inside the block, and are given back after it.

    Signals reach only the main thread; elsewhere (tests calling in a thread) they are left
    alone."""
    handlers: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            handlers[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)


def _buffer_seconds() -> int:
    return int(settings.CLAUDE_OAUTH_REFRESH_BUFFER)


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=None, sort_keys=False)
