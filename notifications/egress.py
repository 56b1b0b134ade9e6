"""Where a webhook may be posted: public addresses only, like an agent's egress. Loopback only
for a host:port the test settings list (AGENT_EGRESS_TEST_ALLOW_LOOPBACK, refused outside tests).

The address classes are gateway.egress's (the one home of those rules); the agents' host
allow-list does not apply: a webhook may go to any public host.
"""

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings

from common.errors import InputError
from gateway.egress import address_is_forbidden, loopback_allowances_parse

MAX_URL = 2000


def _test_loopback() -> frozenset[tuple[str, int]]:
    if not getattr(settings, "TESTING", False):  # never honoured outside test settings
        return frozenset()
    return loopback_allowances_parse(settings.AGENT_EGRESS_TEST_ALLOW_LOOPBACK)


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def webhook_url_check(
    *, url: str, resolve: Callable[[str, int], list[str]] = _resolve
) -> tuple[str, list[str]]:
    """The URL, stripped, if a webhook may be posted to it, and the addresses it resolves to.
    Raises InputError saying what to fix."""
    url = url.strip()
    if len(url) > MAX_URL:
        raise InputError(f"The webhook URL is longer than {MAX_URL} characters.")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InputError("The webhook URL has an invalid port.") from None
    if parts.scheme not in ("https", "http") or not host:
        raise InputError("The webhook URL must start with https:// and name a host.")
    if parts.username or parts.password:
        raise InputError("Put no user name or password before the host in the webhook URL.")
    loopback_ok = (host, port) in _test_loopback()
    if parts.scheme != "https" and not loopback_ok:
        raise InputError("The webhook URL must use https://.")
    try:
        addresses = resolve(host, port)
    except OSError:
        raise InputError(f"The webhook host {host} does not resolve.") from None
    if not addresses:
        raise InputError(f"The webhook host {host} does not resolve.")
    for address in addresses:
        reason = address_is_forbidden(address)
        if reason and not (loopback_ok and reason == "loopback address"):
            raise InputError(
                f"The webhook host {host} is a {reason} ({address}); webhooks only go to "
                "public addresses."
            )
    return url, addresses
