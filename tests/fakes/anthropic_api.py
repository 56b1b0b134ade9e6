"""A fake Anthropic Messages API on 127.0.0.1 for driving the real Claude Code CLI.

    with FakeAnthropicAPI(valid_credentials={"sk-ant-oat01-test"}) as api:
        env = {"ANTHROPIC_BASE_URL": api.url, ...}
        ...
        api.messages_requests()  # recorded POST /v1/messages calls

Every request is recorded (method, path, lower-cased headers, JSON body). ``POST
/v1/messages`` (any query string) answers like the real API: SSE events (message_start,
content_block_start/delta/stop, message_delta, message_stop) when ``stream`` is true,
one JSON message otherwise. The script, so that a run changes a file:

* the request offers the file-writing tool (``Write`` by default, found in ``tools``) and
  the conversation has no ``tool_result`` yet: answer with a ``tool_use`` of that tool
  writing ``HELLO_FROM_AGENT.md`` (absolute path, in the working directory named in the
  system prompt, else ``work_dir``);
* otherwise: a final text message.

``valid_credentials``: when not None, a request whose ``Authorization: Bearer`` token or
``x-api-key`` is not in the set gets 401 with an Anthropic-style error body.
``POST /v1/messages/count_tokens`` answers ``{"input_tokens": N}``. Anything else: 404
JSON (recorded too).

Knobs (plain attributes, changeable while running): ``rejected_credentials`` (tokens answered
401 even when ``valid_credentials`` is None), ``revoked_credentials`` (tokens answered 403
"OAuth token has been revoked", as ``auth_revoked``), ``next_statuses`` (the next /v1/messages calls
answer these error statuses, e.g. 429 or 529), ``response_headers`` (added to every
/v1/messages answer, e.g. ``anthropic-ratelimit-*``), ``hold_last_event`` (a stream waits for
``release_last_event`` before its last event; ``held_timed_out`` says if it had to give up),
``final_text`` and ``text_deltas`` (the final answer's text, sent in that many deltas),
``event_delay_seconds`` (a pause between stream events, like a model producing tokens).
``tool_script`` (a list of ``(tool name, input)``): instead of the Write above, the n-th turn
asks for the n-th of these tools (while the request offers it), then the final text;
``tool_results()`` gives back what the CLI answered, in order.

Usage limits and dead credentials, as the real API answers them
(docs/claude-cli-contract.md#usage-limits-and-auth-failures): ``limit_rejected(reset)`` (429
with the ``anthropic-ratelimit-unified-*`` headers of a rejected five-hour window),
``limit_warning(utilization)`` (answers as usual, with ``allowed_warning`` headers),
``auth_expired()`` (401 "OAuth token has expired"), ``auth_revoked()`` (403 "OAuth token has
been revoked"), ``answer_normally()`` (back to plain answers). ``error_answer`` holds the
(status, type, message) every /v1/messages call gets while set.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.loopback import LoopbackServer

HELLO_FILE = "HELLO_FROM_AGENT.md"
HELLO_CONTENT = "Hello from the agent (written through the fake Anthropic API).\n"
FINAL_TEXT = "Done: I wrote HELLO_FROM_AGENT.md."
# What the real API answers a revoked OAuth token (docs/claude-cli-contract.md).
REVOKED_ANSWER = (
    403,
    "permission_error",
    "OAuth token has been revoked. Please obtain a new token.",
)


@dataclass
class RecordedRequest:
    method: str
    path: str  # path without the query string
    query: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when not JSON, or None
    status: int = 0  # what the fake answered
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bearer_token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-api-key")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def _tool_result_blocks(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        b
        for m in messages
        if isinstance(m.get("content"), list)
        for b in m["content"]
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]


def _has_tool_result(messages: list[dict[str, Any]]) -> bool:
    return bool(_tool_result_blocks(messages))


class FakeAnthropicAPI(LoopbackServer[RecordedRequest]):
    """Threaded HTTP server on 127.0.0.1 (ephemeral port); use as a context manager."""

    name = "fake-anthropic-api"

    def __init__(
        self,
        valid_credentials: set[str] | None = None,
        work_dir: str = "/home/agent/work",
        write_tool: str = "Write",
        model: str = "claude-fake-1",
    ) -> None:
        super().__init__()
        self.valid_credentials = valid_credentials
        self.work_dir = work_dir
        self.write_tool = write_tool
        self.model = model
        self.rejected_credentials: set[str] = set()
        self.revoked_credentials: set[str] = set()
        self.next_statuses: deque[int] = deque()
        self.response_headers: dict[str, str] = {}
        self.hold_last_event = False
        self.release_last_event = threading.Event()
        self.held_timed_out = False
        self.final_text = FINAL_TEXT
        self.text_deltas = 1
        self.event_delay_seconds = 0.0  # pause before each event after the first (pacing)
        self.error_answer: tuple[int, str, str] | None = None
        self.tool_script: list[tuple[str, dict[str, Any]]] | None = None

    # -- usage limits and dead credentials ------------------------------------------
    def limit_rejected(self, reset_epoch: int, window: str = "5h") -> None:
        claim = {"5h": "five_hour", "7d": "seven_day"}[window]
        self.response_headers = {
            "anthropic-ratelimit-unified-status": "rejected",
            "anthropic-ratelimit-unified-reset": str(reset_epoch),
            "anthropic-ratelimit-unified-representative-claim": claim,
            f"anthropic-ratelimit-unified-{window}-status": "rejected",
            f"anthropic-ratelimit-unified-{window}-reset": str(reset_epoch),
            f"anthropic-ratelimit-unified-{window}-utilization": "1.0",
            "anthropic-ratelimit-unified-overage-status": "rejected",
        }
        self.error_answer = (
            429,
            "rate_limit_error",
            "This request would exceed your account's rate limit. Please try again later.",
        )

    def limit_warning(self, utilization: float, reset_epoch: int, window: str = "7d") -> None:
        claim = {"5h": "five_hour", "7d": "seven_day"}[window]
        self.error_answer = None
        self.response_headers = {
            "anthropic-ratelimit-unified-status": "allowed_warning",
            "anthropic-ratelimit-unified-reset": str(reset_epoch),
            "anthropic-ratelimit-unified-representative-claim": claim,
            f"anthropic-ratelimit-unified-{window}-status": "allowed_warning",
            f"anthropic-ratelimit-unified-{window}-reset": str(reset_epoch),
            f"anthropic-ratelimit-unified-{window}-utilization": str(utilization),
            f"anthropic-ratelimit-unified-{window}-surpassed-threshold": "0.9",
        }

    def auth_expired(self) -> None:
        self.response_headers = {}
        self.error_answer = (
            401,
            "authentication_error",
            "OAuth token has expired. Please obtain a new token or refresh your existing token.",
        )

    def auth_revoked(self) -> None:
        self.response_headers = {}
        self.error_answer = REVOKED_ANSWER

    def answer_normally(self) -> None:
        self.response_headers = {}
        self.error_answer = None

    def messages_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    def authenticated_messages_requests(self) -> list[RecordedRequest]:
        """/v1/messages calls that the fake accepted (answered 200)."""
        return [r for r in self.messages_requests() if r.status == 200]

    def tool_results(self) -> list[str]:
        """The text of each tool result the CLI sent back, in the order of the conversation."""
        longest: list[dict[str, Any]] = []
        for r in self.messages_requests():
            body = r.body if isinstance(r.body, dict) else {}
            blocks = _tool_result_blocks(body.get("messages") or [])
            longest = blocks if len(blocks) > len(longest) else longest
        texts = []
        for block in longest:
            content = block.get("content")
            texts.append(_text_of(content) if not isinstance(content, str) else content)
        return texts

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- behaviour --------------------------------------------------------------------
    def credentials_ok(self, req: RecordedRequest) -> bool:
        given = [c for c in (req.bearer_token, req.api_key) if c]
        if any(c in self.rejected_credentials for c in given):
            return False
        if self.valid_credentials is None:
            return True
        return bool(given) and all(c in self.valid_credentials for c in given)

    def work_dir_for(self, body: dict[str, Any]) -> str:
        system = body.get("system")
        text = _text_of(system) if not isinstance(system, str) else system
        for m in body.get("messages") or []:
            text += "\n" + _text_of(m.get("content"))
        found = re.search(r"(?:Working directory|Primary working directory|cwd):\s*(/\S+)", text)
        return found.group(1).rstrip(".,;") if found else self.work_dir

    def _scripted_tool_use(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The next tool of ``tool_script`` this conversation has not had yet, if offered."""
        assert self.tool_script is not None
        done = len(_tool_result_blocks(body.get("messages") or []))
        if done >= len(self.tool_script):
            return None
        name, tool_input = self.tool_script[done]
        if not any(t.get("name") == name for t in body.get("tools") or []):
            return None
        return {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:24]}",
            "name": name,
            "input": tool_input,
        }

    def reply_for(self, body: dict[str, Any]) -> dict[str, Any]:
        """The assistant message (non-streaming shape) for a /v1/messages request body."""
        tools = body.get("tools") or []
        tool = next((t for t in tools if t.get("name") == self.write_tool), None)
        messages = body.get("messages") or []
        content: list[dict[str, Any]]
        scripted = self._scripted_tool_use(body) if self.tool_script is not None else None
        if scripted is not None:
            content, stop_reason = [scripted], "tool_use"
        elif self.tool_script is None and tool is not None and not _has_tool_result(messages):
            props = (tool.get("input_schema") or {}).get("properties") or {}
            path_key = next(
                (k for k in ("file_path", "path", "filename") if k in props), "file_path"
            )
            content_key = next((k for k in ("content", "text") if k in props), "content")
            path = f"{self.work_dir_for(body).rstrip('/')}/{HELLO_FILE}"
            content = [
                {"type": "text", "text": f"I will create {HELLO_FILE}."},
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": tool["name"],
                    "input": {path_key: path, content_key: HELLO_CONTENT},
                },
            ]
            stop_reason = "tool_use"
        else:
            content = [{"type": "text", "text": self.final_text}]
            stop_reason = "end_turn"
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 12,
                "output_tokens": 34,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }


