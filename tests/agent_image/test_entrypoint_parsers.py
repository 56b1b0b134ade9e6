"""Property tests of the entrypoint's parsers of untrusted input: the jq program that cleans a
transcript before a resume, and the one that turns the gateway's message lines into the CLI's
input. They are taken from agent/agent-entrypoint.sh as they are and run with the host's
jq (the agent images carry the same jq 1.6 from Debian bookworm); the shell around them is
tested in containers (tests/agent_image/test_sessions.py). The runner cleans a transcript by
the same rules before it hands it on (tasks.run.transcript): held to the same oracle here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.run.transcript import TranscriptInvalid, transcript_clean

ENTRYPOINT = Path(__file__).resolve().parents[2] / "agent" / "agent-entrypoint.sh"
JQ = shutil.which("jq")
SID = "5f0c6d1e-8a2b-4c3d-9e4f-a1b2c3d4e5f6"
WORK = "/home/agent/work"

pytestmark = pytest.mark.skipif(JQ is None, reason="jq is not installed on this machine")


def _program(name: str) -> str:
    found = re.search(rf"^{name}='(.*?)'$", ENTRYPOINT.read_text(), re.DOTALL | re.MULTILINE)
    assert found, f"{name} not found in {ENTRYPOINT}"
    return found.group(1)


def _jq(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    assert JQ is not None
    return subprocess.run([JQ, *args], input=data, capture_output=True, timeout=60, check=False)


def runner_clean(data: bytes) -> list[dict[str, Any]] | None:
    """What the runner hands on for ``data`` (None: refused)."""
    try:
        cleaned = transcript_clean(text=data.decode(), session_id=SID)
    except TranscriptInvalid:
        return None
    assert cleaned.endswith(b"\n")
    return [json.loads(line) for line in cleaned.split(b"\n")[:-1]]


def clean(data: bytes) -> list[dict[str, Any]] | None:
    """What the entrypoint installs for ``data`` (None: refused), by its own program. As in the
    entrypoint, any error message is a refusal."""
    done = _jq(
        ["-n", "-R", "-c", "--arg", "sid", SID, "--arg", "cwd", WORK, _program("RESUME_CLEAN")],
        data,
    )
    if done.returncode != 0 or done.stderr:
        return None
    return [json.loads(line) for line in done.stdout.decode().split("\n")[:-1]]


def _oracle_line(line: dict[str, Any]) -> str:
    """ "refuse", "keep", "keep as user" or "drop" for one line."""
    if "__drop" in line or line.get("sessionId", SID) != SID or line.get("cwd", WORK) != WORK:
        return "refuse"
    if "uuid" in line and not _is_id(line["uuid"]):
        return "refuse"
    if line.get("parentUuid") is not None and not _is_id(line["parentUuid"]):
        return "refuse"
    kind, attachment = line.get("type"), line.get("attachment")
    if kind in ("user", "assistant"):
        message = line.get("message")
        return "keep" if isinstance(message, dict) and message.get("role") == kind else "refuse"
    if kind != "attachment":
        return "drop"
    if isinstance(attachment, dict) and attachment.get("type") == "queued_command":
        return "keep as user"
    return "keep" if line.get("renderedRole") == "user" else "drop"


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _oracle_parent(parent: str | None, drops: dict[str, str | None]) -> str | None:
    """The nearest kept ancestor; "refuse" for a loop."""
    seen: set[str] = set()
    while parent is not None and parent in drops:
        if parent in seen:
            return "refuse"
        seen.add(parent)
        parent = drops[parent]
    return parent


def oracle(body: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The rules of agent/README.md (resume), in Python."""
    kept: list[dict[str, Any]] = []
    drops: dict[str, str | None] = {}
    for line in body:
        verdict = _oracle_line(line)
        if verdict == "refuse":
            return None
        if verdict == "keep":
            is_turn = line.get("type") in ("user", "assistant")
            kept.append({k: v for k, v in line.items() if not (is_turn and k in _NEVER_KEPT)})
        elif verdict == "keep as user":
            kept.append({**line, "renderedRole": "user"})
        elif isinstance(line.get("uuid"), str):
            drops[line["uuid"]] = line.get("parentUuid")
    for line in kept:
        if "parentUuid" in line:
            line["parentUuid"] = _oracle_parent(line["parentUuid"], drops)
            if line["parentUuid"] == "refuse":
                return None
    return kept if any(line["type"] == "user" for line in kept) else None


_NEVER_KEPT = {"rendered", "renderedRole", "attachment"}


def _is_allowed(line: dict[str, Any]) -> bool:
    if line.get("type") in ("user", "assistant"):
        return line["message"]["role"] == line["type"] and not (
            {"rendered", "renderedRole", "attachment"} & set(line)
        )
    return line.get("type") == "attachment" and line.get("renderedRole") == "user"


# The CLI writes its transcript from JavaScript, whose numbers are doubles: integers past 2**53
# never occur in one (and jq, reading them as doubles, would round them).
SAFE_INTEGERS = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | SAFE_INTEGERS | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
KINDS = ["user", "assistant", "attachment", "system", "queue-operation", "summary"]


