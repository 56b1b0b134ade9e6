"""A kept transcript cleaned for a resume, on the worker: the rules of agent/README.md ("Resume")
that the entrypoint applies with jq when it is given a transcript nobody cleaned. Here, in one
parse with Python's json, a follow-up's container is spared parsing it again (the runner says
so with AGENT_RESUME_CLEANED=1); tests/agent_image/test_entrypoint_parsers.py holds both to the
same rules.

The transcript was written in an earlier container, so it is data from an agent, and the CLI
takes instructions from it (docs/claude-cli-contract.md#resuming-a-session). Every line is
checked, and only the conversation is kept: user and assistant turns, the attachments the CLI
renders as user text, messages queued mid-turn (as user text). Each kept line's parent is its
nearest kept ancestor, so the chain the CLI walks back from the last turn stays whole."""

import json
import math
from dataclasses import dataclass
from typing import Any

from .containers import HOME

WORK_DIR = f"{HOME}/work"
# Never kept on a user or assistant turn: the CLI would render them as turns of their own.
_TURN_EXTRAS = ("rendered", "renderedRole", "attachment")


class TranscriptInvalid(ValueError):
    """The bytes are not a transcript that may be resumed (the message says where)."""


def _constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _number(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


def _line_parse(number: int, line: str) -> dict[str, Any]:
    try:
        # Strict: no NaN or Infinity, no number beyond a double, no integer of thousands of
        # digits (Python's own limit), no nesting deeper than the interpreter's.
        value = json.loads(line, parse_constant=_constant, parse_float=_number)
    except (ValueError, RecursionError):
        raise TranscriptInvalid(f"line {number}: not JSON") from None
    if not isinstance(value, dict):
        raise TranscriptInvalid(f"line {number}: not a JSON object")
    return value


def _is_id(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _line_refusal(line: dict[str, Any], session_id: str) -> str:
    """Why the line may not be in a transcript to resume ("" when it may)."""
    if "__drop" in line:
        return "an unknown field __drop"
    if "sessionId" in line and line["sessionId"] != session_id:
        return "another session id"
    if "cwd" in line and line["cwd"] != WORK_DIR:
        return f"a working directory other than {WORK_DIR}"
    if "uuid" in line and not _is_id(line["uuid"]):
        return "a uuid that is no string"
    if line.get("parentUuid") is not None and not _is_id(line["parentUuid"]):
        return "a parentUuid that is no string"
    kind = line.get("type")
    if kind in ("user", "assistant"):
        message = line.get("message")
        if not isinstance(message, dict) or message.get("role") != kind:
            return f"a {kind} turn with another role"
    return ""


def _line_verdict(number: int, line: dict[str, Any], session_id: str) -> str:
    """ "keep", "keep as user" or "drop"; TranscriptInvalid for a line that may not be there."""
    refusal = _line_refusal(line, session_id)
    if refusal:
        raise TranscriptInvalid(f"line {number}: {refusal}")
    kind, attachment = line.get("type"), line.get("attachment")
    if kind in ("user", "assistant"):
        return "keep"
    if kind != "attachment":
        return "drop"
    if isinstance(attachment, dict) and attachment.get("type") == "queued_command":
        return "keep as user"
    return "keep" if line.get("renderedRole") == "user" else "drop"


def _nearest_kept(
    parent: str | None, dropped: dict[str, str | None], found: dict[str, str | None]
) -> str | None:
    """The first ancestor from ``parent`` on that is not a dropped line (None at the root);
    TranscriptInvalid for a loop. ``found`` remembers each walk, so a transcript costs one
    walk over its lines, however they are linked."""
    walked: list[str] = []
    seen: set[str] = set()
    while parent is not None and parent in dropped:
        if parent in found:
            parent = found[parent]
            break
        if parent in seen:
            raise TranscriptInvalid("a loop in the parent chain")
        seen.add(parent)
        walked.append(parent)
        parent = dropped[parent]
    for uuid in walked:
        found[uuid] = parent
    return parent


def _dumps(line: dict[str, Any]) -> str:
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass
class _Kept:
    text: str  # the line as it goes out, but for its parent
    parent: str | None  # its parentUuid as written
    linked: bool  # it has a parentUuid (null included)


def transcript_clean(*, text: str, session_id: str) -> bytes:
    """Only the conversation of ``text``, relinked (the module's docstring), one JSON object a
    line, in UTF-8; TranscriptInvalid saying why when a line may not be resumed or no user turn
    is left. Each line is parsed once and held as text: one line's objects at a time."""
    kept: list[_Kept] = []
    dropped: dict[str, str | None] = {}
    users = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw == "":
            continue
        line = _line_parse(number, raw)
        verdict = _line_verdict(number, line, session_id)
        if verdict == "drop":
            if "uuid" in line:
                dropped[line["uuid"]] = line.get("parentUuid")
            continue
        if verdict == "keep as user":
            line["renderedRole"] = "user"
        elif line["type"] in ("user", "assistant"):
            line = {k: v for k, v in line.items() if k not in _TURN_EXTRAS}
            users += line["type"] == "user"
        kept.append(_Kept(_dumps(line), line.get("parentUuid"), "parentUuid" in line))
    if not users:
        raise TranscriptInvalid("holds no user turn to resume")
    found: dict[str, str | None] = {}
    out: list[str] = []
    for each in kept:
        parent = _nearest_kept(each.parent, dropped, found) if each.linked else each.parent
        if parent == each.parent:
            out.append(each.text)
        else:  # a dropped line in between: parsed again, the only change its parent
            relinked = json.loads(each.text)
            relinked["parentUuid"] = parent
            out.append(_dumps(relinked))
    # A lone surrogate (a cut emoji in a tool's output) stays the JSON escape the CLI wrote:
    # it can only be inside a string.
    return "".join(f"{line}\n" for line in out).encode("utf-8", "backslashreplace")
