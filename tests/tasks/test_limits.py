"""Knowing why a run stopped (tasks.waits.limits): stream events, gateway headers, every wording."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.usage import GatewayUsage
from oauth_tokens.services.audit import LIMIT_RESET_MAX
from tasks.waits.limits import (
    LIMIT_PATTERNS,
    NO_LIMIT,
    LimitSource,
    LimitVerdict,
    clock_parse,
    gateway_limit_of,
    limit_text_parse,
    run_limit_parse,
    task_limit_choose,
)

NOW = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
RESET = int((NOW + timedelta(hours=2, minutes=36)).timestamp())

# As measured with the real CLI 2.1.332
# (docs/claude-cli-contract.md#usage-limits-and-auth-failures).
REJECTED = {
    "status": "rejected",
    "resetsAt": RESET,
    "rateLimitType": "five_hour",
    "overageStatus": "rejected",
    "isUsingOverage": False,
    "unifiedWindows": {"five_hour": {"utilization": 1, "resetsAt": RESET, "status": "rejected"}},
}
LIMITED_RESULT = {
    "type": "result",
    "subtype": "success",
    "is_error": True,
    "api_error_status": 429,
    "result": "You've hit your limit · resets 12:06am (UTC)",
}


def parse(**kw):
    kw.setdefault("rate_limit_events", [])
    kw.setdefault("result", {})
    return run_limit_parse(now=NOW, **kw)


def test_a_rejected_rate_limit_event_is_read_first():
    limit = parse(
        rate_limit_events=[{"status": "allowed"}, REJECTED],
        result=LIMITED_RESULT,
        assistant_errors=["rate_limit"],
    )
    assert limit.verdict == LimitVerdict.LIMITED
    assert limit.source == LimitSource.STREAM
    assert limit.resets_at == datetime.fromtimestamp(RESET, UTC)
    assert limit.window == "five_hour"
    assert limit.utilization == 1.0


def gateway_saw(**fields) -> GatewayUsage:
    return GatewayUsage(**fields)


def test_the_gateway_decides_the_task_when_it_saw_a_limit():
    headers = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": str(RESET),
        "anthropic-ratelimit-unified-representative-claim": "seven_day",
        "anthropic-ratelimit-unified-7d-utilization": "1.0",
    }
    usage = gateway_saw(
        status_429=1,
        ratelimit_headers=headers,
        rate_limit_status="rejected",
        rate_limit_rejected=True,
        rate_limit_rejected_reset=datetime.fromtimestamp(RESET, UTC),
        rate_limit_rejected_claim="seven_day",
    )
    seen = gateway_limit_of(usage=usage, now=NOW)
    assert (seen.verdict, seen.source, seen.window) == (
        LimitVerdict.LIMITED,
        LimitSource.GATEWAY,
        "seven_day",
    )
    assert seen.resets_at == datetime.fromtimestamp(RESET, UTC)
    assert seen.utilization == 1.0
    # The agent's words differ (another reset): the gateway's verdict is the task's.
    claim = parse(result=LIMITED_RESULT)
    assert task_limit_choose(claim=claim, seen=seen) == seen


def test_an_agent_claim_decides_only_when_the_gateway_saw_nothing():
    claim = parse(result=LIMITED_RESULT)
    for seen in (
        NO_LIMIT,
        gateway_limit_of(usage=gateway_saw(rate_limit_status="allowed"), now=NOW),
    ):
        chosen = task_limit_choose(claim=claim, seen=seen)
        assert chosen == claim
        assert not chosen.seen_by_gateway


@pytest.mark.parametrize(
    ("fields", "verdict"),
    [
        ({}, LimitVerdict.NONE),
        ({"rate_limit_status": "allowed"}, LimitVerdict.NONE),
        ({"rate_limit_status": "allowed_warning"}, LimitVerdict.WARNING),
        (
            {"status_429": 1, "rate_limit_status": "rejected", "rate_limit_rejected": True},
            "limited",
        ),
        # A 429 without unified headers (a per-minute limit of an API key) is no subscription limit.
        ({"status_429": 3}, LimitVerdict.NONE),
        # "rejected" on an answer that was no 429: not a rejection.
        ({"rate_limit_status": "rejected"}, LimitVerdict.NONE),
        (
            {"status_401": 2, "auth_refused_after_refresh": True, "auth_refused_at": NOW},
            "auth_failed",
        ),
        (
            {"status_401": 1, "auth_refused_unrenewable": True, "auth_refused_at": NOW},
            "auth_failed",
        ),
        # Accepted after the refusal: the credential works.
        (
            {
                "auth_refused_unrenewable": True,
                "auth_refused_at": NOW,
                "accepted_at": NOW + timedelta(seconds=1),
            },
            LimitVerdict.NONE,
        ),
        # A 403 that was not a replay after a refresh is about the request, not the credential.
        ({"status_403": 1}, LimitVerdict.NONE),
    ],
)
def test_what_the_gateway_saw_is_its_own_verdict(fields, verdict):
    seen = gateway_limit_of(usage=gateway_saw(**fields), now=NOW)
    assert seen.verdict == verdict


def test_every_reset_time_is_capped_to_seven_days_and_a_margin_whoever_gives_it():
    far = 9999999999
    cap = NOW + LIMIT_RESET_MAX
    assert timedelta(days=8) > LIMIT_RESET_MAX
    event = {"status": "rejected", "resetsAt": far, "rateLimitType": "seven_day"}
    assert parse(rate_limit_events=[event]).resets_at == cap
    text = {"is_error": True, "result": f"Claude AI usage limit reached|{far}"}
    assert parse(result=text).resets_at == cap
    usage = gateway_saw(
        status_429=1,
        rate_limit_status="rejected",
        rate_limit_rejected=True,
        rate_limit_rejected_reset=datetime.fromtimestamp(far, UTC),
    )
    assert gateway_limit_of(usage=usage, now=NOW).resets_at == cap
    # A near reset is left as it is.
    assert parse(rate_limit_events=[REJECTED]).resets_at == datetime.fromtimestamp(RESET, UTC)


def test_the_result_text_comes_last():
    limit = parse(result=LIMITED_RESULT)
    assert limit.verdict == LimitVerdict.LIMITED
    assert limit.source == LimitSource.TEXT
    assert limit.resets_at == datetime(2026, 12, 2, 0, 6, tzinfo=UTC)


def test_a_429_without_readable_words_is_still_limited():
    limit = parse(result={"is_error": True, "api_error_status": 429, "result": "API Error"})
    assert limit.limited
    assert limit.resets_at is None


@pytest.mark.parametrize(
    ("text", "window", "resets_at"),
    [
        (
            f"Claude AI usage limit reached|{RESET}",
            "",
            datetime.fromtimestamp(RESET, UTC),
        ),
        ("5-hour limit reached ∙ resets 2am", "five_hour", datetime(2026, 12, 2, 2, tzinfo=UTC)),
        (
            "Weekly limit reached · resets Dec 3, 5am",
            "seven_day",
            datetime(2026, 12, 3, 5, tzinfo=UTC),
        ),
        (
            "You've hit your session limit · resets 11pm",
            "five_hour",
            datetime(2026, 12, 1, 23, tzinfo=UTC),
        ),
        ("You've hit your monthly spend limit", "monthly", None),
        (
            "You've hit your limit · resets 2pm (Asia/Shanghai)",
            "",
            datetime(2026, 12, 2, 6, tzinfo=UTC),  # 14:00 in Shanghai is 06:00 UTC
        ),
        ("Claude AI usage limit reached", "", None),
    ],
    ids=[row.name for row in LIMIT_PATTERNS],
)
def test_every_known_wording_is_a_limit(text, window, resets_at):
    limit = limit_text_parse(text, now=NOW)
    assert limit is not None, text
    assert (limit.verdict, limit.window, limit.resets_at) == (
        LimitVerdict.LIMITED,
        window,
        resets_at,
    )


def test_the_table_and_the_wordings_test_stay_in_step():
    # One test row per pattern: a pattern added without a test fails here.
    ids = [row.name for row in LIMIT_PATTERNS]
    assert len(ids) == len(set(ids)) == 7


@pytest.mark.parametrize(
    "text",
    [
        "You've hit your limit · resets sometime soon",
        "5-hour limit reached ∙ resets 25pm",
        "You\u2019ve hit your session limit · resets 2pm (Mars/Olympus)",
        "Claude AI usage limit reached|notanumber",
    ],
)
def test_an_unreadable_reset_time_still_counts_as_limited(text):
    limit = parse(result={"is_error": True, "result": text})
    assert limit.limited
    assert limit.resets_at is None


def test_limit_words_inside_a_real_answer_are_not_a_limit():
    answer = (
        "I changed the retry loop. Note: if the API says 'You've hit your limit · resets 2pm' "
        "the client now waits. All tests pass."
    )
    assert parse(result={"is_error": False, "result": answer}).verdict == LimitVerdict.NONE


def test_a_short_success_that_is_only_the_limit_message_is_a_limit():
    # Older CLIs reported a limit as a two-second "success".
    limit = parse(result={"is_error": False, "result": f"Claude AI usage limit reached|{RESET}"})
    assert limit.limited


@pytest.mark.parametrize(
    ("result", "errors", "status"),
    [
        (
            {
                "is_error": True,
                "api_error_status": 401,
                "result": "Failed to authenticate. API Error: 401 OAuth token has expired.",
            },
            ["authentication_failed"],
            401,
        ),
        (
            {
                "is_error": True,
                "api_error_status": 403,
                "result": "Failed to authenticate: OAuth token revoked. Please log in again.",
            },
            [],
            403,
        ),
        ({"is_error": True, "result": "API Error: 401 Invalid bearer token"}, [], None),
        ({"is_error": True, "result": "Invalid authentication credentials"}, [], None),
    ],
)
def test_authentication_failures_are_their_own_outcome(result, errors, status):
    limit = parse(result=result, assistant_errors=errors)
    assert limit.verdict == LimitVerdict.AUTH_FAILED
    assert limit.http_status == status
    assert not limit.limited


def test_allowed_warning_is_a_warning_with_its_window_and_utilization():
    warning = {"status": "allowed_warning", "utilization": 0.92, "rateLimitType": "seven_day"}
    limit = parse(
        rate_limit_events=[warning, {"status": "allowed"}],
        result={"is_error": False, "result": "done"},
    )
    assert (limit.verdict, limit.window, limit.utilization) == (
        LimitVerdict.WARNING,
        "seven_day",
        0.92,
    )


def test_a_warning_given_only_for_one_window_is_a_warning():
    # What the real CLI prints when the headers carry no surpassed threshold.
    info = {
        "status": "allowed",
        "rateLimitType": "seven_day",
        "unifiedWindows": {
            "seven_day": {"utilization": 0.92, "resetsAt": RESET, "status": "allowed_warning"}
        },
    }
    limit = parse(rate_limit_events=[info], result={"is_error": False, "result": "done"})
    assert (limit.verdict, limit.window, limit.utilization) == (
        LimitVerdict.WARNING,
        "seven_day",
        0.92,
    )
    assert limit.resets_at == datetime.fromtimestamp(RESET, UTC)


def test_an_ordinary_run_is_not_limited():
    limit = parse(rate_limit_events=[{"status": "allowed"}], result={"is_error": False})
    assert limit.verdict == LimitVerdict.NONE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12:06am (UTC)", datetime(2026, 12, 2, 0, 6, tzinfo=UTC)),
        ("10pm", datetime(2026, 12, 1, 22, tzinfo=UTC)),
        ("8pm", datetime(2026, 12, 2, 20, tzinfo=UTC)),  # long past today: tomorrow
        ("9pm", datetime(2026, 12, 1, 21, tzinfo=UTC)),  # just passed: that moment
        ("14:00", datetime(2026, 12, 2, 14, tzinfo=UTC)),
        ("Jan 2, 3am", datetime(2027, 1, 2, 3, tzinfo=UTC)),
        ("13pm", None),
        ("later", None),
    ],
)
def test_clock_words(text, expected):
    assert clock_parse(text, now=NOW) == expected


@given(st.text(max_size=300))
def test_the_parser_never_fails_on_any_text(text):
    limit = parse(result={"is_error": True, "result": text}, rate_limit_events=[{"x": text}])
    assert limit.verdict in set(LimitVerdict)


@given(
    st.dictionaries(
        st.sampled_from(["status", "resetsAt", "rateLimitType", "utilization", "unifiedWindows"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    )
)
def test_any_event_shape_is_read_without_failing(info):
    parse(rate_limit_events=[info], result={"is_error": True})


@given(
    st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=20)),
    st.text(max_size=200),
)
def test_no_claimed_reset_lies_beyond_the_cap(reset, text):
    cap = NOW + LIMIT_RESET_MAX
    event = {"status": "rejected", "resetsAt": reset, "rateLimitType": "seven_day"}
    for limit in (
        parse(rate_limit_events=[event]),
        parse(result={"is_error": True, "result": f"Claude AI usage limit reached|{reset}"}),
        parse(result={"is_error": True, "result": f"You've hit your limit · resets {text}"}),
    ):
        assert limit.resets_at is None or limit.resets_at <= cap


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "anthropic-ratelimit-unified-status",
                "anthropic-ratelimit-unified-reset",
                "anthropic-ratelimit-unified-representative-claim",
                "anthropic-ratelimit-unified-5h-utilization",
                "anthropic-ratelimit-unified-7d-utilization",
            ]
        ),
        st.text(max_size=30),
    ),
    st.sampled_from(["", "allowed", "allowed_warning", "rejected"]),
    st.booleans(),
)
def test_any_headers_the_gateway_relayed_make_a_bounded_verdict(headers, status, rejected):
    usage = GatewayUsage(
        ratelimit_headers=headers,
        rate_limit_status=status,
        rate_limit_rejected=rejected,
        rate_limit_rejected_claim=headers.get(
            "anthropic-ratelimit-unified-representative-claim", ""
        ),
    )
    seen = gateway_limit_of(usage=usage, now=NOW)
    assert seen.resets_at is None or seen.resets_at <= NOW + LIMIT_RESET_MAX
    assert len(seen.window) <= 32
    assert seen.utilization is None or 0 <= seen.utilization <= 1
