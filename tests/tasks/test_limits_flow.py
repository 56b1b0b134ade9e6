"""What the runner does about a usage limit or a rejected credential: wait and resume, fall
back to the user's API key, fail past the longest wait, mark a rejected credential dead; and
that only what the task's gateway saw reaches the credential, never the agent's own words.

The container is scripted here: it makes one model call through the task's real gateway to the
fake Anthropic API (answering as the real one does in each case), then prints the stream lines
the real CLI prints (docs/claude-cli-contract.md#usage-limits-and-auth-failures). The same paths
with the real CLI and a real Docker engine are in test_limits_real_cli.py, and a hostile agent
in a real container in test_hostile_agent.py."""

import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import DataError
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import preferences_get
from oauth_tokens.models import (
    AuditAction,
    CredentialAuditEvent,
    CredentialKind,
    CredentialSource,
    CredentialStatus,
    OAuthCredential,
)
from tasks.models import CodingTask, TaskStatus
from tasks.queue import queue_sweep
from tasks.run import runner
from tasks.run.containers import ContainerOutcome
from tasks.run.workspace import Workspace
from tasks.services import task_cancel, task_create
from tasks.signals import task_finished
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.gateway.conftest import UnixHTTPConnection
from tests.tasks.conftest import set_api_key

TOKEN = "sk-ant-oat01-limits-flow-setup-token-0123456789abcdef"
KEY = "sk-ant-api03-limits-flow-user-key-0123456789"


ALLOWED = {"anthropic-ratelimit-unified-status": "allowed"}


@dataclass
class Run:
    """One scripted container: how the fake API answers its model call, then what it prints."""

    api: Callable[[FakeAnthropicAPI], None]
    lines: list[bytes]


def line(obj) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def answers_normally(api: FakeAnthropicAPI) -> None:
    api.answer_normally()
    api.response_headers = dict(ALLOWED)


def limited_run(reset_epoch: int, *, seen: bool = True) -> Run:
    """The CLI's account of a rejected five-hour window; seen: the API really answered so."""

    def limited(api: FakeAnthropicAPI) -> None:
        api.limit_rejected(reset_epoch)

    return Run(limited if seen else answers_normally, _limited_lines(reset_epoch))


def _limited_lines(reset_epoch: int) -> list[bytes]:
    return [
        line({"type": "system", "subtype": "init", "claude_code_version": "2.1.332"}),
        line(
            {
                "type": "rate_limit_event",
                "rate_limit_info": {
                    "status": "rejected",
                    "resetsAt": reset_epoch,
                    "rateLimitType": "five_hour",
                    "overageStatus": "rejected",
                    "isUsingOverage": False,
                },
            }
        ),
        line(
            {
                "type": "assistant",
                "error": "rate_limit",
                "message": {"content": [{"type": "text", "text": "You've hit your limit"}]},
            }
        ),
        line(
            {
                "type": "result",
                "subtype": "success",
                "is_error": True,
                "api_error_status": 429,
                "result": "You've hit your limit · resets 12:06am (UTC)",
            }
        ),
    ]


def ok_run(warning: bool = False) -> Run:
    def answer(api: FakeAnthropicAPI) -> None:
        if warning:
            api.limit_warning(0.92, int((timezone.now() + timedelta(days=2)).timestamp()))
        else:
            answers_normally(api)

    return Run(answer, _ok_lines(warning))


def _ok_lines(warning: bool) -> list[bytes]:
    info = {"status": "allowed_warning", "utilization": 0.92, "rateLimitType": "seven_day"}
    return [
        line(
            {
                "type": "rate_limit_event",
                "rate_limit_info": info if warning else {"status": "allowed"},
            }
        ),
        line(
            {
                "type": "result",
                "subtype": "success",
                "is_error": False,
                "result": "done",
                "total_cost_usd": 0.25,
                "duration_ms": 1234,
                "usage": {
                    "input_tokens": 100,
                    "output_tokens": 50,
                    "cache_creation_input_tokens": 7,
                    "cache_read_input_tokens": 3,
                },
            }
        ),
    ]


def rejected_run(status: int, *, seen: bool = True) -> Run:
    def refused(api: FakeAnthropicAPI) -> None:
        if status == 401:
            api.auth_expired()
        else:
            api.auth_revoked()

    return Run(refused if seen else answers_normally, _rejected_lines(status))


