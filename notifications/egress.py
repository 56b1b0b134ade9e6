"""Where a webhook may be posted: any public host, on the egress rules every other connection
obeys (common.netpolicy: the forbidden address classes, resolved once). Loopback only for a
host:port the test settings list (AGENT_EGRESS_TEST_ALLOW_LOOPBACK, refused outside tests).

The send connects to an address the check approved, never resolving again: a DNS answer that
changes between check and connect (rebinding) reaches nothing new.
"""

import json
from typing import Any
from urllib.parse import urlsplit

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from common.errors import InputError
from common.netpolicy import (
    SyncResolver,
    egress_check,
    egress_policy_any_public,
    system_resolve,
    web_url_parse,
)


def webhook_url_check(*, url: str, resolve: SyncResolver = system_resolve) -> tuple[str, list[str]]:
    """The URL, stripped, if a webhook may be posted to it, and the addresses it resolves to.
    Raises InputError saying what to fix."""
    policy = egress_policy_any_public()
    parsed = web_url_parse(url=url, what="webhook URL", policy=policy)
    decision = egress_check(host=parsed.host, port=parsed.port, policy=policy, resolve=resolve)
    if not decision.allowed:
        target = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
        if decision.reason == "the name does not resolve":
            raise InputError(f"The webhook host {target} does not resolve.")
        raise InputError(
            f"The webhook host {target} cannot be used ({decision.reason}): webhooks only go "
            "to public addresses."
        )
    return parsed.url, list(decision.addresses)


def webhook_post(*, url: str, addresses: list[str], payload: dict[str, Any], timeout: float) -> int:
    """POST the payload as JSON to a URL webhook_url_check approved, connected to one of the
    addresses it checked (in order, the next one when a connection fails). TLS: SNI and the
    certificate are checked against the URL's host name; the Host header is the URL's own.
    No redirects. Returns the HTTP status."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Host": parts.netloc, "Content-Type": "application/json"}
    body = json.dumps(payload).encode()
    failure: Exception | None = None
    for address in addresses:
        pool: urllib3.HTTPConnectionPool
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                port,
                timeout=timeout,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=DEFAULT_CA_BUNDLE_PATH,
                server_hostname=host,
                assert_hostname=host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
        try:
            with pool:
                return pool.urlopen(
                    "POST",
                    target,
                    body=body,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    assert_same_host=False,
                ).status
        except (NewConnectionError, ConnectTimeoutError) as exc:
            failure = exc  # this address is unreachable: try the next one checked
    assert failure is not None  # webhook_url_check never returns no addresses
    raise failure
