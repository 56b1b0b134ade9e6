from typing import Any

from django.core.management.base import BaseCommand

from notifications.periodic import periodic_run


class Command(BaseCommand):
    help = (
        "The periodic run of notifications and usage limits, for cron (refresh_tokens runs it "
        "too): queue waiting tasks whose usage limit has reset, warn about tokens that age out "
        "or sit idle, and send notifications that are due (first tries and retries)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = periodic_run()
        self.stdout.write(
            f"{report.tasks_resumed} waiting task(s) queued again, {report.aging_events} "
            f"token warning(s) recorded, {report.deliveries_sent} notification(s) sent."
        )
