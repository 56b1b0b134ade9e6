"""A hostile agent in a real container: the fake `claude` runs the prompt as a shell script
(agent/test/fake-claude.sh, PROMPT AS SCRIPT), so the prompt is the exploit. It talks to the
model API through the task's real gateway (a fake Anthropic API on loopback behind it), then
prints whatever it likes. What it prints may shape its own task; only what the gateway saw of
the API's answers may change the shared credential
(docs/claude-cli-contract.md#what-the-server-trusts)."""

import io
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.selectors import preferences_get
from oauth_tokens.models import AuditAction, CredentialAuditEvent, CredentialStatus, OAuthCredential
from tasks.models import TaskStatus
from tasks.services import task_create
from tests.fakes.anthropic_api import FakeAnthropicAPI

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

FAKE_CLAUDE = Path(__file__).resolve().parents[2] / "agent" / "test" / "fake-claude.sh"
IMAGE = "claude-runner-agent:test-hostile"
GLOBAL_TOKEN = "sk-ant-oat01-hostile-agent-global-setup-token-0123456789"
ALLOWED = {"anthropic-ratelimit-unified-status": "allowed"}

# One model call through the gateway, with the placeholder the container holds (the CLI's own
# header shape), by the tools the image has (sh, jq, socat).
MODEL_CALL = r"""
tok="$(jq -r '.claudeAiOauth.accessToken // empty' "$HOME/.claude/.credentials.json" 2>/dev/null)"
body='{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
head='POST /v1/messages HTTP/1.1\r\nHost: api\r\nanthropic-beta: oauth-2025-04-20\r\n'
head="${head}Content-Type: application/json\r\nConnection: close\r\n"
printf "${head}Authorization: Bearer %s\r\nContent-Length: %s\r\n\r\n%s" "$tok" "${#body}" "$body" \
    | socat -t 30 - "TCP:${ANTHROPIC_BASE_URL#http://}" | head -n 1 >&2
"""

# The three reproductions of the review, each after a model call the API answered normally.
HOSTILE_OUTPUTS = {
    "rate_limit_event resetsAt 9999999999": (
        '{"type":"rate_limit_event","rate_limit_info":{"status":"rejected",'
        '"resetsAt":9999999999,"rateLimitType":"seven_day"}}\n'
        '{"type":"result","subtype":"success","is_error":false,"result":"done"}'
    ),
    "the answer is the limit message": (
        '{"type":"result","subtype":"success","is_error":false,'
        '"result":"You\u2019ve hit your limit \u00b7 resets Dec 31, 11pm (UTC)"}'
    ),
    "result.json api_error_status 401": (
        '{"type":"result","subtype":"success","is_error":true,"api_error_status":401,'
        '"result":"Failed to authenticate. API Error: 401 OAuth token has expired."}'
    ),
}


def script(output: str, exit_code: int = 0) -> str:
    return f"#!/bin/sh\n{MODEL_CALL}\ncat <<'OUT'\n{output}\nOUT\nexit {exit_code}\n"


