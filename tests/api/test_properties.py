"""Hypothesis over the API's request bodies and query strings: whatever a client sends, the
answer is JSON in the one error shape (or a task), never a 500."""

import hashlib
import hmac
import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.models import CodingTask, TaskStatus
from tests.fuzz.strategies import any_text, branch_names, json_text, number_text, repo_urls

pytestmark = pytest.mark.django_db

TASK_FIELDS = ["repository", "prompt", "branch", "open_pull_request", "environment"]


def _string(text: str) -> str:
    return json.dumps(text)


_values = st.one_of(
    st.builds(_string, any_text),
    st.builds(_string, repo_urls),
    st.builds(_string, branch_names),
    number_text,
    st.sampled_from(["true", "false", "null", "[]", "{}"]),
)
task_bodies = st.one_of(
    json_text(TASK_FIELDS),
    st.lists(st.tuples(st.sampled_from(TASK_FIELDS), _values), max_size=6).map(
        lambda pairs: "{" + ",".join(f"{_string(k)}:{v}" for k, v in pairs) + "}"
    ),
    any_text,
)


def _assert_json_answer(answer, ok: tuple[int, ...]) -> None:
    assert answer.status_code < 500, answer.content
    body = answer.json()
    if answer.status_code not in ok:
        assert set(body) == {"code", "message", "field"}


@given(raw=task_bodies)
def test_any_task_body_gets_json_never_a_500(client, bearer, raw):
    answer = client.post(
        "/api/tasks", raw.encode("utf-8", "surrogatepass"), "application/json", headers=bearer
    )
    _assert_json_answer(answer, ok=(201,))
    if answer.status_code == 201:
        assert CodingTask.objects.filter(pk=answer.json()["id"]).exists()


@given(raw=task_bodies)
def test_any_continue_body_gets_json_never_a_500(client, user, bearer, raw):
    answer = client.post(
        "/api/tasks/1/continue",
        raw.encode("utf-8", "surrogatepass"),
        "application/json",
        headers=bearer,
    )
    _assert_json_answer(answer, ok=())


message_bodies = st.one_of(
    json_text(["text", "prompt"]),
    st.lists(st.tuples(st.just("text"), _values), max_size=3).map(
        lambda pairs: "{" + ",".join(f"{_string(k)}:{v}" for k, v in pairs) + "}"
    ),
    any_text,
)


@given(raw=message_bodies, finished=st.booleans())
def test_any_message_body_gets_json_never_a_500(client, user, bearer, raw, finished):
    status = TaskStatus.SUCCEEDED if finished else TaskStatus.RUNNING
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b.git", status=status
    )
    answer = client.post(
        f"/api/tasks/{task.pk}/messages",
        raw.encode("utf-8", "surrogatepass"),
        "application/json",
        headers=bearer,
    )
    _assert_json_answer(answer, ok=(201,))
    if answer.status_code == 201:
        assert answer.json()["kind"] == ("follow_up" if finished else "message")


@given(raw=task_bodies)
def test_any_run_again_body_gets_json_never_a_500(client, user, bearer, raw):
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b.git", prompt="p", status=TaskStatus.FAILED
    )
    answer = client.post(
        f"/api/tasks/{task.pk}/run-again",
        raw.encode("utf-8", "surrogatepass"),
        "application/json",
        headers=bearer,
    )
    _assert_json_answer(answer, ok=(201,))


@given(
    name=st.sampled_from(["limit", "offset", "status", "wait"]),
    value=st.one_of(number_text, any_text),
)
def test_any_query_gets_json_never_a_500(client, bearer, name, value):
    encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
    path = "/api/tasks/1" if name == "wait" else "/api/tasks"
    if name == "wait":
        encoded = encoded if not encoded.lstrip("-").isdigit() or len(encoded) > 3 else "0"
    _assert_json_answer(client.get(f"{path}?{name}={encoded}", headers=bearer), ok=(200,))


WEBHOOK_FIELDS = ["action", "comment", "body", "user", "login", "issue", "number", "id"]
WEBHOOK_FIELDS += ["repository", "full_name", "clone_url", "pull_request", "head", "ref", "title"]


@given(
    raw=st.one_of(json_text(WEBHOOK_FIELDS), any_text),
    event=st.sampled_from(["issue_comment", "pull_request_review_comment", "ping", ""]),
)
def test_any_signed_delivery_gets_an_answer_never_a_500(client, settings, raw, event):
    settings.GITHUB_WEBHOOK_SECRET = "s"
    body = raw.encode("utf-8", "surrogatepass")
    signature = "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    answer = client.post(
        "/api/github/webhook",
        body,
        "application/json",
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "d-" + hashlib.sha256(body).hexdigest()[:30],
            "X-Hub-Signature-256": signature,
        },
    )
    assert answer.status_code in (200, 400), answer.content
    assert not CodingTask.objects.exists()  # nobody has a connected account here
