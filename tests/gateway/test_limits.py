"""What one task's container can cost the worker through its gateway: connections, time and
memory are bounded per task, bodies stream to the API, and another task's gateway keeps
answering while one is abused."""

from __future__ import annotations

import hashlib
import http.client
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from common.netpolicy import EgressPolicy
from gateway.http1 import GatewayLimits
from gateway.runtime import GatewaySetup, TaskGateway, UpstreamAuth, placeholder_new
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.gateway.conftest import REAL_OAUTH, StaticProvider, UnixHTTPConnection
from tests.gateway.sink_api import SinkAPI, body_of

pytestmark = pytest.mark.timeout(120)

MiB = 1024 * 1024
QUICK = GatewayLimits(read_timeout=0.5, idle_timeout=0.5)


def gateway_on(
    socket_dir: Path, api_url: str, limits: GatewayLimits, provider: Any = None, name: str = "gw"
) -> tuple[TaskGateway, str, list[str]]:
    placeholder = placeholder_new()
    lines: list[str] = []
    folder = socket_dir / name
    gateway = TaskGateway(
        socket_path=folder / "gateway.sock",
        auth=UpstreamAuth("oauth"),
        provider=provider or StaticProvider(REAL_OAUTH),
        placeholder=placeholder,
        on_log=lines.append,
        setup=GatewaySetup(api_url=api_url, egress=EgressPolicy(rules=()), limits=limits),
    )
    gateway.start()
    return gateway, placeholder, lines


