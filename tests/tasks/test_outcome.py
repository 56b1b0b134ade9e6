"""What a user is told when a container finishes (tasks.run.outcome), and what of the
container's outputs reaches the task's page."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from gateway.runtime import GatewayUsage
from tasks.models import CodingTask, TaskStatus
from tasks.run.containers import ContainerOutcome
from tasks.run.finish import task_finish
from tasks.run.log import TaskLog
from tasks.run.outcome import outcome_values, outcome_verdict
from tasks.waits.limits import gateway_limit_of, run_limit_parse, task_limit_choose
from tests.tasks.conftest import task_make


def test_an_auth_rejection_from_the_api_says_what_to_do():
    verdict = outcome_verdict(
        ContainerOutcome(container_id="c", exit_code=1),
        {"type": "result", "is_error": True, "api_error_status": 401, "result": "401"},
    )
    assert verdict.status == TaskStatus.FAILED
    assert "rejected the credentials (HTTP 401" in verdict.message
    assert "Sign in again" in verdict.message
    assert "Code agent settings page (/accounts/settings/code-agent/)" in verdict.message


def test_a_401_the_agent_claims_does_not_override_a_limit_the_gateway_saw():
    """The gateway saw a 429 "rejected"; the agent's result says 401. The task waits for the
    API's reset: no "Sign in again"."""
    now = datetime.now(tz=UTC)
    usage = GatewayUsage(
        requests=1,
        status_429=1,
        accepted_at=now,
        rate_limit_status="rejected",
        rate_limit_rejected=True,
        rate_limit_rejected_reset=now + timedelta(hours=2),
        rate_limit_rejected_claim="five_hour",
    )
    result = {"is_error": True, "api_error_status": 401, "result": "Invalid bearer token"}
    claim = run_limit_parse(rate_limit_events=[], result=result, now=now)
    limit = task_limit_choose(claim=claim, seen=gateway_limit_of(usage=usage, now=now))
    verdict = outcome_verdict(ContainerOutcome(container_id="c", exit_code=1), result, limit)
    assert verdict.status == TaskStatus.WAITING, verdict.message
    assert "five-hour limit" in verdict.message
    assert "Sign in again" not in verdict.message


SECRET = "extra-variable-value-9f3a7c21"


def finished(user, outputs: dict[str, bytes], secrets: list[str]) -> CodingTask:
    """A running task whose container handed back ``outputs``, finished as the runner does."""
    task = task_make(user, status=TaskStatus.RUNNING, started_at=timezone.now())
    log = TaskLog(task_id=task.pk, secrets=secrets, max_bytes=10_000)
    outcome = ContainerOutcome(container_id="c", exit_code=0, outputs=outputs)
    task_finish(task_id=task.pk, result=outcome_values(outcome=outcome, log=log))
    return CodingTask.objects.get(pk=task.pk)


@pytest.mark.django_db
def test_changed_file_names_are_redacted_like_the_diff(user_client, user):
    task = finished(
        user,
        {
            "result.json": b'{"type":"result","result":"done","is_error":false}',
            "changed_files.txt": f"A\tleak-{SECRET}.txt\n".encode(),
            "diff.patch": f"diff --git a/leak-{SECRET}.txt b/leak-{SECRET}.txt\n".encode(),
        },
        secrets=[SECRET],
    )
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "leak-[redacted].txt" in page
    assert SECRET not in page


@pytest.mark.django_db
def test_nuls_and_lone_surrogates_from_the_agent_never_stop_its_result_being_saved(
    user_client, user
):
    # Text a PostgreSQL column refuses (a NUL), and text no UTF-8 holds (a lone surrogate).
    task = finished(
        user,
        {
            "result.json": (
                b'{"type":"result","result":"done","is_error":false,'
                b'"session_id":"ab\\u0000cd\\ud800ef"}'
            ),
            "changed_files.txt": b"A\x00\tnul\x00name.txt\nM\tplain.txt\n",
            "diff.patch": b"diff --git a/plain.txt b/plain.txt\n",
        },
        secrets=[],
    )
    assert task.status == TaskStatus.SUCCEEDED
    assert task.session_id == "abcd\ufffdef"
    assert task.changed_files == [
        {"status": "A", "path": "nulname.txt"},
        {"status": "M", "path": "plain.txt"},
    ]
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "nulname.txt" in page
