"""Numbers from the agent's result (cost, turns, duration) are its own word: negative, NaN,
infinite or absurd ones become unknown with a note in the log, never a crash that loses the
run's diff, and never a figure on the Usage page."""

import json
import math
from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from tasks.models import CodingTask, TaskStatus
from tasks.run.containers import ContainerOutcome
from tasks.run.finish import task_finish
from tasks.run.log import TaskLog
from tasks.run.outcome import AGENT_NUMBERS, agent_usage_parse, outcome_values

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(st.fixed_dictionaries({}, optional=dict.fromkeys(AGENT_NUMBERS, JSON_VALUES)))
def test_any_result_gives_sane_numbers_or_unknown(result):
    values, doubtful = agent_usage_parse(result)
    cost = values["cost_usd"]
    assert cost is None or (
        isinstance(cost, Decimal)
        and 0 <= cost <= 100_000
        and cost == cost.quantize(Decimal("0.000001"))
    )
    for column in ("num_turns", "duration_ms"):
        value = values[column]
        assert value is None or (isinstance(value, int) and 0 <= value < 2**31)
    for name in AGENT_NUMBERS:
        given_value = result.get(name)
        column = AGENT_NUMBERS[name][0]
        # Unknown is either not given or said so.
        assert (values[column] is None and given_value is not None) == (name in doubtful)


def test_ordinary_numbers_are_kept():
    values, doubtful = agent_usage_parse(
        {"total_cost_usd": 0.1234567, "num_turns": 7, "duration_ms": 65_000}
    )
    assert values == {"cost_usd": Decimal("0.123457"), "num_turns": 7, "duration_ms": 65_000}
    assert doubtful == []


@pytest.mark.parametrize(
    "bad",
    [-999999.5, -1, math.nan, math.inf, -math.inf, 10**23, 1e23, 1e300, "12", True, [1]],
    ids=repr,
)
def test_absurd_numbers_are_unknown(bad):
    values, doubtful = agent_usage_parse(
        {"total_cost_usd": bad, "num_turns": bad, "duration_ms": bad}
    )
    assert values == {"cost_usd": None, "num_turns": None, "duration_ms": None}
    assert doubtful == list(AGENT_NUMBERS)


DIFF = b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+kept\n"


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [-999999.5, 10**23, "NaN", "Infinity"])
def test_a_hostile_result_keeps_the_diff_and_shows_no_figure(user, user_client, bad):
    task = CodingTask.objects.create(
        owner=user, repo_url="https://github.com/a/b", prompt="p", status=TaskStatus.RUNNING
    )
    # What a hostile agent writes: numbers JSON itself cannot hold, too.
    raw = json.dumps({"type": "result", "result": "done", "is_error": "yes", "session_id": 5})
    raw = raw[:-1] + f', "total_cost_usd": {bad}, "num_turns": {bad}, "duration_ms": {bad}}}'
    outcome = ContainerOutcome("c", 0, outputs={"result.json": raw.encode(), "diff.patch": DIFF})
    log = TaskLog(task_id=task.pk, secrets=[], max_bytes=99999)
    task_finish(task_id=task.pk, result=outcome_values(outcome=outcome, log=log))
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED  # is_error "yes": not a clean success
    assert "+kept" in task.diff
    assert (task.usage.cost_usd, task.usage.num_turns, task.usage.duration_ms) == (None,) * 3
    assert log.text.count("which cannot be right; it is recorded as unknown") == 3
    page = user_client.get(reverse("usage:page")).content.decode()
    assert "999999" not in page
    assert "-$" not in page
    assert "$-" not in page
    detail = user_client.get(reverse("tasks:detail", args=[task.pk])).content.decode()
    assert "$-" not in detail  # the claim is only in the log's note, as the agent's
    assert " · $" not in detail
