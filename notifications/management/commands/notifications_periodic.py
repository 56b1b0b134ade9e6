from typing import Any

from django.core.management.base import BaseCommand

from notifications.periodic import periodic_run


class Command(BaseCommand):
    help = (
        "The periodic run of notifications, for cron (refresh_tokens runs it too): warn about "
        "tokens that age out or sit idle, and run the queue's sweep (which the task workers run "
        "by themselves as well): queue waiting tasks whose usage limit has reset and "
        "notifications that are due."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = periodic_run()
        self.stdout.write(
            f"{report.tasks_queued} waiting task(s) queued again, {report.aging_events} "
            f"token warning(s) recorded, {report.deliveries_queued} notification(s) queued."
        )
