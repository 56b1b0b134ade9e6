"""One repository-URL rule set for its three users: the task form (tasks.validation), the
worker's git (hosting.git) and the pull-request host (hosting.repositories). A URL one of them
refuses for its shape, the others refuse with the same words, before any connection."""

import pytest
from hypothesis import example, given

from common.errors import InputError
from common.netpolicy import repository_url_parse
from hosting.errors import HostingError, Refusal
from hosting.git import git_remote_parse
from hosting.repositories import github_repository_parse
from tasks.validation import TaskInputError, repo_url_check
from tests.fuzz.strategies import repo_urls, url_ish

API = "https://api.github.com"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://a..b/x.git", "has an empty part"),
        ("https://.github.com/a/b.git", "has an empty part"),
        ("https://" + "a" * 64 + ".com/a/b.git", "longer than 63 characters"),
        ("https://bücher.example/a/b.git", "xn--"),
        ("https://git_hub.com/a/b.git", "only letters, digits and '-'"),
        ("https://[::1/a/b.git", "not a valid URL"),
        ("https://github.com:0/a/b.git", "port"),
        ("https://github.com", "repository path"),
        ("https://github.com/a/b.git#main", "fragment"),
        ("https://x-access-token@github.com/a/b.git", "Remove the user name"),
    ],
)
def test_every_user_of_a_repository_url_refuses_a_malformed_one_alike(url, words):
    with pytest.raises(TaskInputError) as form:
        repo_url_check(url=url)
    assert form.value.field == "repo_url"
    assert words in form.value.message
    with pytest.raises(HostingError) as git:
        git_remote_parse(url=url)
    assert git.value.kind == Refusal.INVALID
    assert git.value.message == form.value.message
    with pytest.raises(HostingError) as github:
        github_repository_parse(url=url, api_url=API)
    assert github.value.kind == Refusal.INVALID
    assert github.value.message == form.value.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://127.1/a/b.git", "loopback address"),
        ("https://0x7f.0.0.1/a/b.git", "loopback address"),
        ("https://[::ffff:169.254.169.254]/a/b.git", "cloud metadata address"),
        ("https://168.63.129.16/a/b.git", "cloud metadata address"),
        ("https://192.0.0.192/a/b.git", "cloud metadata address"),
        ("https://metadata.google.internal/a/b.git", "cloud metadata name"),
        ("https://git.example.com/a/b.git", "AGENT_EGRESS_ALLOW"),
        ("https://8.8.8.8/a/b.git", "AGENT_EGRESS_ALLOW"),
    ],
)
def test_the_form_and_the_worker_refuse_a_host_agents_may_not_reach_alike(url, words):
    with pytest.raises(TaskInputError) as form:
        repo_url_check(url=url)
    assert words in form.value.message
    with pytest.raises(HostingError) as git:
        git_remote_parse(url=url)
    assert git.value.kind == Refusal.EGRESS_REFUSED
    assert git.value.message == form.value.message


def test_a_host_on_the_allow_list_passes_the_form(settings):
    settings.AGENT_EGRESS_ALLOW = [*settings.AGENT_EGRESS_ALLOW, "8.8.8.8", "*.example.com"]
    assert repo_url_check(url="https://8.8.8.8/a/b.git") == "https://8.8.8.8/a/b.git"
    assert repo_url_check(url="https://git.example.com/a/b.git") == (
        "https://git.example.com/a/b.git"
    )
    assert git_remote_parse(url="https://git.example.com:8443/a/b.git").port == 8443


def _outcome(check):
    try:
        return ("accepted", check())
    except (InputError, HostingError) as exc:
        return ("refused", exc.message)


@given(url=url_ish | repo_urls)
@example(url="https://a..b/x.git")
@example(url="https://[::1")
@example(url="https://github.com:0/a/b.git")
def test_the_form_and_the_worker_decide_every_url_the_same(settings, url):
    form = _outcome(lambda: repo_url_check(url=url))
    git = _outcome(lambda: git_remote_parse(url=url).url)
    assert form == git


@given(url=url_ish | repo_urls)
@example(url="https://github.com/[")
@example(url="https://[::1")
def test_the_pull_request_host_accepts_only_what_the_parser_accepts(url):
    try:
        ref = github_repository_parse(url=url, api_url=API)
    except HostingError as exc:
        assert exc.message
        return
    parsed = repository_url_parse(url=ref.clone_url, local_allowed=False)
    assert (parsed.host, parsed.port) == (ref.host, ref.port)
    if "://" in url:
        assert repository_url_parse(url=url, local_allowed=False).host == ref.host