def _rejected_lines(status: int) -> list[bytes]:
    text = (
        "Failed to authenticate. API Error: 401 OAuth token has expired."
        if status == 401
        else "Failed to authenticate: OAuth token revoked. Please log in again."
    )
    return [
        line({"type": "system", "subtype": "api_retry", "error_status": status}),
        line({"type": "assistant", "error": "authentication_failed", "message": {"content": []}}),
        line({"type": "result", "is_error": True, "api_error_status": status, "result": text}),
    ]


def model_call(spec, placeholder: str, *, api_key: bool) -> int:
    """What the CLI does first: one model call, through the task's gateway, with its
    placeholder; the status the gateway relayed."""
    conn = UnixHTTPConnection(Path(spec.gateway_dir) / "gateway.sock")
    auth = {"x-api-key": placeholder} if api_key else {"authorization": f"Bearer {placeholder}"}
    body = json.dumps(
        {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    )
    conn.request(
        "POST", "/v1/messages", body=body, headers={**auth, "content-type": "application/json"}
    )
    answer = conn.getresponse()
    answer.read()
    conn.close()
    return answer.status


@pytest.fixture
def fake_api(settings):
    with FakeAnthropicAPI() as api:
        settings.ANTHROPIC_API_URL = api.url
        yield api


class _NoClone:
    """In place of the worker's clone: these containers never look at the repository."""

    reads_earlier_commits = False
    is_finished = True

    def finished(self) -> Workspace:
        return Workspace(
            path=Path("/nonexistent"), branch="main", start_commit="0" * 40, base_branch="main"
        )


@pytest.fixture
def scripted(monkeypatch, settings, fake_api, placeholders):
    """Containers that make the next scripted run's model call and print its lines; records
    the auth each run got and the status its model call had."""
    settings.AGENT_LIMIT_JITTER_SECONDS = 5
    runs: list[Run] = []
    seen: list[dict] = []

    def fake_run(*, client, spec, on_started, on_output, should_cancel, max_output_bytes):
        on_started("c0ffee")
        env_files = {f.path.rsplit("/", 1)[-1] for f in spec.files}
        api_key = "ANTHROPIC_API_KEY" in env_files
        run = runs.pop(0)
        run.api(fake_api)
        status = model_call(spec, placeholders[-1], api_key=api_key)
        seen.append({"api_key": api_key, "status": status})
        for chunk in run.lines:
            on_output(chunk)
        result = json.loads(run.lines[-1])
        return ContainerOutcome(container_id="c0ffee", exit_code=1 if result.get("is_error") else 0)

    monkeypatch.setattr(runner, "docker_client", lambda: object())
    monkeypatch.setattr(runner, "engine_id", lambda client: "fake-engine")
    monkeypatch.setattr(runner, "container_run", fake_run)
    # No clone either: these containers never look at the repository.
    monkeypatch.setattr(runner, "workspace_clone", lambda *, task: _NoClone())
    return runs, seen


@pytest.fixture
def events():
    heard: list[tuple[int, str]] = []

    def listen(*, task_id, event, **_):
        heard.append((task_id, event))

    task_finished.connect(listen, dispatch_uid="test-limits-flow")
    yield heard
    task_finished.disconnect(dispatch_uid="test-limits-flow")


@pytest.fixture
def oauth_user(user):
    OAuthCredential.objects.create(
        owner=user,
        kind=CredentialKind.SETUP_TOKEN,
        source=CredentialSource.USER,
        access_token=TOKEN,
        scopes=["user:inference"],
    )
    prefs = preferences_get(user=user)
    prefs.use_oauth = True
    prefs.save()
    return user


def submit(user) -> CodingTask:
    task = task_create(owner=user, repo_url="https://github.com/example/repo.git", prompt="go")
    task.refresh_from_db()
    return task


@pytest.mark.django_db(transaction=True)
def test_a_limited_task_waits_for_the_reset_and_then_succeeds(
    scripted, settings, events, oauth_user
):
    settings.AGENT_LIMIT_JITTER_SECONDS = 1
    runs, _ = scripted
    reset = (timezone.now() + timedelta(seconds=3)).replace(microsecond=0)
    runs += [limited_run(int(reset.timestamp())), ok_run()]

    task = submit(oauth_user)
    assert task.status == TaskStatus.WAITING, task.error_message
    assert task.limit.limited_until == reset
    assert task.limit.limited_until is not None
    assert task.requeue_at is not None
    assert timedelta(0) <= task.requeue_at - task.limit.limited_until <= timedelta(seconds=1)
    assert task.finished_at is None
    assert task.limit.waits == 1
    assert "five-hour limit" in task.error_message
    credential = OAuthCredential.objects.get(owner=oauth_user)
    assert credential.limit_status == "rejected"
    assert credential.limit_window == "five_hour"
    assert task.can_cancel

    assert queue_sweep().resumed == []  # not before the reset
    while timezone.now() <= task.requeue_at:
        time.sleep(0.2)
    assert queue_sweep().resumed == [task.pk]  # the sweep (the tests' backend cannot defer)
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    assert task.limit.waits == 1
    assert task.usage.duration_ms == 1234
    assert [e for _, e in events] == ["waiting", "resumed", "succeeded"]
    credential.refresh_from_db()
    assert credential.limit_status == ""  # the next good run clears it
    actions = list(
        CredentialAuditEvent.objects.filter(task_id=task.pk).values_list("action", "outcome")
    )
    assert (AuditAction.LIMITED, "five_hour") in actions
    assert (AuditAction.USED, "limited") in actions
    assert (AuditAction.USED, "succeeded") in actions


@pytest.mark.django_db(transaction=True)
def test_new_tasks_wait_from_the_start_while_the_subscription_is_limited(scripted, oauth_user):
    runs, seen = scripted
    reset = timezone.now() + timedelta(hours=2, minutes=10)
    runs.append(limited_run(int(reset.timestamp())))
    submit(oauth_user)
    second = submit(oauth_user)
    assert second.status == TaskStatus.WAITING
    assert len(seen) == 1  # no container was started for the second task
    assert second.limit.limited_until == reset.replace(microsecond=0)


@pytest.mark.django_db(transaction=True)
def test_a_reset_past_the_longest_wait_fails_and_says_so(scripted, settings, events, oauth_user):
    settings.AGENT_LIMIT_MAX_WAIT = 3600
    runs, _ = scripted
    runs.append(limited_run(int((timezone.now() + timedelta(hours=5)).timestamp())))
    task = submit(oauth_user)
    assert task.status == TaskStatus.FAILED
    assert "AGENT_LIMIT_MAX_WAIT" in task.error_message
    assert "1 h" in task.error_message
    assert [e for _, e in events] == ["failed"]


@pytest.mark.django_db(transaction=True)
def test_the_user_can_choose_to_fall_back_to_their_api_key(scripted, oauth_user):
    runs, seen = scripted
    set_api_key(oauth_user, KEY)
    prefs = preferences_get(user=oauth_user)
    prefs.when_limited = "api_key"
    prefs.save()
    runs += [limited_run(int((timezone.now() + timedelta(hours=1)).timestamp())), ok_run()]
    task = submit(oauth_user)
    assert task.status == TaskStatus.SUCCEEDED, task.error_message
    assert [s["api_key"] for s in seen] == [False, True]
    assert task.auth_method == "api_key"
    assert task.auth_fallback


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("claim", ["rate_limit_event", "429 result"])
def test_a_limit_only_the_agent_claims_never_moves_the_task_to_the_users_api_key(
    scripted, oauth_user, claim
):
    """The user chose "fall back to my API key"; the agent prints a limit the API never gave.
    The task waits for the claimed reset on the subscription; the key, billed per token, is
    not used."""
    runs, seen = scripted
    set_api_key(oauth_user, KEY)
    prefs = preferences_get(user=oauth_user)
    prefs.when_limited = "api_key"
    prefs.save()
    reset = timezone.now() + timedelta(hours=2)
    run = limited_run(int(reset.timestamp()), seen=False)
    if claim == "429 result":  # no stream event: the result's status and words alone
        run.lines = run.lines[-1:]
    runs += [run, ok_run()]
    task = submit(oauth_user)
    assert seen == [{"api_key": False, "status": 200}]  # no second container, on the key
    assert task.status == TaskStatus.WAITING, task.error_message
    assert (task.auth_method, task.auth_fallback, task.force_api_key) == ("oauth", False, False)
    assert task.requeue_at is not None
    assert task.requeue_at > timezone.now() + timedelta(hours=1)
    assert "Not moved to your API key" in task.error_message
    assert "the server's gateway did not see it" in task.error_message
    credential = OAuthCredential.objects.get(owner=oauth_user)
    assert credential_state(credential)[:4] == (CredentialStatus.VALID, "", None, None)


@pytest.mark.django_db(transaction=True)
def test_run_now_with_my_api_key_and_cancel_a_waiting_task(scripted, client, oauth_user):
    runs, seen = scripted
    set_api_key(oauth_user, KEY)
    reset = timezone.now() + timedelta(hours=1)
    runs += [limited_run(int(reset.timestamp())), ok_run(), limited_run(int(reset.timestamp()))]
    client.force_login(oauth_user)
    task = submit(oauth_user)
    page = html.unescape(client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    assert "Waiting for the usage limit to reset" in page
    assert "limited until" in page
    assert 'id="resume-countdown"' in page
    assert "Run now with my API key" in page
    client.post(reverse("tasks:run_now_with_api_key", args=[task.pk]))
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    assert seen[-1]["api_key"] is True

    waiting = submit(oauth_user)  # limited again, on OAuth
    assert waiting.status == TaskStatus.WAITING
    assert task_cancel(task=waiting) == TaskStatus.CANCELLED
    assert queue_sweep(now=reset + timedelta(hours=1)).resumed == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_credential_fails_the_task_says_sign_in_again_and_is_marked_dead(
    scripted, client, events, oauth_user, status
):
    runs, _ = scripted
    runs.append(rejected_run(status))
    task = submit(oauth_user)
    assert task.status == TaskStatus.FAILED
    assert task.limit.auth_rejected
    assert f"HTTP {status}" in task.error_message
    assert "Sign in again" in task.error_message
    credential = OAuthCredential.objects.get(owner=oauth_user)
    assert credential.status == CredentialStatus.INVALID
    assert f"HTTP {status}" in credential.last_refresh_error
    assert CredentialAuditEvent.objects.filter(
        action=AuditAction.REJECTED, task_id=task.pk
    ).exists()
    client.force_login(oauth_user)
    page = html.unescape(client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    assert "Sign in again" in page
    assert reverse("accounts:code_agent_settings") in page
    assert TOKEN not in page


@pytest.mark.django_db(transaction=True)
def test_allowed_warning_shows_on_the_settings_and_usage_pages(scripted, client, oauth_user):
    runs, _ = scripted
    runs.append(ok_run(warning=True))
    task = submit(oauth_user)
    assert task.status == TaskStatus.SUCCEEDED
    assert task.limit.verdict == "warning"
    client.force_login(oauth_user)
    for url in (reverse("accounts:code_agent_settings"), reverse("usage:page")):
        page = html.unescape(client.get(url).content.decode())
        assert "92% of the weekly limit used" in page, url


@pytest.mark.django_db(transaction=True)
def test_the_settings_page_says_limited_until_when_it_is(scripted, client, oauth_user):
    runs, _ = scripted
    runs.append(limited_run(int((timezone.now() + timedelta(hours=2, minutes=10)).timestamp())))
    submit(oauth_user)
    client.force_login(oauth_user)
    page = html.unescape(client.get(reverse("accounts:code_agent_settings")).content.decode())
    assert "Your Claude subscription is limited until" in page
    assert "(in 2 h 10 min), five-hour limit" in page or "(in 2 h 9 min), five-hour limit" in page


@pytest.mark.django_db
def test_the_global_credentials_can_be_kept_for_a_group(settings, client, user, other_user):
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-server-key-0123456789"
    settings.CLAUDE_GLOBAL_CREDENTIALS_GROUP = "subscribers"
    group = Group.objects.create(name="subscribers")
    other_user.groups.add(group)
    client.force_login(user)
    page = html.unescape(client.get(reverse("accounts:code_agent_settings")).content.decode())
    assert "only for members of the group “subscribers”" in page
    assert "None: tasks cannot start" in page
    client.force_login(other_user)
    page = html.unescape(client.get(reverse("accounts:code_agent_settings")).content.decode())
    assert "You may use the server's shared credentials" in page
    assert "The server's API key (ANTHROPIC_API_KEY)" in page
    settings.CLAUDE_GLOBAL_CREDENTIALS_GROUP = ""
    client.force_login(user)
    page = html.unescape(client.get(reverse("accounts:code_agent_settings")).content.decode())
    assert "open to every user" in page


@pytest.mark.django_db
def test_the_when_limited_choice_is_saved_and_checked(client, user):
    client.force_login(user)
    url = reverse("accounts:code_agent_when_limited")
    client.post(url, {"when_limited": "api_key"})
    assert preferences_get(user=user).when_limited == "api_key"
    answer = client.post(url, {"when_limited": "later"}, follow=True)
    assert "Choose “wait” or “fall back to my API key”" in html.unescape(answer.content.decode())
    assert preferences_get(user=user).when_limited == "api_key"


# --- what a task says is data: only the gateway's view reaches the credential -----------------

GLOBAL_TOKEN = "sk-ant-oat01-limits-flow-global-setup-token-0123456789abcdef"
FAR_RESET = 9999999999  # the year 2286


@pytest.fixture
def global_oauth(settings):
    """The server's global OAuth on, shared by every user."""
    settings.CLAUDE_USE_OAUTH = True
    settings.CLAUDE_ACCESS_TOKEN = GLOBAL_TOKEN
    settings.CLAUDE_REFRESH_TOKEN = ""
    settings.CLAUDE_EXPIRES_AT = ""


def hostile_event_run() -> Run:
    """The agent prints a rejected seven-day window that resets in 2286; the API said nothing
    of the kind."""
    event = {"status": "rejected", "resetsAt": FAR_RESET, "rateLimitType": "seven_day"}
    return Run(
        answers_normally,
        [
            line({"type": "rate_limit_event", "rate_limit_info": event}),
            line({"type": "result", "is_error": False, "result": "done"}),
        ],
    )


def hostile_answer_run() -> Run:
    """The final answer is only the limit words (a README can talk the real CLI into it)."""
    text = "You've hit your limit · resets Dec 31, 11pm (UTC)"
    return Run(answers_normally, [line({"type": "result", "is_error": False, "result": text})])


def hostile_401_run() -> Run:
    """result.json claims the API refused the credential."""
    result = {"type": "result", "is_error": True, "api_error_status": 401, "result": "nope"}
    return Run(answers_normally, [line(result)])


HOSTILE_RUNS = {
    "rate_limit_event resetsAt 9999999999": hostile_event_run,
    "the answer is the limit message": hostile_answer_run,
    "result.json api_error_status 401": hostile_401_run,
}


def credential_state(credential: OAuthCredential) -> tuple:
    credential.refresh_from_db()
    return (
        credential.status,
        credential.limit_status,
        credential.limited_until,
        credential.refused_at,
        credential.last_refresh_error,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hostile", list(HOSTILE_RUNS))
def test_a_task_cannot_switch_off_the_shared_credential_for_everyone(
    scripted, global_oauth, user, other_user, hostile, caplog
):
    runs, seen = scripted
    runs += [HOSTILE_RUNS[hostile](), ok_run()]
    task = submit(user)
    assert task.auth_source == "environment"
    assert seen[0]["status"] == 200  # the API accepted the credential
    credential = OAuthCredential.objects.get(owner__isnull=True)
    assert credential_state(credential) == (CredentialStatus.VALID, "", None, None, "")
    assert credential.last_accepted_at is not None  # what the gateway saw is recorded
    # The task itself comes to what its agent said, in the agent's words, and no further.
    assert task.status in (TaskStatus.WAITING, TaskStatus.FAILED)
    assert task.limit.claim_unseen
    assert "the server's gateway did not see it" in task.error_message
    if task.limit.limited_until is not None:
        assert task.limit.limited_until <= timezone.now() + timedelta(days=7, hours=6)
    assert task.usage.accepted_at is not None
    assert not task.usage.auth_refused
    assert not task.usage.rate_limit_rejected
    # The audit log and the worker's log say what was claimed and not seen.
    note = CredentialAuditEvent.objects.get(task_id=task.pk, action=AuditAction.USED)
    assert "claimed by the agent, not seen by the gateway" in note.detail
    assert "claimed by the agent, not seen by the gateway" in caplog.text
    assert "not seen by the gateway" in task.log
    assert "this task alone is affected" in task.log
    assert not CredentialAuditEvent.objects.filter(
        task_id=task.pk, action__in=[AuditAction.LIMITED, AuditAction.REJECTED]
    ).exists()

    # Another user's next task runs at once on the same credential, and succeeds.
    other = submit(other_user)
    assert other.status == TaskStatus.SUCCEEDED, other.error_message
    assert other.auth_source == "environment"
    assert len(seen) == 2


@pytest.mark.django_db(transaction=True)
def test_a_repository_cannot_switch_off_a_users_own_credential(scripted, oauth_user):
    runs, _ = scripted
    runs += [hostile_401_run(), hostile_event_run(), ok_run()]
    first, second = submit(oauth_user), submit(oauth_user)
    assert first.status == TaskStatus.FAILED
    # A reset in 2286, capped to a week: still past the longest wait, so this task alone fails.
    assert second.status == TaskStatus.FAILED
    assert "AGENT_LIMIT_MAX_WAIT" in second.error_message
    credential = OAuthCredential.objects.get(owner=oauth_user)
    assert credential_state(credential)[:4] == (CredentialStatus.VALID, "", None, None)
    assert submit(oauth_user).status == TaskStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_403_about_the_request_leaves_the_users_credential_alone(scripted, oauth_user):
    """The container asks for what the plan does not include (a model, say): the API answers
    403 permission_error about the request, and the CLI calls it an authentication failure.
    That task fails; the token is not marked refused, and the next task runs on it."""
    runs, seen = scripted

    def not_on_this_plan(api: FakeAnthropicAPI) -> None:
        api.answer_normally()
        message = "Your organization does not have access to this model."
        api.error_answer = (403, "permission_error", message)

    runs += [Run(not_on_this_plan, _rejected_lines(403)), ok_run()]
    first = submit(oauth_user)
    assert seen[0]["status"] == 403
    assert first.status == TaskStatus.FAILED
    assert "the server's gateway did not see it" in first.error_message
    assert not first.usage.auth_refused
    credential = OAuthCredential.objects.get(owner=oauth_user)
    assert credential_state(credential)[:4] == (CredentialStatus.VALID, "", None, None)
    assert submit(oauth_user).status == TaskStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_limit_the_gateway_saw_is_capped_too(scripted, oauth_user):
    runs, _ = scripted
    runs.append(limited_run(FAR_RESET))
    task = submit(oauth_user)
    credential = OAuthCredential.objects.get(owner=oauth_user)
    assert credential.limit_status == "rejected"
    cap = timezone.now() + timedelta(days=7, hours=6)
    assert credential.limited_until is not None
    assert credential.limited_until <= cap
    assert credential.limited_until > cap - timedelta(minutes=5)
    assert task.usage.rate_limit_rejected
    assert task.usage.rate_limit_reset is not None
    assert abs(task.usage.rate_limit_reset - credential.limited_until) < timedelta(minutes=1)
    assert not task.limit.claim_unseen


@pytest.mark.django_db(transaction=True)
def test_a_401_the_agent_claims_does_not_override_a_limit_the_gateway_saw(scripted, oauth_user):
    """The API answered 429 "rejected"; the agent's result says 401. The task waits for the
    reset the API gave, and the credential is limited, not dead."""
    runs, _ = scripted
    reset = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)

    def limited(api: FakeAnthropicAPI) -> None:
        api.limit_rejected(int(reset.timestamp()))

    claim = {"type": "result", "is_error": True, "api_error_status": 401, "result": "nope"}
    runs.append(Run(limited, [line(claim)]))
    task = submit(oauth_user)
    assert task.status == TaskStatus.WAITING, task.error_message
    assert "Sign in again" not in task.error_message
    assert task.limit.limited_until == reset
    assert not task.limit.auth_rejected
    credential = OAuthCredential.objects.get(owner=oauth_user)
    assert credential_state(credential)[:3] == (CredentialStatus.VALID, "rejected", reset)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("saw", ["a 429 rejection", "a refused token"])
def test_what_the_gateway_saw_reaches_the_credential_though_the_agents_files_fail_the_run(
    scripted, monkeypatch, oauth_user, saw
):
    """Keeping what the agent left (its session) fails the run: the credential still holds
    what the API answered, so the next task does not start on it."""
    runs, seen = scripted
    reset = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    runs.append(
        limited_run(int(reset.timestamp())) if saw == "a 429 rejection" else rejected_run(401)
    )

    def unstorable(*, task, outcome, log) -> None:
        raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    monkeypatch.setattr(runner, "conversation_record", unstorable)
    task = submit(oauth_user)
    assert task.status == TaskStatus.FAILED
    assert "The runner failed unexpectedly" in task.error_message
    credential = OAuthCredential.objects.get(owner=oauth_user)
    if saw == "a 429 rejection":
        assert credential_state(credential)[:3] == (CredentialStatus.VALID, "rejected", reset)
        assert submit(oauth_user).status == TaskStatus.WAITING
    else:
        assert credential_state(credential)[0] == CredentialStatus.INVALID
        assert credential.refused_at is not None
        assert "Sign in again" in submit(oauth_user).error_message
    assert len(seen) == 1  # no container for the next task


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_key", [False, True], ids=["no API key", "an API key"])
def test_tokens_the_api_refused_are_dead_for_the_next_task_and_the_card(
    scripted, client, oauth_user, with_key
):
    """The gateway saw the API refuse the setup token (a 401 it cannot renew): the token is
    dead though it has not expired, the card says so, and the next task falls back to the
    user's API key or fails at once saying "Sign in again", without a container."""
    runs, seen = scripted
    if with_key:
        set_api_key(oauth_user, KEY)
    runs += [rejected_run(401), ok_run()]
    first = submit(oauth_user)
    assert first.status == TaskStatus.FAILED
    assert first.usage.auth_refused
    assert first.usage.status_401 == 1
    credential = OAuthCredential.objects.get(owner=oauth_user)
    assert credential.refused_at is not None
    assert credential.status == CredentialStatus.INVALID
    rejected = CredentialAuditEvent.objects.get(task_id=first.pk, action=AuditAction.REJECTED)
    assert "seen by the task's gateway" in rejected.detail
    assert "HTTP 401" in rejected.detail

    client.force_login(oauth_user)
    page = html.unescape(client.get(reverse("accounts:code_agent_settings")).content.decode())
    card = page[page.index('id="auth-method"') : page.index("How the method is chosen")]
    assert ">Ready<" not in card
    assert "Refused by the API" in page

    second = submit(oauth_user)
    if with_key:
        assert ">Falls back to your API key<" in card
        assert second.status == TaskStatus.SUCCEEDED, second.error_message
        assert second.auth_method == "api_key"
        assert second.auth_fallback
        assert [s["api_key"] for s in seen] == [False, True]
    else:
        assert ">Will fail<" in card
        assert "Sign in again" in card
        assert second.status == TaskStatus.FAILED
        assert "Sign in again" in second.error_message
        assert len(seen) == 1  # no container for it


@pytest.mark.django_db(transaction=True)
def test_a_401_whose_refresh_token_is_refused_too_sends_the_next_task_to_the_api_key(
    scripted, client, user, make_credential, oauth_settings, token_server
):
    """The access token has hours left, the API answers 401, the gateway's forced refresh is
    refused: the tokens are dead now, and the next task runs on the user's API key."""
    runs, seen = scripted
    credential = make_credential(user, expires_in=5 * 3600)
    token_server.revoke(credential.refresh_token)
    preferences = preferences_get(user=user)
    preferences.use_oauth = True
    preferences.save()
    set_api_key(user, KEY)
    runs += [rejected_run(401), ok_run()]
    first = submit(user)
    assert first.status == TaskStatus.FAILED
    assert "Sign in again" in first.error_message
    assert first.usage.auth_refused
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.INVALID
    assert credential.refused_at is not None
    assert credential.expires_at > timezone.now() + timedelta(hours=4)  # not expired, yet dead
    client.force_login(user)
    page = html.unescape(client.get(reverse("accounts:code_agent_settings")).content.decode())
    assert ">Falls back to your API key<" in page
    assert "stop working when the access token expires" not in page
    second = submit(user)
    assert second.status == TaskStatus.SUCCEEDED, second.error_message
    assert (second.auth_method, second.auth_fallback) == ("api_key", True)
    assert [s["api_key"] for s in seen] == [False, True]
