"""The URL parsers of common/netpolicy/urls.py: a value or UrlRefused with a message, never
another exception, and what they accept is what DNS and git can take."""

from __future__ import annotations

import pytest
from hypothesis import example, given

from common.netpolicy import (
    EgressPolicy,
    UrlRefused,
    egress_rules_parse,
    ip_literal,
    repository_url_check,
    repository_url_parse,
    web_url_parse,
)
from tests.fuzz.strategies import repo_urls, url_ish

AGENTS = EgressPolicy(rules=egress_rules_parse("github.com,*.example.com,140.82.112.3"))
WEBHOOKS = EgressPolicy(rules=(), any_public=True, test_loopback=frozenset({("127.0.0.1", 9)}))


@given(url=url_ish | repo_urls)
@example(url="https://a..b/x.git")
@example(url="https://[::1")
@example(url="https://" + "a" * 64 + ".example.com/x.git")
@example(url="https://xn--bcher-kva.example.com/x.git")
def test_a_repository_url_parses_or_says_why(url: str) -> None:
    try:
        parsed = repository_url_parse(url=url, local_allowed=True)
    except UrlRefused as exc:
        assert exc.message.strip()
        assert exc.rule in ("scheme", "form")
        return
    assert repository_url_parse(url=parsed.url, local_allowed=True) == parsed
    if parsed.local:
        return
    assert parsed.url.lower().startswith("https://")
    assert "@" not in parsed.url.split("/")[2]
    assert 1 <= parsed.port <= 65535
    if ip_literal(parsed.host) is None:
        parsed.host.encode("idna")  # what the resolver does first: never an error now


@given(url=url_ish | repo_urls)
def test_a_checked_repository_url_is_one_agents_may_reach(url: str) -> None:
    try:
        parsed = repository_url_check(url=url, local_allowed=False, policy=AGENTS)
    except UrlRefused as exc:
        assert exc.message.strip()
        return
    allowed = parsed.host in ("github.com", "140.82.112.3") or parsed.host.endswith(".example.com")
    assert allowed, parsed


@given(url=url_ish)
@example(url="http://127.0.0.1:9/hook")
@example(url="https://hooks.example.com./x")
def test_a_web_url_parses_or_says_why(url: str) -> None:
    try:
        parsed = web_url_parse(url=url, what="webhook URL", policy=WEBHOOKS)
    except UrlRefused as exc:
        assert exc.message.strip()
        return
    assert parsed.scheme == "https" or (parsed.host, parsed.port) == ("127.0.0.1", 9)
    if ip_literal(parsed.host) is None:
        parsed.host.encode("idna")


@pytest.mark.parametrize(
    ("url", "words", "rule"),
    [
        ("", "Enter the repository URL", "form"),
        ("ssh://git@github.com/a/b.git", "Only https://", "scheme"),
        ("file:///srv/repo.git", "turned off", "scheme"),
        ("https://github.com/a b.git", "spaces or control", "form"),
        ("https://github.com/a\u00a0b.git", "spaces or control", "form"),
        ("https://" + "a" * 2001, "longer than 2,000", "form"),
        ("https://:443/a/b.git", "needs a host name", "form"),
        ("https://a..b/x.git", "'a..b' in the repository URL has an empty part", "form"),
        (
            "https://" + "x" * 300 + ".com/a.git",
            "…' in the repository URL is longer than 253",
            "form",
        ),
        ("https://10.0.0.1/a/b.git", "it is a private address", "reach"),
        (
            "https://gitlab.com:8443/a/b.git",
            "gitlab.com:8443: it is not on the allow list",
            "reach",
        ),
        ("https://[2001:db8::1]/a/b.git", "[2001:db8::1] (it is a documentation address)", "reach"),
    ],
)
def test_repository_refusals_say_what_to_fix(url: str, words: str, rule: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        repository_url_check(url=url, local_allowed=False, policy=AGENTS)
    assert words in caught.value.message
    assert caught.value.rule == rule


def test_local_repositories_need_an_absolute_path_without_dot_dot() -> None:
    parsed = repository_url_parse(url="file:///srv/repos/app.git", local_allowed=True)
    assert (parsed.local, parsed.path, parsed.host) == (True, "/srv/repos/app.git", "")
    for url in ("file://host/srv/app.git", "file://srv/app.git", "file:///srv/../etc"):
        with pytest.raises(UrlRefused, match="absolute"):
            repository_url_parse(url=url, local_allowed=True)
