"""The Celery app used when TASKS_ENGINE=celery (django.tasks through django-tasks-celery)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("claude_runner")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The Django tasks are registered with Celery when their modules are imported.
app.autodiscover_tasks(["tasks"], related_name="background")
