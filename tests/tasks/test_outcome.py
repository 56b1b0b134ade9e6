"""What a user is told when a container finishes (tasks.run.outcome)."""

from tasks.models import TaskStatus
from tasks.run.containers import ContainerOutcome
from tasks.run.outcome import outcome_verdict


def test_an_auth_rejection_from_the_api_says_what_to_do():
    verdict = outcome_verdict(
        ContainerOutcome(container_id="c", exit_code=1),
        {"type": "result", "is_error": True, "api_error_status": 401, "result": "401"},
    )
    assert verdict.status == TaskStatus.FAILED
    assert "rejected the credentials (HTTP 401" in verdict.message
    assert "Sign in again" in verdict.message
    assert "Code agent settings page (/accounts/settings/code-agent/)" in verdict.message
