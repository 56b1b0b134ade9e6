"""CodingTask keeps what a task is; beside it, one row each: TaskUsage (what a run used), TaskLimit
(what usage limits did to it), TaskPullRequest (its pull request) and TaskRuntime (what another
worker needs to take it over). Every row's values move over, and back on reversal; the four
status-like columns get their choices."""

import django.db.models.deletion
from django.db import migrations, models

# New model -> {its column: the task's column it comes from}.
MOVED = {
    "TaskUsage": {
        "requests": "api_requests",
        "input_tokens": "input_tokens",
        "output_tokens": "output_tokens",
        "cache_creation_input_tokens": "cache_creation_input_tokens",
        "cache_read_input_tokens": "cache_read_input_tokens",
        "status_429": "api_status_429",
        "status_529": "api_status_529",
        "ratelimit_headers": "ratelimit_headers",
        "cost_usd": "cost_usd",
        "num_turns": "num_turns",
        "duration_ms": "duration_ms",
    },
    "TaskLimit": {
        "verdict": "limit_verdict",
        "window": "limit_window",
        "detail": "limit_detail",
        "limited_until": "limited_until",
        "waits": "limit_waits",
        "waited_seconds": "limit_waited_seconds",
        "auth_rejected": "auth_rejected",
    },
    "TaskPullRequest": {
        "base_branch": "base_branch",
        "start_commit": "start_commit",
        "bundle": "result_bundle",
        "state": "pr_state",
        "branch": "pr_branch",
        "commit": "pr_commit",
        "number": "pr_number",
        "url": "pr_url",
        "error": "pr_error",
    },
    "TaskRuntime": {
        "container_id": "container_id",
        "gateway_dir": "gateway_dir",
        "gateway_placeholder": "gateway_placeholder",
        "credential_id": "auth_credential_id",
    },
}
BATCH = 500


def forwards(apps, schema_editor):
    tasks = apps.get_model("tasks", "CodingTask").objects
    for name, columns in MOVED.items():
        model = apps.get_model("tasks", name)
        rows = tasks.values("pk", *columns.values()).order_by("pk").iterator(chunk_size=BATCH)
        batch = []
        for row in rows:
            values = {new: row[old] for new, old in columns.items()}
            batch.append(model(task_id=row["pk"], **values))
            if len(batch) == BATCH:
                model.objects.bulk_create(batch)
                batch = []
        model.objects.bulk_create(batch)


def backwards(apps, schema_editor):
    tasks = apps.get_model("tasks", "CodingTask").objects
    for name, columns in MOVED.items():
        model = apps.get_model("tasks", name)
        for row in model.objects.values("task_id", *columns).iterator(chunk_size=BATCH):
            tasks.filter(pk=row["task_id"]).update(
                **{old: row[new] for new, old in columns.items()}
            )


class Migration(migrations.Migration):
    dependencies = [("tasks", "0007_one_requeue_column_pair")]

    operations = [
        migrations.CreateModel(
            name="TaskLimit",
            fields=[
                (
                    "task",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="limit",
                        serialize=False,
                        to="tasks.codingtask",
                    ),
                ),
                (
                    "verdict",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("", "None"),
                            ("warning", "Close to a limit"),
                            ("limited", "Stopped by a usage limit"),
                            ("auth_failed", "Credential rejected (401/403)"),
                        ],
                        default="",
                        max_length=16,
                    ),
                ),
                ("window", models.CharField(blank=True, default="", max_length=32)),
                ("detail", models.CharField(blank=True, default="", max_length=255)),
                ("limited_until", models.DateTimeField(blank=True, null=True)),
                ("waits", models.PositiveIntegerField(default=0)),
                ("waited_seconds", models.PositiveIntegerField(default=0)),
                ("auth_rejected", models.BooleanField(default=False)),
            ],
        ),
        migrations.CreateModel(
            name="TaskPullRequest",
            fields=[
                (
                    "task",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="pull_request",
                        serialize=False,
                        to="tasks.codingtask",
                    ),
                ),
                ("base_branch", models.CharField(blank=True, default="", max_length=255)),
                ("start_commit", models.CharField(blank=True, default="", max_length=64)),
                ("bundle", models.BinaryField(blank=True, null=True)),
                (
                    "state",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("", "None"),
                            ("pending", "Being created"),
                            ("opened", "Opened"),
                            ("pushed", "Pushed to the pull request's branch"),
                            ("failed", "Refused"),
                        ],
                        default="",
                        max_length=16,
                    ),
                ),
                ("branch", models.CharField(blank=True, default="", max_length=255)),
                ("commit", models.CharField(blank=True, default="", max_length=64)),
                ("number", models.IntegerField(blank=True, null=True)),
                ("url", models.CharField(blank=True, default="", max_length=2000)),
                ("error", models.TextField(blank=True, default="")),
            ],
        ),
        migrations.CreateModel(
            name="TaskRuntime",
            fields=[
                (
                    "task",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="runtime",
                        serialize=False,
                        to="tasks.codingtask",
                    ),
                ),
                ("container_id", models.CharField(blank=True, default="", max_length=128)),
                ("gateway_dir", models.CharField(blank=True, default="", max_length=512)),
                ("gateway_placeholder", models.CharField(blank=True, default="", max_length=128)),
                ("credential_id", models.IntegerField(blank=True, null=True)),
            ],
        ),
        migrations.CreateModel(
            name="TaskUsage",
            fields=[
                (
                    "task",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="usage",
                        serialize=False,
                        to="tasks.codingtask",
                    ),
                ),
                ("requests", models.IntegerField(blank=True, null=True)),
                ("input_tokens", models.BigIntegerField(blank=True, null=True)),
                ("output_tokens", models.BigIntegerField(blank=True, null=True)),
                ("cache_creation_input_tokens", models.BigIntegerField(blank=True, null=True)),
                ("cache_read_input_tokens", models.BigIntegerField(blank=True, null=True)),
                ("status_429", models.IntegerField(blank=True, null=True)),
                ("status_529", models.IntegerField(blank=True, null=True)),
                ("ratelimit_headers", models.JSONField(blank=True, default=dict)),
                (
                    "cost_usd",
                    models.DecimalField(blank=True, decimal_places=6, max_digits=12, null=True),
                ),
                ("num_turns", models.IntegerField(blank=True, null=True)),
                ("duration_ms", models.PositiveIntegerField(blank=True, null=True)),
            ],
            options={
                "verbose_name_plural": "task usage",
            },
        ),
        migrations.RunPython(forwards, backwards),
        *(
            migrations.RemoveField(model_name="codingtask", name=old)
            for columns in MOVED.values()
            for old in columns.values()
        ),
        migrations.AlterField(
            model_name="codingtask",
            name="auth_method",
            field=models.CharField(
                blank=True,
                choices=[("oauth", "Claude OAuth"), ("api_key", "API key")],
                default="",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="codingtask",
            name="auth_source",
            field=models.CharField(
                blank=True,
                choices=[("user", "user"), ("environment", "environment")],
                default="",
                max_length=16,
            ),
        ),
    ]
