"""The message endpoint (GET /_runner/messages) through a real TaskGateway socket, with an
in-memory message box; the protocol is agent/README.md's "Messages while running"."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.messages import ANSWER_MAX_BYTES, Delivery, poll_query_parse
from gateway.runtime import GatewaySetup, TaskGateway, UpstreamAuth, placeholder_new
from tests.fakes.anthropic_api import FakeAnthropicAPI
from tests.gateway.conftest import REAL_KEY, StaticProvider, UnixHTTPConnection

pytestmark = pytest.mark.timeout(60)


class Box:
    """Messages in memory, closed as the contract says (final with nothing new)."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, str]] = []
        self.closed = False
        self.fetches = 0
        self.lock = threading.Lock()

    def send(self, text: str) -> None:
        with self.lock:
            self.messages.append((len(self.messages) + 1, text))

    def fetch(self, *, after: int, final: bool) -> Delivery:
        with self.lock:
            self.fetches += 1
            new = [(s, t) for s, t in self.messages if s > after]
            if final and not new:
                self.closed = True
            return Delivery(messages=new, closed=self.closed)


@pytest.fixture
def gateway(socket_dir: Path, fake_api: FakeAnthropicAPI):
    box = Box()
    placeholder = placeholder_new()
    lines: list[str] = []
    gw = TaskGateway(
        socket_path=socket_dir / "gateway.sock",
        auth=UpstreamAuth("api_key"),
        provider=StaticProvider(REAL_KEY),
        placeholder=placeholder,
        on_log=lines.append,
        setup=GatewaySetup(api_url=fake_api.url, messages=box),
    )
    gw.start()
    yield gw, box, placeholder, lines
    gw.stop()


def poll(gw: TaskGateway, placeholder: str, query: str, **headers: str) -> tuple[int, bytes, str]:
    conn = UnixHTTPConnection(gw.socket_path, timeout=40)
    auth = {"authorization": f"Bearer {placeholder}"} if placeholder else {}
    conn.request("GET", f"/_runner/messages?{query}", headers={**auth, **headers})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, response.getheader("content-type") or ""


def lines_of(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines()]


def test_messages_after_the_cursor_in_order_and_again_when_asked_again(gateway) -> None:
    gw, box, placeholder, _ = gateway
    odd = "second, with ünïcödé and 🙂 and \u202e right-to-left"
    box.send("first")
    box.send(odd)
    status, body, kind = poll(gw, placeholder, "after=0&wait=0")
    assert status == 200
    assert kind == "application/x-ndjson"
    assert lines_of(body) == [
        {"seq": 1, "type": "message", "text": "first"},
        {
            "seq": 2,
            "type": "message",
            "text": "second, with ünïcödé and 🙂 and \u202e right-to-left",
        },
    ]
    # A cursor, not a consumption: the same question gets the same answer.
    assert poll(gw, placeholder, "after=1&wait=0")[1] == body.split(b"\n", 1)[1]
    assert poll(gw, placeholder, "after=2&wait=0")[0] == 204


def test_a_long_poll_answers_as_soon_as_a_message_comes(gateway) -> None:
    gw, box, placeholder, _ = gateway
    threading.Timer(1.5, box.send, args=("now",)).start()
    started = time.monotonic()
    status, body, _ = poll(gw, placeholder, "after=0&wait=20")
    took = time.monotonic() - started
    assert status == 200
    assert lines_of(body) == [{"seq": 1, "type": "message", "text": "now"}]
    assert 1.0 < took < 5.0


def test_a_long_poll_with_nothing_ends_in_204_after_wait(gateway) -> None:
    gw, _, placeholder, _ = gateway
    started = time.monotonic()
    assert poll(gw, placeholder, "after=0&wait=2")[0] == 204
    assert 1.5 < time.monotonic() - started < 6


