"""One requeue mechanism: requeue_at, waiting_since and wait_reason replace resume_after and
waiting_since (usage limits) and engine_retry_at and engine_wait_since (the container engine).

Waiting tasks keep waiting for their reset, tasks waiting for the engine keep waiting for it,
and a task queued at the upgrade is due at once (the sweep puts it back should its job be lost)."""

from django.db import migrations, models
from django.db.models import F
from django.utils import timezone


def forwards(apps, schema_editor):
    tasks = apps.get_model("tasks", "CodingTask").objects
    tasks.filter(status="waiting").update(requeue_at=F("resume_after"), wait_reason="usage_limit")
    engine = tasks.filter(status="queued").exclude(engine_wait_since=None)
    engine.update(
        requeue_at=F("engine_retry_at"),
        waiting_since=F("engine_wait_since"),
        wait_reason="engine",
    )
    tasks.filter(status="queued", engine_wait_since=None).update(requeue_at=timezone.now())


def backwards(apps, schema_editor):
    tasks = apps.get_model("tasks", "CodingTask").objects
    tasks.filter(wait_reason="usage_limit").update(resume_after=F("requeue_at"))
    tasks.filter(wait_reason="engine").update(
        engine_retry_at=F("requeue_at"),
        engine_wait_since=F("waiting_since"),
        waiting_since=None,
    )


class Migration(migrations.Migration):
    dependencies = [("tasks", "0006_queued_jobs_to_tasks_queue")]

    operations = [
        migrations.AddField(
            model_name="codingtask",
            name="requeue_at",
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name="codingtask",
            name="wait_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Nothing"),
                    ("usage_limit", "A usage limit to reset"),
                    ("engine", "The container engine"),
                ],
                default="",
                max_length=16,
            ),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="codingtask", name="resume_after"),
        migrations.RemoveField(model_name="codingtask", name="engine_wait_since"),
        migrations.RemoveField(model_name="codingtask", name="engine_retry_at"),
    ]
