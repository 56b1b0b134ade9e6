"""Running one task: choose auth, build the container's inputs, run it, record what happened.

Called by the background worker (tasks.background). It is the only writer of a running task's
log and result columns; the web side only ever sets `cancel_requested` or cancels queued tasks.
"""

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from accounts.selectors import preferences_get
from common.logging import secrets_redact
from oauth_tokens.services import (
    AuthMethod,
    AuthResolution,
    AuthUnavailable,
    auth_method_resolve,
    credential_rotation_save,
)

from .containers import (
    CREDENTIALS_PATH,
    TASK_DIR,
    ContainerError,
    ContainerOutcome,
    ContainerSpec,
    InputFile,
    container_labels,
    container_run,
    docker_client,
    engine_id,
)
from .models import CodingTask, TaskStatus

logger = logging.getLogger("tasks.runner")

LOG_FLUSH_SECONDS = 1.0
EXIT_CLONE_FAILED = 3


def runner_ident() -> str:
    """Which worker process runs a task: lets recovery tell a dead worker's task from a live one."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- the log ----------------------------------------------------------------------------------


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
        self._lock = threading.Lock()
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

    def flush(self) -> None:
        with self._lock:
            text, truncated = self.text, self.truncated
            self._last_flush = time.monotonic()
        CodingTask.objects.filter(pk=self.task_id).update(log=text, log_truncated=truncated)

    def redact(self, text: str) -> str:
        """This run's own secret values, then anything that looks like a token; no NULs
        (PostgreSQL text cannot hold them)."""
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return secrets_redact(text).replace("\x00", "")

    def _append(self, line: str) -> None:
        line = self.redact(_readable(line, self))
        if not line:
            return
        line += "\n"
        self.lines.append(line)
        self.size += len(line.encode())
        # Keep the tail: the end of a run says most about how it went.
        while self.size > self.max_bytes and len(self.lines) > 1:
            self.size -= len(self.lines.popleft().encode())
            self.truncated = True


def _readable(line: str, log: TaskLog) -> str:
    """One stream-json line as a short human line; other lines as they are."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line.rstrip()
    try:
        event = json.loads(stripped)
    except ValueError:
        return line.rstrip()
    kind = event.get("type")
    if kind == "system" and event.get("subtype") == "init":
        return (
            f"Claude Code {event.get('claude_code_version', '?')} started "
            f"(model {event.get('model', '?')}, auth {event.get('apiKeySource', '?')})"
        )
    if kind == "assistant":
        parts = []
        for block in (event.get("message") or {}).get("content") or []:
            if block.get("type") == "text" and block.get("text"):
                parts.append(block["text"].strip())
            elif block.get("type") == "tool_use":
                target = (block.get("input") or {}).get("file_path") or ""
                parts.append(f"-> {block.get('name')}({target})")
        return "\n".join(parts)
    if kind == "result":
        log.result_line = event
        verdict = "error" if event.get("is_error") else "done"
        return f"Result ({verdict}): {str(event.get('result', '')).strip()}"
    return ""  # tool results and other chatter: kept in stream.jsonl, not in the log


# --- building the container's inputs ------------------------------------------------------------


@dataclass
class _Inputs:
    env: dict[str, str]
    files: list[InputFile]
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list, repr=False)
    read_back: list[str] = field(default_factory=list)


def _secret_file(name: str, value: str) -> InputFile:
    return InputFile(f"{TASK_DIR}/secret-env/{name}", value.encode(), 0o600)


def _inputs(task: CodingTask, auth: AuthResolution, agent_env: dict[str, str]) -> _Inputs:
    env = {
        **{k: str(v) for k, v in settings.AGENT_EXTRA_ENV.items()},
        "REPO_URL": task.repo_url,
        "REPO_BRANCH": task.branch,
    }
    files = [InputFile(f"{TASK_DIR}/prompt.txt", task.prompt.encode(), 0o600)]
    secrets: list[str] = []
    read_back: list[str] = []
    # The user's extra variables may hold secrets: files, not env, and redacted like tokens.
    for name, value in agent_env.items():
        files.append(_secret_file(name, value))
        secrets.append(value)
    if auth.method == AuthMethod.OAUTH and auth.oauth is not None:
        snap = auth.oauth
        rotation = settings.AGENT_ALLOW_TOKEN_ROTATION and bool(snap.refresh_token)
        # The CLI's own file format only; the refresh token stays on the server unless allowed.
        files.append(
            InputFile(
                CREDENTIALS_PATH,
                snap.credentials_file_json(include_refresh_token=rotation).encode(),
                0o600,
            )
        )
        env["CLAUDE_USE_OAUTH"] = "1"
        if snap.expires_at is not None:
            env["CLAUDE_EXPIRES_AT"] = str(int(snap.expires_at.timestamp()))
        if settings.AGENT_PASS_TOKEN_ENV:
            files.append(_secret_file("CLAUDE_ACCESS_TOKEN", snap.access_token))
            if rotation:
                files.append(_secret_file("CLAUDE_REFRESH_TOKEN", snap.refresh_token))
        if rotation:
            read_back.append(CREDENTIALS_PATH)
        secrets += [snap.access_token, snap.refresh_token]
    else:
        files.append(_secret_file("ANTHROPIC_API_KEY", auth.api_key))
        secrets.append(auth.api_key)
    volumes = {}
    parts = urlsplit(task.repo_url)
    if parts.scheme == "file":
        # Local repositories (development/tests only) are mounted read-only at the same path.
        path = str(Path(parts.path))
        volumes[path] = {"bind": path, "mode": "ro"}
    return _Inputs(env, files, volumes, secrets, read_back)