def test_final_with_nothing_new_closes_the_channel_for_good(gateway) -> None:
    gw, box, placeholder, _ = gateway
    box.send("one")
    # Something new: a final poll still gets it, and the channel stays open.
    status, body, _ = poll(gw, placeholder, "after=0&wait=0&final=1")
    assert status == 200
    assert [line["seq"] for line in lines_of(body)] == [1]
    assert not box.closed
    assert poll(gw, placeholder, "after=1&wait=0&final=1")[0] == 204
    assert box.closed
    status, body, _ = poll(gw, placeholder, "after=1&wait=25")
    assert status == 200
    assert lines_of(body) == [{"type": "end"}]


def test_an_answer_stays_under_the_size_and_the_rest_comes_next(gateway) -> None:
    gw, box, placeholder, _ = gateway
    big = "x" * (60 * 1024)
    for _ in range(12):
        box.send(big)
    status, body, _ = poll(gw, placeholder, "after=0&wait=0")
    assert status == 200
    assert len(body) <= ANSWER_MAX_BYTES
    got = [line["seq"] for line in lines_of(body)]
    assert got == list(range(1, len(got) + 1))
    assert len(got) < 12
    status, body, _ = poll(gw, placeholder, f"after={got[-1]}&wait=0")
    assert [line["seq"] for line in lines_of(body)] == list(range(got[-1] + 1, 13))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer sk-ant-api03-gateway-test-real-api-key"},
        {"x-api-key": "cr-wrong"},
    ],
)
def test_without_this_tasks_placeholder_nothing_is_told(gateway, headers) -> None:
    gw, box, _, lines = gateway
    box.send("secret plan")
    status, body, _ = poll(gw, "", "after=0&wait=0", **headers)
    assert status == 401
    assert b"secret plan" not in body
    assert box.fetches == 0
    assert any("message poll refused" in line for line in lines)


@pytest.mark.parametrize(
    "query",
    [
        "after=-1&wait=0",
        "after=1e3&wait=0",
        "after=99999999999999999&wait=0",
        "after=0&wait=0&final=yes",
        "after=0&after=1&wait=0",
        "after=0&wait=0&other=1",
        "after=%D9%A1&wait=0",  # an Arabic-Indic digit one
        "after=0&wait=" + "9" * 5000,
    ],
)
def test_a_query_the_container_never_sends_is_refused(gateway, query) -> None:
    gw, box, placeholder, _ = gateway
    box.send("x")
    assert poll(gw, placeholder, query)[0] == 400
    assert box.fetches == 0


def test_a_post_is_refused(gateway) -> None:
    gw, box, placeholder, _ = gateway
    conn = UnixHTTPConnection(gw.socket_path)
    conn.request(
        "POST",
        "/_runner/messages?after=0&wait=0",
        body=b"{}",
        headers={"authorization": f"Bearer {placeholder}"},
    )
    assert conn.getresponse().status == 405
    assert box.fetches == 0


def test_a_gateway_without_a_box_refuses_the_path(start_gateway) -> None:
    gw, placeholder, _ = start_gateway(kind="api_key")
    status, _, _ = poll(gw, placeholder, "after=0&wait=0")
    assert status == 403  # the model route: not a call Claude Code needs


@given(st.text(max_size=200))
@settings(max_examples=settings().max_examples * 5 // 2)  # cheap: more than the profile
def test_the_query_parser_never_fails_and_keeps_to_its_ranges(query: str) -> None:
    parsed = poll_query_parse(query)
    if parsed is not None:
        after, wait, final = parsed
        assert 0 <= after <= 2**53 - 1
        assert 0 <= wait <= 25
        assert isinstance(final, bool)


@given(
    st.integers(min_value=0, max_value=2**53 - 1),
    st.integers(min_value=0, max_value=999_999),
    st.booleans(),
)
def test_the_query_the_container_sends_is_read_back(after: int, wait: int, final: bool) -> None:
    query = f"after={after}&wait={wait}" + ("&final=1" if final else "")
    assert poll_query_parse(query) == (after, min(float(wait), 25.0), final)
