"""A task page's live part: its poll costs nothing when nothing changed, sends only the log's
new tail when only the log did, and never shows another user's task; words on the page."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from environments.models import TaskEnvironment
from environments.services import task_environment_record
from tasks.follow_ups import task_message_send
from tasks.models import CodingTask, TaskConversation, TaskLogProgress, TaskMessage, TaskStatus
from tasks.run.log import TaskLog
from tasks.selectors import LIVE_TAIL_MAX_CHARS
from tests.tasks.conftest import task_make

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def cursor(html: str) -> dict[str, str]:
    """The state and log count the live part was drawn with (what htmx sends back)."""
    return dict(re.findall(r'name="(state|since)" value="([^"]*)"', html))


def poll(client, task, params):
    return client.get(reverse("tasks:live", args=[task.pk]), params, **HTMX)


def running_with_log(user, text: str) -> CodingTask:
    task = task_make(user, status=TaskStatus.RUNNING, started_at=timezone.now())
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
    log.feed(text.encode())
    log.flush()
    return task


def test_an_unchanged_task_answers_204_with_one_query(user_client, user):
    task = running_with_log(user, "first line\n")
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    params = cursor(page)
    assert params == {"state": "running.0.", "since": str(len("first line\n"))}
    user_client.get(reverse("tasks:live", args=[task.pk]), params, **HTMX)  # session warm
    with CaptureQueriesContext(connection) as queries:
        response = poll(user_client, task, params)
    assert response.status_code == 204
    assert response.content == b""
    task_queries = [q["sql"] for q in queries if "tasks_codingtask" in q["sql"]]
    assert len(task_queries) == 1


def test_a_grown_log_sends_only_its_new_tail(user_client, user):
    task = running_with_log(user, "first line\n")
    params = cursor(user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
    log.appended = log._flushed = int(params["since"])  # the same run, going on
    log.lines.append("first line\n")
    log.feed(b"second <b>line</b>\n")
    log.flush()
    response = poll(user_client, task, params)
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Reswap"] == "none"  # only the out-of-band tail and cursor
    assert 'hx-swap-oob="beforeend:#task-log">second &lt;b&gt;line&lt;/b&gt;\n</div>' in html
    assert "first line" not in html
    assert cursor(html) == {
        "state": "running.0.",
        "since": str(len("first line\nsecond <b>line</b>\n")),
    }
    assert poll(user_client, task, cursor(html)).status_code == 204


def test_the_logs_new_tail_shows_direction_characters_as_escapes(user_client, user):
    task = running_with_log(user, "first line\n")
    params = cursor(user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
    log.appended = log._flushed = int(params["since"])  # the same run, going on
    log.feed("Wrote invoice\u202egpj.sh\n".encode())
    log.flush()
    html = poll(user_client, task, params).content.decode()
    assert "Wrote invoice\\u202egpj.sh\n" in html
    assert "\u202e" not in html


def test_a_new_status_draws_the_whole_part_again(user_client, user):
    task = running_with_log(user, "first line\n")
    params = cursor(user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    CodingTask.objects.filter(pk=task.pk).update(cancel_requested=True)
    html = poll(user_client, task, params).content.decode()
    assert 'id="task-live"' in html
    assert "stopping…" in html
    assert cursor(html)["state"] == "running.1."
    CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.CANCELLED)
    assert poll(user_client, task, cursor(html))["HX-Refresh"] == "true"


def test_the_setup_reaches_an_open_page_while_the_task_runs(user_client, user):
    task = running_with_log(user, "Environment node v1: running the setup script\n")
    TaskEnvironment.objects.create(task=task, name="node")
    params = cursor(user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    # The setup phase writes its facts and its log as it goes (tasks.run.setup).
    task_environment_record(task_id=task.pk, cache="miss")
    task_environment_record(task_id=task.pk, setup_log="npm ci: added 812 packages\n")
    html = poll(user_client, task, params).content.decode()
    assert "added 812 packages" in html
    assert "Cache miss: setup ran" in html
    params = cursor(html)
    assert poll(user_client, task, params).status_code == 204
    # A log the same length as before, as one cut to its size limit stays: still drawn again.
    task_environment_record(task_id=task.pk, setup_log="npm ci: added 999 packages\n")
    assert "added 999 packages" in poll(user_client, task, params).content.decode()


def test_the_credential_a_run_chose_reaches_an_open_page(user_client, user):
    task = running_with_log(user, "Cloning\n")
    params = cursor(user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    # The runner records the credential once the task is running (tasks.run.runner).
    CodingTask.objects.filter(pk=task.pk).update(
        auth_method="api_key",
        auth_source="user",
        auth_fallback=True,
        auth_note="OAuth tokens unusable; falling back to your API key",
    )
    html = poll(user_client, task, params).content.decode()
    assert "<strong>fallback</strong>" in html
    assert "user API key (fallback)" in html
    assert poll(user_client, task, cursor(html)).status_code == 204


def sent_list(html_text: str) -> str:
    """The sent messages' list as the poll swaps it in (out of band), in plain text."""
    start = html_text.index('<ol class="stack" id="sent-messages"')
    return unescape(html_text[start : html_text.index("</ol>", start)])


