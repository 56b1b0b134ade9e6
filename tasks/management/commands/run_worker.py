import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.containers import ContainerError
from tasks.services import tasks_recover


class Command(BaseCommand):
    help = (
        "Settle what a dead worker left behind on this host (tasks_recover), then run "
        "AGENT_MAX_CONCURRENT_TASKS database task workers. Ctrl-C stops them all."
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
        if not no_recover:
            try:
                report = tasks_recover()
                self.stdout.write(
                    f"Recovery: {report.tasks_failed} interrupted task(s) marked failed, "
                    f"{report.containers_removed} orphaned container(s) removed."
                )
            except ContainerError as exc:
                self.stderr.write(f"Skipping recovery: {exc}")
        manage = Path(settings.BASE_DIR) / "manage.py"
        host = socket.gethostname()
        children = [
            subprocess.Popen(
                [sys.executable, str(manage), "db_worker", "--worker-id", f"{host}-{i}-{id(self)}"]
            )
            for i in range(max(1, processes))
        ]

        def stop(signum: int, _frame: object) -> None:
            for child in children:
                child.send_signal(signum)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        codes = [child.wait() for child in children]
        if any(codes):
            raise CommandError(f"A worker exited with {codes}")
