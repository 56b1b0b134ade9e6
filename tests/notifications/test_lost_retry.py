"""A notification whose retry job is lost is still sent: the queue's sweep, run by
`manage.py run_worker` alone (no cron), puts it back when it is due."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django_tasks_db.models import DBTaskResult

from notifications.background import send_notification
from notifications.models import Delivery, DeliveryStatus
from notifications.services import settings_get
from tasks.models import CodingTask, TaskStatus
from tasks.signals import task_finished
from tests.tasks.conftest import db_env_for_subprocess, wait_for, worker_stop

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.deploy  # fresh app processes
@pytest.mark.django_db(transaction=True)
def test_a_failed_delivery_whose_retry_job_was_lost_is_sent_by_run_workers_sweep(
    settings, webhook, listener
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 1
    chosen = settings_get(user=listener)
    chosen.email_enabled = False
    chosen.save()
    webhook.next_statuses = [500]
    task = CodingTask.objects.create(
        owner=listener, repo_url="https://github.com/example/repo.git", prompt="p"
    )
    CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED)
    task_finished.send_robust(sender=CodingTask, task_id=task.pk, event="succeeded", wait=0)
    delivery = Delivery.objects.get()
    send_notification.call(delivery.pk)  # the first try, as a worker runs it: HTTP 500
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.next_attempt_at is not None
    jobs = DBTaskResult.objects.filter(task_path="notifications.background.send_notification")
    assert jobs.filter(run_after=delivery.next_attempt_at).exists()  # the retry, scheduled
    jobs.delete()  # and lost

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--processes", "1", "--no-recover"],
        cwd=ROOT,
        env={
            **os.environ,
            **db_env_for_subprocess(),
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "TEST_REAL_TASKS": "1",
            "TASKS_ENGINE": "database",
            "PYTHONPATH": str(ROOT),
            "AGENT_RECOVERY_SWEEP_SECONDS": "1",
            "AGENT_EGRESS_TEST_ALLOW_LOOPBACK": f"127.0.0.1:{webhook.port}",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENT).exists(),
            timeout=60,
        )
    finally:
        output = worker_stop(worker)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT, (delivery.last_error, output[-3000:])
    assert delivery.attempts == 2
    assert len(webhook.bodies) == 1
    assert webhook.bodies[0]["task_id"] == task.pk