@st.composite
def lines(draw: st.DrawFn) -> dict[str, Any]:
    """A line shaped like the CLI's, with any field possibly wrong."""
    kind = draw(st.sampled_from(KINDS))
    line: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        line["sessionId"] = draw(st.sampled_from([SID, str(uuid.uuid4())]))
    if draw(st.booleans()):
        line["cwd"] = draw(st.sampled_from([WORK, "/etc", "/home/agent"]))
    if draw(st.booleans()):
        line["uuid"] = draw(st.sampled_from(["u1", "u2", "u3", "u4", "", 3]))
        line["parentUuid"] = draw(st.sampled_from([None, "u1", "u2", "u3", "u4", "x", "", 3]))
    if kind in ("user", "assistant") or draw(st.booleans()):
        line["message"] = {
            "role": draw(st.sampled_from(["user", "assistant", "system", kind])),
            "content": draw(json_values),
        }
    if kind == "attachment":
        line["attachment"] = {
            "type": draw(st.sampled_from(["queued_command", "prompt_snapshot", "environment"]))
        }
        line["renderedRole"] = draw(st.sampled_from(["user", "system", None]))
        line["rendered"] = [{"content": draw(st.text(max_size=10))}]
    for key, value in draw(
        st.dictionaries(st.sampled_from(["isMeta", "extra"]), json_values)
    ).items():
        line[key] = value
    return line


# Each example runs jq: half the profile's examples (conftest.py).
SETTINGS = settings(max_examples=max(10, settings().max_examples // 2))


def _jsonl(body: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in body)


@SETTINGS
@given(body=st.lists(lines(), max_size=8))
def test_the_cleaned_transcript_is_what_the_rules_say(body: list[dict[str, Any]]) -> None:
    assert clean(_jsonl(body)) == oracle(json.loads(json.dumps(body)))


@given(body=st.lists(lines(), max_size=8))
def test_the_runner_cleans_by_the_same_rules(body: list[dict[str, Any]]) -> None:
    assert runner_clean(_jsonl(body)) == oracle(json.loads(json.dumps(body)))


@SETTINGS
@given(
    body=st.lists(lines(), max_size=8),
    junk=st.lists(st.binary(max_size=12) | st.text(max_size=12).map(str.encode), max_size=2),
    at=st.integers(min_value=0, max_value=8),
)
def test_whatever_the_file_holds_only_the_conversation_gets_through(
    body: list[dict[str, Any]], junk: list[bytes], at: int
) -> None:
    raw = [json.dumps(line).encode() for line in body]
    raw[at:at] = [j.replace(b"\n", b" ").replace(b"\r", b" ") for j in junk]
    data = b"".join(r + b"\n" for r in raw)
    result = clean(data)
    if data.decode(errors="replace") == data.decode(errors="ignore"):  # text, as kept
        assert (runner_clean(data) is None) == (result is None), data
    if result is None:
        return
    known = {line.get("uuid") for line in body}
    kept_ids = {line.get("uuid") for line in result}
    for line in result:
        assert _is_allowed(line), line
        assert line.get("sessionId", SID) == SID
        assert line.get("cwd", WORK) == WORK
        parent = line.get("parentUuid")
        assert parent is None or parent in kept_ids or parent not in known, (line, result)


def test_a_chain_through_dropped_lines_is_relinked() -> None:
    chain = [
        {"type": "user", "uuid": "a", "parentUuid": None, "message": {"role": "user"}},
        {
            "type": "attachment",
            "uuid": "b",
            "parentUuid": "a",
            "renderedRole": "system",
            "attachment": {"type": "environment"},
        },
        {
            "type": "attachment",
            "uuid": "c",
            "parentUuid": "b",
            "attachment": {"type": "prompt_snapshot"},
        },
        {
            "type": "attachment",
            "uuid": "d",
            "parentUuid": "c",
            "renderedRole": "system",
            "attachment": {"type": "queued_command"},
        },
        {"type": "assistant", "uuid": "e", "parentUuid": "d", "message": {"role": "assistant"}},
    ]
    data = b"".join(json.dumps(line).encode() + b"\n" for line in chain)
    result = clean(data)
    assert result is not None
    assert [(r["uuid"], r["parentUuid"], r.get("renderedRole")) for r in result] == [
        ("a", None, None),
        ("d", "a", "user"),  # a message queued mid-turn stays, as user text
        ("e", "d", None),
    ]


def _message_line(raw: bytes) -> list[str]:
    result = _jq(["-R", "-r", _program("MESSAGES_LINE")], raw)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().split("\n")[:-1]


@SETTINGS
@given(seq=st.integers(min_value=1, max_value=2**53 - 1), text=st.text(min_size=1))
def test_a_message_becomes_exactly_one_user_turn_with_its_text(seq: int, text: str) -> None:
    raw = json.dumps({"seq": seq, "type": "message", "text": text, "role": "system"}).encode()
    [out] = _message_line(raw + b"\n")
    kind, got_seq, line = out.split("\t", 2)
    assert (kind, int(got_seq)) == ("M", seq)
    assert json.loads(line) == {
        "type": "user",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
    }


@SETTINGS
@given(raw=st.binary(max_size=80) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_answer_line_is_a_message_an_end_an_error_or_nothing(raw: bytes) -> None:
    for out in _message_line(raw.replace(b"\n", b" ") + b"\n"):
        kind = out.split("\t", 1)[0]
        assert kind in ("M", "E", "X"), out
        if kind == "M":
            message = json.loads(out.split("\t", 2)[2])
            assert set(message) == {"type", "message"}
            assert message["message"]["role"] == "user"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"type": "end"}, "E"),
        ({"type": "typing"}, None),  # room to grow: unknown kinds are let pass
        ({"seq": 0, "type": "message", "text": "x"}, "X"),
        ({"seq": 1.5, "type": "message", "text": "x"}, "X"),
        ({"seq": "1", "type": "message", "text": "x"}, "X"),
        ({"seq": 1, "type": "message", "text": ""}, "X"),
        ({"seq": 1, "type": "message", "text": ["x"]}, "X"),
        (["not", "an", "object"], "X"),
    ],
)
def test_answer_lines_that_are_off(line: Any, expected: str | None) -> None:
    out = _message_line(json.dumps(line).encode() + b"\n")
    assert [o.split("\t", 1)[0] for o in out] == ([expected] if expected else [])
