"""A task's conversation across runs: the CLI's session read back after a run and kept
(encrypted, bounded), and put into the next task of the chain before it starts, so that run
resumes it (agent/README.md, "Resume"; docs/claude-cli-contract.md#resuming-a-session). When
there is no transcript to give, the follow-up's prompt carries the earlier prompts and answers.

Everything under out/session was written inside the container, so it is data from the agent:
size-bounded, checked line by line as JSON objects, stored as it came. Only the next container
of the same chain and owner gets it, cleaned first (tasks.run.transcript: only the conversation
is kept), so that container need not parse it again."""

import json
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from tasks.models import CarriedOver, CodingTask, TaskConversation, TaskMessage, TranscriptState

from .archives import InputFile
from .containers import TASK_DIR, ContainerOutcome
from .log import TaskLog
from .transcript import WORK_DIR, TranscriptInvalid, transcript_clean

SESSION_ID = "session/id"
TRANSCRIPT = "session/transcript.jsonl"
STATUS = "session/status.json"
SESSION_FILES = frozenset({SESSION_ID, TRANSCRIPT, STATUS})
RESUME_DIR = f"{TASK_DIR}/resume"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STATUS_MAX_BYTES = 64 * 1024
# The summary of earlier turns in a follow-up's prompt: each text and the whole, in characters.
SUMMARY_PART_MAX = 4000
SUMMARY_MAX = 40_000


def transcript_max_bytes() -> int:
    return int(settings.AGENT_TRANSCRIPT_MAX_MB) * 1024 * 1024


