"""Bad input is refused before any container exists; pages show only the owner's tasks."""

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import CodingTask, TaskStatus
from tasks.validation import TaskInputError, branch_name_check, prompt_check, repo_url_check
from tests.tasks.conftest import task_make

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("ssh://git@github.com/a/b.git", "Only https://"),
        ("git@github.com:a/b.git", "Only https://"),
        ("http://github.com/a/b.git", "Only https://"),
        ("ext::sh -c touch% /tmp/pwned", "spaces or control"),
        ("--upload-pack=touch /tmp/pwned", "spaces or control"),
        ("-oProxyCommand=id", "Only https://"),
        ("https://github.com/a/b.git;rm -rf /", "spaces or control"),
        ("https://user:ghp_secret@github.com/a/b.git", "Remove the user name or token"),
        ("https://github.com", "repository path"),
        ("https:///a/b.git", "host name"),
        ("file:///etc", "turned off"),
        ("", "Enter the repository URL"),
        ("https://github.com/a/b\n.git", "spaces or control"),
        ("https://github.com/a/b.git?access_token=ghp_x", "query"),
        ("https://github.com/a/b.git#frag", "fragment"),
        # Only public hosts: the form says so before any container.
        ("https://localhost/a/b.git", "a loopback name"),
        ("https://LOCALHOST.:8443/a/b.git", "a loopback name"),
        ("https://git.localhost/a/b.git", "a loopback name"),
        ("https://127.0.0.1:8765/x.git", "a loopback address"),
        ("https://[::1]/x.git", "a loopback address"),
        ("https://10.0.0.1/x.git", "a private address"),
        ("https://192.168.1.10/x.git", "a private address"),
        ("https://169.254.169.254/latest/x.git", "cloud metadata address"),
        ("https://[::ffff:10.0.0.1]/x.git", "private address, embedded in an IPv6 address"),
        ("https://100.64.0.1/x.git", "CGNAT"),
        ("https://0.0.0.0/x.git", "unspecified address"),
        ("https://127.1/x.git", "a loopback address"),
        ("https://0x7f.0.0.1/x.git", "a loopback address"),
        ("https://0177.0.0.1/x.git", "a loopback address"),
        ("https://2130706433/x.git", "a loopback address"),
        ("https://github.com:99999/a/b.git", "port"),
    ],
)
def test_bad_repository_urls_are_refused(url, phrase):
    with pytest.raises(TaskInputError, match=phrase) as info:
        repo_url_check(url=url)
    assert info.value.field == "repo_url"


def test_https_urls_pass(settings):
    assert repo_url_check(url=" https://github.com/a/b.git ") == "https://github.com/a/b.git"
    # A public IP literal is a host like any other: it passes when the allow list names it.
    with pytest.raises(TaskInputError, match="AGENT_EGRESS_ALLOW"):
        repo_url_check(url="https://8.8.8.8/a/b.git")
    settings.AGENT_EGRESS_ALLOW = [*settings.AGENT_EGRESS_ALLOW, "8.8.8.8"]
    assert repo_url_check(url="https://8.8.8.8/a/b.git") == "https://8.8.8.8/a/b.git"


def test_local_repositories_only_below_the_root_and_only_git(settings, tmp_path):
    repo = tmp_path / "root" / "repo.git"
    repo.mkdir(parents=True)
    (repo / "HEAD").write_text("ref: refs/heads/main\n")
    settings.AGENT_ALLOW_LOCAL_REPOS = True
    settings.AGENT_LOCAL_REPOS_ROOT = ""
    with pytest.raises(TaskInputError, match="AGENT_LOCAL_REPOS_ROOT"):
        repo_url_check(url=f"file://{repo}")
    settings.AGENT_LOCAL_REPOS_ROOT = str(tmp_path / "root")
    assert repo_url_check(url=f"file://{repo}") == f"file://{repo}"
    # Outside the root, a plain folder, or a missing path: one answer that reveals nothing.
    for path in ("/etc", "/work/main", str(tmp_path / "root"), str(tmp_path / "root/nope")):
        with pytest.raises(TaskInputError, match="No git repository at that path"):
            repo_url_check(url=f"file://{path}")
    with pytest.raises(TaskInputError, match="absolute"):
        repo_url_check(url=f"file://{repo}/../../etc")


@pytest.mark.parametrize(
    "branch",
    [
        "--help",
        "-f",
        "a..b",
        "$(id)",
        "a b",
        "a;rm",
        "x~1",
        "x^",
        "a:b",
        "a?",
        "a*",
        "a[b",
        "a\\b",
        "/a",
        "a/",
        "a//b",
        "a.",
        ".hidden",
        "a/.x",
        "x.lock",
        "@",
        "a@{1}",
        "a\x00b",
        "x" * 256,
    ],
)
def test_bad_branch_names_are_refused(branch):
    with pytest.raises(TaskInputError, match=r"^branch: The branch name "):
        branch_name_check(branch=branch)


