"""The aiohttp transport (token_refresh_request_async) against the same real token endpoint on
loopback as the requests transport: the same request, the same retry and limit rules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from oauth_tokens.token_client import (
    RefreshError,
    TokenGrant,
    token_refresh_request,
    token_refresh_request_async,
    token_session_new,
)
from tests.fakes.token_server import FakeTokenServer
from tests.oauth_tokens.test_token_client import (
    CLI_CLIENT_ID,
    CLI_SCOPE,
    EndpointLater,
    FakeClock,
    closed_port_url,
    config,
)


class AsyncSleepRecorder:
    """An async `sleep` that records and returns at once; optionally advances a fake clock."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.calls: list[float] = []
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


def refresh(refresh_token: str, cfg: Any, **kwargs: Any) -> TokenGrant:
    """One async refresh on a fresh event loop and session."""

    async def go() -> TokenGrant:
        async with token_session_new(concurrency=4) as session:
            return await token_refresh_request_async(
                refresh_token=refresh_token, config=cfg, session=session, **kwargs
            )

    return asyncio.run(go())


def refused(call: Callable[[], object]) -> RefreshError:
    with pytest.raises(RefreshError) as info:
        call()
    return info.value


def test_sends_the_same_request_as_the_sync_transport(token_server: FakeTokenServer) -> None:
    first = token_server.issue()
    second = token_server.issue()
    sync_grant = token_refresh_request(refresh_token=first, config=config(token_server.url))
    async_grant = refresh(second, config(token_server.url))

    sync_req, async_req = token_server.requests
    assert async_req.method == "POST"
    assert async_req.path == "/v1/oauth/token"
    assert async_req.body == {
        "grant_type": "refresh_token",
        "refresh_token": second,
        "client_id": CLI_CLIENT_ID,
        "scope": CLI_SCOPE,
    }
    assert async_req.raw_body == sync_req.raw_body.replace(first.encode(), second.encode())
    assert async_req.headers["Content-Type"] == "application/json"
    assert async_req.headers["Accept"] == "application/json"
    assert async_req.headers["User-Agent"] == sync_req.headers["User-Agent"] == "axios/1.7.9"
    issued = token_server.grants[second]
    assert async_grant.access_token == issued["access_token"]
    assert async_grant.refresh_token == issued["refresh_token"] != second
    assert (async_grant.expires_in, async_grant.scopes, async_grant.attempts) == (
        sync_grant.expires_in,
        sync_grant.scopes,
        1,
    )
    assert not token_server.is_valid(second)


