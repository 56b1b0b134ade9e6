"""The setup phase's log: its own section on the task page, redacted, bounded (the end kept, as
the end says why a setup failed), with a note of how much was left out."""

import threading
import time
from collections import deque
from collections.abc import Callable

from common.logging import secrets_redact

MAX_LINE_CHARS = 4096
FLUSH_SECONDS = 1.0
CONTAINER_CUT_NOTE = "[setup] the output was over"


class SetupLog:
    def __init__(
        self, *, secrets: list[str], max_bytes: int, on_flush: Callable[[str, bool], None]
    ) -> None:
        self.secrets = [s for s in secrets if s]
        self.max_bytes = max_bytes
        self.lines: deque[str] = deque()
        self.size = 0
        self.seen_bytes = 0
        self.dropped_bytes = 0
        self.cut_in_container = False  # agent/setup-phase.sh left the middle out
        self.partial = b""
        self.egress_refusals: list[str] = []
        self._on_flush = on_flush
        self._lock = threading.Lock()
        self._last_flush = 0.0

    @property
    def truncated(self) -> bool:
        return self.dropped_bytes > 0 or self.cut_in_container

    @property
    def text(self) -> str:
        with self._lock:  # redacted here, for the lines kept only: a flood costs no regexes
            body = self.redact("".join(self.lines))
        if self.dropped_bytes:
            note = (
                f"[runner] {self.dropped_bytes:,} of {self.seen_bytes:,} bytes of setup output "
                "were left out; the end is kept.\n"
            )
            body = note + body
        return body

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            self.seen_bytes += len(chunk)
            self.partial += chunk
            *lines, self.partial = self.partial.split(b"\n")
            if len(self.partial) > MAX_LINE_CHARS:
                lines.append(self.partial)
                self.partial = b""
            for raw in lines:
                self._append(raw.decode("utf-8", "replace"))
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def note(self, line: str) -> None:
        with self._lock:
            self._append(f"[runner] {line}")

    def gateway_line(self, line: str) -> None:
        """The setup gateway's lines (its own thread): refusals say which host was refused."""
        with self._lock:
            if line.startswith("egress refused:") and len(self.egress_refusals) < 100:
                self.egress_refusals.append(self.redact(line))
            self._append(f"[gateway] {line}")

    def finish(self) -> None:
        with self._lock:
            if self.partial:
                self._append(self.partial.decode("utf-8", "replace"))
            self.partial = b""
        self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        self._on_flush(self.text, self.truncated)

    def tail(self, lines: int = 15) -> str:
        with self._lock:
            return self.redact("".join(list(self.lines)[-lines:])).strip()

    def redact(self, text: str) -> str:
        return secrets_redact(text, values=self.secrets)

    def _append(self, line: str) -> None:
        line = line.rstrip("\r")[:MAX_LINE_CHARS] + "\n"
        if line.startswith(CONTAINER_CUT_NOTE):
            self.cut_in_container = True
        self.lines.append(line)
        self.size += len(line.encode())
        while self.size > self.max_bytes and len(self.lines) > 1:
            gone = len(self.lines.popleft().encode())
            self.size -= gone
            self.dropped_bytes += gone