@pytest.mark.parametrize("branch", ["main", "feature/x-1", "release-2.0", "user@host", ""])
def test_good_branch_names_pass(branch):
    assert branch_name_check(branch=branch) == branch


def test_submit_form_refuses_injection_and_creates_nothing(user_client):
    response = user_client.post(
        reverse("tasks:list"),
        {"repo_url": "https://github.com/a/b.git", "branch": "--upload-pack=id", "prompt": "x"},
    )
    assert response.status_code == 200
    assert b"git would refuse it" in response.content
    assert CodingTask.objects.count() == 0


def test_submit_form_keeps_what_was_typed_on_error(user_client):
    response = user_client.post(
        reverse("tasks:list"),
        {"repo_url": "ssh://git@x/y.git", "branch": "main", "prompt": "keep this prompt"},
    )
    assert b"Only https://" in response.content
    assert b"keep this prompt" in response.content


def test_empty_prompt_is_refused(user_client):
    response = user_client.post(
        reverse("tasks:list"), {"repo_url": "https://github.com/a/b.git", "prompt": "   "}
    )
    assert b"This field is required" in response.content
    assert CodingTask.objects.count() == 0


def test_prompt_checks_say_what_is_wrong(settings):
    with pytest.raises(TaskInputError, match="Write what the agent should do"):
        prompt_check(prompt=" \n ")
    settings.AGENT_PROMPT_MAX_CHARS = 10
    with pytest.raises(TaskInputError, match="11 characters; the limit is 10"):
        prompt_check(prompt="x" * 11)


