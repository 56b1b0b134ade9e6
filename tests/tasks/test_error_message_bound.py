"""A task's error_message, which may quote the agent's answer, is cut (8 KB, with a mark) and
redacted like its log wherever a run writes it; the notification of a failed task carries the
cut text. A huge answer costs the worker no more than a short one."""

import time
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.logging import REDACTED, redacted_head, secrets_redact
from notifications.events import task_event
from tasks.models import CodingTask, TaskStatus
from tasks.results import RunResult
from tasks.run.finish import ERROR_MESSAGE_MAX_CHARS, error_message_bound, task_finish
from tasks.run.log import TaskLog

SAVED_VALUE = "my-saved-variable-value-0123456789"


@pytest.mark.django_db
def test_a_30_mb_answer_becomes_a_short_redacted_error_and_a_short_email(user):
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b", prompt="p", status=TaskStatus.RUNNING
    )
    log = TaskLog(task_id=task.pk, secrets=[SAVED_VALUE], max_bytes=9999)
    answer = f"The value is {SAVED_VALUE} and sk-ant-api03-{'k' * 90}. " + "x" * (30 * 1024**2)
    started = time.monotonic()
    task_finish(
        task_id=task.pk,
        result=RunResult(TaskStatus.FAILED, f"The agent reported an error: {answer}"),
        redact=log.redact,
    )
    assert time.monotonic() - started < 5
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert len(task.error_message) < ERROR_MESSAGE_MAX_CHARS + 100
    assert task.error_message.endswith("characters long]")
    assert "[…cut: the message was 31,457," in task.error_message
    assert SAVED_VALUE not in task.error_message
    assert "sk-ant-api03-k" not in task.error_message
    assert task.error_message.count(REDACTED) == 2
    event = task_event(task_id=task.pk, event="failed")
    assert event is not None
    assert len(event.message.text) < ERROR_MESSAGE_MAX_CHARS + 1000
    assert SAVED_VALUE not in event.message.text


@pytest.mark.django_db
def test_a_short_message_is_kept_whole_without_nuls(user):
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b", prompt="p", status=TaskStatus.RUNNING
    )
    task_finish(task_id=task.pk, result=RunResult(TaskStatus.FAILED, "Bad \x00 input ‮ok"))
    task.refresh_from_db()
    assert task.error_message == "Bad  input ‮ok"


def test_a_secret_split_by_the_cut_is_left_out_whole():
    for offset in range(-40, 5):
        text = "a" * (ERROR_MESSAGE_MAX_CHARS + offset) + SAVED_VALUE + "b" * 10_000
        kept = error_message_bound(text, redact=partial(secrets_redact, values=[SAVED_VALUE]))
        assert SAVED_VALUE[:8] not in kept, offset


# Text around the secret that shares none of its characters.
AROUND = st.text(alphabet="XYZ .\n‮\x00é", max_size=300)


@given(
    before=AROUND,
    after=AROUND,
    max_chars=st.integers(min_value=0, max_value=400),
)
def test_redacted_head_never_shows_a_piece_of_the_secret(before, after, max_chars):
    redact = partial(secrets_redact, values=[SAVED_VALUE])
    kept, cut = redacted_head(before + SAVED_VALUE + after, max_chars=max_chars, redact=redact)
    assert len(kept) <= max(max_chars, len(redact(before + SAVED_VALUE + after)))
    assert cut == (len(before + SAVED_VALUE + after) > max_chars)
    if cut:
        assert len(kept) <= max_chars
    assert not any(SAVED_VALUE[i : i + 4] in kept for i in range(len(SAVED_VALUE) - 3))
