"""Property tests (Hypothesis) for every parser of user input in hosting: whatever is pasted or
typed, the answer is a value or a HostingError with a message, never a crash, never an echo of
a pasted secret."""

import subprocess
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from hosting.errors import HostingError
from hosting.github import TOKEN_PREFIXES, expiry_parse, github_token_check
from hosting.repositories import github_repository_parse
from hosting.services import pull_request_branch_name, pull_request_text
from tasks.validation import branch_name_check

API = "https://api.github.com"
token_like = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from([*TOKEN_PREFIXES, "sk-ant-api03-", "", "Bearer "]),
    st.text(min_size=0, max_size=120),
)


@given(token_like)
def test_token_check_accepts_tokens_or_says_why_without_echoing(raw):
    try:
        token = github_token_check(raw=raw)
    except HostingError as exc:
        secret = raw.strip()
        assert len(secret) < 12 or secret not in exc.message
    else:
        assert token == raw.strip()
        assert token.startswith(TOKEN_PREFIXES)
        assert token.replace("_", "").isalnum()
        assert token.isascii()


@given(
    st.one_of(
        st.text(max_size=200),
        st.from_regex(r"https://github\.com/[\w.-]{1,20}/[\w.-]{1,20}(\.git)?/?"),
    )
)
def test_repository_parse_gives_a_ref_that_round_trips_or_an_error(url):
    try:
        ref = github_repository_parse(url=url, api_url=API)
    except HostingError as exc:
        assert exc.message
    else:
        assert github_repository_parse(url=ref.clone_url, api_url=API) == ref
        assert ref.host == "github.com"
        assert "/" not in ref.owner + ref.name


@given(st.text(max_size=60))
def test_expiry_header_never_crashes(value):
    parsed = expiry_parse(value)
    assert parsed is None or (isinstance(parsed, datetime) and parsed.tzinfo is not None)


@given(st.integers(min_value=1, max_value=10**9), st.text(max_size=400))
def test_branch_names_are_always_valid_for_git(task_id, prompt):
    name = pull_request_branch_name(task_id=task_id, prompt=prompt)
    assert branch_name_check(branch=name) == name
    assert name.startswith(f"claude-runner/{task_id}-")


def test_branch_name_passes_git_itself():
    for prompt in ("Fix it!", "ünïcødé ✓ prompt", "../../etc", "-rf /", "a" * 300, ""):
        name = pull_request_branch_name(task_id=7, prompt=prompt)
        done = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True)
        assert done.returncode == 0, name


@given(st.text(max_size=70_000), st.text(max_size=5000))
def test_pull_request_text_stays_within_githubs_limits(prompt, summary):
    title, body = pull_request_text(prompt=prompt, summary=summary, cost_usd=None, task_url="u")
    assert 0 < len(title) <= 72
    assert "\n" not in title
    assert len(body) <= 60_000
