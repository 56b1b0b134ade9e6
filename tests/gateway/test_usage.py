"""Usage read from relayed answers: any chunking of the same stream gives the same counts."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.usage import UsageMeter
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