def test_submit_queues_and_redirects(user_client, user, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    response = user_client.post(
        reverse("tasks:list"),
        {"repo_url": "https://github.com/a/b.git", "branch": "", "prompt": "add tests"},
    )
    task = CodingTask.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("tasks:detail", args=[task.pk])
    assert task.owner == user
    assert task.status == TaskStatus.QUEUED


make_task = task_make


def test_list_shows_own_tasks_newest_first(user_client, user, other_user):
    first = make_task(user, prompt="first")
    second = make_task(user, prompt="second", status=TaskStatus.SUCCEEDED)
    theirs = make_task(other_user, repo_url="https://github.com/other/secret.git")
    content = user_client.get(reverse("tasks:list")).content.decode()
    assert content.index(f'tasks/{second.pk}/"') < content.index(f'tasks/{first.pk}/"')
    assert "badge-succeeded" in content
    assert "other/secret" not in content
    assert f"tasks/{theirs.pk}/" not in content


def test_another_users_task_is_a_404(user_client, other_user):
    theirs = make_task(other_user)
    assert user_client.get(reverse("tasks:detail", args=[theirs.pk])).status_code == 404
    assert user_client.post(reverse("tasks:cancel", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == TaskStatus.QUEUED


def test_detail_page_title_is_the_task_and_its_script_runs_once(user_client, user):
    task = make_task(user, status=TaskStatus.RUNNING)
    page = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert f"Task {task.pk}" in title
    assert "<script" not in title
    assert page.count("resume-countdown") <= 2  # the countdown script, once


def test_detail_polls_while_running_and_shows_the_diff_when_done(user_client, user):
    running = make_task(user, status=TaskStatus.RUNNING, log="Claude Code started\n")
    page = user_client.get(reverse("tasks:detail", args=[running.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert "Claude Code started" in page
    fragment = user_client.get(reverse("tasks:live", args=[running.pk]), HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content
    assert b"task-live" in fragment.content

    done = make_task(
        user,
        status=TaskStatus.SUCCEEDED,
        diff="diff --git a/x b/x\n@@ -1 +1 @@\n-old\n+new\n",
        changed_files=[{"status": "M", "path": "x"}],
        result_text="All done.",
    )
    page = user_client.get(reverse("tasks:detail", args=[done.pk])).content.decode()
    assert "every 2s" not in page
    assert '<span class="add">+new</span>' in page
    assert '<span class="del">-old</span>' in page
    assert "All done." in page
    assert "modified" in page
    finished = user_client.get(reverse("tasks:live", args=[done.pk]), HTTP_HX_REQUEST="true")
    assert finished["HX-Refresh"] == "true"


def test_direction_characters_from_the_agent_are_shown_as_escapes(user_client, user):
    # "invoice\u202egpj.sh" reads "invoicehs.jpg" when the override acts.
    done = make_task(
        user,
        status=TaskStatus.SUCCEEDED,
        diff="diff --git a/invoice\u202egpj.sh b/invoice\u202egpj.sh\n+echo \u2066hi\u2069\n",
        changed_files=[{"status": "A", "path": "invoice\u202egpj.sh"}],
        log="Wrote invoice\u202egpj.sh\u200f\n",
        result_text="Renamed it to invoice\u202egpj.sh",
    )
    page = user_client.get(reverse("tasks:detail", args=[done.pk])).content.decode()
    for char in ("\u202e", "\u2066", "\u2069", "\u200f"):
        assert char not in page
    assert "<code>invoice\\u202egpj.sh</code>" in page
    assert '<span class="add">+echo \\u2066hi\\u2069</span>' in page
    assert "Wrote invoice\\u202egpj.sh\\u200f" in page
    assert "Renamed it to invoice\\u202egpj.sh" in page
    # The answer again in a follow-up's conversation, and a message built from the agent's words.
    follow_up = make_task(
        user,
        parent=done,
        status=TaskStatus.FAILED,
        error_message="Claude rejected the credentials (\u202edetail).",
    )
    page = user_client.get(reverse("tasks:detail", args=[follow_up.pk])).content.decode()
    assert "\u202e" not in page
    assert page.count("Renamed it to invoice\\u202egpj.sh") == 1
    assert page.count("Claude rejected the credentials (\\u202edetail).") == 2  # box, answer


def test_the_admin_shows_the_agents_words_with_escapes_too(admin_client, user):
    task = make_task(
        user,
        status=TaskStatus.FAILED,
        log="Wrote invoice\u202egpj.sh\n",
        result_text="Renamed invoice\u202egpj.sh",
        error_message="The agent says \u2066hi\u2069",
        diff="+echo \u200fx\n",
        limit={"detail": "limit\u202e"},
        pull_request={"error": "push refused\u202e"},
    )
    page = admin_client.get(reverse("admin:tasks_codingtask_change", args=[task.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    for char in ("\u202e", "\u2066", "\u2069", "\u200f"):
        assert char not in html
    assert "Wrote invoice\\u202egpj.sh" in html
    assert "push refused\\u202e" in html
    assert ">failed<" in html or "Failed" in html  # a field with choices shows its label


def test_cancel_queued_task_from_the_page(user_client, user):
    task = make_task(user)
    response = user_client.post(reverse("tasks:cancel", args=[task.pk]), follow=True)
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert b"Task cancelled." in response.content


def test_cancel_needs_post_and_csrf(client, user):
    task = make_task(user)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(reverse("tasks:cancel", args=[task.pk])).status_code == 403
    assert strict.get(reverse("tasks:cancel", args=[task.pk])).status_code == 200  # asks only
    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED


def test_home_goes_to_tasks(user_client):
    assert user_client.get("/")["Location"] == reverse("tasks:list")


def test_the_task_page_shows_what_the_gateway_saw(user_client, user):
    done = make_task(
        user,
        status=TaskStatus.SUCCEEDED,
        result_text="All done.",
        usage={
            "requests": 3,
            "input_tokens": 1200,
            "output_tokens": 345,
            "cache_creation_input_tokens": 7,
            "cache_read_input_tokens": 890,
            "status_429": 1,
            "status_529": 0,
            "ratelimit_headers": {"anthropic-ratelimit-unified-status": "allowed_warning"},
        },
    )
    page = user_client.get(reverse("tasks:detail", args=[done.pk])).content.decode()
    assert "Model API usage" in page
    assert "<dt>Requests</dt><dd>3</dd>" in page
    assert "<dt>Input tokens</dt><dd>1200</dd>" in page
    assert "<dt>Output tokens</dt><dd>345</dd>" in page
    assert "7 written, 890 read" in page
    assert "1 rate limited (429), 0 overloaded (529)" in page
    assert "anthropic-ratelimit-unified-status</code>: allowed_warning" in page
    # A task that never reached the gateway (e.g. failed before it) shows no usage section.
    failed = make_task(user, status=TaskStatus.FAILED, error_message="No way to authenticate")
    page = user_client.get(reverse("tasks:detail", args=[failed.pk])).content.decode()
    assert "Model API usage" not in page


@pytest.mark.parametrize(
    ("method", "name", "htmx"),
    [
        ("get", "tasks:list", False),
        ("post", "tasks:list", False),
        ("get", "tasks:detail", False),
        ("get", "tasks:live", True),  # the live fragment (log while running)
        ("post", "tasks:cancel", False),
        ("post", "tasks:run_now_with_api_key", False),
        ("get", "tasks:pull_request_status", True),  # the pull request's state and error
        ("get", "usage:page", False),  # credential state and usage
    ],
)
def test_pages_with_logs_or_credential_state_are_never_cached(
    user_client, user, method, name, htmx
):
    task = make_task(user, status=TaskStatus.RUNNING, log="secret-ish log line\n")
    args = [task.pk] if name.startswith("tasks:") and name != "tasks:list" else []
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = getattr(user_client, method)(reverse(name, args=args), **extra)
    assert "no-store" in response["Cache-Control"], (name, response.status_code)


def test_a_loopback_git_server_is_accepted_only_when_the_test_setting_names_it(settings):
    url = "https://127.0.0.1:8765/x.git"
    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = ["127.0.0.1:8765"]
    assert repo_url_check(url=url) == url
    with pytest.raises(TaskInputError):
        repo_url_check(url="https://127.0.0.1:8766/x.git")
    settings.TESTING = False  # production settings never honour it
    with pytest.raises(TaskInputError):
        repo_url_check(url=url)
