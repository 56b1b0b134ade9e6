"""Jobs waiting in the database task queue name their entry point by its path: the entry points
live in tasks.queue now, and a waiting task's resume is run_coding_task itself."""

from django.db import migrations

RENAMED = {
    "tasks.background.run_coding_task": "tasks.queue.run_coding_task",
    "tasks.background.resume_waiting_task": "tasks.queue.run_coding_task",
    "tasks.background.open_task_pull_request": "tasks.queue.open_task_pull_request",
}


def forwards(apps, schema_editor):
    jobs = apps.get_model("django_tasks_database", "DBTaskResult").objects.filter(status="READY")
    for old, new in RENAMED.items():
        jobs.filter(task_path=old).update(task_path=new)


def backwards(apps, schema_editor):
    jobs = apps.get_model("django_tasks_database", "DBTaskResult").objects.filter(status="READY")
    for old in ("tasks.background.run_coding_task", "tasks.background.open_task_pull_request"):
        jobs.filter(task_path=RENAMED[old]).update(task_path=old)


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0005_pull_requests_and_continuations"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
