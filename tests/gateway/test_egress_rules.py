"""The allow-list parser and the address classes (gateway/egress.py), without any network."""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InputError
from gateway.egress import (
    DEFAULT_EGRESS_ALLOW,
    EgressPolicy,
    EgressRule,
    address_is_forbidden,
    egress_check,
    egress_rule_parse,
    egress_rules_parse,
    host_literal_is_forbidden,
)

ROOT = Path(__file__).resolve().parent.parent.parent


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
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback address"),
        ("127.255.0.9", "loopback address"),
        ("::1", "loopback address"),
        ("10.0.0.1", "private address"),
        ("172.16.5.4", "private address"),
        ("192.168.1.1", "private address"),
        ("fd12:3456::1", "private address"),
        ("169.254.169.254", "cloud metadata address"),
        ("fd00:ec2::254", "cloud metadata address"),
        ("169.254.1.1", "link-local address"),
        ("fe80::1", "link-local address"),
        ("100.64.0.1", "shared (CGNAT) address"),
        ("100.127.255.254", "shared (CGNAT) address"),
        ("0.0.0.0", "unspecified address"),  # noqa: S104
        ("::", "unspecified address"),
        ("224.0.0.1", "multicast address"),
        ("ff02::1", "multicast address"),
        ("240.0.0.1", "reserved address"),
        ("255.255.255.255", "reserved address"),
        ("192.0.2.1", "private address"),  # documentation range
        ("::ffff:127.0.0.1", "loopback address, embedded in an IPv6 address"),
        ("::ffff:169.254.169.254", "cloud metadata address, embedded in an IPv6 address"),
        ("2002:a00:1::", "private address, embedded in an IPv6 address"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "cloud metadata address, embedded in an IPv6 address"),
        ("fe80::1%eth0", "IPv6 address with a zone"),
        ("fec0::1", "site-local address"),  # deprecated, yet routed inside some networks
        ("feff:ffff::1", "site-local address"),
        ("3fff::1", "documentation address"),  # RFC 9637, unknown to Python 3.12
        ("not-an-ip", "not an IP address"),
    ],
)
def test_forbidden_address_classes(address: str, reason: str) -> None:
    assert address_is_forbidden(address) == reason


_SPECIAL_NETWORKS = (
    # Where plain random addresses rarely land: every range Python marks special, and more.
    *("fec0::/10", "fc00::/7", "fe80::/10", "::/8", "100::/64", "2001::/23", "2001:db8::/32"),
    *("ff00::/8", "3fff::/20", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"),
    *("169.254.0.0/16", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24"),
    *("203.0.113.0/24", "240.0.0.0/4", "0.0.0.0/8", "100.64.0.0/10", "224.0.0.0/4"),
)


@given(
    st.one_of(
        st.ip_addresses(),
        st.sampled_from(_SPECIAL_NETWORKS).flatmap(lambda net: st.ip_addresses(network=net)),
    )
)
def test_every_address_python_calls_special_is_forbidden(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    if isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped or address.sixtofour or address in ipaddress.ip_network("64:ff9b::/96")
    ):
        return  # judged by the IPv4 address inside (tested above)
    special = address.is_private or address.is_reserved or not address.is_global
    if isinstance(address, ipaddress.IPv6Address):
        special = special or address.is_site_local
    if special:
        assert address_is_forbidden(address) is not None, address


@pytest.mark.parametrize(
    "address",
    ["140.82.112.3", "8.8.8.8", "2606:4700:4700::1111", "::ffff:140.82.112.3", "100.128.0.1"],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_is_forbidden(address) is None
    assert address_is_forbidden(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "forbidden"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("a.localhost", True),
        ("127.0.0.1", True),
        ("[::1]", True),
        ("10.1.1.1", True),
        ("github.com", False),
        ("140.82.112.3", False),
        # Shorthand IPv4 forms that git's resolver (inet_aton) reads as addresses
        ("127.1", True),
        ("0x7f.0.0.1", True),
        ("0177.0.0.1", True),
        ("2130706433", True),
        ("0x7f000001", True),
        ("10.1", True),
        ("169.254.43518", True),
        ("1.2.3.4.5", True),  # all numeric, yet no address: refused too
        ("2364305411", False),  # 140.82.112.3
        ("cafe.be", False),  # hex letters, yet a name
        ("1password.com", False),
    ],
)
def test_host_literal_check_for_repository_urls(host: str, forbidden: bool) -> None:
    assert bool(host_literal_is_forbidden(host)) is forbidden


@given(
    st.ip_addresses(v=4),
    st.lists(st.sampled_from(["{:d}", "0{:o}", "0x{:x}", "0X{:X}"]), min_size=4, max_size=4),
    st.integers(min_value=1, max_value=4),
)
def test_every_spelling_of_an_ipv4_address_is_judged_as_that_address(
    address: ipaddress.IPv4Address, styles: list[str], parts: int
) -> None:
    # a.b.c.d, a.b.cd, a.bcd and abcd, each part in decimal, octal or hex: all mean `address`.
    value = int(address)
    widths = {1: [32], 2: [8, 24], 3: [8, 8, 16], 4: [8, 8, 8, 8]}[parts]
    numbers: list[int] = []
    for width in reversed(widths):
        numbers.insert(0, value & ((1 << width) - 1))
        value >>= width
    host = ".".join(style.format(n) for style, n in zip(styles, numbers, strict=False))
    assert host_literal_is_forbidden(host) == address_is_forbidden(address), host


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


def _settings_load(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DJANGO")}
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_DEBUG": "true",
            "PYTHONPATH": str(ROOT),
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_settings_refuse_an_over_broad_allow_list() -> None:
    result = _settings_load(AGENT_EGRESS_ALLOW="github.com,*.com")
    assert result.returncode != 0
    assert "AGENT_EGRESS_ALLOW: '*.com' is too broad" in result.stderr


def test_settings_refuse_the_test_loopback_allowance_outside_tests() -> None:
    result = _settings_load(AGENT_EGRESS_TEST_ALLOW_LOOPBACK="127.0.0.1:8765")
    assert result.returncode != 0
    assert "AGENT_EGRESS_TEST_ALLOW_LOOPBACK is for the test suite only" in result.stderr
    assert _settings_load().returncode == 0, _settings_load().stderr


def test_the_test_loopback_allowance_is_ignored_unless_testing(settings) -> None:
    from gateway.egress import egress_policy_from_settings

    settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK = ["127.0.0.1:8765"]
    assert egress_policy_from_settings().test_loopback == {("127.0.0.1", 8765)}
    settings.TESTING = False
    assert egress_policy_from_settings().test_loopback == frozenset()