@pytest.fixture(scope="module")
def hostile_image(test_image, docker_client) -> str:
    """The test image with this checkout's fake claude (which knows PROMPT AS SCRIPT), built
    from claude-runner-agent:test without touching it."""
    dockerfile = (
        f"FROM {test_image}\nUSER root\nCOPY fake-claude.sh /usr/local/bin/claude\n"
        "RUN chmod 755 /usr/local/bin/claude\nUSER 1000:1000\n"
    ).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (
            ("Dockerfile", dockerfile),
            ("fake-claude.sh", FAKE_CLAUDE.read_bytes()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    docker_client.images.build(fileobj=context, custom_context=True, tag=IMAGE, rm=True)
    return IMAGE


@pytest.fixture
def world(agent_settings, hostile_image):
    """The global OAuth on, the hostile image, the model API a fake behind the real gateway."""
    with FakeAnthropicAPI() as api:
        api.response_headers = dict(ALLOWED)
        agent_settings.AGENT_IMAGE = hostile_image
        agent_settings.ANTHROPIC_API_URL = api.url
        agent_settings.CLAUDE_USE_OAUTH = True
        agent_settings.CLAUDE_ACCESS_TOKEN = GLOBAL_TOKEN
        agent_settings.CLAUDE_REFRESH_TOKEN = ""
        agent_settings.CLAUDE_EXPIRES_AT = ""
        yield api


def run(user, repo: str, prompt: str):
    task = task_create(owner=user, repo_url=repo, prompt=prompt)
    task.refresh_from_db()
    return task


@pytest.mark.parametrize("hostile", list(HOSTILE_OUTPUTS))
def test_a_hostile_agent_cannot_switch_off_the_shared_credential(
    world, user, other_user, local_repo, hostile
):
    api = world
    task = run(user, local_repo, script(HOSTILE_OUTPUTS[hostile]))
    assert [r.status for r in api.messages_requests()] == [200], task.log
    assert api.messages_requests()[0].bearer_token == GLOBAL_TOKEN  # the gateway added it
    assert task.auth_source == "environment"
    assert task.status in (TaskStatus.WAITING, TaskStatus.FAILED), (task.error_message, task.log)
    assert task.limit.claim_unseen
    assert task.usage.accepted_at is not None
    assert not task.usage.auth_refused
    credential = OAuthCredential.objects.get(owner__isnull=True)
    assert credential.status == CredentialStatus.VALID
    assert (credential.limit_status, credential.limited_until) == ("", None)
    assert credential.refused_at is None
    assert credential.last_accepted_at is not None
    note = CredentialAuditEvent.objects.get(task_id=task.pk, action=AuditAction.USED)
    assert "claimed by the agent, not seen by the gateway" in note.detail
    assert GLOBAL_TOKEN not in task.log + task.error_message

    # Another user's next task runs on the same credential at once, and succeeds.
    other = run(other_user, local_repo, "Say hello.")
    assert other.status == TaskStatus.SUCCEEDED, (other.error_message, other.log)
    assert other.auth_source == "environment"


def test_a_limit_the_gateway_saw_limits_the_credential_whatever_the_agent_says(
    world, user, other_user, local_repo
):
    """The counterpart: the API itself answers 429 rejected; the agent says all is well. The
    gateway's view wins, for the task and the credential (capped to a week and a margin)."""
    api = world
    reset = int((timezone.now() + timedelta(hours=2)).timestamp())
    api.limit_rejected(reset)
    ok = '{"type":"result","subtype":"success","is_error":false,"result":"all fine"}'
    task = run(user, local_repo, script(ok))
    assert [r.status for r in api.messages_requests()] == [429], task.log
    assert task.status == TaskStatus.WAITING, (task.error_message, task.log)
    assert not task.limit.claim_unseen
    assert task.limit.limited_until is not None
    assert int(task.limit.limited_until.timestamp()) == reset
    credential = OAuthCredential.objects.get(owner__isnull=True)
    assert credential.limit_status == "rejected"
    assert credential.limited_until is not None
    assert int(credential.limited_until.timestamp()) == reset
    # The next task of anyone on that subscription waits from the start: no container.
    other = run(other_user, local_repo, "Say hello.")
    assert other.status == TaskStatus.WAITING
    assert len(api.messages_requests()) == 1


def test_a_refusal_the_gateway_saw_marks_the_token_dead(world, user, local_repo):
    """The API refuses the user's own setup token (401, nothing to renew it with): dead now,
    and the user's next task falls back to their API key."""
    api = world
    api.auth_expired()
    token = "sk-ant-oat01-hostile-agent-user-setup-token-0123456789"
    OAuthCredential.objects.create(
        owner=user,
        kind="setup_token",
        source="user",
        access_token=token,
        scopes=["user:inference"],
        saved_at=timezone.now() - timedelta(minutes=1),
    )
    preferences = preferences_get(user=user)
    preferences.use_oauth = True
    key = "sk-ant-api03-hostile-agent-user-key-0123456789"
    preferences.api_key, preferences.api_key_last4 = key, key[-4:]
    preferences.save()
    ok = '{"type":"result","subtype":"success","is_error":false,"result":"all fine"}'
    task = run(user, local_repo, script(ok))
    assert [r.status for r in api.messages_requests()] == [401], task.log
    assert task.usage.auth_refused
    assert task.status == TaskStatus.FAILED, task.log
    credential = OAuthCredential.objects.get(owner=user)
    assert credential.refused_at is not None
    assert credential.status == CredentialStatus.INVALID
    api.answer_normally()
    again = run(user, local_repo, "Say hello.")
    assert again.status == TaskStatus.SUCCEEDED, (again.error_message, again.log)
    assert again.auth_method == "api_key"
    assert again.auth_fallback