def connected(path: Path, timeout: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(str(path))
    return sock


def head(placeholder: str, length: int) -> bytes:
    return (
        f"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {placeholder}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def answer_of(sock: socket.socket) -> tuple[int, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


def post(path: Path, placeholder: str, body: bytes) -> tuple[int, bytes]:
    with connected(path, timeout=60) as sock:
        sock.sendall(head(placeholder, len(body)) + body)
        return answer_of(sock)


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the gateway sent before closing, or None if it kept the connection open."""
    sock.settimeout(seconds)
    got = b""
    try:
        while data := sock.recv(65536):
            got += data
    except TimeoutError:
        return None
    return got


def test_a_slow_head_gets_408_and_a_closed_connection(socket_dir, fake_api) -> None:
    gateway, _, lines = gateway_on(socket_dir, fake_api.url, QUICK)
    try:
        with connected(gateway.socket_path) as sock:
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: gate")
            got = closed_within(sock, 10)
        assert got is not None
        assert got.startswith(b"HTTP/1.1 408 ")
        assert lines == ["request refused: 408 the request head did not arrive in time"]
    finally:
        gateway.stop()


def test_a_stalled_body_gets_408_and_nothing_reaches_the_api(socket_dir) -> None:
    with SinkAPI() as sink:
        gateway, placeholder, _ = gateway_on(socket_dir, sink.url, QUICK)
        try:
            with connected(gateway.socket_path) as sock:
                sock.sendall(head(placeholder, 1000) + b"{")
                got = closed_within(sock, 10)
            assert got is not None
            assert got.startswith(b"HTTP/1.1 408 ")
            assert sink.bodies == []
        finally:
            gateway.stop()


def test_a_body_stalled_midstream_is_cut_off_upstream_too(socket_dir) -> None:
    with SinkAPI() as sink:
        gateway, placeholder, lines = gateway_on(socket_dir, sink.url, QUICK)
        try:
            with connected(gateway.socket_path) as sock:
                sock.sendall(head(placeholder, 4 * MiB) + b"x" * MiB)
                got = closed_within(sock, 10)
            assert got is not None
            assert got.startswith(b"HTTP/1.1 408 ")
            assert lines[-1] == "model request refused: the request body did not arrive in time"
            deadline = time.monotonic() + 10
            while not sink.cut and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sink.cut == 1  # the API saw a request end early, never a short whole one
            assert sink.bodies == []
        finally:
            gateway.stop()


def test_an_idle_connection_is_closed_after_the_idle_timeout(socket_dir, fake_api) -> None:
    gateway, placeholder, _ = gateway_on(socket_dir, fake_api.url, QUICK)
    try:
        conn = UnixHTTPConnection(gateway.socket_path)
        conn.request("POST", "/v1/messages", body="{}", headers={"x-api-key": placeholder})
        assert conn.getresponse().read()
        assert closed_within(conn.sock, 10) == b""
    finally:
        gateway.stop()


def test_connections_over_the_limit_wait_for_a_free_one(socket_dir, fake_api) -> None:
    limits = GatewayLimits(max_connections=2, read_timeout=30, idle_timeout=60)
    gateway, placeholder, lines = gateway_on(socket_dir, fake_api.url, limits)
    try:
        first, second = connected(gateway.socket_path), connected(gateway.socket_path)
        waiting = connected(gateway.socket_path)  # queued in the socket's backlog
        waiting.sendall(head(placeholder, 2) + b"{}")
        waiting.settimeout(1.5)
        with pytest.raises(TimeoutError):
            waiting.recv(1)
        assert fake_api.requests == []
        assert lines == ["2 connections open, the limit: further connections wait for one to end"]
        first.close()
        waiting.settimeout(10)
        assert answer_of(waiting)[0] == 200
        second.close()
        waiting.close()
    finally:
        gateway.stop()


def test_a_large_body_reaches_the_api_while_it_is_still_being_sent(socket_dir) -> None:
    """The client holds back the second half of the body until the API has seen the first:
    a gateway that gathered the body before sending it would wait here forever."""
    body = body_of(8 * MiB)
    half = len(body) // 2
    with SinkAPI() as sink:
        gateway, placeholder, _ = gateway_on(socket_dir, sink.url, GatewayLimits())
        try:
            with connected(gateway.socket_path, timeout=60) as sock:
                sock.sendall(head(placeholder, len(body)) + body[:half])
                assert sink.received_at_least(half // 2)
                sock.sendall(body[half:])
                assert answer_of(sock)[0] == 200
            assert sink.bodies == [(len(body), hashlib.sha256(body).hexdigest())]
        finally:
            gateway.stop()


def test_bodies_in_flight_stay_within_the_task_budget(socket_dir) -> None:
    limits = GatewayLimits(buffer_bytes=MiB)
    bodies = [body_of(3 * MiB + n * 1000) for n in range(8)]
    with SinkAPI(read_delay=0.001) as sink:
        gateway, placeholder, _ = gateway_on(socket_dir, sink.url, limits)
        try:
            results = run_all([partial(post, gateway.socket_path, placeholder, b) for b in bodies])
            assert [status for status, _ in results] == [200] * 8
            expected = sorted((len(b), hashlib.sha256(b).hexdigest()) for b in bodies)
            assert sorted(sink.bodies) == expected
            gateway.stop()
            assert 0 < gateway.budget.peak <= MiB
            assert gateway.budget.held == 0  # all given back
        finally:
            gateway.stop()


def test_a_streamed_body_is_replayed_whole_after_a_401(socket_dir) -> None:
    body = body_of(2 * MiB)  # streamed, and its copy fits the budget
    provider = StaticProvider("sk-ant-oat01-stale", fresh=REAL_OAUTH)
    with SinkAPI(rejected={"sk-ant-oat01-stale"}) as sink:
        gateway, placeholder, lines = gateway_on(socket_dir, sink.url, GatewayLimits(), provider)
        try:
            assert post(gateway.socket_path, placeholder, body)[0] == 200
            digest = (len(body), hashlib.sha256(body).hexdigest())
            assert sink.bodies == [digest, digest]
            assert sink.tokens == ["sk-ant-oat01-stale", REAL_OAUTH]
            assert lines[-1] == (
                "model API answered 401: refreshed the OAuth token and replayed the request"
            )
            gateway.stop()
            assert gateway.budget.held == 0
        finally:
            gateway.stop()


def test_a_body_too_large_to_keep_gets_the_401_after_the_refresh(socket_dir) -> None:
    body = body_of(3 * MiB)
    provider = StaticProvider("sk-ant-oat01-stale", fresh=REAL_OAUTH)
    with SinkAPI(rejected={"sk-ant-oat01-stale"}) as sink:
        gateway, placeholder, lines = gateway_on(
            socket_dir, sink.url, GatewayLimits(buffer_bytes=MiB), provider
        )
        try:
            assert post(gateway.socket_path, placeholder, body)[0] == 401
            assert "the request was too large to keep for a replay" in lines[-1]
            assert provider.refresh_calls == ["sk-ant-oat01-stale"]
            # The CLI's own retry goes out with the refreshed token.
            assert post(gateway.socket_path, placeholder, body)[0] == 200
            assert sink.tokens == ["sk-ant-oat01-stale", REAL_OAUTH]
            usage = gateway.stop()
            assert (usage.auth_refreshed_after_401, usage.status_401) == (1, 1)
            assert not usage.auth_refused_after_refresh
        finally:
            gateway.stop()


def run_all(calls: list[Callable[[], Any]]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        results[n] = calls[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return results


def test_one_task_under_attack_leaves_another_answering_promptly(socket_dir) -> None:
    """Task A's container opens slow-loris connections and sends huge bodies; task B's gateway,
    in the same process, answers every request within two seconds meanwhile, and A holds no more
    than its budget."""
    limits_a = GatewayLimits(max_connections=8, buffer_bytes=MiB, read_timeout=2, idle_timeout=2)
    stop = threading.Event()
    with SinkAPI(read_delay=0.002) as sink, FakeAnthropicAPI(valid_credentials={REAL_OAUTH}) as api:
        a, a_placeholder, _ = gateway_on(socket_dir, sink.url, limits_a, name="a")
        b, b_placeholder, _ = gateway_on(socket_dir, api.url, GatewayLimits(), name="b")
        try:
            attackers = [
                threading.Thread(target=_slow_loris, args=(a.socket_path, stop), daemon=True)
                for _ in range(16)
            ] + [
                threading.Thread(
                    target=_huge_body, args=(a.socket_path, a_placeholder, stop), daemon=True
                )
                for _ in range(6)
            ]
            for thread in attackers:
                thread.start()
            assert sink.received_at_least(4 * MiB)  # the attack is on
            took = []
            for _ in range(10):
                started = time.monotonic()
                assert (
                    post(b.socket_path, b_placeholder, b'{"model": "m", "messages": []}')[0] == 200
                )
                took.append(time.monotonic() - started)
            assert max(took) < 2.0, took
            assert a.budget.peak <= MiB
        finally:
            stop.set()
            a.stop()
            b.stop()


def _slow_loris(path: Path, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with connected(path, timeout=5) as sock:
                sock.sendall(b"POST /v1/messages HTTP/1.1\r\n")
                while not stop.wait(0.5):
                    sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            time.sleep(0.1)


def _huge_body(path: Path, placeholder: str, stop: threading.Event) -> None:
    piece = b"x" * (256 * 1024)
    while not stop.is_set():
        try:
            with connected(path, timeout=5) as sock:
                sock.sendall(head(placeholder, 64 * MiB - 1))
                while not stop.is_set():
                    sock.sendall(piece)
        except OSError:
            time.sleep(0.1)
