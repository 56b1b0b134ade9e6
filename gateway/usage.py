"""What a task used, and what the API said of its credential, read from the answers the gateway
relays.

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
from datetime import UTC, datetime
from typing import Any

USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
RATELIMIT_PREFIX = "anthropic-ratelimit-"
_UNIFIED = RATELIMIT_PREFIX + "unified-"
_MAX_LINE = 1024 * 1024  # usage events are small; a longer partial line is not one of them
_MAX_JSON = 8 * 1024 * 1024
_JSON = json.JSONDecoder()
_JSON_SPACE = " \t\r\n"  # JSON's whitespace
_USAGE_MARK = b'"message_'  # in both '"message_start"' and '"message_delta"'


@dataclass
class GatewayUsage:
    """What one task's gateway saw of the model API, for the task's record.

    The credential fields are the gateway's own observations of the API's answers for this
    task's credential (docs/claude-cli-contract.md#usage-limits-and-auth-failures): nothing the
    container says can set them, so they, and never the agent's output, are what may change
    credential-wide state.
    """

    requests: int = 0  # answers relayed to the container (a replayed request counts once)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    status_401: int = 0  # relayed answers with this status
    status_403: int = 0
    status_429: int = 0
    status_529: int = 0
    ratelimit_headers: dict[str, str] = field(default_factory=dict)  # last seen values
    #: OAuth tokens the gateway renewed by force after the API refused them: a 401, or a 403
    #: saying the token was revoked (each time it then replayed the request, unless the body
    #: was too large to keep).
    auth_refreshed_after_401: int = 0
    #: The API refused the token (as above) in a request the gateway had replayed with a token
    #: it had just renewed by force: the credential itself is refused, not merely stale.
    auth_refused_after_refresh: bool = False
    #: The API refused the credential (as above) and the gateway had no way to renew it (an API
    #: key, a token without a refresh token, removed tokens, or a refresh that failed).
    auth_refused_unrenewable: bool = False
    #: The last ``anthropic-ratelimit-unified-status`` the API sent ("" when none came):
    #: "allowed", "allowed_warning" or "rejected".
    rate_limit_status: str = ""
    #: When the last answer that carried a unified status was a 429 saying "rejected": the
    #: reset time it gave (``anthropic-ratelimit-unified-reset``, UTC) as the API sent it, not
    #: capped; None otherwise, and again once a later answer says the limit allows requests.
    rate_limit_rejected_reset: datetime | None = None
    #: The window of that rejection (``…-unified-representative-claim``, e.g. "five_hour").
    rate_limit_rejected_claim: str = ""
    #: That last answer with a unified status was a 429 saying "rejected" (with or without a
    #: readable reset time): the subscription is limited, as the API itself said.
    rate_limit_rejected: bool = False
    #: When the API last accepted the credential (an answer below 500 that was not a 401 or
    #: 403: even a 429 means it knew the credential) and when the gateway last saw it refused
    #: for good (after its forced refresh, or with no way to renew it). The later one says
    #: what the credential is now.
    accepted_at: datetime | None = None
    auth_refused_at: datetime | None = None

    @property
    def auth_refused(self) -> bool:
        """The API refused the credential itself, and accepted it at no time after that."""
        refused = self.auth_refused_at
        return refused is not None and (self.accepted_at is None or self.accepted_at < refused)


def epoch_datetime(value: str | None) -> datetime | None:
    """An epoch-seconds header value (ASCII digits, as the API sends it) as an aware UTC
    datetime; None when it is not one, or not a time after 1970 that a datetime can hold."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) == 0:
        return None
    try:
        return datetime.fromtimestamp(int(text), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


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
            usage.status_401 += status == 401
            usage.status_403 += status == 403
            usage.status_429 += status == 429
            usage.status_529 += status == 529
            if status < 500 and status not in (401, 403):
                usage.accepted_at = datetime.now(tz=UTC)
            seen = {
                lowered: value
                for name, value in headers.items()
                if (lowered := name.lower()).startswith(RATELIMIT_PREFIX)
            }
            usage.ratelimit_headers.update(seen)
            _rate_limit_note(usage, status, seen)
        mode = ""
        if is_message and status == 200:
            mode = "sse" if content_type.startswith("text/event-stream") else "json"
        return ResponseUsage(self, mode)

    def auth_refreshed(self) -> None:
        with self._lock:
            self._usage.auth_refreshed_after_401 += 1

    def auth_refused_after_refresh(self) -> None:
        with self._lock:
            self._usage.auth_refused_after_refresh = True
            self._usage.auth_refused_at = datetime.now(tz=UTC)

    def auth_unrenewable(self) -> None:
        with self._lock:
            self._usage.auth_refused_unrenewable = True
            self._usage.auth_refused_at = datetime.now(tz=UTC)

    def _add(self, counts: Mapping[str, Any]) -> None:
        with self._lock:
            for name in USAGE_FIELDS:
                value = counts.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    setattr(self._usage, name, getattr(self._usage, name) + value)


def _rate_limit_note(usage: GatewayUsage, status: int, headers: Mapping[str, str]) -> None:
    unified = headers.get(_UNIFIED + "status")
    if unified is None:
        return
    usage.rate_limit_status = unified
    usage.rate_limit_rejected = status == 429 and unified == "rejected"
    if usage.rate_limit_rejected:
        usage.rate_limit_rejected_reset = epoch_datetime(headers.get(_UNIFIED + "reset"))
        usage.rate_limit_rejected_claim = headers.get(_UNIFIED + "representative-claim", "")
    else:
        usage.rate_limit_rejected_reset = None
        usage.rate_limit_rejected_claim = ""


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
        # What json.loads does, without its two wrappers and their regex passes for the
        # whitespace around the value: SSE is UTF-8, and one JSON value must fill the line.
        try:
            text = payload.decode().strip(_JSON_SPACE)
            event, end = _JSON.raw_decode(text)
        except ValueError:  # UnicodeDecodeError too
            return
        if end != len(text):
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
