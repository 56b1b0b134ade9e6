"""Which addresses no egress may reach (common/netpolicy/addresses.py): the IANA special-purpose
registries and the cloud metadata services, written down, so the answer is the same on every
Python version (ipaddress's is_private/is_global changed between 3.12 releases)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.netpolicy import address_is_forbidden, host_literal_is_forbidden
from common.netpolicy.addresses import IPV4_SPECIAL, IPV6_SPECIAL, METADATA_ADDRESSES

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
        ("169.254.1.1", "link-local address"),
        ("fe80::1", "link-local address"),
        ("100.64.0.1", "shared (CGNAT) address"),
        ("100.127.255.254", "shared (CGNAT) address"),
        ("0.0.0.0", "unspecified address"),  # noqa: S104
        ("0.1.2.3", "this-network address"),
        ("::", "unspecified address"),
        ("224.0.0.1", "multicast address"),
        ("239.255.255.250", "multicast address"),
        ("ff02::1", "multicast address"),
        ("240.0.0.1", "reserved address"),
        ("255.255.255.255", "limited broadcast address"),
        ("192.0.2.1", "documentation address"),
        ("198.51.100.7", "documentation address"),
        ("203.0.113.9", "documentation address"),
        ("2001:db8::1", "documentation address"),
        ("3fff::1", "documentation address"),  # RFC 9637 (2024)
        ("198.19.0.1", "benchmarking address"),
        ("2001:2::1", "benchmarking address"),
        # 192.0.0.0/24: public to Python 3.12.1's is_private/is_global
        ("192.0.0.1", "IPv4 service continuity address"),
        ("192.0.0.8", "IPv4 dummy address"),
        ("192.0.0.9", "PCP anycast address"),
        ("192.0.0.10", "TURN anycast address"),
        ("192.0.0.170", "NAT64/DNS64 discovery address"),
        ("192.0.0.77", "IETF protocol assignment address"),
        ("192.31.196.1", "AS112 DNS address"),
        ("192.175.48.1", "AS112 DNS address"),
        ("2620:4f:8000::1", "AS112 DNS address"),
        ("192.52.193.1", "AMT relay address"),
        ("192.88.99.1", "6to4 relay anycast address"),
        ("2001::1", "Teredo address"),
        ("2001:10::1", "ORCHID address"),
        ("2001:20::1", "ORCHIDv2 address"),
        ("2001:30::1", "drone remote ID (DET) address"),
        ("100::1", "discard-only address"),
        ("64:ff9b:1::1", "local-use IPv4/IPv6 translation address"),
        ("5f00::1", "segment routing (SRv6) SID address"),
        ("fec0::1", "site-local address"),  # deprecated, yet routed inside some sites
        ("feff:ffff::1", "site-local address"),
        ("4000::1", "reserved address"),  # outside 2000::/3, IPv6's global unicast space
        ("::1.2.3.4", "reserved address"),  # the deprecated IPv4-compatible form
        # Cloud metadata services, wherever they live
        ("169.254.169.254", "cloud metadata address"),
        ("fd00:ec2::254", "cloud metadata address"),
        ("169.254.170.2", "cloud metadata address"),
        ("169.254.170.23", "cloud metadata address"),
        ("fd00:ec2::23", "cloud metadata address"),
        ("168.63.129.16", "cloud metadata address"),  # a public address: no range catches it
        ("100.100.100.200", "cloud metadata address"),
        ("192.0.0.192", "cloud metadata address"),
        # IPv6 forms that carry an IPv4 address are judged by it
        ("::ffff:127.0.0.1", "loopback address, embedded in an IPv6 address"),
        ("::ffff:169.254.169.254", "cloud metadata address, embedded in an IPv6 address"),
        ("::ffff:168.63.129.16", "cloud metadata address, embedded in an IPv6 address"),
        ("::ffff:192.0.0.192", "cloud metadata address, embedded in an IPv6 address"),
        ("2002:a00:1::", "private address, embedded in an IPv6 address"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "cloud metadata address, embedded in an IPv6 address"),
        ("fe80::1%eth0", "IPv6 address with a zone"),
        ("not-an-ip", "not an IP address"),
    ],
)
def test_forbidden_address_classes(address: str, reason: str) -> None:
    assert address_is_forbidden(address) == reason


@pytest.mark.parametrize(
    "address",
    [
        "140.82.112.3",
        "8.8.8.8",
        "1.1.1.1",
        "100.128.0.1",  # just above CGNAT
        "192.0.1.1",  # just above 192.0.0.0/24
        "168.63.129.17",  # beside Azure's platform address
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
        "::ffff:140.82.112.3",
        "2002:8c52:7003::",  # 6to4 of 140.82.112.3
        "64:ff9b::8c52:7003",  # NAT64 of 140.82.112.3
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_is_forbidden(address) is None
    assert address_is_forbidden(ipaddress.ip_address(address)) is None


def test_every_registry_row_names_its_source() -> None:
    for block in (*IPV4_SPECIAL, *IPV6_SPECIAL):
        assert block.kind
        assert block.source.startswith(("RFC", "IANA")), block
    for address, source in METADATA_ADDRESSES.items():
        assert source, address


def _any_special_block() -> st.SearchStrategy[IPAddress]:
    blocks = [block.network for block in (*IPV4_SPECIAL, *IPV6_SPECIAL)]
    return st.sampled_from(blocks).flatmap(lambda network: st.ip_addresses(network=network))


def _carries_ipv4(address: IPAddress) -> bool:
    return isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped is not None
        or address.sixtofour is not None
        or address in ipaddress.ip_network("64:ff9b::/96")
    )


@given(_any_special_block())
def test_every_address_of_every_registry_block_is_forbidden(address: IPAddress) -> None:
    if _carries_ipv4(address):
        return  # judged by the IPv4 address inside (below)
    assert address_is_forbidden(address) is not None, address


def _outside_every_block(address: ipaddress.IPv4Address) -> bool:
    return not any(address in block.network for block in IPV4_SPECIAL)


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_is_judged_the_same_in_every_ipv6_form(
    address: ipaddress.IPv4Address,
) -> None:
    plain = address_is_forbidden(address)
    if _outside_every_block(address) and str(address) not in METADATA_ADDRESSES:
        assert plain is None, address
    else:
        assert plain is not None, address
    embedded = (
        ipaddress.IPv6Address(f"::ffff:{address}"),
        ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80)),  # 6to4
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address)),  # NAT64
    )
    for form in embedded:
        expected = f"{plain}, embedded in an IPv6 address" if plain else None
        assert address_is_forbidden(form) == expected, form


@given(st.ip_addresses(v=6))
def test_an_ipv6_address_outside_global_unicast_is_never_public(
    address: ipaddress.IPv6Address,
) -> None:
    if _carries_ipv4(address):
        return
    if address not in ipaddress.ip_network("2000::/3"):
        assert address_is_forbidden(address) is not None, address


@given(st.ip_addresses())
def test_every_address_python_calls_special_is_forbidden(address: IPAddress) -> None:
    # Python's own judgement is no longer used, but nothing it calls special may pass.
    if _carries_ipv4(address):
        return
    special = address.is_private or address.is_reserved or not address.is_global
    if isinstance(address, ipaddress.IPv6Address):
        special = special or address.is_site_local
    if special:
        assert address_is_forbidden(address) is not None, address


@pytest.mark.parametrize(
    ("host", "forbidden"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("a.localhost", True),
        ("metadata.google.internal", True),
        ("127.0.0.1", True),
        ("[::1]", True),
        ("10.1.1.1", True),
        ("192.0.0.192", True),
        ("168.63.129.16", True),
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
def test_host_literal_check(host: str, forbidden: bool) -> None:
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