def test_the_sent_messages_follow_the_task_without_a_reload(user_client, user, settings):
    settings.AGENT_MESSAGES = True
    task = running_with_log(user, "first line\n")
    params = cursor(user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    # Sent from elsewhere (the API, another tab): the page's list gets it at its next poll.
    task_message_send(task=task, text="also the empty case")
    response = poll(user_client, task, params)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="sent-messages" hx-swap-oob="true"' in page
    assert "also the empty case" in sent_list(page)
    assert "waiting for the agent's next step" in sent_list(page)
    params = cursor(page)
    assert poll(user_client, task, params).status_code == 204

    # The agent takes it.
    TaskMessage.objects.filter(task=task).update(delivered_at=timezone.now())
    page = poll(user_client, task, params).content.decode()
    assert "taken by the agent" in sent_list(page)
    params = cursor(page)

    # It has answered everything; a message now waits for the task's end, and says so.
    TaskConversation.objects.filter(pk=task.pk).update(messages_closed=True)
    assert poll(user_client, task, params).status_code == 204
    task_message_send(task=task, text="and the docs")
    page = poll(user_client, task, params).content.decode()
    assert "it becomes a follow-up when the task finishes" in sent_list(page)
    params = cursor(page)
    with CaptureQueriesContext(connection) as queries:
        assert poll(user_client, task, params).status_code == 204
    assert len([q for q in queries if "tasks_codingtask" in q["sql"]]) == 1


def test_a_log_cut_or_restarted_past_the_page_draws_the_whole_part(user_client, user):
    task = running_with_log(user, "old run\n")
    params = cursor(user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    # The log lost more than the page is missing (its start cut, or a new run's log).
    TaskLogProgress.objects.filter(pk=task.pk).update(chars_written=int(params["since"]) + 50)
    html = poll(user_client, task, params).content.decode()
    assert 'id="task-live"' in html
    assert cursor(html)["since"] == str(int(params["since"]) + 50)


def test_too_much_new_log_draws_the_whole_part(user_client, user):
    task = running_with_log(user, "x\n")
    params = cursor(user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode())
    TaskLogProgress.objects.filter(pk=task.pk).update(chars_written=LIVE_TAIL_MAX_CHARS + 10)
    assert 'id="task-live"' in poll(user_client, task, params).content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"state": "running.0.", "since": "-5"},
        {"state": "running.0.", "since": "9" * 40},
        {"state": "running.0.", "since": "١٢"},  # Arabic-Indic digits: isdigit, not a count
        {"state": "x" * 100_000, "since": "3"},
        {"state": "running.0.\x00", "since": "3"},
    ],
)
def test_odd_poll_parameters_get_the_whole_part(user_client, user, params):
    task = running_with_log(user, "ab\n")
    response = poll(user_client, task, params)
    assert response.status_code == 200
    assert 'id="task-live"' in response.content.decode()


def test_another_users_task_is_a_404(user_client, other_user):
    theirs = running_with_log(other_user, "their secret log\n")
    for params in ({}, {"state": "running.0.", "since": "3"}):
        response = poll(user_client, theirs, params)
        assert response.status_code == 404
        assert b"their secret log" not in response.content


