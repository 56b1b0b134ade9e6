"""token_client against a real HTTP token endpoint on loopback (FakeTokenServer); no mocks."""

from __future__ import annotations

import logging
import pickle
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from oauth_tokens.token_client import (
    DEFAULT_CLIENT_ID,
    DEFAULT_SCOPE,
    DEFAULT_TOKEN_URL,
    DEFAULT_USER_AGENT,
    RefreshConfig,
    RefreshError,
    TokenGrant,
    redact,
    token_refresh_request,
)
from tests.fakes.token_server import FakeTokenServer

# What the real CLI sends: docs/claude-cli-contract.md#refresh-request.
CLI_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
CLI_SCOPE = (
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
)


class SleepRecorder:
    """A `sleep` that records and returns at once; optionally advances a fake clock."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.calls: list[float] = []
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(url: str, **overrides: float) -> RefreshConfig:
    # Small backoff so retry tests stay fast even where real sleeps happen.
    values: dict[str, Any] = {"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}
    values.update(overrides)
    return RefreshConfig(token_url=url, client_id=DEFAULT_CLIENT_ID, scope=DEFAULT_SCOPE, **values)


def closed_port_url() -> str:
    # Bind then close: nothing listens there, so connects are refused at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/oauth/token"


class EndpointLater:
    """A token endpoint that the first attempt cannot reach, and a FakeTokenServer on the same
    port from the first wait between attempts on (`opened`: the transport's `sleep`).

    first="refused": nothing listens, so connecting is refused. first="connect_timeout": a
    listener whose accept queue is full and that never accepts, so connecting times out. The
    server that opens never answers: a second attempt would time out reading.
    """

    def __init__(self, *, first: str) -> None:
        self.server: FakeTokenServer | None = None
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        if first == "refused":
            self._listener.close()
            return
        self._listener.listen(0)
        for _ in range(3):  # fill the accept queue: later SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(filler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/oauth/token"

    def opened(self, seconds: float) -> None:
        if self.server is None:
            for sock in (*self._fillers, self._listener):
                sock.close()
            self.server = FakeTokenServer(port=self.port).start()
            self.server.hang = True

    def close(self) -> None:
        for sock in (*self._fillers, self._listener):
            sock.close()
        if self.server is not None:
            self.server.close()


# -- defaults and success ------------------------------------------------------------------


def test_defaults_match_the_cli() -> None:
    assert DEFAULT_TOKEN_URL == "https://platform.claude.com/v1/oauth/token"
    assert DEFAULT_CLIENT_ID == CLI_CLIENT_ID
    assert DEFAULT_SCOPE == CLI_SCOPE
    cfg = RefreshConfig()
    assert (cfg.token_url, cfg.client_id, cfg.scope) == (
        DEFAULT_TOKEN_URL,
        CLI_CLIENT_ID,
        CLI_SCOPE,
    )
    assert (cfg.timeout_seconds, cfg.max_attempts, cfg.max_total_seconds) == (10.0, 4, 30.0)


def test_success_sends_exactly_the_cli_request_and_rotates(
    token_server: FakeTokenServer,
) -> None:
    old = token_server.issue()
    grant = token_refresh_request(refresh_token=old, config=config(token_server.url))

    [req] = token_server.requests
    assert req.method == "POST"
    assert req.path == "/v1/oauth/token"
    assert req.body == {
        "grant_type": "refresh_token",
        "refresh_token": old,
        "client_id": CLI_CLIENT_ID,
        "scope": CLI_SCOPE,
    }
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Accept"] == "application/json"
    assert req.headers["User-Agent"] == DEFAULT_USER_AGENT == "axios/1.7.9"

    issued = token_server.grants[old]
    assert grant.access_token == issued["access_token"]
    assert grant.refresh_token == issued["refresh_token"] != old
    assert grant.expires_in == 28800
    assert grant.scopes == tuple(CLI_SCOPE.split())
    assert grant.token_type == "Bearer"
    assert grant.account_email == "user@example.com"
    assert grant.attempts == 1
    # The new refresh token works; the old one is spent.
    assert grant.refresh_token is not None
    assert token_server.is_valid(grant.refresh_token)
    assert not token_server.is_valid(old)


def test_no_refresh_token_in_answer_gives_none() -> None:
    with FakeTokenServer(rotate=False, expires_in=None) as server:
        old = server.issue()
        grant = token_refresh_request(refresh_token=old, config=config(server.url))
    assert grant.refresh_token is None
    assert grant.expires_in is None
    assert grant.access_token


def test_minimal_200_fills_defaults(token_server: FakeTokenServer) -> None:
    token_server.fail_next(200, body={"access_token": "abc"})
    grant = token_refresh_request(refresh_token="rt", config=config(token_server.url))
    assert grant == TokenGrant(
        access_token="abc",
        refresh_token=None,
        expires_in=None,
        scopes=(),
        token_type="Bearer",
        account_email="",
        attempts=1,
    )


def test_grant_repr_hides_tokens(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    grant = token_refresh_request(refresh_token=old, config=config(token_server.url))
    text = repr(grant) + str(grant)
    assert grant.access_token not in text
    assert grant.refresh_token is not None
    assert grant.refresh_token not in text
    assert "sk-ant-" not in text
    assert "attempts=1" in text


def test_uses_a_given_session(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    with requests.Session() as session:
        grant = token_refresh_request(
            refresh_token=old, config=config(token_server.url), session=session
        )
        # Still usable: the function must not close a session it did not create.
        second = token_refresh_request(
            refresh_token=grant.refresh_token or "",
            config=config(token_server.url),
            session=session,
        )
    assert second.attempts == 1
    assert token_server.refresh_count == 2


# -- retries -------------------------------------------------------------------------------


def test_retries_503_twice_then_succeeds(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    token_server.fail_next(503, times=2)
    sleeps = SleepRecorder()
    grant = token_refresh_request(
        refresh_token=old,
        config=config(token_server.url, backoff_base_seconds=0.5, backoff_max_seconds=8),
        sleep=sleeps,
    )
    assert grant.attempts == 3
    assert token_server.request_count == 3
    assert token_server.refresh_count == 1
    # Full jitter: uniform(0, min(max, base * 2**n)) for n = 0, 1.
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 0.5
    assert 0 <= sleeps.calls[1] <= 1.0


def test_5xx_exhausts_max_attempts(token_server: FakeTokenServer) -> None:
    token_server.fail_next(502, times=10)
    sleeps = SleepRecorder()
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token=token_server.issue(),
            config=config(token_server.url, max_attempts=3),
            sleep=sleeps,
        )
    err = info.value
    assert (err.code, err.status, err.permanent, err.attempts) == ("http_502", 502, False, 3)
    assert token_server.request_count == 3
    assert len(sleeps.calls) == 2


def test_connection_refused_is_retried_then_fails_bounded() -> None:
    sleeps = SleepRecorder()
    start = time.monotonic()
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token="sk-ant-ort01-never-sent",
            config=config(closed_port_url(), max_attempts=3),
            sleep=sleeps,
        )
    err = info.value
    assert (err.code, err.status, err.permanent, err.attempts) == ("connection", None, False, 3)
    assert len(sleeps.calls) == 2
    assert time.monotonic() - start < 5


def test_a_read_timeout_ends_the_refresh_without_resending_the_token(
    token_server: FakeTokenServer,
) -> None:
    # The endpoint answers after the client gave up, having spent the token: a second request
    # with it would only be refused.
    token_server.delay_seconds = 0.6
    token = token_server.issue()
    start = time.monotonic()
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token=token,
            config=config(token_server.url, timeout_seconds=0.2, max_attempts=4),
            sleep=SleepRecorder(),
        )
    err = info.value
    assert (err.code, err.status, err.permanent, err.attempts) == ("no_answer", None, False, 1)
    assert token_server.request_count == 1
    assert time.monotonic() - start < 0.55
    assert "did not answer within 0.2 s" in str(err)
    assert "not sent again" in str(err)
    time.sleep(0.6)
    assert token_server.refresh_count == 1
    assert not token_server.is_valid(token)


def test_a_reset_after_sending_is_not_retried(token_server: FakeTokenServer) -> None:
    token_server.reset_next()
    sleeps = SleepRecorder()
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token=token_server.issue(), config=config(token_server.url), sleep=sleeps
        )
    err = info.value
    assert (err.code, err.permanent, err.attempts) == ("no_answer", False, 1)
    assert token_server.request_count == 1
    assert sleeps.calls == []
    assert "the connection broke" in str(err)


@pytest.mark.parametrize("first", ["refused", "connect_timeout"])
def test_a_request_that_never_left_is_retried_one_that_may_have_arrived_is_not(
    first: str,
) -> None:
    endpoint = EndpointLater(first=first)
    try:
        with pytest.raises(RefreshError) as info:
            token_refresh_request(
                refresh_token="sk-ant-ort01-sent-once",
                config=config(endpoint.url, timeout_seconds=0.3, max_attempts=4),
                sleep=endpoint.opened,
            )
        assert endpoint.server is not None
        assert (info.value.code, info.value.attempts) == ("no_answer", 2)
        assert endpoint.server.request_count == 1
    finally:
        endpoint.close()


def test_429_retry_after_seconds_is_honoured(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    token_server.fail_next(429, headers={"Retry-After": "1"})
    sleeps = SleepRecorder()
    grant = token_refresh_request(refresh_token=old, config=config(token_server.url), sleep=sleeps)
    assert grant.attempts == 2
    assert sleeps.calls == [1.0]


def test_429_retry_after_http_date_is_honoured(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    when = datetime.now(UTC) + timedelta(seconds=5)
    token_server.fail_next(429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    sleeps = SleepRecorder()
    grant = token_refresh_request(refresh_token=old, config=config(token_server.url), sleep=sleeps)
    assert grant.attempts == 2
    [wait] = sleeps.calls
    assert 3 <= wait <= 5  # whole-second date resolution


def test_429_retry_after_real_time(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    token_server.fail_next(429, headers={"Retry-After": "1"})
    start = time.monotonic()
    grant = token_refresh_request(refresh_token=old, config=config(token_server.url))
    elapsed = time.monotonic() - start
    assert grant.attempts == 2
    first, second = token_server.requests
    assert second.received_at - first.received_at >= 0.95
    assert 0.95 <= elapsed < 3


def test_retry_after_beyond_budget_gives_up_without_waiting(
    token_server: FakeTokenServer,
) -> None:
    token_server.fail_next(429, headers={"Retry-After": "60"})
    sleeps = SleepRecorder()
    start = time.monotonic()
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token=token_server.issue(),
            config=config(token_server.url, max_total_seconds=5),
            sleep=sleeps,
        )
    err = info.value
    assert (err.code, err.status, err.permanent, err.attempts) == ("rate_limited", 429, False, 1)
    assert sleeps.calls == []
    assert token_server.request_count == 1
    assert time.monotonic() - start < 1


def test_429_on_last_attempt_is_rate_limited(token_server: FakeTokenServer) -> None:
    token_server.fail_next(429, times=2)
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token=token_server.issue(),
            config=config(token_server.url, max_attempts=2),
            sleep=SleepRecorder(),
        )
    assert (info.value.code, info.value.status, info.value.permanent) == (
        "rate_limited",
        429,
        False,
    )


def test_deadline_bounds_waits_with_fake_clock(token_server: FakeTokenServer) -> None:
    token_server.fail_next(503, times=100)
    clock = FakeClock()
    sleeps = SleepRecorder(clock)
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token=token_server.issue(),
            config=config(
                token_server.url,
                max_attempts=100,
                max_total_seconds=2,
                backoff_base_seconds=0.5,
                backoff_max_seconds=8,
            ),
            sleep=sleeps,
            clock=clock,
        )
    err = info.value
    assert (err.code, err.status, err.permanent) == ("deadline", 503, False)
    assert err.attempts < 100
    assert err.attempts == token_server.request_count == len(sleeps.calls) + 1
    # Never started a wait that would cross the 2 s budget.
    assert sum(sleeps.calls) <= 2


def test_deadline_caps_a_slow_request_in_real_time(token_server: FakeTokenServer) -> None:
    token_server.hang = True
    start = time.monotonic()
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token=token_server.issue(),
            config=config(token_server.url, timeout_seconds=10, max_total_seconds=0.5),
        )
    elapsed = time.monotonic() - start
    assert info.value.code == "no_answer"  # the request may have arrived: not sent again
    assert info.value.permanent is False
    assert elapsed < 2  # the 10 s per-request timeout was capped by the 0.5 s budget


# -- final errors --------------------------------------------------------------------------


def test_invalid_grant_is_final_after_one_request(token_server: FakeTokenServer) -> None:
    sleeps = SleepRecorder()
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token="sk-ant-ort01-unknown", config=config(token_server.url), sleep=sleeps
        )
    err = info.value
    assert (err.code, err.status, err.permanent, err.attempts) == ("invalid_grant", 400, True, 1)
    assert token_server.request_count == 1
    assert sleeps.calls == []
    assert "invalid_grant" in str(err)
    assert "sign in again" in str(err)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, {"error": "invalid_client"}, "invalid_client"),
        (400, {"error": "something_new"}, "http_400"),
        (400, "not json", "http_400"),
        (401, {"error": {"type": "authentication_error", "message": "x"}}, "http_401"),
        (403, None, "http_403"),
        (404, None, "http_404"),
    ],
)
def test_other_4xx_are_final(
    token_server: FakeTokenServer, status: int, body: object, code: str
) -> None:
    token_server.fail_next(status, body=body, times=5)
    with pytest.raises(RefreshError) as info:
        token_refresh_request(
            refresh_token=token_server.issue(),
            config=config(token_server.url),
            sleep=SleepRecorder(),
        )
    err = info.value
    assert (err.code, err.status, err.permanent, err.attempts) == (code, status, True, 1)
    assert token_server.request_count == 1


@pytest.mark.parametrize(
    "body",
    [
        "<html>maintenance</html>",
        ["a", "list"],
        {"token_type": "Bearer"},
        {"access_token": ""},
        {"access_token": 42},
    ],
)
def test_malformed_200_is_final(token_server: FakeTokenServer, body: object) -> None:
    token_server.fail_next(200, body=body, times=5)
    with pytest.raises(RefreshError) as info:
        token_refresh_request(refresh_token=token_server.issue(), config=config(token_server.url))
    err = info.value
    assert (err.code, err.status, err.permanent, err.attempts) == ("bad_response", 200, True, 1)
    assert token_server.request_count == 1


def test_redirect_is_not_followed(token_server: FakeTokenServer) -> None:
    token_server.fail_next(302, headers={"Location": token_server.base_url + "/elsewhere"})
    with pytest.raises(RefreshError) as info:
        token_refresh_request(refresh_token=token_server.issue(), config=config(token_server.url))
    assert (info.value.code, info.value.permanent) == ("http_302", False)
    assert [r.path for r in token_server.requests] == ["/v1/oauth/token"]


def test_bad_url_setting_is_not_permanent() -> None:
    with pytest.raises(RefreshError) as info:
        token_refresh_request(refresh_token="rt", config=config("not a url"))
    assert (info.value.code, info.value.permanent) == ("connection", False)


def test_empty_refresh_token_is_refused_without_a_request(token_server: FakeTokenServer) -> None:
    with pytest.raises(RefreshError) as info:
        token_refresh_request(refresh_token="", config=config(token_server.url))
    assert info.value.permanent is True
    assert token_server.request_count == 0


# -- secrets stay out of messages and logs -------------------------------------------------


def test_error_text_redacts_server_fields(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    token_server.fail_next(
        400,
        body={
            "error": "invalid_grant",
            "error_description": f"token {old} revoked (request AbCdEfGhIjKlMnOpQrStUvWx)\n",
        },
    )
    with pytest.raises(RefreshError) as info:
        token_refresh_request(refresh_token=old, config=config(token_server.url))
    text = str(info.value) + repr(info.value)
    assert old not in text
    assert "sk-ant-" not in text
    assert "AbCdEfGhIjKlMnOpQrStUvWx" not in text
    assert "[redacted]" in text
    assert "\n" not in str(info.value)


def test_redact() -> None:
    assert redact("bad sk-ant-ort01-x_y-z here") == "bad [redacted] here"
    assert redact("id " + "a" * 20) == "id [redacted]"
    assert redact("short_words stay") == "short_words stay"


def test_logs_and_errors_never_contain_tokens(
    token_server: FakeTokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    old = token_server.issue()
    token_server.fail_next(503)
    token_server.fail_next(429, headers={"Retry-After": "0"})
    grant = token_refresh_request(refresh_token=old, config=config(token_server.url))
    assert grant.attempts == 3
    # Reuse of the spent token: a final error, also logged.
    with pytest.raises(RefreshError) as info:
        token_refresh_request(refresh_token=old, config=config(token_server.url))
    # And a connection failure.
    with pytest.raises(RefreshError) as info2:
        token_refresh_request(refresh_token=old, config=config(closed_port_url(), max_attempts=2))

    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert any(r.name == "oauth_tokens.token_client" for r in caplog.records)
    assert "attempt 1/4" in caplog.text
    secrets = [old, grant.access_token, grant.refresh_token or ""]
    for text in (logged, str(info.value), repr(info.value), str(info2.value)):
        for secret in secrets:
            assert secret not in text
            assert secret[:16] not in text
        assert "sk-ant-" not in text


def test_refresh_error_pickles() -> None:
    err = RefreshError("msg", permanent=True, code="invalid_grant", status=400, attempts=1)
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301
    assert (copy.code, copy.status, copy.permanent, copy.attempts, str(copy)) == (
        "invalid_grant",
        400,
        True,
        1,
        "msg",
    )


# -- the fake server itself ----------------------------------------------------------------


def test_fake_refresh_tokens_are_single_use(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    first = token_refresh_request(refresh_token=old, config=config(token_server.url))
    with pytest.raises(RefreshError) as info:
        token_refresh_request(refresh_token=old, config=config(token_server.url))
    assert info.value.code == "invalid_grant"
    # The rotated token still works, once.
    assert first.refresh_token is not None
    second = token_refresh_request(
        refresh_token=first.refresh_token, config=config(token_server.url)
    )
    assert second.refresh_token not in (old, first.refresh_token)
    assert token_server.refresh_count == 2
    assert token_server.last_grant is not None
    assert token_server.last_grant["access_token"] == second.access_token


def test_fake_without_rotation_keeps_the_token_valid() -> None:
    with FakeTokenServer(rotate=False) as server:
        old = server.issue()
        token_refresh_request(refresh_token=old, config=config(server.url))
        assert server.is_valid(old)
        token_refresh_request(refresh_token=old, config=config(server.url))
        assert server.refresh_count == 2


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"grant_type": "refresh_token", "refresh_token": "x", "scope": "s"}, "invalid_request"),
        (
            {"grant_type": "refresh_token", "refresh_token": "x", "client_id": CLI_CLIENT_ID},
            "invalid_request",
        ),
        (
            {
                "grant_type": "refresh_token",
                "refresh_token": "x",
                "client_id": "other",
                "scope": "s",
            },
            "invalid_client",
        ),
    ],
)
def test_fake_validates_the_body(
    token_server: FakeTokenServer, payload: dict[str, str], error: str
) -> None:
    token = token_server.issue("x")
    response = requests.post(token_server.url, json=payload, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert token_server.is_valid(token)  # a rejected request does not spend the token


def test_fake_rejects_form_encoded_body(token_server: FakeTokenServer) -> None:
    token = token_server.issue()
    form = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": CLI_CLIENT_ID,
        "scope": CLI_SCOPE,
    }
    response = requests.post(token_server.url, data=form, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    [req] = token_server.requests
    assert req.body is None
    assert b"grant_type=refresh_token" in req.raw_body


def test_fake_handles_64_concurrent_clients() -> None:
    clients, delay = 64, 0.05
    with FakeTokenServer(delay_seconds=delay) as server:
        tokens = [server.issue() for _ in range(clients)]
        barrier = threading.Barrier(clients)
        results: list[TokenGrant | BaseException] = []
        lock = threading.Lock()

        def run(token: str) -> None:
            barrier.wait()
            try:
                outcome: TokenGrant | BaseException = token_refresh_request(
                    refresh_token=token, config=config(server.url, max_attempts=1)
                )
            except BaseException as exc:  # noqa: BLE001  collected and asserted below
                outcome = exc
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=run, args=(t,)) for t in tokens]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        elapsed = time.monotonic() - start

    assert all(isinstance(r, TokenGrant) for r in results), results
    assert len(results) == clients
    assert server.refresh_count == clients
    assert len({r.access_token for r in results if isinstance(r, TokenGrant)}) == clients
    # Served in parallel: ~delay plus overhead. Serial would be 64 * 50 ms = 3.2 s.
    assert elapsed < 2.5


def test_fake_concurrent_reuse_grants_only_once(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    token_server.delay_seconds = 0.02
    outcomes: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            token_refresh_request(refresh_token=old, config=config(token_server.url))
            result = "ok"
        except RefreshError as exc:
            result = exc.code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(outcomes) == ["invalid_grant"] * 7 + ["ok"]
