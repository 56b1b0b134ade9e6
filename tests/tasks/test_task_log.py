"""The task log: streamed, redacted line by line, capped with the tail kept."""

import pytest

from tasks.models import CodingTask
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
