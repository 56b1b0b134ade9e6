"""Known secret values are redacted only from REDACT_MIN_CHARS characters up: a saved
environment value such as "1" or "test" must not mangle ordinary log text."""

import pytest

from common.logging import REDACT_MIN_CHARS, secrets_redact
from tasks.models import CodingTask
from tasks.run.log import TaskLog

LINE = "ran 12 tests in 1.1s, exit code 1"
LONG_SECRET = "a-long-saved-secret-value-42"


def test_short_values_are_left_alone_and_long_ones_redacted():
    text = f"{LINE}; token {LONG_SECRET}"
    redacted = secrets_redact(text, values=["test", "1", LONG_SECRET])
    assert redacted == f"{LINE}; token [redacted]"


def test_the_minimum_length_is_the_boundary():
    just_long_enough = "x" * REDACT_MIN_CHARS
    too_short = "y" * (REDACT_MIN_CHARS - 1)
    assert secrets_redact(f"<{just_long_enough}>", values=[just_long_enough]) == "<[redacted]>"
    assert secrets_redact(f"<{too_short}>", values=[too_short]) == f"<{too_short}>"


@pytest.mark.django_db
def test_the_task_log_uses_the_same_rule(user):
    task = CodingTask.objects.create(owner=user, repo_url="https://x.org/a/b.git", prompt="p")
    log = TaskLog(task_id=task.pk, secrets=["test", "1", LONG_SECRET], max_bytes=10_000)
    log.feed(f"{LINE}\nsecret {LONG_SECRET} here\n".encode())
    log.finish()
    stored = CodingTask.objects.get(pk=task.pk).log
    assert stored == f"{LINE}\nsecret [redacted] here\n"
    assert log.redact(f"exit code 1 ({LONG_SECRET})") == "exit code 1 ([redacted])"
