"""Usage read from relayed answers: any chunking of the same stream gives the same counts."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.usage import UsageMeter, epoch_datetime
from tests.fakes.anthropic_api import sse_events

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": "x" * 300}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 1200,
        "output_tokens": 345,
        "cache_creation_input_tokens": 7,
        "cache_read_input_tokens": 9000,
    },
}
STREAM = b"".join(
    f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
    for name, data in sse_events(MESSAGE, text_deltas=5)
)


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM)), max_size=30))
def test_stream_usage_does_not_depend_on_chunk_boundaries(cuts: list[int]) -> None:
    meter = UsageMeter()
    reader = meter.response(
        status=200, headers={}, content_type="text/event-stream", is_message=True
    )
    edges = [0, *sorted(set(cuts)), len(STREAM)]
    for start, end in itertools.pairwise(edges):
        reader.feed(STREAM[start:end])
    reader.finish()
    usage = meter.snapshot()
    assert (usage.input_tokens, usage.output_tokens) == (1200, 345)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (7, 9000)


def test_crlf_streams_json_bodies_and_errors() -> None:
    meter = UsageMeter()
    reader = meter.response(
        status=200,
        headers={"Anthropic-Ratelimit-Tokens-Remaining": "5"},
        content_type="text/event-stream; charset=utf-8",
        is_message=True,
    )
    reader.feed(STREAM.replace(b"\n", b"\r\n"))
    reader.finish()
    reader = meter.response(
        status=200, headers={}, content_type="application/json", is_message=True
    )
    reader.feed(json.dumps(MESSAGE).encode())
    reader.finish()
    for status in (429, 529, 500):
        meter.response(
            status=status, headers={}, content_type="application/json", is_message=True
        ).finish()
    usage = meter.snapshot()
    assert usage.requests == 5
    assert usage.input_tokens == 2400
    assert usage.output_tokens == 690
    assert (usage.status_429, usage.status_529) == (1, 1)
    assert usage.ratelimit_headers == {"anthropic-ratelimit-tokens-remaining": "5"}


def test_auth_statuses_and_a_rate_limit_rejection_are_recorded_then_cleared() -> None:
    meter = UsageMeter()
    for status in (401, 403, 403):
        meter.response(status=status, headers={}, content_type="", is_message=True).finish()
    rejected = {
        "Anthropic-Ratelimit-Unified-Status": "rejected",
        "anthropic-ratelimit-unified-reset": "1767225600",
        "anthropic-ratelimit-unified-representative-claim": "seven_day",
    }
    meter.response(status=429, headers=rejected, content_type="", is_message=True).finish()
    usage = meter.snapshot()
    assert (usage.status_401, usage.status_403, usage.status_429) == (1, 2, 1)
    assert usage.rate_limit_status == "rejected"
    assert usage.rate_limit_rejected_reset == datetime(2026, 1, 1, tzinfo=UTC)
    assert usage.rate_limit_rejected_claim == "seven_day"
    allowed = {"anthropic-ratelimit-unified-status": "allowed"}
    meter.response(status=200, headers=allowed, content_type="", is_message=True).finish()
    usage = meter.snapshot()
    assert (usage.rate_limit_status, usage.rate_limit_rejected_reset) == ("allowed", None)
    assert usage.rate_limit_rejected_claim == ""


def test_a_rejected_status_without_a_429_is_no_rejection() -> None:
    meter = UsageMeter()
    headers = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": "1767225600",
    }
    meter.response(status=200, headers=headers, content_type="", is_message=True).finish()
    usage = meter.snapshot()
    assert usage.rate_limit_status == "rejected"
    assert usage.rate_limit_rejected_reset is None


@given(st.one_of(st.text(max_size=30), st.floats().map(str), st.integers().map(str)))
def test_a_reset_header_is_a_utc_time_or_nothing(value: str) -> None:
    got = epoch_datetime(value)
    assert got is None or (got.tzinfo is UTC and got > datetime(1970, 1, 1, tzinfo=UTC))


def test_a_refusal_counts_only_until_the_api_accepts_the_credential_again() -> None:
    meter = UsageMeter()
    assert not meter.snapshot().auth_refused
    meter.response(status=401, headers={}, content_type="", is_message=True).finish()
    meter.auth_unrenewable()
    usage = meter.snapshot()
    assert usage.auth_refused
    assert usage.accepted_at is None
    # A 429 is an answer to a credential the API knew: accepted, and the refusal is history.
    meter.response(status=429, headers={}, content_type="", is_message=True).finish()
    usage = meter.snapshot()
    assert usage.accepted_at is not None
    assert not usage.auth_refused
    meter.response(status=403, headers={}, content_type="", is_message=True).finish()
    meter.auth_refused_after_refresh()
    assert meter.snapshot().auth_refused
    # An overloaded API says nothing about the credential.
    meter.response(status=529, headers={}, content_type="", is_message=True).finish()
    assert meter.snapshot().auth_refused


def test_a_rejection_without_a_readable_reset_is_still_a_rejection() -> None:
    meter = UsageMeter()
    headers = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": "soon",
    }
    meter.response(status=429, headers=headers, content_type="", is_message=True).finish()
    usage = meter.snapshot()
    assert usage.rate_limit_rejected
    assert usage.rate_limit_rejected_reset is None
    allowed = {"anthropic-ratelimit-unified-status": "allowed"}
    meter.response(status=200, headers=allowed, content_type="", is_message=True).finish()
    assert not meter.snapshot().rate_limit_rejected
