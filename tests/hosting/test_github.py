"""The GitHub provider and the pull-request services against the loopback fake API: answers,
and every refusal as the message a user reads."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hosting.errors import HostingError, Refusal
from hosting.github import GitHubProvider, expiry_parse, github_token_check
from hosting.models import GitHubConnection
from hosting.providers import Comment, Issue
from hosting.repositories import github_repository_parse
from hosting.services import (
    comment_get,
    comment_react,
    github_connection_check,
    github_connection_identify,
    github_connection_remove,
    github_connection_save,
    issue_get,
    pull_request_branch_name,
    pull_request_get,
    pull_request_open,
    pull_request_text,
)
from tests.hosting.conftest import new_token

REPO_URL = "https://127.0.0.1:9999/acme/app.git"  # host = the fake API's host, like github.com


@pytest.fixture
def api(github_api, settings, token):
    settings.GITHUB_API_URL = github_api.url
    github_api.token_add(token, login="octo", expires="2027-01-31 12:00:00 UTC")
    github_api.repository_add("acme/app", private=True)
    github_api.grant(token, "acme/app", push=True)
    return github_api


def test_token_info_reports_owner_and_expiry(api, token):
    info = GitHubProvider(token=token).token_info()
    assert info.login == "octo"
    assert info.user_id == api.user_id("octo")  # the id a rename keeps
    assert info.name == "Octo Cat"
    assert info.expires_at == datetime(2027, 1, 31, 12, tzinfo=UTC)
    assert info.scopes is None  # fine-grained: GitHub lists no scopes


def test_expiry_header_forms():
    assert expiry_parse("2026-12-31 23:59:59 UTC") == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert expiry_parse("2026-12-31 23:59:59 +0100") == datetime(
        2026, 12, 31, 22, 59, 59, tzinfo=UTC
    )
    assert expiry_parse("") is None
    assert expiry_parse("soon") is None


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "Paste a GitHub token"),
        ("Bearer github_pat_" + "a" * 40, "without 'Bearer'"),
        ("sk-ant-api03-" + "a" * 40, "does not look like a GitHub token"),
        ("github_pat_abc def" + "a" * 30, "characters GitHub tokens never contain"),
        ("ghp_shrt9", "cut off"),
    ],
)
def test_token_format_is_checked_before_asking_github(raw, words):
    with pytest.raises(HostingError) as caught:
        github_token_check(raw=raw)
    assert words in caught.value.message
    assert raw.strip()[4:] not in caught.value.message or not raw.strip()


def test_repository_access_with_and_without_write(api, token):
    repo = github_repository_parse(url=REPO_URL, api_url=api.url)
    access = GitHubProvider(token=token).repository_access(repo)
    assert access.can_push
    assert access.can_open_pull_requests
    assert access.private
    assert access.default_branch == "main"
    reader = new_token()
    api.token_add(reader)
    api.grant(reader, "acme/app", push=False)
    assert not GitHubProvider(token=reader).repository_access(repo).can_push


def test_classic_token_without_repo_scope_cannot_push(api):
    classic = new_token("ghp_")
    api.token_add(classic, scopes="read:user, gist")
    api.grant(classic, "acme/app", push=True)
    repo = github_repository_parse(url=REPO_URL, api_url=api.url)
    access = GitHubProvider(token=classic).repository_access(repo)
    assert not access.can_push
    assert "repo scope" in access.notes[0]


@pytest.mark.parametrize(
    ("url", "kind", "words"),
    [
        ("https://gitlab.com/acme/app.git", Refusal.NOT_ON_GITHUB, "not on 127.0.0.1"),
        ("git@github.com:acme/app.git", Refusal.NOT_ON_GITHUB, "https URL"),
        ("https://127.0.0.1/acme/app/tree/main", Refusal.INVALID, "owner/name"),
    ],
)
def test_repository_urls_not_on_this_github(url, kind, words, settings):
    with pytest.raises(HostingError) as caught:
        github_repository_parse(url=url, api_url="http://127.0.0.1:1")
    assert caught.value.kind == kind
    assert words in caught.value.message


def test_github_com_and_enterprise_hosts():
    ref = github_repository_parse(url="acme/app", api_url="https://api.github.com")
    assert ref.clone_url == "https://github.com/acme/app.git"
    ghe = github_repository_parse(
        url="https://ghe.example.com/acme/app", api_url="https://ghe.example.com/api/v3"
    )
    assert ghe.full_name == "acme/app"


# --- the connection on the settings page ------------------------------------------------------


@pytest.mark.django_db
def test_check_reports_token_and_repository(api, token, user):
    check = github_connection_check(user=user, token=token, repository="acme/app")
    assert check.token is not None
    assert check.token.login == "octo"
    assert check.repository is not None
    assert check.repository.can_push
    missing = github_connection_check(user=user, token=token, repository="acme/gone")
    assert missing.repository_error is not None
    assert missing.repository_error.kind == Refusal.REPOSITORY_NOT_FOUND
    bad = github_connection_check(user=user, token=new_token(), repository="acme/app")
    assert bad.token_error is not None
    assert bad.token_error.kind == Refusal.TOKEN_INVALID
    assert bad.repository is None


@pytest.mark.django_db
def test_save_replace_remove(api, token, user):
    saved = github_connection_save(user=user, token=f"  {token}\n")
    assert (saved.login, saved.github_id) == ("octo", api.user_id("octo"))
    assert saved.token_last4 == token[-4:]
    raw = GitHubConnection.objects.filter(pk=saved.pk).values_list("token", flat=True)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM hosting_githubconnection")
        (stored,) = cursor.fetchone()
    assert token not in stored
    assert raw[0] == token
    with pytest.raises(HostingError) as caught:  # a refused token replaces nothing
        github_connection_save(user=user, token=new_token())
    assert caught.value.kind == Refusal.TOKEN_INVALID
    assert GitHubConnection.objects.get(owner=user).token == token
    assert github_connection_remove(user=user)
    assert not github_connection_remove(user=user)


def test_identify_fills_in_the_id_of_a_connection_saved_before_ids_were_kept(api, token, user):
    connection = GitHubConnection.objects.create(owner=user, token=token, login="octo")
    api.token_add(token, login="octo-renamed")
    github_connection_identify(connection=connection)
    connection.refresh_from_db()
    assert (connection.github_id, connection.login) == (api.user_id("octo-renamed"), "octo-renamed")


# --- comments ---------------------------------------------------------------------------------


@pytest.mark.parametrize("review", [False, True])
def test_a_comment_as_github_has_it(api, token, user, review):
    GitHubConnection.objects.create(owner=user, token=token, login="octo")
    written = api.comment_add("acme/app", 7, "@claude-runner go", review=review)
    found = comment_get(user=user, repo_url=REPO_URL, comment_id=written["id"], review=review)
    assert found == Comment(
        id=written["id"],
        author_id=api.user_id("octo"),
        author_login="octo",
        body="@claude-runner go",
        repository="acme/app",
        number=7,
    )
    # Issue and review comments are numbered apart: the other kind has no such comment.
    with pytest.raises(HostingError) as caught:
        comment_get(user=user, repo_url=REPO_URL, comment_id=written["id"], review=not review)
    assert caught.value.message == (
        f"GitHub has no {'' if review else 'review '}comment {written['id']} in acme/app that "
        "your token can see."
    )


@pytest.mark.parametrize(("review", "kind"), [(False, "issues"), (True, "pulls")])
def test_a_reaction_goes_to_the_comment_of_its_kind(api, token, user, review, kind):
    GitHubConnection.objects.create(owner=user, token=token, login="octo")
    written = api.comment_add("acme/app", 7, "hi", review=review)
    comment_react(user=user, repo_url=REPO_URL, comment_id=written["id"], review=review)
    [posted] = [r for r in api.requests if r.path.endswith("/reactions")]
    assert (posted.path, posted.status) == (
        f"/repos/acme/app/{kind}/comments/{written['id']}/reactions",
        201,
    )


def test_an_issue_or_a_pull_request_by_its_number(api, token, user):
    """GitHub numbers the two together, and its issues endpoint answers for both."""
    GitHubConnection.objects.create(owner=user, token=token, login="octo")
    api.issue_add("acme/app", 4, "The build is red")
    pull = pull_request_open(
        user=user, repo_url=REPO_URL, head="claude-runner/x", base="main", title="Fix", body=""
    )
    assert pull.number == 5  # after issue 4
    found = [issue_get(user=user, repo_url=REPO_URL, number=n) for n in (4, 5)]
    assert found == [
        Issue(number=4, title="The build is red", pull_request=False),
        Issue(number=5, title="Fix", pull_request=True),
    ]
    with pytest.raises(HostingError) as caught:
        issue_get(user=user, repo_url=REPO_URL, number=6)
    assert caught.value.message == (
        "GitHub has no issue or pull request #6 in acme/app that your token can see."
    )


# --- pull requests ----------------------------------------------------------------------------


def test_a_pull_request_says_which_repository_its_head_is_in(api, token, user):
    GitHubConnection.objects.create(owner=user, token=token, login="octo")
    for number, head in [(1, {"full_name": "evil/app"}), (2, None)]:  # None: a deleted fork
        api.pulls.append(
            {
                "repo": "acme/app",
                "number": number,
                "state": "open",
                "head": {"ref": "main", "repo": head},
                "base": {"ref": "main", "repo": {"full_name": "acme/app"}},
            }
        )
    heads = [
        pull_request_get(user=user, repo_url=REPO_URL, number=n).head_repository for n in (1, 2)
    ]
    assert heads == ["evil/app", ""]


def test_branch_name_and_text():
    assert pull_request_branch_name(task_id=12, prompt="Fix the login bug!\nDetails…") == (
        "claude-runner/12-fix-the-login-bug-details"
    )
    assert pull_request_branch_name(task_id=3, prompt="???") == "claude-runner/3-task"
    title, body = pull_request_text(
        prompt="Add a README section\n\nabout setup",
        summary="Added the section.",
        cost_usd=Decimal("0.0123"),
        task_url="http://runner.example/tasks/3/",
    )
    assert title == "Add a README section"
    assert "> Add a README section\n>\n> about setup" in body
    assert "Added the section." in body
    assert "$0.0123" in body
    assert "http://runner.example/tasks/3/" in body
    long_title, _ = pull_request_text(prompt="x" * 200, summary="", cost_usd=None, task_url="u")
    assert len(long_title) == 72
    assert long_title.endswith("…")


@pytest.mark.django_db
def test_pull_request_opened_once_then_exists(api, token, user):
    github_connection_save(user=user, token=token)
    pull = pull_request_open(
        user=user, repo_url=REPO_URL, head="claude-runner/1-x", base="main", title="T", body="B"
    )
    assert pull.number == 1
    assert pull.url.endswith("/acme/app/pull/1")
    with pytest.raises(HostingError) as caught:
        pull_request_open(
            user=user, repo_url=REPO_URL, head="claude-runner/1-x", base="main", title="T", body="B"
        )
    assert caught.value.kind == Refusal.PULL_REQUEST_EXISTS
    assert "#1" in caught.value.message
    assert pull.url in caught.value.message
    assert len(api.pulls_created()) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setup", "kind", "words"),
    [
        ("no_token", Refusal.NO_TOKEN, "Connect GitHub on the Code agent settings page"),
        ("revoked", Refusal.TOKEN_INVALID, "wrong, expired or revoked"),
        ("read_only", Refusal.NO_PERMISSION, "may not open pull requests in acme/app"),
        ("unknown_repo", Refusal.REPOSITORY_NOT_FOUND, "no repository acme/gone"),
        ("exists_race", Refusal.PULL_REQUEST_EXISTS, "already exists"),
        ("rate_limit", Refusal.RATE_LIMITED, "resets at"),
        ("secondary", Refusal.RATE_LIMITED, "try again in 60 seconds"),
        ("not_github", Refusal.NOT_ON_GITHUB, "not on 127.0.0.1"),
        ("server_error", Refusal.UNREACHABLE, "HTTP 502"),
    ],
)
def test_every_refusal_has_its_message(api, token, user, setup, kind, words):
    url = REPO_URL
    if setup != "no_token":
        github_connection_save(user=user, token=token)
    if setup == "revoked":
        GitHubConnection.objects.filter(owner=user).update(token=new_token())
    elif setup == "read_only":
        api.grant(token, "acme/app", push=False)
    elif setup == "unknown_repo":
        url = "https://127.0.0.1/acme/gone"
    elif setup == "exists_race":  # opened meanwhile by someone else: GitHub's 422
        api.fail_next(
            "POST",
            "/pulls",
            422,
            {
                "message": "Validation Failed",
                "errors": [
                    {"message": "A pull request already exists for acme:claude-runner/1-x."}
                ],
            },
        )
    elif setup == "rate_limit":
        api.rate_limit_next("GET", "/pulls", reset=int(time.time()) + 600)
    elif setup == "secondary":
        api.fail_next(
            "POST",
            "/pulls",
            403,
            {"message": "You have exceeded a secondary rate limit."},
            {"retry-after": "60"},
        )
    elif setup == "not_github":
        url = "https://gitlab.com/acme/app.git"
    elif setup == "server_error":
        api.fail_next("POST", "/pulls", 502, {"message": "Server Error"})
    with pytest.raises(HostingError) as caught:
        pull_request_open(
            user=user, repo_url=url, head="claude-runner/1-x", base="main", title="T", body="B"
        )
    assert caught.value.kind == kind, caught.value.message
    assert words in caught.value.message
    assert token not in caught.value.message


def test_unreachable_api_is_said_plainly(settings, token):
    settings.GITHUB_API_URL = "http://127.0.0.1:9"
    with pytest.raises(HostingError) as caught:
        GitHubProvider(token=token).token_info()
    assert caught.value.kind == Refusal.UNREACHABLE
    assert "Could not reach GitHub" in caught.value.message
