"""The task log: streamed, redacted line by line, capped with the tail kept; whatever a line
from the agent holds, the lines after it still reach the page."""

import json
import logging

import pytest
from docker.errors import NotFound
from hypothesis import given
from hypothesis import strategies as st

from tasks.models import CodingTask
from tasks.run.containers import container_follow
from tasks.run.log import MAX_LINE_BYTES, TaskLog

pytestmark = pytest.mark.django_db

TOKEN = "plain-secret-value-without-a-prefix-123456"


@pytest.fixture
def task(user):
    return CodingTask.objects.create(owner=user, repo_url="https://x.org/a/b.git", prompt="p")


def stored(task) -> CodingTask:
    return CodingTask.objects.get(pk=task.pk)


def test_a_secret_split_across_chunks_is_still_redacted(task):
    log = TaskLog(task_id=task.pk, secrets=[TOKEN], max_bytes=10_000)
    log.feed(b"printing " + TOKEN[:10].encode())
    log.feed(TOKEN[10:].encode() + b" done\nand an sk-ant-oat01-abcdef token\n")
    log.finish()
    text = stored(task).log
    assert "printing [redacted] done" in text
    assert TOKEN[:10] not in text
    assert TOKEN[10:] not in text
    assert "sk-ant-" not in text


def test_the_tail_is_kept_when_the_log_is_too_long(task):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=200)
    for n in range(100):
        log.feed(f"line {n:03d}\n".encode())
    log.finish()
    row = stored(task)
    assert row.log_truncated
    assert len(row.log.encode()) <= 200
    assert row.log.endswith("line 099\n")
    assert "line 000" not in row.log
    assert row.log.startswith("line ")  # whole lines only


def test_a_runaway_line_is_left_out_not_cut(task):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=1_000_000)
    log.feed(b"before\n")
    log.feed(b"x" * (MAX_LINE_BYTES + 10))
    log.feed(b"y" * 100 + b"sk-ant-oat01-secrettail\nafter\n")
    log.finish()
    text = stored(task).log
    assert "before" in text
    assert "after" in text
    assert "left out" in text
    assert "xxxx" not in text
    assert "secrettail" not in text


def test_a_30_mb_line_gives_one_note_and_each_runaway_line_its_own(task):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=1_000_000)
    chunk = b"z" * 16_384
    for _ in range(30 * 64):  # 30 MB, as the engine streams it
        log.feed(chunk)
    log.feed(b"end of the first\nshort line\n")
    for _ in range(10):
        log.feed(chunk)
    log.feed(b"\nlast\n")
    log.finish()
    text = stored(task).log
    assert text.count("was left out") == 2
    assert "short line" in text
    assert "last" in text
    assert "end of the first" not in text
    assert "zzzz" not in text


def test_nul_characters_never_reach_the_database(task):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=1000)
    log.feed(b"binary\x00junk\n")
    log.finish()
    assert stored(task).log == "binaryjunk\n"


def test_stream_json_lines_are_shown_as_readable_lines(task):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
    log.feed(
        b'{"type":"system","subtype":"init","model":"m1","apiKeySource":"none",'
        b'"claude_code_version":"2.1.332"}\n'
        b'{"type":"assistant","message":{"content":[{"type":"text","text":"Hello"},'
        b'{"type":"tool_use","name":"Write","input":{"file_path":"/w/a.md"}}]}}\n'
        b'{"type":"result","is_error":false,"result":"All done"}\n'
    )
    log.finish()
    assert stored(task).log == (
        "Claude Code 2.1.332 started (model m1, signed in with OAuth tokens)\n"
        "Hello\n-> Write(/w/a.md)\n"
        "Result (done): All done\n"
    )
    assert log.result_line is not None
    assert log.result_line["result"] == "All done"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ('"ANTHROPIC_API_KEY"', "with an API key"),
        ('"none"', "signed in with OAuth tokens"),
        ("null", "credential not reported"),
        ('"apiKeyHelper"', "API key from apiKeyHelper"),
    ],
)
def test_the_start_line_says_which_credential_the_cli_used(task, source, words):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
    log.feed(
        b'{"type":"system","subtype":"init","model":"m1","apiKeySource":%s}\n' % source.encode()
    )
    log.finish()
    assert stored(task).log == f"Claude Code ? started (model m1, {words})\n"
    assert "auth none" not in stored(task).log


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"assistant","message":"a string, not an object"}',
        b'{"type":"assistant","message":{"content":["a string block"]}}',
        b'{"type":"assistant","message":{"content":{"text":"an object"}}}',
        b'{"type":"assistant","message":{"content":[{"type":"text","text":["a list"]}]}}',
        b'{"type":"assistant","message":{"content":[{"type":"tool_use","input":"a string"}]}}',
        b'{"type":"user","isReplay":true,"message":"a string"}',
        b'{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning",'
        b'"utilization":1e400}}',
        b'{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning",'
        b'"utilization":' + b"9" * 400 + b"}}",
        b'{"type":"result","result":"a lone \\ud800 surrogate"}',
        b'{"type":"result","result":' + b"[" * 50_000 + b"}",
    ],
)
def test_a_line_of_an_odd_shape_never_stops_the_log(task, line):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
    log.feed(line + b"\nthe agent goes on\n")
    log.finish()
    assert stored(task).log.endswith("the agent goes on\n")