def transcript_check(*, data: bytes, session_id: str = "") -> str:
    """The transcript as text when every non-blank line is a JSON object whose sessionId (if
    any) is ``session_id`` and whose cwd (if any) is the agent's working tree, as the entrypoint
    requires to resume it (agent/README.md, "Resume"); else TranscriptInvalid."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TranscriptInvalid(f"not UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        raise TranscriptInvalid("holds a NUL character")
    lines = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            _line_check(number, line, session_id)
            lines += 1
    if not lines:
        raise TranscriptInvalid("holds no line")
    return text


def _line_check(number: int, line: str, session_id: str) -> None:
    try:
        value = json.loads(line)
    except ValueError:
        raise TranscriptInvalid(f"line {number} is not JSON") from None
    if not isinstance(value, dict):
        raise TranscriptInvalid(f"line {number} is not a JSON object")
    if session_id and "sessionId" in value and value["sessionId"] != session_id:
        raise TranscriptInvalid(f"line {number} names another session")
    if "cwd" in value and value["cwd"] != WORK_DIR:
        raise TranscriptInvalid(f"line {number} names a working directory other than {WORK_DIR}")


def _session_id(outputs: dict[str, bytes]) -> str:
    raw = outputs.get(SESSION_ID, b"")[:128].decode("ascii", "replace").strip()
    return raw if UUID_RE.fullmatch(raw) else ""


def _status(outputs: dict[str, bytes]) -> dict[str, object]:
    raw = outputs.get(STATUS, b"")
    if not raw or len(raw) > STATUS_MAX_BYTES:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _part(status: dict[str, object], key: str) -> dict[str, object]:
    value = status.get(key)
    return value if isinstance(value, dict) else {}


def _said(value: object, log: TaskLog) -> str:
    """A reason from the agent's status.json as text a column can hold: redacted as the log is,
    which also drops NULs and replaces lone surrogates (secrets_redact)."""
    return log.redact(str(value))


def conversation_record(*, task: CodingTask, outcome: ContainerOutcome, log: TaskLog) -> None:
    """Keep what the run handed back of its session; note on the log when nothing is kept."""
    outputs = outcome.outputs
    status = _status(outputs)
    values: dict[str, object] = {"session_id": _session_id(outputs)}
    data = outputs.get(TRANSCRIPT, b"")
    limit = transcript_max_bytes()
    state, note, text = TranscriptState.KEPT, "", ""
    unread = outcome.too_large.get(TRANSCRIPT)  # over what the runner reads at all
    if unread is not None:
        state = TranscriptState.TOO_LARGE
        note = f"The transcript is {unread:,} bytes, over {settings.AGENT_TRANSCRIPT_MAX_MB} MiB."
    elif not data:
        export = _part(status, "export")
        too_large = export.get("state") == "too_large"
        state = TranscriptState.TOO_LARGE if too_large else TranscriptState.MISSING
        note = _said(export.get("reason") or "The run handed back no transcript.", log)
    elif len(data) > limit or not values["session_id"]:
        state = TranscriptState.TOO_LARGE if len(data) > limit else TranscriptState.REFUSED
        note = (
            f"The transcript is over {settings.AGENT_TRANSCRIPT_MAX_MB} MiB "
            "(AGENT_TRANSCRIPT_MAX_MB)."
            if len(data) > limit
            else "The run handed back no valid session id."
        )
    else:
        try:
            text = transcript_check(data=data, session_id=str(values["session_id"]))
        except TranscriptInvalid as exc:
            state, note = TranscriptState.REFUSED, f"The transcript was not kept: {exc}."
    values |= {
        "transcript": text,
        "transcript_bytes": unread if unread is not None else (len(data) or None),
        "transcript_state": state,
        "transcript_note": note[:1000],
    }
    resume = _part(status, "resume")
    if resume.get("state") == "refused":
        values["carried_note"] = (
            "The earlier session could not be resumed "
            f"({_said(resume.get('reason') or 'no reason given', log)[:300]}); the agent started "
            "afresh."
        )
    TaskConversation.objects.filter(pk=task.pk).update(**values)
    if note:
        log.note(f"Session not kept for a follow-up: {note}")


def messages_reopen(*, task_id: int) -> None:
    """A run takes messages anew, from the first: a run again after a wait (a usage limit, the
    engine) has not ended the task, so the messages that came late to the run before it are
    this run's to deliver. Locked as a message is added: each is late or this run's, never
    lost between the two."""
    with transaction.atomic():  # the update holds the row to the end, as a sender's lock does
        TaskConversation.objects.filter(pk=task_id).update(messages_closed=False)
        TaskMessage.objects.filter(task_id=task_id, late=True, followed_up_at=None).update(
            late=False
        )


@dataclass
class ConversationInputs:
    prompt: str
    files: list[InputFile] = field(default_factory=list, repr=False)
    env: dict[str, str] = field(default_factory=dict)


def conversation_inputs(*, task: CodingTask) -> ConversationInputs:
    """The prompt and resume files of a task's container. A follow-up resumes its parent's
    session when the parent (same owner) kept one; otherwise its prompt carries the earlier
    prompts and answers, and its conversation row says so for the page."""
    # Always said, so that no variable of an environment can say it instead.
    env = {"AGENT_TRANSCRIPT_MAX_BYTES": str(transcript_max_bytes()), "AGENT_RESUME_CLEANED": "0"}
    if settings.AGENT_MESSAGES:
        env["AGENT_MESSAGES"] = "1"
    messages_reopen(task_id=task.pk)
    parent = task.parent
    if parent is None or parent.owner_id != task.owner_id:
        return ConversationInputs(task.prompt, [], env)
    earlier = TaskConversation.objects.filter(pk=parent.pk).first()
    rows = TaskConversation.objects.filter(pk=task.pk)
    why = (earlier.transcript_note if earlier else "") or "the earlier run kept no transcript"
    if (
        earlier is not None
        and earlier.transcript_state == TranscriptState.KEPT
        and earlier.transcript
        and UUID_RE.fullmatch(earlier.session_id)
    ):
        # In this thread: in another, its Python would hold the interpreter from the runner's
        # own work (each hand back waits for the switch interval), which cost more than it saved.
        cleaned, why = _resumable(earlier.transcript, earlier.session_id)
        if cleaned is not None:
            rows.update(carried=CarriedOver.TRANSCRIPT, carried_note="")
            files = [
                InputFile(f"{RESUME_DIR}/session-id", earlier.session_id.encode(), 0o600),
                InputFile(f"{RESUME_DIR}/transcript.jsonl", cleaned, 0o600),
            ]
            return ConversationInputs(task.prompt, files, env | {"AGENT_RESUME_CLEANED": "1"})
    rows.update(
        carried=CarriedOver.SUMMARY,
        carried_note=(
            f"The earlier session was not carried over ({why.rstrip('.')}): the agent got the "
            "earlier prompts and answers in its prompt instead."
        )[:1000],
    )
    # The request first: its first line is also the subject of the run's commit.
    return ConversationInputs(f"{task.prompt}\n\n{_summary(task)}", [], env)


def _resumable(transcript: str, session_id: str) -> tuple[bytes | None, str]:
    """The earlier transcript cleaned for the container, or None and why it cannot be resumed."""
    try:
        data = transcript_clean(text=transcript, session_id=session_id)
    except TranscriptInvalid as exc:
        return None, f"its transcript cannot be resumed: {exc}"
    if len(data) > transcript_max_bytes():
        return None, (
            f"its transcript is over {settings.AGENT_TRANSCRIPT_MAX_MB} MiB once cleaned "
            "(AGENT_TRANSCRIPT_MAX_MB)"
        )
    return data, ""


def _cut(text: str) -> str:
    text = text.strip()
    return text if len(text) <= SUMMARY_PART_MAX else text[:SUMMARY_PART_MAX] + " [...]"


def _summary(task: CodingTask) -> str:
    """The earlier turns of the chain, oldest first, as plain text ahead of the new prompt."""
    parts: list[str] = []
    seen = {task.pk}
    current = task.parent
    while current is not None and current.pk not in seen and current.owner_id == task.owner_id:
        seen.add(current.pk)
        turn = [f"User: {_cut(current.prompt)}"]
        # Late messages never reached that agent: the one they made is a turn of its own.
        told = TaskMessage.objects.filter(task=current, late=False)
        for text in told.values_list("text", flat=True):
            turn.append(f"User (while you worked): {_cut(text)}")
        answer = current.result_text or current.error_message or "(no answer)"
        turn.append(f"You ({current.get_status_display().lower()}): {_cut(answer)}")
        parts.insert(0, "\n".join(turn))
        current = current.parent
    body = "\n\n".join(parts)
    if len(body) > SUMMARY_MAX:
        body = "[earlier turns left out]\n" + body[-SUMMARY_MAX:]
    return (
        "---\nThe request above continues earlier work in this repository (its changes are "
        f"already in the working tree). The conversation so far, oldest first:\n\n{body}\n"
    )
