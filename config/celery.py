"""The Celery app used when TASKS_ENGINE=celery (django.tasks through django-tasks-celery)."""

import logging
import os
import threading
import time

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

logger = logging.getLogger(__name__)

app = Celery("claude_runner")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Keep Django's LOGGING (with its secret-redacting filter) instead of Celery's own handlers.
app.conf.worker_hijack_root_logger = False
# The Django tasks are registered with Celery when their modules are imported.
app.autodiscover_tasks(["tasks"], related_name="queue")
app.autodiscover_tasks(["notifications"], related_name="background")


@worker_ready.connect
def _sweep_on_start(**_: object) -> None:
    # Settle tasks and containers a dead worker left on this host before taking new work, then
    # keep doing so: a pool process killed mid-task is replaced by Celery, but its task is
    # taken over (container followed to its end) only by this sweep, in the main process. The
    # queue's sweep runs here too, so a lost job is put back with no other process running.
    threading.Thread(target=_sweep, name="sweep", daemon=True).start()


def _sweep() -> None:
    # Django's apps are loaded only once the worker runs, not when Celery imports this module.
    from django.conf import settings
    from django.db import connection

    from tasks.queue import queue_sweep
    from tasks.recovery import tasks_recover
    from tasks.run.containers import ContainerError

    while True:
        try:
            tasks_recover()
        except ContainerError as exc:
            logger.warning("Recovery skipped: %s", exc)
        except Exception:
            logger.exception("Recovery failed")
        try:
            queue_sweep()
        except Exception:
            logger.exception("The queue's sweep failed")
        finally:
            connection.close()
        time.sleep(settings.AGENT_RECOVERY_SWEEP_SECONDS)
