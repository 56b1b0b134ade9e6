"""The allow-list parser and the egress decision (common/netpolicy), without any network."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InputError
from common.netpolicy import (
    DEFAULT_EGRESS_ALLOW,
    EgressPolicy,
    EgressRule,
    egress_check,
    egress_policy_within,
    egress_resolve_check,
    egress_rule_parse,
    egress_rule_within,
    egress_rules_parse,
)


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("github.com", EgressRule("exact", "github.com", None)),
        (" GitHub.COM ", EgressRule("exact", "github.com", None)),
        ("*.github.com", EgressRule("subdomains", "github.com", None)),
        ("gitlab.com:443", EgressRule("exact", "gitlab.com", 443)),
        ("*.example.co.uk:8443", EgressRule("subdomains", "example.co.uk", 8443)),
        ("*", EgressRule("any", "", None)),
        ("*:443", EgressRule("any", "", 443)),
        ("140.82.112.3", EgressRule("exact", "140.82.112.3", None)),
        ("[2606:4700::1]:443", EgressRule("exact", "2606:4700::1", 443)),
        ("xn--bcher-kva.example", EgressRule("exact", "xn--bcher-kva.example", None)),
    ],
)
def test_valid_entries(entry: str, rule: EgressRule) -> None:
    assert egress_rule_parse(entry) == rule


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("*.com", "too broad"),
        ("*.*.com", "valid domain"),
        ("**", "'*' may stand only"),
        ("git*.com", "'*' may stand only"),
        ("foo.*.com", "'*' may stand only"),
        ("*.", "valid domain"),
        ("https://github.com", "not a URL"),
        ("github.com/org", "not a URL"),
        ("github.com:0", "port must be"),
        ("github.com:65536", "port must be"),
        ("github.com:0443", "port must be"),
        ("github.com:", "port must be"),
        ("2001:db8::1", "in brackets"),
        ("[github.com]", "IPv6 addresses only"),
        ("localhost", "full host name"),
        ("foo.localhost", "loopback"),
        ("metadata.google.internal", "metadata"),
        ("168.63.129.16", "metadata"),
        ("192.0.0.192", "metadata"),
        ("a..b.com", "not a valid host name"),
        ("a" * 64 + ".example.com", "not a valid host name"),
        (".example.com", "not a valid host name"),
        ("127.0.0.1", "loopback"),
        ("10.0.0.1:443", "private"),
        ("[::1]", "loopback"),
        ("169.254.169.254", "metadata"),
        ("bücher.example", "ASCII"),
        ("git hub.com", "ASCII"),
        ("-github.com", "not a valid host name"),
        ("github.com.", "not a valid host name"),
        ("github", "full host name"),
    ],
)
def test_malformed_or_over_broad_entries_are_refused_with_a_reason(entry: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        egress_rule_parse(entry)
    assert says in caught.value.message


@given(st.text(max_size=80))
def test_any_entry_either_parses_or_raises_input_error(text: str) -> None:
    try:
        rule = egress_rule_parse(text)
    except InputError as exc:
        assert exc.message
    else:
        assert egress_rule_parse(str(rule)) == rule  # what it parsed to reads back the same


@given(st.lists(st.text(alphabet="*.:[]abc019-", max_size=20), max_size=5))
def test_any_list_either_parses_or_raises_input_error(entries: list[str]) -> None:
    with contextlib.suppress(InputError):
        egress_rules_parse(",".join(entries))


def test_the_default_list_parses() -> None:
    assert len(egress_rules_parse(DEFAULT_EGRESS_ALLOW)) == len(DEFAULT_EGRESS_ALLOW)
    assert egress_rules_parse("github.com,,pypi.org,") == egress_rules_parse("github.com,pypi.org")


def test_matching_exact_subdomains_ports_and_ip_literals() -> None:
    sub = egress_rule_parse("*.github.com")
    assert sub.matches("api.github.com", 443)
    assert sub.matches("a.b.github.com", 22)
    assert not sub.matches("github.com", 443)  # strict subdomains only
    assert not sub.matches("evilgithub.com", 443)
    exact = egress_rule_parse("gitlab.com:443")
    assert exact.matches("gitlab.com", 443)
    assert not exact.matches("gitlab.com", 80)
    assert not exact.matches("www.gitlab.com", 443)
    star = egress_rule_parse("*")
    assert star.matches("example.org", 443)
    assert not star.matches("140.82.112.3", 443)  # a wildcard never matches an address
    assert egress_rule_parse("140.82.112.3").matches("140.82.112.3", 443)


@pytest.mark.parametrize(
    ("entry", "bounds", "within"),
    [
        ("github.com", "github.com", True),
        ("github.com:443", "github.com", True),
        ("github.com", "github.com:443", False),  # every port is more than one
        ("api.github.com", "*.github.com", True),
        ("*.api.github.com", "*.github.com", True),
        ("*.github.com", "*.github.com:443", False),
        ("github.com", "*.github.com", False),  # strict subdomains only
        ("evilgithub.com", "*.github.com", False),
        ("*", "github.com,*.github.com", False),
        ("*:443", "*", True),
        ("example.org", "*", True),
        ("140.82.112.3", "*", False),  # a wildcard never matches an address
        ("140.82.112.3", "140.82.112.3", True),
        ("*.github.com", "github.com", False),
    ],
)
def test_a_rule_is_within_bounds_only_when_they_let_through_all_it_does(
    entry: str, bounds: str, within: bool
) -> None:
    assert egress_rule_within(egress_rule_parse(entry), egress_rules_parse(bounds)) is within


_RULE_HOSTS = st.sampled_from(
    [
        "*",
        "*.github.com",
        "*.api.github.com",
        "github.com",
        "api.github.com",
        "x.api.github.com",
        "pypi.org",
        "*.pypi.org",
        "140.82.112.3",
    ]
)
_RULES = st.builds(
    lambda host, port: egress_rule_parse(host if port is None else f"{host}:{port}"),
    _RULE_HOSTS,
    st.sampled_from([None, 443, 22]),
)


@given(
    rule=_RULES,
    bounds=st.lists(_RULES, max_size=3),
    host=st.sampled_from(
        [
            "github.com",
            "api.github.com",
            "x.api.github.com",
            "a.x.api.github.com",
            "pypi.org",
            "files.pypi.org",
            "evil.example",
            "140.82.112.3",
        ]
    ),
    port=st.sampled_from([443, 22, 80]),
)
def test_a_rule_within_bounds_reaches_nothing_they_refuse(
    rule: EgressRule, bounds: list[EgressRule], host: str, port: int
) -> None:
    if egress_rule_within(rule, bounds) and rule.matches(host, port):
        assert any(bound.matches(host, port) for bound in bounds)


PUBLIC = "140.82.112.3"  # what every name resolves to here
_PORTS = st.sampled_from([443, 22, 8080, 9090])
_HOSTS = st.sampled_from(
    [
        "github.com",
        "api.github.com",
        "x.api.github.com",
        "pypi.org",
        "files.pypi.org",
        "evil.example",
        "140.82.112.3",
    ]
)
_POLICIES = st.builds(
    lambda rules, public, loopback: EgressPolicy(
        rules=tuple(rules), any_public=public, test_loopback=frozenset(loopback)
    ),
    st.lists(_RULES, max_size=3),
    st.booleans(),
    st.sets(st.sampled_from([("127.0.0.1", 8080), ("127.0.0.1", 9090)])),
)


def _name_allowed(policy: EgressPolicy, host: str, port: int) -> bool:
    return egress_check(host=host, port=port, policy=policy, resolve=lambda h, p: [PUBLIC]).allowed


@given(policy=_POLICIES, bounds=_POLICIES, host=_HOSTS | st.just("127.0.0.1"), port=_PORTS)
def test_a_policy_cut_to_bounds_reaches_nothing_either_refuses(
    policy: EgressPolicy, bounds: EgressPolicy, host: str, port: int
) -> None:
    cut = egress_policy_within(policy=policy, bounds=bounds)
    if _name_allowed(cut, host, port):
        assert _name_allowed(policy, host, port)
        assert _name_allowed(bounds, host, port)


@given(policy=_POLICIES, bounds=_POLICIES)
def test_a_policy_the_bounds_cover_whole_is_not_cut(
    policy: EgressPolicy, bounds: EgressPolicy
) -> None:
    bounds = EgressPolicy(
        rules=bounds.rules + policy.rules,
        any_public=bounds.any_public or policy.any_public,
        test_loopback=bounds.test_loopback | policy.test_loopback,
    )
    assert egress_policy_within(policy=policy, bounds=bounds) == policy


@pytest.mark.parametrize(
    ("policy", "bounds", "reached"),
    [
        # The package registries, cut to the default agents' list: the registries on it.
        (
            ["registry.npmjs.org", "pypi.org", "files.pythonhosted.org", "proxy.golang.org"],
            list(DEFAULT_EGRESS_ALLOW),
            {"registry.npmjs.org", "pypi.org", "files.pythonhosted.org"},
        ),
        (["*.github.com"], ["api.github.com:443"], {"api.github.com"}),  # the narrower of two
        (["*"], ["pypi.org"], {"pypi.org"}),
        (["pypi.org"], [], set()),  # an agent with no network: none for its code in setup
    ],
)
def test_a_policy_cut_to_bounds_keeps_what_both_reach(
    policy: list[str], bounds: list[str], reached: set[str]
) -> None:
    cut = egress_policy_within(
        policy=EgressPolicy(rules=egress_rules_parse(policy)),
        bounds=EgressPolicy(rules=egress_rules_parse(bounds)),
    )
    hosts = {"registry.npmjs.org", "pypi.org", "files.pythonhosted.org", "proxy.golang.org"}
    hosts |= {"api.github.com", "evil.example"}
    assert {host for host in hosts if _name_allowed(cut, host, 443)} == reached


def test_sync_check_judges_every_resolved_address_and_keeps_the_checked_ones() -> None:
    policy = EgressPolicy(rules=egress_rules_parse("*.example.com"), api_host="api.anthropic.com")
    answers = {
        "a.example.com": ["140.82.112.3", "140.82.112.4"],
        "b.example.com": ["8.8.8.8", "::ffff:192.168.0.1"],
        "c.example.com": [],
    }

    def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    ok = egress_check(host="a.example.com", port=443, policy=policy, resolve=resolve)
    assert ok.allowed
    assert ok.addresses == ("140.82.112.3", "140.82.112.4")
    bad = egress_check(host="b.example.com", port=443, policy=policy, resolve=resolve)
    assert not bad.allowed
    assert bad.log_line == (
        "egress refused: b.example.com:443 (resolves to a private address, embedded in an "
        "IPv6 address ::ffff:192.168.0.1)"
    )
    assert egress_check(host="c.example.com", port=443, policy=policy, resolve=resolve).reason == (
        "the name does not resolve"
    )


def test_any_public_policy_ignores_the_list_but_never_the_address_classes() -> None:
    policy = EgressPolicy(rules=(), any_public=True)
    answers = {"hooks.example.com": ["140.82.112.3"], "inside.example.com": ["10.0.0.7"]}

    def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    assert egress_check(host="hooks.example.com", port=443, policy=policy, resolve=resolve).allowed
    assert egress_check(host="140.82.112.3", port=8443, policy=policy, resolve=resolve).allowed
    inside = egress_check(host="inside.example.com", port=443, policy=policy, resolve=resolve)
    assert inside.reason == "resolves to a private address 10.0.0.7"
    assert egress_check(host="localhost", port=443, policy=policy).reason == "loopback name"
    assert egress_check(host="168.63.129.16", port=80, policy=policy).reason == (
        "cloud metadata address"
    )


@pytest.mark.parametrize(
    "failure", [OSError(-2, "Name or service not known"), UnicodeError("label empty or too long")]
)
def test_a_lookup_that_fails_in_any_way_is_a_refusal(failure: Exception) -> None:
    policy = EgressPolicy(rules=egress_rules_parse("*"))

    def resolve(host: str, port: int) -> list[str]:
        raise failure

    async def resolver(host: str, port: int) -> list[str]:
        raise failure

    sync = egress_check(host="example.com", port=443, policy=policy, resolve=resolve)
    assert sync.reason == "the name does not resolve"
    sent = egress_resolve_check(host="example.com", port=443, policy=policy, resolver=resolver)
    assert asyncio.run(sent) == sync


_HOSTS = st.one_of(
    st.sampled_from(
        [
            "github.com",
            "api.github.com",
            "evil.com",
            "localhost",
            "127.0.0.1",
            "[::1]",
            "a..b",
            "10.0.0.1",
            "api.anthropic.com",
            "x." * 70 + "com",
            "GitHub.com.",
            "0x7f.1",
            "",
        ]
    ),
    st.text(alphabet="abc.-:[]019xé", max_size=30),
)
_ANSWERS = st.lists(
    st.sampled_from(["140.82.112.3", "10.0.0.1", "::1", "169.254.169.254", "2606:4700::1"]),
    max_size=3,
)


@given(
    host=_HOSTS,
    port=st.integers(min_value=-1, max_value=70000),
    answers=_ANSWERS | st.none(),
    any_public=st.booleans(),
)
def test_the_sync_and_async_checks_decide_the_same(
    host: str, port: int, answers: list[str] | None, any_public: bool
) -> None:
    policy = EgressPolicy(
        rules=egress_rules_parse("*.github.com,github.com:443"),
        api_host="api.anthropic.com",
        test_loopback=frozenset({("127.0.0.1", 8765)}),
        any_public=any_public,
    )

    def resolve(name: str, at: int) -> list[str]:
        if answers is None:
            raise OSError(-2, "no such name")
        return list(answers)

    async def resolver(name: str, at: int) -> list[str]:
        return resolve(name, at)

    sync = egress_check(host=host, port=port, policy=policy, resolve=resolve)
    sent = asyncio.run(egress_resolve_check(host=host, port=port, policy=policy, resolver=resolver))
    assert sent == sync
    if sync.allowed:
        assert sync.addresses
