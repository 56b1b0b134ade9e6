"""The token endpoint's edge (docs/claude-cli-contract.md#token-endpoint-edge): a refusal of the
client by its User-Agent is told apart from a real rate limit and from a dead token, is not
retried against the wall, and is named, with the setting, wherever a refresh outcome shows.
Driven over real HTTP against the loopback fake, which answers like the edge by prefix."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from oauth_tokens.models import AuditAction, CredentialAuditEvent, CredentialStatus, OAuthCredential
from oauth_tokens.services import credential_ensure_fresh
from oauth_tokens.token_client import (
    RefreshConfig,
    RefreshError,
    redact,
    token_refresh_request,
    token_refresh_request_async,
    token_session_new,
)
from tests.fakes.token_server import EDGE_PAGE, FakeTokenServer

WORDS = "he token endpoint refused this client (User-Agent?)"  # "The ..." or "the ..."
SETTING = "CLAUDE_OAUTH_USER_AGENT"
CLAUDE_CODE_UA = "claude-code/2.1.332 (external, cli)"
CLAUDE_CLI_UA = "claude-cli/2.1.81 (external, cli)"
RATE_LIMIT = {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}


def config(url: str, **values: Any) -> RefreshConfig:
    return RefreshConfig(
        token_url=url,
        max_attempts=4,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.02,
        **values,
    )


def sync_refresh(refresh_token: str, cfg: RefreshConfig) -> Any:
    return token_refresh_request(refresh_token=refresh_token, config=cfg)


def async_refresh(refresh_token: str, cfg: RefreshConfig) -> Any:
    async def go() -> Any:
        async with token_session_new(concurrency=2) as session:
            return await token_refresh_request_async(
                refresh_token=refresh_token, config=cfg, session=session
            )

    return asyncio.run(go())


TRANSPORTS = [pytest.param(sync_refresh, id="requests"), pytest.param(async_refresh, id="aiohttp")]


def refused(call: Any, *args: Any) -> RefreshError:
    with pytest.raises(RefreshError) as info:
        call(*args)
    return info.value


# --- the rule, the same for both transports ----------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("user_agent", "status", "what"),
    [
        pytest.param(CLAUDE_CODE_UA, 429, "an HTML page", id="claude-code-429-html"),
        pytest.param(CLAUDE_CLI_UA, 404, "an empty body", id="claude-cli-404-empty"),
    ],
)
def test_an_edge_block_ends_the_refresh_at_once_and_says_why(
    token_server: FakeTokenServer, transport, user_agent, status, what
) -> None:
    old = token_server.issue()
    error = refused(transport, old, config(token_server.url, user_agent=user_agent))

    assert (error.code, error.status, error.permanent, error.attempts) == (
        "edge_blocked",
        status,
        False,  # the token was never read: nothing says it is dead
        1,
    )
    assert token_server.request_count == 1  # not four times against the wall
    assert token_server.requests[0].headers["User-Agent"] == user_agent
    assert f"T{WORDS}: HTTP {status} with {what}, before the token was read." in str(error)
    assert f'Set {SETTING} to a User-Agent it accepts (now "{user_agent}").' in str(error)
    assert token_server.is_valid(old)  # unused: the next scheduled refresh may try it


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_real_rate_limit_is_retried(token_server: FakeTokenServer, transport) -> None:
    token_server.fail_next(429, body=RATE_LIMIT, times=2, headers={"Retry-After": "0"})
    grant = transport(token_server.issue(), config(token_server.url))
    assert grant.attempts == 3
    assert token_server.request_count == 3


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_real_rate_limit_that_lasts_is_reported_as_one(
    token_server: FakeTokenServer, transport
) -> None:
    token_server.fail_next(429, body=RATE_LIMIT, times=4, headers={"Retry-After": "0"})
    error = refused(transport, token_server.issue(), config(token_server.url))
    assert (error.code, error.attempts) == ("rate_limited", 4)
    assert WORDS not in str(error)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("status", "body", "code", "permanent"),
    [
        pytest.param(429, "", "edge_blocked", False, id="429-empty"),
        pytest.param(429, "Too many requests", "edge_blocked", False, id="429-text"),
        pytest.param(429, {"message": "slow"}, "edge_blocked", False, id="429-json-no-error"),
        pytest.param(404, "", "edge_blocked", False, id="404-empty"),
        pytest.param(403, EDGE_PAGE.decode(), "edge_blocked", False, id="403-html"),
        pytest.param(400, "<html>Bad request</html>", "edge_blocked", False, id="400-html"),
        # The OAuth server's own answers are what they were.
        pytest.param(400, {"error": "invalid_grant"}, "invalid_grant", True, id="invalid-grant"),
        pytest.param(404, {"error": "not_found"}, "http_404", True, id="404-oauth-json"),
        pytest.param(503, EDGE_PAGE.decode(), "http_503", False, id="503-html-is-retried"),
    ],
)
def test_what_counts_as_the_edge(
    token_server: FakeTokenServer, transport, status, body, code, permanent
) -> None:
    token_server.fail_next(status, body=body, times=4, headers={"Retry-After": "0"})
    error = refused(transport, token_server.issue(), config(token_server.url))
    assert (error.code, error.permanent) == (code, permanent)
    assert token_server.request_count == (4 if status >= 500 else 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_configured_user_agent_is_sent(token_server: FakeTokenServer, transport) -> None:
    transport(token_server.issue(), config(token_server.url, user_agent="my-runner/1.0"))
    assert token_server.requests[0].headers["User-Agent"] == "my-runner/1.0"


@pytest.mark.parametrize("value", ["", "  ", "a\r\nX-Injected: 1", "ü-agent/1", "x" * 201])
def test_a_user_agent_that_cannot_be_a_header_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=SETTING):
        RefreshConfig(user_agent=value)


def test_the_setting_name_survives_the_redaction_of_server_text() -> None:
    assert redact(f"set {SETTING} now") == f"set {SETTING} now"
    assert redact("id AbCdEfGhIjKlMnOpQrStUvWx") == "id [redacted]"
    assert redact("id ABCDEFGHIJKLMNOPQRST12") == "id [redacted]"


# --- where an outcome is shown ---------------------------------------------------------------


@pytest.fixture
def blocked(oauth_settings):
    oauth_settings.CLAUDE_OAUTH_USER_AGENT = CLAUDE_CODE_UA
    return oauth_settings


@pytest.mark.django_db
def test_single_refresh_marks_the_failure_not_the_token_and_the_schedule_retries(
    blocked, token_server, make_credential, user
):
    credential = make_credential(user, expires_in=-60)
    result = credential_ensure_fresh(credential_id=credential.pk)
    assert not result.ok
    assert not result.permanent
    assert f"T{WORDS}" in result.error
    assert token_server.request_count == 1

    credential.refresh_from_db()
    assert credential.status == CredentialStatus.REFRESH_FAILED  # not invalid: never read
    assert credential.last_refresh_error_code == "edge_blocked"
    assert SETTING in credential.last_refresh_error
    [event] = CredentialAuditEvent.objects.filter(action=AuditAction.REFRESH_FAILED)
    assert f"T{WORDS}" in event.detail
    assert SETTING in event.detail
    assert event.outcome == "transient"

    # Once the setting names a User-Agent the edge lets through, the next refresh works.
    blocked.CLAUDE_OAUTH_USER_AGENT = "axios/1.7.9"
    assert credential_ensure_fresh(credential_id=credential.pk).refreshed
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.VALID
    assert credential.last_refresh_error_code == ""


@pytest.mark.django_db
def test_refresh_now_on_the_settings_page_says_so(
    blocked, token_server, make_credential, user, user_client
):
    make_credential(user, expires_in=120)
    response = user_client.post(
        reverse("accounts:code_agent_tokens_refresh"), HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert f"T{WORDS}: HTTP 429 with an HTML page" in html
    assert SETTING in html
    assert '<span class="badge badge-refresh_failed">Refresh failed</span>' in html
    assert token_server.request_count == 1


def run_command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("refresh_tokens", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_refresh_tokens_stops_at_the_wall_and_its_json_says_so(
    blocked, token_server, make_credential
):
    users = [get_user_model().objects.create_user(username=n) for n in ("ann", "ben", "cat")]
    credentials = [make_credential(u, expires_in=-60 * (i + 1)) for i, u in enumerate(users)]

    code, out = run_command("--json", "--concurrency", "1")
    summary = json.loads(out)

    assert code == 1
    assert token_server.request_count == 1  # the first answer showed the wall: no more
    assert (summary["failed"], summary["edge_blocked"], summary["refreshed"]) == (3, 3, 0)
    assert {r["error_code"] for r in summary["results"]} == {"edge_blocked"}
    assert all(not r["permanent"] for r in summary["results"])
    assert all(f"T{WORDS}" in r["reason"] and SETTING in r["reason"] for r in summary["results"])
    not_tried = [r for r in summary["results"] if r["reason"].startswith("Not tried in this run.")]
    [tried] = [r for r in summary["results"] if r not in not_tried]
    assert len(not_tried) == 2
    # Only the one that was tried was marked; no claim is left behind.
    rows = {c.pk: OAuthCredential.objects.get(pk=c.pk) for c in credentials}
    assert rows[tried["credential_id"]].status == CredentialStatus.REFRESH_FAILED
    for result in not_tried:
        assert rows[result["credential_id"]].status == CredentialStatus.VALID
    assert all(row.refresh_claim == "" for row in rows.values())
    assert all(token_server.is_valid(c.refresh_token) for c in credentials)


@pytest.mark.django_db(transaction=True)
def test_refresh_tokens_text_output_names_the_setting(blocked, token_server, make_credential):
    make_credential(get_user_model().objects.create_user(username="dan"), expires_in=-60)
    code, out = run_command()
    assert code == 1
    assert f"T{WORDS}: HTTP 429 with an HTML page" in out
    assert SETTING in out


@pytest.mark.django_db
def test_the_dashboard_says_the_client_was_refused_and_names_the_setting(
    blocked, token_server, make_credential, admin_client
):
    users = [get_user_model().objects.create_user(username=n) for n in ("eve", "fay")]
    for user in users:
        credential = make_credential(user, expires_in=-60)
        credential_ensure_fresh(credential_id=credential.pk)
    # A failure of another kind is not counted as the edge.
    other = make_credential(
        get_user_model().objects.create_user(username="gus"),
        expires_in=timedelta(hours=2).total_seconds(),
        status=CredentialStatus.REFRESH_FAILED,
        last_refresh_error="OAuth token endpoint failed after 4 attempt(s): HTTP 503",
        last_refresh_error_code="http_503",
        consecutive_failures=1,
    )
    assert other.pk

    html = admin_client.get(reverse("admin:oauth_tokens_oauthcredential_dashboard")).content
    page = html.decode()
    start = page.index('id="edge-blocked"')
    banner = " ".join(page[start : page.index("</p>", start)].split())
    assert f"For 2 credentials, t{WORDS}" in banner
    assert f"User-Agent “{CLAUDE_CODE_UA}”" in banner
    assert f"<code>{SETTING}</code>" in banner
    # Each failing row says it too (shortened; the whole text in its tooltip).
    failures = page[page.index('id="failures"') :]
    for name in ("eve", "fay"):
        row = failures[failures.index(f">{name}</a>") :]
        assert f"T{WORDS}" in row[: row.index("</tr>")]


@pytest.mark.django_db
def test_the_dashboard_has_no_banner_without_an_edge_block(admin_client, make_credential, user):
    make_credential(user, expires_in=-60)
    page = admin_client.get(reverse("admin:oauth_tokens_oauthcredential_dashboard")).content
    assert b'id="edge-blocked"' not in page


def test_the_server_refuses_to_start_with_a_user_agent_that_cannot_be_sent():
    from tests.test_settings_guard import ROOT, run_check

    keys = {"SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEYS": "x", "PYTHONPATH": str(ROOT)}
    result = run_check(**keys, CLAUDE_OAUTH_USER_AGENT="axios/1.7.9\nX-Injected: yes")
    assert result.returncode != 0
    assert f"{SETTING} cannot be sent as a User-Agent: it holds a line break" in result.stderr
    assert run_check(**keys, CLAUDE_OAUTH_USER_AGENT="my-runner/2.0").returncode == 0
