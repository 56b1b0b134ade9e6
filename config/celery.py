"""The Celery app used when TASKS_ENGINE=celery (django.tasks through django-tasks-celery)."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("claude_runner")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Keep Django's LOGGING (with its secret-redacting filter) instead of Celery's own handlers.
app.conf.worker_hijack_root_logger = False
# The Django tasks are registered with Celery when their modules are imported.
app.autodiscover_tasks(["tasks"], related_name="background")


@worker_ready.connect
def _recover_on_start(**_: object) -> None:
    # Settle tasks and containers a dead worker left on this host before taking new work.
    from tasks.services import tasks_recover

    tasks_recover()
