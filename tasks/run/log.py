"""A task's log: container output collected line by line, redacted, capped, saved to the row."""

import json
import threading
import time
from collections import deque
from typing import Any

from django.db import transaction
from django.db.models import F

from common.logging import secrets_redact
from tasks.models import CodingTask, TaskLogProgress

LOG_FLUSH_SECONDS = 1.0
MAX_EVENTS = 200  # rate-limit events and errors kept per run (every answer carries one)
MAX_LINE_BYTES = 64 * 1024


class TaskLog:
    """Collects container output line by line, redacted, capped (tail kept), flushed to the row.

    Whole lines are redacted, so a token split across two chunks is still caught; a runaway
    line with no newline is left out rather than cut (a cut could split a token).
    """

    def __init__(self, *, task_id: int, secrets: list[str], max_bytes: int) -> None:
        self.task_id = task_id
        self.secrets = [s for s in secrets if s]
        self.max_bytes = max_bytes
        self.lines: deque[str] = deque()
        self.size = 0
        self.truncated = False
        self.partial = b""
        self.skipping = False  # inside a runaway line, until its newline
        self.result_line: dict[str, Any] | None = None
        # What says whether a usage limit or a rejected credential stopped the run
        # (tasks.waits.limits).
        self.rate_limit_events: list[dict[str, Any]] = []  # the rate_limit_info objects
        self.assistant_errors: list[str] = []  # "rate_limit", "authentication_failed", ...
        self.egress_refusals: list[str] = []  # the gateway's "egress refused: ..." lines
        self.appended = 0  # characters appended in all, kept or cut since
        self._flushed = 0  # ... of which the database has been told
        self.replays = 0  # user lines the CLI echoed as it took them: the prompt, then messages
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one flush at a time, so writes land in order
        self._last_flush = 0.0

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            self.partial += chunk
            *lines, self.partial = self.partial.split(b"\n")
            if self.skipping and lines:
                lines, self.skipping = lines[1:], False  # the rest of the runaway line
            for raw in lines:
                self._append(raw.decode("utf-8", "replace"))
            if len(self.partial) > MAX_LINE_BYTES:
                if not self.skipping:  # one note per runaway line, however long it runs
                    self._append(f"[runner] a line over {MAX_LINE_BYTES} bytes was left out")
                self.partial, self.skipping = b"", True
        if time.monotonic() - self._last_flush >= LOG_FLUSH_SECONDS:
            self.flush()

    def finish(self) -> None:
        with self._lock:
            if self.partial and not self.skipping:
                self._append(self.partial.decode("utf-8", "replace"))
            self.partial = b""
        self.flush()

    def note(self, line: str) -> None:
        with self._lock:
            self._append(f"[runner] {line}")
        self.flush()

    def gateway_line(self, line: str) -> None:
        """A line from the task's gateway (its own thread): kept, saved with the next flush.
        Never a database write here: the gateway's thread must stay quick."""
        with self._lock:
            if line.startswith("egress refused:") and len(self.egress_refusals) < 100:
                self.egress_refusals.append(self.redact(line))
            self._append(f"[gateway] {line}")

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                text, truncated = self.text, self.truncated
                added, self._flushed = self.appended - self._flushed, self.appended
                self._last_flush = time.monotonic()
            # Together: a poll that reads both sees the count of the text it reads.
            with transaction.atomic():
                saved = CodingTask.objects.filter(pk=self.task_id).update(
                    log=text, log_truncated=truncated
                )
                if added and saved:
                    _progress_add(self.task_id, added)

    def redact(self, text: str) -> str:
        """This run's own secret values (the one rule, with its minimum length), then anything
        that looks like a token; only what a text column holds (secrets_redact)."""
        return secrets_redact(text, values=self.secrets)

    def _append(self, line: str) -> None:
        line = self.redact(_readable(line, self))
        if not line:
            return
        line += "\n"
        self.appended += len(line)
        self.lines.append(line)
        self.size += len(line.encode())
        # Keep the tail: the end of a run says most about how it went.
        while self.size > self.max_bytes and len(self.lines) > 1:
            self.size -= len(self.lines.popleft().encode())
            self.truncated = True


def _progress_add(task_id: int, added: int) -> None:
    counted = TaskLogProgress.objects.filter(pk=task_id).update(
        chars_written=F("chars_written") + added
    )
    if not counted:  # a task made without its rows (bulk_create): counted from here on
        TaskLogProgress.objects.get_or_create(task_id=task_id, defaults={"chars_written": added})


