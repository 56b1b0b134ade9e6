"""What a task used, read from the API answers the gateway relays.

Tokens come from ``usage`` in ``message_start`` (input and cache counts, a first output count)
and ``message_delta`` (cumulative counts that replace the earlier ones) of a stream, or from the
``usage`` of a non-streamed message. The stream parser only looks at complete lines and only
decodes the two event kinds that carry usage, and the relay writes each chunk to the client
before feeding it here, so counting never holds a byte back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
RATELIMIT_PREFIX = "anthropic-ratelimit-"
_MAX_LINE = 1024 * 1024  # usage events are small; a longer partial line is not one of them
_MAX_JSON = 8 * 1024 * 1024
_USAGE_MARK = b'"message_'  # in both '"message_start"' and '"message_delta"'


@dataclass
class GatewayUsage:
    """Recorded on the task."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    status_429: int = 0
    status_529: int = 0
    ratelimit_headers: dict[str, str] = field(default_factory=dict)  # last seen values


class UsageMeter:
    """Counts for one gateway; written on its loop, read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage = GatewayUsage()

    def snapshot(self) -> GatewayUsage:
        with self._lock:
            return replace(self._usage, ratelimit_headers=dict(self._usage.ratelimit_headers))

    def response(
        self, *, status: int, headers: Mapping[str, str], content_type: str, is_message: bool
    ) -> ResponseUsage:
        """Count one relayed answer; returns the reader for its body."""
        with self._lock:
            usage = self._usage
            usage.requests += 1
            usage.status_429 += status == 429
            usage.status_529 += status == 529
            for name, value in headers.items():
                if name.lower().startswith(RATELIMIT_PREFIX):
                    usage.ratelimit_headers[name.lower()] = value
        mode = ""
        if is_message and status == 200:
            mode = "sse" if content_type.startswith("text/event-stream") else "json"
        return ResponseUsage(self, mode)

    def _add(self, counts: Mapping[str, Any]) -> None:
        with self._lock:
            for name in USAGE_FIELDS:
                value = counts.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    setattr(self._usage, name, getattr(self._usage, name) + value)


class ResponseUsage:
    """Reads usage from one answer's body as it passes (``feed``), adds it on ``finish``."""

    def __init__(self, meter: UsageMeter, mode: str) -> None:
        self._meter = meter
        self._mode = mode  # "sse", "json" or "" (nothing to read)
        self._tail = b""
        self._skipping = False  # inside an over-long line: drop until its end
        self._body = bytearray()
        self._message: dict[str, Any] | None = None  # the open streamed message's usage

    def feed(self, chunk: bytes) -> None:
        if self._mode == "sse":
            self._feed_sse(chunk)
        elif self._mode == "json":
            if len(self._body) + len(chunk) <= _MAX_JSON:
                self._body += chunk
            else:
                self._mode = ""

    def _feed_sse(self, chunk: bytes) -> None:
        data = self._tail + chunk if self._tail else chunk
        end = data.rfind(b"\n")
        if end == -1:
            self._tail = data if len(data) <= _MAX_LINE and not self._skipping else b""
            self._skipping = self._skipping or len(data) > _MAX_LINE
            return
        start = data.find(b"\n") + 1 if self._skipping else 0
        self._skipping = False
        # Only the lines holding the mark can be usage events: find them with searches in C
        # instead of splitting every text delta into a line of its own.
        found = data.find(_USAGE_MARK, start, end)
        while found != -1:
            line_start = max(data.rfind(b"\n", start, found) + 1, start)
            line_end = data.find(b"\n", found, end)
            line_end = end if line_end == -1 else line_end
            line = data[line_start:line_end]
            if line.startswith(b"data:") and (
                b'"message_start"' in line or b'"message_delta"' in line
            ):
                self._event(line[5:])
            found = data.find(_USAGE_MARK, line_end, end)
        rest = data[end + 1 :]
        self._skipping = len(rest) > _MAX_LINE
        self._tail = b"" if self._skipping else rest

    def _event(self, payload: bytes) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "message_start":
            self._close_message()
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            self._message = dict(usage) if isinstance(usage, dict) else {}
        elif event.get("type") == "message_delta":
            usage = event.get("usage")
            if isinstance(usage, dict):
                if self._message is None:
                    self._message = {}
                # Counts in message_delta are cumulative for the message: they replace.
                self._message.update({k: v for k, v in usage.items() if v is not None})

    def _close_message(self) -> None:
        if self._message is not None:
            self._meter._add(self._message)
            self._message = None

    def finish(self) -> None:
        if self._mode == "sse":
            if self._tail and not self._skipping:
                self._feed_sse(b"\n")
            self._close_message()
        elif self._mode == "json" and self._body:
            try:
                message = json.loads(self._body)
            except ValueError:
                return
            if isinstance(message, dict) and isinstance(message.get("usage"), dict):
                self._meter._add(message["usage"])
        self._mode = ""
