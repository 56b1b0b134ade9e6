"""The model route through a real TaskGateway socket, against the loopback fake Anthropic API."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from datetime import UTC, datetime

import pytest

from common.netpolicy import EgressPolicy
from gateway.runtime import GatewaySetup, TaskGateway, UpstreamAuth, placeholder_new
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.gateway.conftest import (
    CLI_BETAS,
    REAL_KEY,
    REAL_OAUTH,
    StaticProvider,
    UnixHTTPConnection,
)

pytestmark = pytest.mark.timeout(60)

BODY = json.dumps(
    {
        "model": "claude-fake-1",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
)


def post(
    conn: UnixHTTPConnection,
    headers: dict[str, str],
    body: str = BODY,
    path: str = "/v1/messages?beta=true",
) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"content-type": "application/json", **headers})
    response = conn.getresponse()
    return response.status, response.read()


def test_a_wrong_or_missing_placeholder_is_refused_and_nothing_reaches_the_api(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    gateway, placeholder, lines = start_gateway()
    wrong = placeholder[:-4] + "AAAA"
    cases = [
        {"authorization": f"Bearer {wrong}"},
        {"x-api-key": wrong},
        {},
        {"authorization": f"Bearer {REAL_OAUTH}"},  # even the real token: only the placeholder
        {"authorization": f"Bearer {placeholder}", "x-api-key": wrong},  # one bad of two
        {"authorization": f"Basic {placeholder}"},
    ]
    for headers in cases:
        status, body = post(UnixHTTPConnection(gateway.socket_path), headers)
        assert status == 401, headers
        assert json.loads(body)["error"]["type"] == "authentication_error"
    assert fake_api.requests == []
    assert len(lines) == len(cases)
    assert all("without this task's placeholder" in line for line in lines)
    assert not any(placeholder in line or REAL_OAUTH in line for line in lines)


def test_oauth_real_token_replaces_the_placeholder_and_the_cli_betas_stay(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    gateway, placeholder, _ = start_gateway("oauth")
    conn = UnixHTTPConnection(gateway.socket_path)
    status, body = post(
        conn,
        {
            "authorization": f"Bearer {placeholder}",
            "x-api-key": placeholder,
            "anthropic-beta": CLI_BETAS,
            "user-agent": "claude-cli/2.1.332",
        },
    )
    assert status == 200
    assert b"event: message_stop" in body
    [seen] = fake_api.requests
    assert seen.path == "/v1/messages"
    assert seen.query == "beta=true"
    assert seen.headers["authorization"] == f"Bearer {REAL_OAUTH}"
    assert "x-api-key" not in seen.headers  # the inbound one was stripped, not forwarded
    assert seen.headers["anthropic-beta"] == CLI_BETAS
    assert seen.headers["user-agent"] == "claude-cli/2.1.332"
    assert placeholder not in json.dumps(seen.headers)


def test_oauth_beta_is_added_when_the_client_left_it_out(start_gateway, fake_api) -> None:
    gateway, placeholder, _ = start_gateway("oauth")
    status, _ = post(
        UnixHTTPConnection(gateway.socket_path), {"authorization": f"Bearer {placeholder}"}
    )
    assert status == 200
    assert fake_api.requests[0].headers["anthropic-beta"] == "oauth-2025-04-20"


def test_api_key_goes_out_as_x_api_key_and_inbound_authorization_is_stripped(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    gateway, placeholder, _ = start_gateway("api_key")
    status, _ = post(
        UnixHTTPConnection(gateway.socket_path),
        {"x-api-key": placeholder, "authorization": f"Bearer {placeholder}"},
    )
    assert status == 200
    [seen] = fake_api.requests
    assert seen.headers["x-api-key"] == REAL_KEY
    assert "authorization" not in seen.headers


def test_several_requests_on_one_connection(start_gateway, fake_api) -> None:
    gateway, placeholder, _ = start_gateway()
    conn = UnixHTTPConnection(gateway.socket_path)
    for _ in range(3):
        status, body = post(conn, {"authorization": f"Bearer {placeholder}"})
        assert status == 200
        assert b"message_stop" in body
    # count_tokens is allowed too, on the same connection
    status, body = post(
        conn, {"authorization": f"Bearer {placeholder}"}, path="/v1/messages/count_tokens"
    )
    assert status == 200
    assert "input_tokens" in json.loads(body)
    assert len(fake_api.requests) == 4


def test_paths_the_cli_does_not_use_are_refused_with_a_log_line(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    gateway, placeholder, lines = start_gateway()
    for method, path in [
        ("GET", "/v1/models"),
        ("POST", "/v1/files"),
        ("GET", "/v1/messages"),
        ("POST", "/api/oauth/profile"),
        ("POST", "/v1/messages/../files"),
        # Not an authority: the upstream URL would have become https://api…//evil.example/…
        ("POST", "//evil.example/v1/messages"),
        ("POST", "//evil.example/v1/messages?beta=true"),
    ]:
        conn = UnixHTTPConnection(gateway.socket_path)
        conn.request(method, path, body="{}", headers={"authorization": f"Bearer {placeholder}"})
        response = conn.getresponse()
        assert response.status == 403, path
        assert json.loads(response.read())["error"]["type"] == "permission_error"
        refused = path.split("?")[0]
        assert lines[-1] == (
            f"model request refused: {method} {refused} is not a call Claude Code needs"
        )
    assert fake_api.requests == []


def test_sse_is_relayed_as_it_arrives_not_buffered(start_gateway, fake_api) -> None:
    """The fake API holds the last event until the test has read the first one through the
    gateway: a buffering gateway would deliver nothing before the fake gives up."""
    fake_api.hold_last_event = True
    gateway, placeholder, _ = start_gateway()
    conn = UnixHTTPConnection(gateway.socket_path)
    conn.request(
        "POST",
        "/v1/messages?beta=true",
        body=BODY,
        headers={"authorization": f"Bearer {placeholder}"},
    )
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type") == "text/event-stream"
    started = time.monotonic()
    first = b""
    while b"\n\n" not in first:
        first += response.read1(65536)
    assert first.startswith(b"event: message_start")
    assert time.monotonic() - started < 5
    assert not fake_api.held_timed_out
    fake_api.release_last_event.set()
    rest = response.read()
    assert rest.rstrip().endswith(b'data: {"type": "message_stop"}')
    assert not fake_api.held_timed_out


def test_a_401_is_refreshed_once_and_replayed(start_gateway, fake_api: FakeAnthropicAPI) -> None:
    fake_api.rejected_credentials = {"sk-ant-oat01-stale"}
    provider = StaticProvider("sk-ant-oat01-stale", fresh=REAL_OAUTH)
    gateway, placeholder, lines = start_gateway(provider=provider)
    status, _ = post(
        UnixHTTPConnection(gateway.socket_path), {"authorization": f"Bearer {placeholder}"}
    )
    assert status == 200
    assert provider.refresh_calls == ["sk-ant-oat01-stale"]
    assert [r.bearer_token for r in fake_api.requests] == ["sk-ant-oat01-stale", REAL_OAUTH]
    assert "refreshed the OAuth token and replayed" in lines[-1]
    assert gateway.usage.requests == 1  # one request of the container's


def test_a_401_is_passed_on_when_no_refresh_is_possible(start_gateway, fake_api) -> None:
    fake_api.rejected_credentials = {REAL_OAUTH}
    provider = StaticProvider(REAL_OAUTH, fresh=None)
    gateway, placeholder, lines = start_gateway(provider=provider)
    status, body = post(
        UnixHTTPConnection(gateway.socket_path), {"authorization": f"Bearer {placeholder}"}
    )
    assert status == 401
    assert json.loads(body)["error"]["message"] == "Invalid bearer token"
    assert len(fake_api.requests) == 1
    assert provider.refresh_calls == [REAL_OAUTH]
    assert "could not be refreshed" in lines[-1]


def test_api_key_401_is_passed_on_without_a_refresh(start_gateway, fake_api) -> None:
    provider = StaticProvider("sk-ant-api03-revoked", fresh="never-used")
    gateway, placeholder, _ = start_gateway("api_key", provider=provider)
    status, _ = post(UnixHTTPConnection(gateway.socket_path), {"x-api-key": placeholder})
    assert status == 401
    assert provider.refresh_calls == []


def test_usage_is_counted_from_streams_json_statuses_and_ratelimit_headers(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    fake_api.response_headers = {
        "anthropic-ratelimit-unified-status": "allowed",
        "anthropic-ratelimit-unified-5h-utilization": "0.25",
    }
    fake_api.text_deltas = 7
    gateway, placeholder, _ = start_gateway()
    conn = UnixHTTPConnection(gateway.socket_path)
    auth = {"authorization": f"Bearer {placeholder}"}
    assert post(conn, auth)[0] == 200  # streamed: 12 in, 34 out
    assert post(conn, auth, body=json.dumps({"model": "m", "messages": []}))[0] == 200  # JSON
    fake_api.response_headers["anthropic-ratelimit-unified-5h-utilization"] = "0.5"
    fake_api.next_statuses.extend([429, 529])
    assert post(conn, auth)[0] == 429
    assert post(conn, auth)[0] == 529
    post(conn, auth, path="/v1/messages/count_tokens")  # counted as a request, no tokens
    usage = gateway.stop()
    replies = [r.extra["reply"]["usage"] for r in fake_api.requests if "reply" in r.extra]
    assert len(replies) == 2
    assert usage.requests == 5
    assert usage.input_tokens == sum(u["input_tokens"] for u in replies) == 24
    assert usage.output_tokens == sum(u["output_tokens"] for u in replies) == 68
    assert usage.cache_creation_input_tokens == 0
    assert usage.cache_read_input_tokens == 0
    assert (usage.status_429, usage.status_529) == (1, 1)
    assert usage.ratelimit_headers == {
        "anthropic-ratelimit-unified-status": "allowed",
        "anthropic-ratelimit-unified-5h-utilization": "0.5",
    }


def test_after_stop_connections_are_refused_and_the_socket_is_gone(start_gateway) -> None:
    gateway, placeholder, _ = start_gateway()
    path = gateway.socket_path
    idle = UnixHTTPConnection(path)
    assert post(idle, {"authorization": f"Bearer {placeholder}"})[0] == 200
    gateway.stop()
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        UnixHTTPConnection(path).connect()
    # The kept-alive connection from before was closed too.
    with pytest.raises((OSError, http.client.HTTPException)):
        post(idle, {"authorization": f"Bearer {placeholder}"})
    assert gateway.stop().requests == 1  # stop twice is harmless


def test_socket_mode_lets_any_uid_connect(start_gateway) -> None:
    gateway, _, _ = start_gateway()
    assert gateway.socket_path.stat().st_mode & 0o777 == 0o666
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(gateway.socket_path))
    s.close()


def test_an_answer_the_api_cuts_off_reaches_the_client_broken_not_short(socket_dir) -> None:
    """The head and the bytes that came are relayed, then the connection ends without the last
    chunk, so the client cannot take a cut answer for a complete one."""
    cut = socket.create_server(("127.0.0.1", 0))
    event = b"event: message_start\ndata: {}\n\n"

    def serve() -> None:
        conn, _ = cut.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n%b\r\n" % (len(event), event)
            )

    threading.Thread(target=serve, daemon=True).start()
    lines: list[str] = []
    placeholder = placeholder_new()
    gateway = TaskGateway(
        socket_path=socket_dir / "gateway.sock",
        auth=UpstreamAuth("oauth"),
        provider=StaticProvider(REAL_OAUTH),
        placeholder=placeholder,
        on_log=lines.append,
        setup=GatewaySetup(
            api_url=f"http://127.0.0.1:{cut.getsockname()[1]}", egress=EgressPolicy(rules=())
        ),
    )
    gateway.start()
    try:
        conn = UnixHTTPConnection(gateway.socket_path)
        conn.request("POST", "/v1/messages", body=BODY, headers={"x-api-key": placeholder})
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as cut_off:
            response.read()
        assert cut_off.value.partial == event
        assert lines == ["model response cut off by the API (ClientPayloadError)"]
    finally:
        gateway.stop()
        cut.close()


def test_a_replay_refused_again_is_recorded_as_refused_after_refresh(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    fake_api.rejected_credentials = {"sk-ant-oat01-stale", REAL_OAUTH}
    provider = StaticProvider("sk-ant-oat01-stale", fresh=REAL_OAUTH)
    gateway, placeholder, lines = start_gateway(provider=provider)
    status, _ = post(
        UnixHTTPConnection(gateway.socket_path), {"authorization": f"Bearer {placeholder}"}
    )
    assert status == 401
    assert [r.bearer_token for r in fake_api.requests] == ["sk-ant-oat01-stale", REAL_OAUTH]
    assert lines[-1] == "model API answered 401 to the replay with the refreshed OAuth token"
    usage = gateway.stop()
    assert (usage.requests, usage.status_401, usage.auth_refreshed_after_401) == (1, 1, 1)
    assert usage.auth_refused_after_refresh
    assert not usage.auth_refused_unrenewable


def test_a_401_or_403_that_cannot_be_renewed_is_recorded(start_gateway, fake_api) -> None:
    gateway, placeholder, _ = start_gateway("api_key", provider=StaticProvider("sk-ant-api03-x"))
    assert post(UnixHTTPConnection(gateway.socket_path), {"x-api-key": placeholder})[0] == 401
    fake_api.auth_revoked()
    gateway_403, placeholder_403, _ = start_gateway()
    conn = UnixHTTPConnection(gateway_403.socket_path)
    assert post(conn, {"authorization": f"Bearer {placeholder_403}"})[0] == 403
    usage = gateway.stop()
    assert (usage.status_401, usage.auth_refreshed_after_401) == (1, 0)
    assert usage.auth_refused_unrenewable
    usage = gateway_403.stop()
    assert (usage.status_401, usage.status_403) == (0, 1)
    # A revoked token answers 403: renewed like a 401 when it can be; this one cannot.
    assert usage.auth_refused_unrenewable
    assert not usage.auth_refused_after_refresh
    assert usage.auth_refused


def test_a_rate_limit_rejection_records_the_reset_the_api_gave(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    fake_api.limit_rejected(reset_epoch=1767225600, window="7d")
    gateway, placeholder, _ = start_gateway()
    auth = {"authorization": f"Bearer {placeholder}"}
    assert post(UnixHTTPConnection(gateway.socket_path), auth)[0] == 429
    usage = gateway.usage
    assert usage.rate_limit_status == "rejected"
    assert usage.rate_limit_rejected_reset == datetime(2026, 1, 1, tzinfo=UTC)
    assert usage.rate_limit_rejected_claim == "seven_day"


def test_what_the_container_sends_never_sets_the_credential_facts(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    """The facts come from the API's answers only: the same headers in a request, or a body
    that talks of limits, change nothing."""
    gateway, placeholder, _ = start_gateway()
    headers = {
        "authorization": f"Bearer {placeholder}",
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": "9999999999",
    }
    claim = json.dumps({"type": "rate_limit_event", "rate_limit_info": {"status": "rejected"}})
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": claim}]})
    assert post(UnixHTTPConnection(gateway.socket_path), headers, body=body)[0] == 200
    usage = gateway.stop()
    assert (usage.rate_limit_status, usage.rate_limit_rejected_reset) == ("", None)
    assert usage.ratelimit_headers == {}
    assert (usage.status_401, usage.status_403, usage.status_429) == (0, 0, 0)


NOT_ON_THIS_PLAN = "Your organization does not have access to this model."
ABOUT_THE_REQUEST = {
    "a model the plan cannot use": NOT_ON_THIS_PLAN,
    # The container chose the model's name; an error that quotes it is still about the request.
    "an error quoting the request": "Model 'OAuth token has been revoked' is not available.",
    "a long error": NOT_ON_THIS_PLAN + " Ask your administrator." * 400,
}


@pytest.mark.parametrize("message", list(ABOUT_THE_REQUEST.values()), ids=list(ABOUT_THE_REQUEST))
@pytest.mark.parametrize("fresh", [REAL_OAUTH + "-fresh", None], ids=["renewable", "not"])
def test_a_403_about_the_request_leaves_the_credential_alone(
    start_gateway, fake_api: FakeAnthropicAPI, message: str, fresh: str | None
) -> None:
    """The API refuses what the container asked for, not the credential: the answer reaches
    the client as it came, and the token is neither renewed nor recorded as refused."""
    fake_api.error_answer = (403, "permission_error", message)
    provider = StaticProvider(REAL_OAUTH, fresh=fresh)
    gateway, placeholder, lines = start_gateway(provider=provider)
    status, body = post(
        UnixHTTPConnection(gateway.socket_path), {"authorization": f"Bearer {placeholder}"}
    )
    assert status == 403
    sent = {"type": "error", "error": {"type": "permission_error", "message": message}}
    assert body == json.dumps(sent).encode()
    assert provider.refresh_calls == []
    assert len(fake_api.requests) == 1
    assert lines == ["model API answered 403 about the request, not the credential"]
    usage = gateway.stop()
    assert (usage.status_403, usage.auth_refreshed_after_401) == (1, 0)
    assert (usage.auth_refused_unrenewable, usage.auth_refused_after_refresh) == (False, False)
    assert not usage.auth_refused


def test_a_revoked_token_is_renewed_once_and_replayed(
    start_gateway, fake_api: FakeAnthropicAPI
) -> None:
    fake_api.revoked_credentials = {"sk-ant-oat01-stale"}
    provider = StaticProvider("sk-ant-oat01-stale", fresh=REAL_OAUTH)
    gateway, placeholder, lines = start_gateway(provider=provider)
    conn = UnixHTTPConnection(gateway.socket_path)
    assert post(conn, {"authorization": f"Bearer {placeholder}"})[0] == 200
    assert provider.refresh_calls == ["sk-ant-oat01-stale"]
    assert [r.bearer_token for r in fake_api.requests] == ["sk-ant-oat01-stale", REAL_OAUTH]
    assert lines == ["model API answered 403: refreshed the OAuth token and replayed the request"]
    # Revoked again after the renewal: the credential itself is refused.
    provider.fresh = "sk-ant-oat01-fresher"
    fake_api.revoked_credentials |= {REAL_OAUTH, provider.fresh}
    status, body = post(conn, {"authorization": f"Bearer {placeholder}"})
    assert status == 403
    assert json.loads(body)["error"]["message"].startswith("OAuth token has been revoked")
    assert lines[-1] == "model API answered 403 to the replay with the refreshed OAuth token"
    usage = gateway.stop()
    assert (usage.requests, usage.status_403, usage.auth_refreshed_after_401) == (2, 1, 2)
    assert usage.auth_refused_after_refresh
    assert usage.auth_refused