# --- running ------------------------------------------------------------------------------------


def task_run(*, task_id: int) -> None:
    """Run a queued task to its end. Safe to call twice: only a queued task is started."""
    started = timezone.now()
    # Who runs it is recorded with the claim, so recovery can judge it even if this worker
    # dies before a container exists.
    claimed = CodingTask.objects.filter(pk=task_id, status=TaskStatus.QUEUED).update(
        status=TaskStatus.RUNNING, started_at=started, runner=runner_ident()
    )
    if not claimed:
        logger.info("Task %s is not queued any more (cancelled or already run); skipping", task_id)
        return
    task = CodingTask.objects.select_related("owner").get(pk=task_id)
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=settings.AGENT_LOG_MAX_BYTES)
    try:
        _run(task, log)
    except Exception as exc:
        logger.exception("Task %s crashed in the runner", task_id)
        reason = log.redact(str(exc))
        _finish(task.pk, TaskStatus.FAILED, error=f"The runner failed unexpectedly: {reason}")


def _run(task: CodingTask, log: TaskLog) -> None:
    # Re-check the owner may still run tasks: the account may have been disabled meanwhile.
    if not task.owner.is_active:
        _finish(task.pk, TaskStatus.FAILED, error="Your account is disabled; the task was not run.")
        return
    try:
        # Valid for the whole run: the container has no refresh token to renew it with.
        auth = auth_method_resolve(
            user=task.owner,
            buffer_seconds=settings.AGENT_TIMEOUT_SECONDS + settings.CLAUDE_OAUTH_REFRESH_BUFFER,
        )
    except AuthUnavailable as exc:
        log.note(str(exc))
        _finish(task.pk, TaskStatus.FAILED, error=str(exc))
        return
    CodingTask.objects.filter(pk=task.pk).update(
        auth_method=auth.method,
        auth_source=auth.source,
        auth_refreshed=auth.refreshed,
        auth_fallback=auth.fallback,
        auth_note=auth.reason,
    )
    log.note(auth.reason)
    inputs = _inputs(task, auth, preferences_get(user=task.owner).agent_env or {})
    log.secrets = [s for s in inputs.secrets if s]

    client = docker_client()
    spec = ContainerSpec(
        image=settings.AGENT_IMAGE,
        env=inputs.env,
        files=inputs.files,
        labels=container_labels(task_id=task.pk),
        name=f"claude-runner-task-{task.pk}-{int(time.time())}",
        timeout_seconds=settings.AGENT_TIMEOUT_SECONDS,
        network_mode=settings.AGENT_NETWORK_MODE,
        mem_limit=settings.AGENT_MEMORY_LIMIT or None,
        nano_cpus=int(settings.AGENT_CPUS * 1e9) if settings.AGENT_CPUS else None,
        pids_limit=settings.AGENT_PIDS_LIMIT or None,
        volumes=inputs.volumes,
        read_back=inputs.read_back,
    )
    engine = engine_id(client=client)
    CodingTask.objects.filter(pk=task.pk).update(engine_id=engine)

    def started(container_id: str) -> None:
        CodingTask.objects.filter(pk=task.pk).update(container_id=container_id)

    def should_cancel() -> bool:
        return CodingTask.objects.filter(pk=task.pk, cancel_requested=True).exists()

    if should_cancel():  # cancelled while auth was chosen: no container at all
        _finish(task.pk, TaskStatus.CANCELLED, error="Cancelled at your request.")
        return

    try:
        outcome = container_run(
            client=client,
            spec=spec,
            on_started=started,
            on_output=log.feed,
            should_cancel=should_cancel,
            max_output_bytes=settings.AGENT_DIFF_MAX_BYTES,
        )
    except ContainerError as exc:
        log.note(str(exc))
        _finish(task.pk, TaskStatus.FAILED, error=str(exc))
        return
    log.finish()
    _record_outcome(task, outcome, log)
    if outcome.read_back and auth.oauth is not None:
        _rotation_save(auth, outcome.read_back)


