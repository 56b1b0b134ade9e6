"""What a user is told when a container finishes (tasks.run.outcome)."""

from datetime import UTC, datetime, timedelta

from gateway.runtime import GatewayUsage
from tasks.models import TaskStatus
from tasks.run.containers import ContainerOutcome
from tasks.run.outcome import outcome_verdict
from tasks.waits.limits import gateway_limit_of, run_limit_parse, task_limit_choose


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
