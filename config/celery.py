"""The Celery app used when TASKS_ENGINE=celery (django.tasks through django-tasks-celery)."""

import logging
import os
import threading
import time

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

logger = logging.getLogger("tasks.recovery")

app = Celery("claude_runner")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Keep Django's LOGGING (with its secret-redacting filter) instead of Celery's own handlers.
app.conf.worker_hijack_root_logger = False
# The Django tasks are registered with Celery when their modules are imported.
app.autodiscover_tasks(["tasks"], related_name="background")


@worker_ready.connect
def _recover_on_start(**_: object) -> None:
    # Settle tasks and containers a dead worker left on this host before taking new work, then
    # keep doing so: a pool process killed mid-task is replaced by Celery, but its task is
    # taken over (container followed to its end) only by this sweep, in the main process.
    threading.Thread(target=_recovery_sweep, name="recovery-sweep", daemon=True).start()


def _recovery_sweep() -> None:
    from django.conf import settings
    from django.db import connection

    from tasks.recovery import tasks_recover
    from tasks.run.containers import ContainerError
    from tasks.waits.engine import tasks_requeue_due

    while True:
        try:
            tasks_recover()
            tasks_requeue_due()
        except ContainerError as exc:
            logger.warning("Recovery sweep skipped: %s", exc)
        except Exception:
            logger.exception("Recovery sweep failed")
        finally:
            connection.close()
        time.sleep(settings.AGENT_RECOVERY_SWEEP_SECONDS)