def _record_outcome(task: CodingTask, outcome: ContainerOutcome, log: TaskLog) -> None:
    result = _result(outcome, log)
    diff_bytes = outcome.outputs.get("diff.patch", b"")
    max_diff = settings.AGENT_DIFF_MAX_BYTES
    values: dict[str, Any] = {
        "exit_code": outcome.exit_code,
        "diff": log.redact(diff_bytes[:max_diff].decode("utf-8", "replace")),
        "diff_truncated": len(diff_bytes) > max_diff,
        "changed_files": _changed_files(outcome.outputs.get("changed_files.txt", b"")),
        "result_text": log.redact(str(result.get("result", "") or ""))[:20000],
        "result_is_error": result.get("is_error") if result else None,
        "cost_usd": _decimal(result.get("total_cost_usd")),
        "num_turns": result.get("num_turns") if isinstance(result.get("num_turns"), int) else None,
        "session_id": str(result.get("session_id", ""))[:128],
    }
    status, error = _verdict(outcome, result)
    _finish(task.pk, status, error=error, **values)


def _result(outcome: ContainerOutcome, log: TaskLog) -> dict[str, Any]:
    raw = outcome.outputs.get("result.json", b"").strip()
    if raw:
        try:
            parsed = json.loads(raw)
            if isinstance(parsed, dict):
                return parsed
        except ValueError:
            pass
    return log.result_line or {}


def _verdict(outcome: ContainerOutcome, result: dict[str, Any]) -> tuple[str, str]:
    minutes = settings.AGENT_TIMEOUT_SECONDS / 60
    if outcome.timed_out:
        return TaskStatus.TIMED_OUT, (
            f"The agent ran longer than the limit of {minutes:g} minutes and was stopped. "
            "Changes made so far are shown below."
        )
    if outcome.cancelled:
        return TaskStatus.CANCELLED, "Cancelled at your request."
    text = str(result.get("result", "") or "").strip()
    entrypoint_error = result.get("subtype") == "entrypoint_error"
    if entrypoint_error and outcome.exit_code == EXIT_CLONE_FAILED:
        return TaskStatus.FAILED, (
            "Could not clone the repository. Check the URL and branch, and that the "
            f"repository is reachable from the worker. {text}"
        ).strip()
    if entrypoint_error:
        return TaskStatus.FAILED, f"The agent container refused its input: {text}"
    if result.get("api_error_status") in (401, 403):
        return TaskStatus.FAILED, (
            "Claude rejected the credentials "
            f"(HTTP {result['api_error_status']}). Save fresh OAuth tokens or a valid API key "
            "on the Code agent settings page."
        )
    if outcome.exit_code == 0 and result and not result.get("is_error"):
        return TaskStatus.SUCCEEDED, ""
    if not result:
        return TaskStatus.FAILED, (
            f"The agent exited with code {outcome.exit_code} without a result; see the log."
        )
    return TaskStatus.FAILED, (
        f"The agent reported an error (exit code {outcome.exit_code}): {text or 'no details'}"
    )


def _changed_files(raw: bytes) -> list[dict[str, str]]:
    files = []
    for line in raw.decode("utf-8", "replace").splitlines():
        status, _, path = line.partition("\t")
        if path:
            files.append({"status": status[:1], "path": path.split("\t")[-1]})
    return files


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.000001"))
    except InvalidOperation:
        return None


def _finish(task_id: int, status: str, *, error: str = "", **values: Any) -> None:
    # Only a running task is finished here: recovery may have settled it already.
    CodingTask.objects.filter(pk=task_id, status=TaskStatus.RUNNING).update(
        status=status, error_message=error, finished_at=timezone.now(), **values
    )
    logger.info("Task %s finished: %s", task_id, status)


def _rotation_save(auth: AuthResolution, read_back: dict[str, bytes]) -> None:
    data = next(iter(read_back.values()), b"")
    if auth.oauth is not None and data:
        credential_rotation_save(
            credential_id=auth.oauth.credential_id,
            given_refresh_token=auth.oauth.refresh_token,
            file_content=data,
        )
