import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from tasks.queue import queue_sweep
from tasks.recovery import tasks_recover
from tasks.run.containers import ContainerError

# A worker that dies within this many seconds of its start counts as dying again and again:
# each such restart waits twice as long as the last (1 s, 2 s, 4 s ...), at most RESTART_MAX.
QUICK_DEATH_SECONDS = 30
RESTART_MAX_SECONDS = 60
POLL_SECONDS = 0.5


@dataclass
class _Slot:
    """One of the worker processes this command keeps running."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Command(BaseCommand):
    help = (
        "Run AGENT_MAX_CONCURRENT_TASKS database task workers and keep them running: settle "
        "what a dead worker left behind (tasks_recover) on start, the moment a worker dies "
        "(restarting it at once, later if it keeps dying) and every AGENT_RECOVERY_SWEEP_SECONDS, "
        "when the queue's sweep also puts back what is due (waiting tasks whose reset came, "
        "retries, notifications). Ctrl-C stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--processes", type=int, default=settings.AGENT_MAX_CONCURRENT_TASKS)
        parser.add_argument("--no-recover", action="store_true")

    def handle(self, *args: Any, processes: int, no_recover: bool, **options: Any) -> None:
        if settings.TASKS_ENGINE != "database":
            raise CommandError(
                "TASKS_ENGINE is not 'database'. With Celery run: "
                "celery -A config worker --concurrency N (it recovers on start too)."
            )
        self.recover = not no_recover
        self.slots = [_Slot(index=i) for i in range(max(1, processes))]
        self.stopping: list[int] = []
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        self._sweep()
        next_sweep = time.monotonic() + settings.AGENT_RECOVERY_SWEEP_SECONDS
        while not self.stopping:
            now = time.monotonic()
            # A dead worker's task is taken over at once, its container followed to the end.
            if self._tend(now) or now >= next_sweep:
                self._sweep()
                next_sweep = now + settings.AGENT_RECOVERY_SWEEP_SECONDS
            time.sleep(POLL_SECONDS)
        for slot in self.slots:
            if slot.process is not None:
                slot.process.wait()

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping.append(signum)
        for slot in self.slots:
            if slot.alive:
                assert slot.process is not None
                slot.process.send_signal(signum)

    def _tend(self, now: float) -> bool:
        """Start the slots due to start; True if a worker has died since the last look."""
        died = False
        for slot in self.slots:
            if slot.process is None:
                if now >= slot.restart_at and not self.stopping:
                    self._start(slot)
            elif not slot.alive:
                died = True
                self._schedule_restart(slot, now)
        return died

    def _start(self, slot: _Slot) -> None:
        manage = Path(settings.BASE_DIR) / "manage.py"
        worker_id = f"{socket.gethostname()}-{slot.index}-{id(self)}"
        slot.process = subprocess.Popen(
            [sys.executable, str(manage), "db_worker", "--worker-id", worker_id]
        )
        slot.started = time.monotonic()
        if self.stopping:
            # The stop came while it was starting, before _stop could see it: it would never
            # hear of the stop, and this command would wait for it for ever.
            slot.process.send_signal(self.stopping[0])

    def _schedule_restart(self, slot: _Slot, now: float) -> None:
        assert slot.process is not None
        pid, code, lived = slot.process.pid, slot.process.returncode, now - slot.started
        slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
        delay = min(2 ** (slot.quick_deaths - 1), RESTART_MAX_SECONDS) if slot.quick_deaths else 0
        slot.process, slot.restart_at = None, now + delay
        self.stderr.write(
            f"Worker {slot.index} (pid {pid}) exited with {code} after "
            f"{lived:.0f} s; restarting it in {delay} s."
        )

    def _sweep(self) -> None:
        # A long-lived process: a connection the database dropped meanwhile is opened anew.
        close_old_connections()
        if self.recover:
            self._recover()
        try:
            queue_sweep()
        except Exception as exc:  # noqa: BLE001  the workers must outlive a failed sweep
            self.stderr.write(f"The queue's sweep failed (tried again next time): {exc!r}")

    def _recover(self) -> None:
        try:
            report = tasks_recover()
        except ContainerError as exc:
            self.stderr.write(f"Skipping recovery: {exc}")
            return
        if report.tasks_failed or report.tasks_followed or report.containers_removed:
            self.stdout.write(
                f"Recovery: {report.tasks_followed} task(s) of a dead worker taken over, "
                f"{report.tasks_failed} marked failed, {report.containers_removed} orphaned "
                "container(s) removed."
            )