def sse_events(message: dict[str, Any], text_deltas: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """The SSE event sequence the real API sends for ``message`` (text in ``text_deltas``
    pieces)."""
    start = dict(message, content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = dict(message["usage"], output_tokens=1)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            text = block["text"]
            step = max(1, -(-len(text) // max(1, text_deltas)))
            pieces = [text[n : n + step] for n in range(0, len(text), step)] or [""]
            for piece in pieces[:-1]:
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
            delta = {"type": "text_delta", "text": pieces[-1]}
        else:  # tool_use
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {
                            "type": "tool_use",
                            "id": block["id"],
                            "name": block["name"],
                            "input": {},
                        },
                    },
                )
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta})
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class _Handler(BaseHTTPRequestHandler):
    owner: FakeAnthropicAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _read(self) -> RecordedRequest:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        return RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )

    def _json(self, req: RecordedRequest, status: int, payload: Any) -> None:
        req.status = status
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", f"req_fake_{uuid.uuid4().hex[:16]}")
        if req.path == "/v1/messages":
            for name, value in self.owner.response_headers.items():
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        req = self._read()
        self.owner._record(req)
        if req.method == "POST" and req.path in ("/v1/messages", "/v1/messages/count_tokens"):
            if req.bearer_token in self.owner.revoked_credentials:
                status, kind, text = REVOKED_ANSWER
                self._json(req, status, {"type": "error", "error": {"type": kind, "message": text}})
                return
            if not self.owner.credentials_ok(req):
                self._json(
                    req,
                    401,
                    {
                        "type": "error",
                        "error": {
                            "type": "authentication_error",
                            "message": "invalid x-api-key"
                            if req.api_key
                            else "Invalid bearer token",
                        },
                    },
                )
                return
            body = req.body if isinstance(req.body, dict) else {}
            if req.path == "/v1/messages" and self.owner.error_answer is not None:
                status, kind, text = self.owner.error_answer
                self._json(req, status, {"type": "error", "error": {"type": kind, "message": text}})
                return
            if req.path == "/v1/messages" and self.owner.next_statuses:
                status = self.owner.next_statuses.popleft()
                self._json(
                    req,
                    status,
                    {"type": "error", "error": {"type": "scripted_error", "message": "scripted"}},
                )
                return
            if req.path.endswith("/count_tokens"):
                self._json(req, 200, {"input_tokens": max(1, len(json.dumps(body)) // 4)})
                return
            message = self.owner.reply_for(body)
            req.extra["reply"] = message
            if body.get("stream"):
                self._stream(req, message)
            else:
                self._json(req, 200, message)
            return
        self._json(
            req,
            404,
            {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}},
        )

    def _stream(self, req: RecordedRequest, message: dict[str, Any]) -> None:
        req.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", f"req_fake_{uuid.uuid4().hex[:16]}")
        for name, value in self.owner.response_headers.items():
            self.send_header(name, value)
        self.end_headers()
        events = sse_events(message, self.owner.text_deltas)
        for n, (name, data) in enumerate(events):
            last = n == len(events) - 1
            if last and self.owner.hold_last_event and not self.owner.release_last_event.wait(10):
                self.owner.held_timed_out = True
            if n and self.owner.event_delay_seconds:
                time.sleep(self.owner.event_delay_seconds)
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


FakeAnthropicAPI.handler = _Handler