def test_a_string_content_is_shown_as_the_agents_text(task):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=10_000)
    log.feed(b'{"type":"assistant","message":{"content":"Reading the tests"}}\n')
    log.feed(b'{"type":"result","result":"done \\ud800 here"}\n')
    log.finish()
    assert stored(task).log == "Reading the tests\nResult (done): done \ufffd here\n"


# Any JSON, with the fields and words the log reads among the keys and values; and lines
# shaped like the stream's events, with any JSON where the log looks for a field.
WORDS = st.sampled_from(
    ["type", "subtype", "message", "content", "text", "name", "input", "file_path", "result",
     "is_error", "error", "isReplay", "rate_limit_info", "status", "utilization",
     "rateLimitType", "apiKeySource", "model", "claude_code_version", "error_status",
     "assistant", "user", "result", "system", "init", "rate_limit_event", "api_retry",
     "tool_use", "allowed", "allowed_warning", "rejected", "none"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    WORDS,
    st.text(st.characters(exclude_categories=()), max_size=10),  # lone surrogates too
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(WORDS | st.text(), inner),
    max_leaves=12,
)


def fields(*names: str, among: st.SearchStrategy = JSON_VALUES) -> st.SearchStrategy:
    """Objects with some of ``names``, each any JSON (or ``among``)."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, JSON_VALUES | among))


BLOCKS = fields("type", "text", "name", "input", among=WORDS | fields("file_path"))
MESSAGES = fields("content", among=st.lists(BLOCKS | JSON_VALUES, max_size=3))
EVENTS = st.fixed_dictionaries(
    {"type": st.sampled_from(["assistant", "user", "result", "system", "rate_limit_event"])},
    optional={
        "subtype": st.sampled_from(["init", "api_retry"]),
        "isReplay": st.booleans(),
        "message": JSON_VALUES | MESSAGES,
        "rate_limit_info": JSON_VALUES
        | fields("status", "utilization", "rateLimitType", among=WORDS | st.floats(0, 2)),
        **dict.fromkeys(
            ("error", "result", "is_error", "model", "apiKeySource", "error_status"),
            JSON_VALUES,
        ),
    },
)
LINES = st.lists(
    st.one_of(
        (JSON_VALUES | EVENTS).map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=200),
    ),
    max_size=6,
)


@given(lines=LINES)
def test_no_line_from_the_agent_stops_the_lines_after_it(task, lines):
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=100_000)
    for line in lines:
        log.feed(line + b"\n")
    log.feed(b"the agent goes on\n")
    log.finish()
    assert stored(task).log.endswith("the agent goes on\n")


class StreamOnly:
    """A container that has exited: its output, nothing to collect."""

    id = "c0ffee"

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def logs(self, **_: object):
        yield from self.chunks

    def wait(self) -> dict[str, int]:
        return {"StatusCode": 0}

    def get_archive(self, path: str):
        raise NotFound(path)

    def remove(self, **_: object) -> None:
        pass


class Engine:
    def __init__(self, container: StreamOnly) -> None:
        self.containers = self
        self.container = container

    def get(self, container_id: str) -> StreamOnly:
        return self.container


def test_the_output_is_read_on_after_a_chunk_its_reader_fails_on(caplog):
    read = []

    def reader(chunk: bytes) -> None:
        if chunk == b"odd":
            raise AttributeError("'str' object has no attribute 'get'")
        read.append(chunk)

    container = StreamOnly([b"first\n", b"odd", b"after\n"])
    with caplog.at_level(logging.ERROR, logger="tasks.run.containers"):
        outcome = container_follow(
            client=Engine(container),  # type: ignore[arg-type]  # a stand-in for the engine
            container_id=container.id,
            timeout_seconds=30,
            on_output=reader,
            should_cancel=lambda: False,
            max_output_bytes=1000,
        )
    assert read == [b"first\n", b"after\n"]
    assert outcome.exit_code == 0
    assert "Reading container c0ffee's output failed" in caplog.text