def test_a_logged_out_poll_sees_nothing(client, user):
    task = running_with_log(user, "private\n")
    response = client.get(reverse("tasks:live", args=[task.pk]), **HTMX)
    assert response.status_code in (302, 403)
    assert b"private" not in response.content


def test_durations_are_in_human_units(user_client, user):
    start = timezone.now() - timedelta(minutes=5)
    task = task_make(
        user,
        status=TaskStatus.SUCCEEDED,
        started_at=start,
        finished_at=start + timedelta(seconds=27),
        usage={"duration_ms": 22_910},
        limit={"waits": 1, "waited_seconds": 672},
    )
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "<dt>Agent time</dt><dd>23 s</dd>" in page
    assert "(11 min 12 s waited)" in page
    assert "(27 s)" in page
    for raw in ("22910", " ms<", "672 s", "0\xa0minutes", "0 minutes"):
        assert raw not in page


def test_a_notice_is_shown_once_then_the_live_part_drops_it(user_client, user):
    response = user_client.post(
        reverse("tasks:list"), {"repo_url": "https://github.com/a/b.git", "prompt": "Do it"}
    )
    task = CodingTask.objects.get(owner=user)
    page = user_client.get(response["Location"]).content.decode()
    assert page.count(f"Task {task.pk} queued.") == 1
    live = page[page.index('id="task-live"') :]
    assert f"Task {task.pk} queued." in live  # inside the part the poll replaces
    CodingTask.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING)
    again = poll(user_client, task, cursor(page)).content.decode()
    assert 'id="task-live"' in again
    assert "queued." not in again
    assert (
        "queued." not in user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    )


def test_cancel_asks_first_on_its_own_page(user_client, user):
    task = task_make(user, status=TaskStatus.RUNNING)
    detail = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert f'href="{reverse("tasks:cancel", args=[task.pk])}"' in detail
    assert f'action="{reverse("tasks:cancel", args=[task.pk])}"' not in detail  # no one-click
    ask = user_client.get(reverse("tasks:cancel", args=[task.pk])).content.decode()
    assert f"Cancel task {task.pk}?" in ask
    assert "Yes, cancel the task" in ask
    assert "No, keep it" in ask
    task.refresh_from_db()
    assert not task.cancel_requested  # asking changes nothing
    user_client.post(reverse("tasks:cancel", args=[task.pk]))
    task.refresh_from_db()
    assert task.cancel_requested


def test_cancel_of_another_users_task_is_a_404(user_client, other_user):
    theirs = task_make(other_user, status=TaskStatus.QUEUED)
    assert user_client.get(reverse("tasks:cancel", args=[theirs.pk])).status_code == 404
    assert user_client.post(reverse("tasks:cancel", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == TaskStatus.QUEUED


def test_the_cancel_page_of_a_finished_task_offers_nothing(user_client, user):
    task = task_make(user, status=TaskStatus.SUCCEEDED)
    page = user_client.get(reverse("tasks:cancel", args=[task.pk])).content.decode()
    assert "already succeeded" in page
    assert "Yes, cancel" not in page


def test_the_task_list_follows_its_tasks_only_while_one_is_queued_or_running(
    user_client, user, other_user
):
    mine = task_make(user, status=TaskStatus.RUNNING, prompt="my running task")
    task_make(other_user, status=TaskStatus.RUNNING, prompt="their private prompt")
    page = user_client.get(reverse("tasks:list")).content.decode()
    assert 'hx-trigger="every 5s"' in page
    CodingTask.objects.filter(pk=mine.pk).update(status=TaskStatus.SUCCEEDED)
    fragment = user_client.get(reverse("tasks:list"), {"page": "1"}, **HTMX).content.decode()
    assert "<html" not in fragment
    assert 'id="task-list-live"' in fragment
    assert "Succeeded" in fragment
    assert "their private prompt" not in fragment
    assert "every 5s" not in fragment  # nothing left to follow: the polling stops
    assert "every 5s" not in user_client.get(reverse("tasks:list")).content.decode()


def test_the_task_list_says_how_long_ago_in_human_units(user_client, user):
    task = task_make(user, status=TaskStatus.QUEUED)
    CodingTask.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(seconds=27))
    page = user_client.get(reverse("tasks:list")).content.decode()
    assert re.search(r">2[7-9] s ago<", page)
    assert "0\xa0minutes" not in page