def test_retries_503_with_backoff_then_succeeds(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    token_server.fail_next(503, times=2)
    sleeps = AsyncSleepRecorder()
    cfg = config(token_server.url, backoff_base_seconds=0.5, backoff_max_seconds=8)
    grant = refresh(old, cfg, sleep=sleeps)
    assert grant.attempts == 3
    assert token_server.request_count == 3
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 0.5
    assert 0 <= sleeps.calls[1] <= 1.0


def test_5xx_exhausts_max_attempts(token_server: FakeTokenServer) -> None:
    token_server.fail_next(502, times=10)
    sleeps = AsyncSleepRecorder()
    cfg = config(token_server.url, max_attempts=3)
    err = refused(lambda: refresh(token_server.issue(), cfg, sleep=sleeps))
    assert (err.code, err.status, err.permanent, err.attempts) == ("http_502", 502, False, 3)
    assert token_server.request_count == 3
    assert len(sleeps.calls) == 2


def test_429_retry_after_is_honoured_in_real_time(token_server: FakeTokenServer) -> None:
    old = token_server.issue()
    token_server.fail_next(429, headers={"Retry-After": "1"})
    started = time.monotonic()
    grant = refresh(old, config(token_server.url))
    assert grant.attempts == 2
    first, second = token_server.requests
    assert second.received_at - first.received_at >= 0.95
    assert time.monotonic() - started < 3


def test_retry_after_beyond_budget_gives_up_without_waiting(
    token_server: FakeTokenServer,
) -> None:
    token_server.fail_next(429, headers={"Retry-After": "60"})
    sleeps = AsyncSleepRecorder()
    cfg = config(token_server.url, max_total_seconds=5)
    err = refused(lambda: refresh(token_server.issue(), cfg, sleep=sleeps))
    assert (err.code, err.status, err.permanent, err.attempts) == ("rate_limited", 429, False, 1)
    assert sleeps.calls == []
    assert token_server.request_count == 1


def test_deadline_bounds_waits_with_fake_clock(token_server: FakeTokenServer) -> None:
    token_server.fail_next(503, times=100)
    clock = FakeClock()
    sleeps = AsyncSleepRecorder(clock)
    cfg = config(
        token_server.url,
        max_attempts=100,
        max_total_seconds=2,
        backoff_base_seconds=0.5,
        backoff_max_seconds=8,
    )
    err = refused(lambda: refresh(token_server.issue(), cfg, sleep=sleeps, clock=clock))
    assert (err.code, err.status, err.permanent) == ("deadline", 503, False)
    assert err.attempts == token_server.request_count == len(sleeps.calls) + 1 < 100
    assert sum(sleeps.calls) <= 2


def test_an_earlier_deadline_than_the_budget_is_kept(token_server: FakeTokenServer) -> None:
    # A batch refresh passes the end of its claim: it wins over max_total_seconds.
    token_server.hang = True
    started = time.monotonic()
    err = refused(
        lambda: refresh(
            token_server.issue(),
            config(token_server.url, timeout_seconds=10, max_total_seconds=30),
            deadline=time.monotonic() + 0.4,
        )
    )
    assert err.code == "no_answer"  # the request may have arrived: not sent again
    assert err.permanent is False
    assert time.monotonic() - started < 2


def test_a_read_timeout_ends_the_refresh_without_resending_the_token(
    token_server: FakeTokenServer,
) -> None:
    token_server.delay_seconds = 0.6
    token = token_server.issue()
    started = time.monotonic()
    cfg = config(token_server.url, timeout_seconds=0.2, max_attempts=4)
    err = refused(lambda: refresh(token, cfg, sleep=AsyncSleepRecorder()))
    assert (err.code, err.status, err.permanent, err.attempts) == ("no_answer", None, False, 1)
    assert token_server.request_count == 1
    assert time.monotonic() - started < 0.55
    assert "did not answer within 0.2 s" in str(err)
    time.sleep(0.6)
    assert token_server.refresh_count == 1
    assert not token_server.is_valid(token)


def test_a_reset_after_sending_is_not_retried(token_server: FakeTokenServer) -> None:
    token_server.reset_next()
    sleeps = AsyncSleepRecorder()
    err = refused(lambda: refresh(token_server.issue(), config(token_server.url), sleep=sleeps))
    assert (err.code, err.permanent, err.attempts) == ("no_answer", False, 1)
    assert token_server.request_count == 1
    assert sleeps.calls == []


def _opened_async(endpoint: EndpointLater) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        endpoint.opened(seconds)

    return sleep


@pytest.mark.parametrize("first", ["refused", "connect_timeout"])
def test_a_request_that_never_left_is_retried_one_that_may_have_arrived_is_not(
    first: str,
) -> None:
    endpoint = EndpointLater(first=first)
    try:
        cfg = config(endpoint.url, timeout_seconds=0.3, max_attempts=4)
        err = refused(lambda: refresh("sk-ant-ort01-sent-once", cfg, sleep=_opened_async(endpoint)))
        assert endpoint.server is not None
        assert (err.code, err.attempts) == ("no_answer", 2)
        assert endpoint.server.request_count == 1
    finally:
        endpoint.close()


def test_connection_refused_is_retried_then_fails() -> None:
    sleeps = AsyncSleepRecorder()
    err = refused(
        lambda: refresh(
            "sk-ant-ort01-never-sent", config(closed_port_url(), max_attempts=3), sleep=sleeps
        )
    )
    assert (err.code, err.status, err.permanent, err.attempts) == ("connection", None, False, 3)
    assert len(sleeps.calls) == 2


def test_invalid_grant_is_final_after_one_request(token_server: FakeTokenServer) -> None:
    sleeps = AsyncSleepRecorder()
    err = refused(lambda: refresh("sk-ant-ort01-unknown", config(token_server.url), sleep=sleeps))
    assert (err.code, err.status, err.permanent, err.attempts) == ("invalid_grant", 400, True, 1)
    assert token_server.request_count == 1
    assert sleeps.calls == []
    assert "sign in again" in str(err)


def test_malformed_200_is_final(token_server: FakeTokenServer) -> None:
    token_server.fail_next(200, body="<html>maintenance</html>", times=5)
    err = refused(lambda: refresh(token_server.issue(), config(token_server.url)))
    assert (err.code, err.status, err.permanent, err.attempts) == ("bad_response", 200, True, 1)


def test_redirect_is_not_followed(token_server: FakeTokenServer) -> None:
    token_server.fail_next(302, headers={"Location": token_server.base_url + "/elsewhere"})
    err = refused(lambda: refresh(token_server.issue(), config(token_server.url)))
    assert (err.code, err.permanent) == ("http_302", False)
    assert [r.path for r in token_server.requests] == ["/v1/oauth/token"]


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/v1/oauth/token"])
def test_bad_url_setting_is_not_permanent(url: str) -> None:
    err = refused(lambda: refresh("rt", config(url)))
    assert (err.code, err.permanent, err.attempts) == ("connection", False, 1)  # not retried
    assert "URL setting" in str(err)


def test_empty_refresh_token_is_refused_without_a_request(token_server: FakeTokenServer) -> None:
    err = refused(lambda: refresh("", config(token_server.url)))
    assert err.permanent is True
    assert token_server.request_count == 0


def test_many_at_once_on_one_loop(token_server: FakeTokenServer) -> None:
    token_server.delay_seconds = 0.2
    tokens = [token_server.issue() for _ in range(32)]
    cfg = config(token_server.url, max_attempts=1)

    async def go() -> list[TokenGrant]:
        async with token_session_new(concurrency=32) as session:
            calls: list[Awaitable[TokenGrant]] = [
                token_refresh_request_async(refresh_token=t, config=cfg, session=session)
                for t in tokens
            ]
            return await asyncio.gather(*calls)

    started = time.monotonic()
    grants = asyncio.run(go())
    elapsed = time.monotonic() - started
    assert len({g.access_token for g in grants}) == 32 == token_server.refresh_count
    assert elapsed < 32 * 0.2 / 4  # serially 6.4 s; all at once about 0.2 s
