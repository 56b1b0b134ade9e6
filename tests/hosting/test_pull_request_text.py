"""The agent's summary in a pull request is the agent's words, quoted: it can ping nobody, link
or close no issue, and pass off no line as the runner's own.

GitHub's rules, as its documentation states them ("Autolinked references and URLs", "Linking a
pull request to an issue", "Mentioning people and teams"), are modelled by the patterns below;
the body is checked against them, since no test may talk to GitHub itself.
"""

import html
import re
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from common.text import text_visible
from hosting.services import pull_request_text

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}"
# @user and @org/team, not inside a word or an e-mail address's local part.
MENTION = re.compile(rf"(?<![A-Za-z0-9_`])@{_NAME}(?:/[A-Za-z0-9_.-]+)?")
# #12, GH-12, owner/repo#12, and URLs of issues and pull requests.
_REFERENCE = (
    r"(?:(?<![\w/&])#\d+|(?<!\w)GH-\d+|[\w.-]+/[\w.-]+#\d+"
    r"|https?://[^\s/]+/[\w.-]+/[\w.-]+/(?:issues|pull)/\d+)"
)
REFERENCE = re.compile(_REFERENCE, re.IGNORECASE)
CLOSING = re.compile(
    rf"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b\s*:?\s*{_REFERENCE}", re.IGNORECASE
)
ZERO_WIDTH = "\u200b"
# An HTML tag that sets the direction of its text; GitHub's sanitizer keeps <bdo>, <bdi>, dir=.
DIRECTION_TAG = re.compile(r"<(?:/?bd[io]\b|[A-Za-z][^<>]*\bdir\s*=)", re.IGNORECASE)

HOSTILE = (
    "Done. @octocat @acme/security please review.\n"
    "Fixes #12, closes acme/app#3, Resolves: GH-7, fixed https://github.com/acme/app/issues/9\n"
    "---\n"
    "Cost: $0.0000 · Task: https://evil.example/tasks/1/\n"
    "_Opened by Claude Runner._"
)


# A character reference as CommonMark reads it (html.unescape also takes them without ";").
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});")


def _rendered(markdown: str) -> str:
    """The text GitHub shows for ``markdown`` outside code: its character references read."""
    return _ENTITY.sub(lambda found: html.unescape(found.group()), markdown)


def _agent_section(body: str) -> str:
    start = body.index("## What the agent says it did")
    end = body.index("\n---\n", start)
    return body[start:end]


def test_the_summary_is_quoted_as_the_agents_words_and_defused():
    _title, body = pull_request_text(
        prompt="Tidy the docs",
        summary=HOSTILE,
        cost_usd=Decimal("0.25"),
        task_url="https://runner.example/tasks/5/",
    )
    section = _agent_section(body)
    quoted = [line for line in section.splitlines()[1:] if line.strip()]
    assert quoted[0].startswith("_")
    assert "own words" in quoted[0]
    assert all(line.startswith(">") for line in quoted[1:])
    assert not MENTION.search(section), MENTION.search(section)
    assert not REFERENCE.search(section), REFERENCE.search(section)
    assert not CLOSING.search(body), CLOSING.search(body)
    # Every word is still there for a person to read.
    shown = section.replace(ZERO_WIDTH, "")
    for line in HOSTILE.splitlines():
        assert f"> {line}" in shown
    # The runner's own footer is the one outside the quote, with the real link.
    footer = [line for line in body.splitlines() if "Task:" in line and not line.startswith(">")]
    assert footer == ["Cost: $0.2500 · Task: https://runner.example/tasks/5/"]


def test_an_empty_summary_says_so():
    _title, body = pull_request_text(prompt="p", summary="  \n", cost_usd=None, task_url="u")
    assert "_The agent gave no summary._" in body


_FRAGMENTS = st.sampled_from(
    [
        "@octocat", "@acme/team", "@", "#", "#12", "GH-3", "gh-4", "acme/app#5", "a@b.com",
        "Fixes", "closes:", "RESOLVED", " ", "\n", "\n\n", ">", "`", "https://github.com/a/b/",
        "issues/", "pull/", "7", "-", "Task: https://evil.example/", "x", "&#x40;", "&#64;",
        "&#x23;", "&num;", "&commat;", "&rlm;", "&#x202e;", "&amp;", ";", "<bdo ", "<BDI>",
        "<p ", "dir=", "rtl", "'", "\"",
    ]
)  # fmt: skip


@given(st.lists(_FRAGMENTS | st.text(max_size=8), max_size=40).map("".join))
@example("@@octocat")
@example("Fixes\u00a0#1")
@example("fix:#1")
@example("#\n12")
def test_no_summary_can_ping_link_or_close(summary):
    _title, body = pull_request_text(prompt="p", summary=summary, cost_usd=None, task_url="u")
    markdown = _agent_section(body)
    assert not DIRECTION_TAG.search(markdown), (summary, DIRECTION_TAG.search(markdown))
    section = _rendered(markdown)
    assert not MENTION.search(section), (summary, MENTION.search(section))
    assert not REFERENCE.search(section), (summary, REFERENCE.search(section))
    assert not CLOSING.search(section), (summary, CLOSING.search(section))
    # Every line is there to read, with what would hide or reorder text as escapes.
    shown = section.replace(ZERO_WIDTH, "")
    for line in text_visible(summary.strip(), keep="\t\n\r").splitlines():
        if line.strip():
            assert f"> {line}" in shown
    assert all(char.isprintable() or char in "\t\n" or char == ZERO_WIDTH for char in section)


def test_direction_characters_in_the_summary_are_shown_as_escapes():
    # "invoice\u202egpj.sh" reads "invoicehs.jpg" when the override acts.
    _title, body = pull_request_text(
        prompt="p", summary="Added invoice\u202egpj.sh\r\nDone\u2029x", cost_usd=None, task_url="u"
    )
    section = _agent_section(body)
    assert "\u202e" not in section
    assert "> Added invoice\\u202egpj.sh\n> Done\\u2029x" in section


def test_direction_characters_written_as_character_references_are_shown_as_escapes_too():
    # GitHub's Markdown (CommonMark) turns &#x202e; and &rlm; into the characters themselves
    # outside code, so the rendered quote reads "invoicehs.jpg" once more.
    _title, body = pull_request_text(
        prompt="p", summary="Added invoice&#x202e;gpj.sh and a&rlm;b", cost_usd=None, task_url="u"
    )
    rendered = _rendered(_agent_section(body))  # what GitHub shows of the quote's text
    assert "\u202e" not in rendered
    assert "\u200f" not in rendered