def _readable(line: str, log: TaskLog) -> str:
    """One stream-json line as a short human line; other lines as they are. The line is the
    agent's: any JSON may come, and a field of a shape not known here is left out, never fatal."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line.rstrip()
    try:
        event = json.loads(stripped)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return line.rstrip()
    if not isinstance(event, dict):
        return line.rstrip()
    kind = event.get("type")
    if kind == "system" and event.get("subtype") == "init":
        return (
            f"Claude Code {_word(event.get('claude_code_version'))} started "
            f"(model {_word(event.get('model'))}, {_credential_words(event.get('apiKeySource'))})"
        )
    if kind == "rate_limit_event":
        return _rate_limit_line(event, log)
    if kind == "system" and event.get("subtype") == "api_retry":
        return f"API request failed (HTTP {_word(event.get('error_status'))}); the CLI retries"
    if kind == "assistant":
        return _assistant_lines(event, log)
    if kind == "user" and event.get("isReplay") is True:
        return _message_line(event, log)
    if kind == "result":
        log.result_line = event
        verdict = "error" if event.get("is_error") else "done"
        return f"Result ({verdict}): {_text(event.get('result')).strip()}"
    return ""  # tool results and other chatter: kept in stream.jsonl, not in the log


def _word(value: object) -> str:
    """A name or number the line gives, as it is; "?" for anything else."""
    if isinstance(value, str) and value:
        return value[:200]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)[:40]
    return "?"


def _text(value: object) -> str:
    """Text the line gives; nothing for any other value."""
    return value if isinstance(value, str) else ""


# The CLI's init line names where an API key came from; "none" means it uses no API key, so it
# runs on the OAuth tokens of its credentials file (docs/claude-cli-contract.md#output-formats).
_KEY_SOURCE_WORDS = {"none": "signed in with OAuth tokens", "ANTHROPIC_API_KEY": "with an API key"}


def _credential_words(source: object) -> str:
    if not isinstance(source, str) or not source:
        return "credential not reported"
    return _KEY_SOURCE_WORDS.get(source, f"API key from {source[:40]}")


def _blocks(message: object) -> list[dict[str, Any]]:
    """A message's content blocks: a string is one text block, anything else not a block is
    left out."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def _assistant_lines(event: dict[str, Any], log: TaskLog) -> str:
    """An assistant message: its text and the tools it calls (and its error, for tasks.waits)."""
    error = event.get("error")
    if isinstance(error, str) and len(log.assistant_errors) < MAX_EVENTS:
        log.assistant_errors.append(error[:64])
    parts = []
    for block in _blocks(event.get("message")):
        text = _text(block.get("text")).strip()
        if block.get("type") == "text" and text:
            parts.append(text)
        elif block.get("type") == "tool_use":
            tool_input = block.get("input")
            target = tool_input.get("file_path") if isinstance(tool_input, dict) else None
            parts.append(f"-> {_word(block.get('name'))}({_text(target)})")
    return "\n".join(parts)


def _message_line(event: dict[str, Any], log: TaskLog) -> str:
    """Where a message sent while the agent worked reached it (the first echo is the prompt)."""
    log.replays += 1
    if log.replays == 1:
        return ""
    texts = [_text(block.get("text")) for block in _blocks(event.get("message"))]
    text = " ".join(t for t in texts if t).strip()
    return f"Your message reached the agent: {text[:2000]}" if text else ""


def _rate_limit_line(event: dict[str, Any], log: TaskLog) -> str:
    info = event.get("rate_limit_info")
    if not isinstance(info, dict):
        return ""
    if len(log.rate_limit_events) >= MAX_EVENTS:
        del log.rate_limit_events[1 : MAX_EVENTS // 2]  # keep the first and the latest
    log.rate_limit_events.append(info)
    status = info.get("status")
    if status == "allowed":
        return ""  # every answer carries one
    window = info.get("rateLimitType")
    window = window if isinstance(window, str) and window else "usage"
    if status == "allowed_warning":
        used = info.get("utilization")
        # A share as a percentage; a number past any share is not one (and may not format).
        shown = isinstance(used, int | float) and not isinstance(used, bool) and 0 <= used <= 10
        share = f" ({used:.0%} used)" if shown else ""
        return f"Usage warning: close to the {window[:40]} limit{share}"
    return f"Usage limit: {_word(status)} ({window[:40]} window)"
